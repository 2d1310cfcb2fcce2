#!/bin/sh
# shellcheck disable=SC2046
# mpi_placement: 4 ranks, each a node of its own (tests/per_rank_node.sh),
# every rank declaring memory=1000, gpus=2 and ssd=1 (TASKRAY_RESOURCES).
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

TASKRAY_RESOURCES="memory=1000,gpus=2,ssd=1"
export TASKRAY_RESOURCES
echo "== mpi_placement, 4 ranks, a node each"
tr_mpirun 4 $(tr_env TASKRAY_RESOURCES) sh "$here/per_rank_node.sh" ./mpi_placement ||
    tr_fail "mpi_placement with 4 ranks on 4 nodes"
echo "== mpi_placement gpu_xml, 4 ranks, a 2-NUMA 2-GPU topology (hwloc XML)"
TASKRAY_TOPOLOGY="$here/topo/two-numa-two-gpu.xml"
unset TASKRAY_RESOURCES
export TASKRAY_TOPOLOGY
tr_mpirun 4 $(tr_env TASKRAY_TOPOLOGY) ./mpi_placement gpu_xml ||
    tr_fail "mpi_placement gpu_xml with 4 ranks"
echo "mpi_placement: all runs passed"
