#!/bin/sh
# tr_env prints several launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# mpi_steal: idle ranks steal queued tasks (4 ranks, one executor each), not
# with TASKRAY_STEAL=0, never a task with hard affinity, and across nodes
# never one whose stored arguments exceed TASKRAY_STEAL_MAX_BYTES; a thief
# killed while it holds stolen tasks (through taskray-run(1), so that the
# survivors live on): its tasks run again.  Four ranks share the two cores
# of a small machine, where stealing is off by default (no idle core to
# gain): TASKRAY_STEAL=1 turns it on.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

TASKRAY_NUM_EXECUTORS=1
TASKRAY_SUMMARY=1
TASKRAY_STEAL=1
export TASKRAY_NUM_EXECUTORS TASKRAY_SUMMARY TASKRAY_STEAL

echo "== mpi_steal, 4 ranks, one node, stealing on"
tr_mpirun 4 $(tr_env TASKRAY_NUM_EXECUTORS TASKRAY_SUMMARY TASKRAY_STEAL) ./mpi_steal on ||
    tr_fail "mpi_steal on"

echo "== mpi_steal, 4 ranks, one node, TASKRAY_STEAL=0"
TASKRAY_STEAL=0
export TASKRAY_STEAL
tr_mpirun 4 $(tr_env TASKRAY_NUM_EXECUTORS TASKRAY_SUMMARY TASKRAY_STEAL) ./mpi_steal off ||
    tr_fail "mpi_steal off"
TASKRAY_STEAL=1

echo "== mpi_steal, 3 ranks, a node each"
tr_mpirun 3 $(tr_env TASKRAY_NUM_EXECUTORS TASKRAY_SUMMARY TASKRAY_STEAL) sh "$here/per_rank_node.sh" ./mpi_steal far ||
    tr_fail "mpi_steal far"
echo "== mpi_steal, 4 ranks, a thief is killed (taskray-run)"
run=${top_builddir:-..}/tools/taskray-run
[ -x "$run" ] || tr_fail "tools/taskray-run is not built"
# shellcheck disable=SC2086 # MPIRUN_FLAGS is a list of words
timeout -k 10 "$TR_TEST_TIMEOUT" "$run" --launcher "$MPIRUN" -n 4 $MPIRUN_FLAGS -- ./mpi_steal kill ||
    tr_fail "mpi_steal kill"
echo "mpi_steal: all runs passed"
