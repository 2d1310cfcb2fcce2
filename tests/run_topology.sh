#!/bin/sh
# tr_env prints several launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# mpi_topology: cores and GPUs shared among the ranks of a node, on a
# described machine (tests/topo/two-numa-two-gpu.xml: 2 NUMA nodes x 8
# cores, an NVIDIA GPU near each; a synthetic string) and on this one.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

unset CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER HIP_VISIBLE_DEVICES ROCR_VISIBLE_DEVICES \
    TASKRAY_NUM_EXECUTORS TASKRAY_RESOURCES TASKRAY_BIND TASKRAY_TOPOLOGY || true
xml="$here/topo/two-numa-two-gpu.xml"
run1() { timeout -k 10 "$TR_TEST_TIMEOUT" ./mpi_topology "$@"; }

echo "== 4 ranks on two-numa-two-gpu.xml: 4 cores each, a GPU for ranks 0 and 2"
TASKRAY_TOPOLOGY=$xml
export TASKRAY_TOPOLOGY
tr_mpirun 4 $(tr_env TASKRAY_TOPOLOGY) ./mpi_topology xml4 || tr_fail "xml4"

echo "== 1 rank on two-numa-two-gpu.xml: 16 executors, both GPUs"
run1 xml1 || tr_fail "xml1"
TASKRAY_NUM_EXECUTORS=3 run1 xml1 || tr_fail "xml1 with TASKRAY_NUM_EXECUTORS=3"
CUDA_VISIBLE_DEVICES=7 EXPECT_CVD=7 run1 xml1 || tr_fail "xml1 with CUDA_VISIBLE_DEVICES set by the user"
run1 params || tr_fail "params"

echo "== TASKRAY_RESOURCES overrides, 2 ranks"
TASKRAY_RESOURCES="ssd=1,licence=2,cpus=3,gpus=2"
export TASKRAY_RESOURCES
tr_mpirun 2 $(tr_env TASKRAY_TOPOLOGY TASKRAY_RESOURCES) ./mpi_topology resources || tr_fail "resources"
unset TASKRAY_RESOURCES

echo "== synthetic topology, bad topologies"
TASKRAY_TOPOLOGY="pack:2 core:4 pu:1" run1 synthetic || tr_fail "synthetic"
TASKRAY_TOPOLOGY=/nonexistent/topology.xml run1 bad || tr_fail "missing XML file"
TASKRAY_TOPOLOGY="pack:x core:y" run1 bad || tr_fail "malformed synthetic string"
unset TASKRAY_TOPOLOGY

echo "== this machine: 2 ranks as the launcher binds them, then unbound (split by taskray)"
tr_mpirun 2 ./mpi_topology real || tr_fail "real, launcher binding"
if [ "$tr_mpi_flavor" = openmpi ]; then
    tr_mpirun 2 --bind-to none ./mpi_topology real || tr_fail "real, --bind-to none"
fi
tr_mpirun 4 ./mpi_topology real || tr_fail "real, 4 ranks"
echo "mpi_topology: all runs passed"
