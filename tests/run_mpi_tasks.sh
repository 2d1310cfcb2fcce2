#!/bin/sh
# tr_env prints several launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# mpi_tasks (TR_MODE_DRIVER) without a launcher and with 1, 2, 4 ranks on
# one node, then with 3 ranks that are each a node of their own.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

echo "== mpi_tasks without a launcher (embedded mode)"
TASKRAY_EXPECT_NODES_DISTINCT=0 timeout -k 10 "$TR_TEST_TIMEOUT" ./mpi_tasks ||
    tr_fail "mpi_tasks without a launcher"

TASKRAY_EXPECT_NODES_DISTINCT=0
export TASKRAY_EXPECT_NODES_DISTINCT
for n in 1 2; do
    echo "== mpi_tasks, $n rank(s), one node"
    tr_mpirun "$n" $(tr_env TASKRAY_EXPECT_NODES_DISTINCT) ./mpi_tasks ||
        tr_fail "mpi_tasks with $n rank(s)"
done

echo "== mpi_tasks, 4 ranks, one node, TASKRAY_INLINE_MAX=4096"
TASKRAY_INLINE_MAX=4096
export TASKRAY_INLINE_MAX
tr_mpirun 4 $(tr_env TASKRAY_EXPECT_NODES_DISTINCT TASKRAY_INLINE_MAX) ./mpi_tasks ||
    tr_fail "mpi_tasks with 4 ranks"

echo "== mpi_tasks, 3 ranks, a node each, TASKRAY_INLINE_MAX=1024"
TASKRAY_INLINE_MAX=1024
TASKRAY_EXPECT_NODES_DISTINCT=1
tr_mpirun 3 $(tr_env TASKRAY_EXPECT_NODES_DISTINCT TASKRAY_INLINE_MAX) \
    sh "$here/per_rank_node.sh" ./mpi_tasks ||
    tr_fail "mpi_tasks with 3 ranks on 3 nodes"
echo "mpi_tasks: all runs passed"
