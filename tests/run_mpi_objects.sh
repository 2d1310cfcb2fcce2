#!/bin/sh
# tr_env prints several launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# mpi_objects (TR_MODE_DRIVER, the distributed object store) in three
# layouts: 4 ranks on one node (zero-copy reads of a peer's arena), 3 ranks
# that are each a node (fetches over UCX), and 4 ranks on two nodes of two
# ranks each (per-node fetch dedupe).
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

echo "== mpi_objects, 4 ranks, one node"
tr_mpirun 4 ./mpi_objects same_node borrow_keep borrow_pending refs10k gc returned_refs ||
    tr_fail "mpi_objects with 4 ranks on one node"

echo "== mpi_objects, 3 ranks, a node each"
tr_mpirun 3 sh "$here/per_rank_node.sh" ./mpi_objects \
    cross_node borrow_keep borrow_pending refs10k gc returned_refs ||
    tr_fail "mpi_objects with 3 ranks on 3 nodes"

echo "== mpi_objects, 4 ranks, nodes {0,1} and {2,3}"
tr_mpirun 4 sh "$here/pair_node.sh" ./mpi_objects dedupe borrow_keep borrow_pending refs10k gc returned_refs ||
    tr_fail "mpi_objects with 4 ranks on 2 nodes"
echo "mpi_objects: all runs passed"
