#!/bin/sh
# mpi_failures: real `kill -9` (and one SIGSTOP) of real ranks, each
# scenario a job of its own, launched through taskray-run(1) so that the
# survivors live on under Open MPI and MPICH.  Every scenario's driver checks
# its results against the values a run without failure gives, and this
# script checks that nothing is left behind: no shared-memory segment of
# the job in /dev/shm and no spill file.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

run=${top_builddir:-..}/tools/taskray-run
if [ ! -x "$run" ]; then
    echo "run_mpi_failures: tools/taskray-run is not built" >&2
    exit 1
fi
launch()
{
    tr_n=$1
    shift
    echo "+ taskray-run --launcher $MPIRUN -n $tr_n $MPIRUN_FLAGS -- $*"
    # shellcheck disable=SC2086 # MPIRUN_FLAGS is a list of words
    timeout -k 10 "$TR_TEST_TIMEOUT" "$run" --launcher "$MPIRUN" -n "$tr_n" $MPIRUN_FLAGS -- "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TASKRAY_SPILL_DIR=$work/spill
export TASKRAY_SPILL_DIR
mkdir -p "$TASKRAY_SPILL_DIR"
ls /dev/shm 2>/dev/null | grep '^taskray-' | sort > "$work/shm.before" || true

# Some launchers (MPICH's Hydra without auto-cleanup) return while the last
# ranks still finalize: give them a few seconds to remove what is theirs.
leftovers()
{
    tries=0
    while :; do
        ls /dev/shm 2>/dev/null | grep '^taskray-' | sort > "$work/shm.after" || true
        extra=$(comm -13 "$work/shm.before" "$work/shm.after")
        left=$(find "$TASKRAY_SPILL_DIR" -mindepth 1 2>/dev/null | head -5)
        [ -n "$extra$left" ] || return 0
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || break
        sleep 0.2
    done
    [ -z "$extra" ] || tr_fail "$1 left shared memory behind: $extra"
    tr_fail "$1 left spill files behind: $left"
}

scenario()
{
    name=$1
    n=$2
    shift 2
    echo "== $name on $n ranks"
    rc=0
    launch "$n" "$@" > "$work/out" 2>&1 || rc=$?
    cat "$work/out"
    [ "$rc" -eq 0 ] || tr_fail "$name: the job exited with status $rc"
    grep -q "mpi_failures [a-z_]*: ok" "$work/out" || tr_fail "$name: the driver did not report success"
    leftovers "$name"
}

scenario "a worker killed while idle" 4 ./mpi_failures idle
scenario "a worker killed mid-task" 4 ./mpi_failures midtask
scenario "a worker killed holding the only copies" 4 ./mpi_failures only_copy
scenario "a worker killed while nested tasks run" 4 ./mpi_failures nested
scenario "a worker killed owning nested-task results" 4 ./mpi_failures owner
scenario "a worker killed hosting an actor" 4 ./mpi_failures actor
scenario "a worker killed during a cross-node transfer" 4 sh "$here/per_rank_node.sh" ./mpi_failures transfer
scenario "two workers killed" 5 ./mpi_failures two 2 3
scenario "a worker killed holding put objects (one with a replica)" 4 ./mpi_failures replica
scenario "a worker killed holding put objects, a node each" 4 sh "$here/per_rank_node.sh" ./mpi_failures replica
# a hang is seen by the heartbeat only: 100 ms beats, written off after 1 s
# (a rank stopped for longer while writing into a peer's shared-memory
# queue leaves that peer deaf meanwhile: see doc/architecture.md)
TASKRAY_HEARTBEAT_MS=100
TASKRAY_HEARTBEAT_TIMEOUT_MS=1000
export TASKRAY_HEARTBEAT_MS TASKRAY_HEARTBEAT_TIMEOUT_MS
scenario "a worker that hangs" 4 ./mpi_failures hang
unset TASKRAY_HEARTBEAT_MS TASKRAY_HEARTBEAT_TIMEOUT_MS

echo "== the driver killed: the job must fail, not hang"
rc=0
launch 4 ./mpi_failures driver > "$work/out" 2>&1 || rc=$?
cat "$work/out"
[ "$rc" -ne 0 ] || tr_fail "the driver was killed but the job exited with status 0"
grep -q "the driver (rank 0) died" "$work/out" || tr_fail "no rank said that the driver died"
leftovers "the driver killed"
echo "== a worker killed during start-up: the job must fail within the watchdog's time"
rc=0
start=$(date +%s)
TASKRAY_BOOTSTRAP_TIMEOUT=5 launch 4 ./mpi_failures boot > "$work/out" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
cat "$work/out"
[ "$rc" -ne 0 ] || tr_fail "a rank died during start-up but the job exited with status 0"
[ "$took" -lt 60 ] || tr_fail "start-up took $took s to give up after a rank died (watchdog: 5 s)"
grep -q "did not complete within" "$work/out" || tr_fail "no rank reported the start-up timeout"
leftovers "a worker killed during start-up"

echo "run_mpi_failures: all scenarios passed"
