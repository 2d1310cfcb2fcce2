#!/bin/sh
# mpi_actors (TR_MODE_DRIVER, actors on remote ranks) in three layouts:
# 3 and 4 ranks on one node, and 3 ranks that are each a node (calls,
# arguments and returns then move over UCX's network transports).
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

echo "== mpi_actors, 3 ranks, one node"
tr_mpirun 3 ./mpi_actors || tr_fail "mpi_actors with 3 ranks on one node"

echo "== mpi_actors, 4 ranks, one node"
tr_mpirun 4 ./mpi_actors || tr_fail "mpi_actors with 4 ranks on one node"

echo "== mpi_actors, 3 ranks, a node each"
tr_mpirun 3 sh "$here/per_rank_node.sh" ./mpi_actors || tr_fail "mpi_actors with 3 ranks on 3 nodes"
echo "mpi_actors: all runs passed"
