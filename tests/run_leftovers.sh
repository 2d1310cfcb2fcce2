#!/bin/sh
# run_leftovers: what a job leaves in /dev/shm and in its spill directory.
#  (a) a job that ends normally leaves nothing;
#  (b) a job whose every rank is killed with SIGKILL leaves its segments and
#      spill files, and the next job's tr_init removes them (their owner
#      locks are free);
#  (c) a job that is still alive keeps everything while another job starts
#      and ends beside it.
# Other jobs (other users' tests, other builds) may run on this machine
# meanwhile: the script only looks at the files of its own jobs, found from
# the pids in their owner locks (/dev/shm/taskray-<job>-<rank>.lock).
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

app=${builddir:-.}/leftover_app
[ -x "$app" ] || tr_fail "leftover_app is not built"
work=$(mktemp -d)
bg=""
cleanup()
{
    for p in $bg; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
TASKRAY_SPILL_DIR=$work/spill
TASKRAY_OBJECT_STORE_BYTES=2097152   # 1 MiB a rank: the driver's puts spill
TASKRAY_LOG_LEVEL=info
export TASKRAY_SPILL_DIR TASKRAY_OBJECT_STORE_BYTES TASKRAY_LOG_LEVEL
mkdir -p "$TASKRAY_SPILL_DIR"
ENVS=$(tr_env TASKRAY_SPILL_DIR TASKRAY_OBJECT_STORE_BYTES TASKRAY_LOG_LEVEL)

# start NAME SECONDS: a 2-rank job in the background, its dir $work/NAME
start()
{
    mkdir -p "$work/$1"
    # shellcheck disable=SC2086 # ENVS is a list of words
    tr_mpirun 2 $ENVS "$app" "$work/$1" "$2" > "$work/$1.out" 2>&1 &
    bg="$bg $!"
    eval "pid_$1=$!"
    tries=0
    while [ ! -f "$work/$1/ready" ] || [ ! -f "$work/$1/pid.1" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || { cat "$work/$1.out"; tr_fail "$1: the job did not start"; }
        sleep 0.2
    done
}

# prefix NAME: "taskray-<job>" of the job whose ranks wrote $work/NAME/pid.*
prefix()
{
    pids=$(cat "$work/$1"/pid.*)
    for f in /dev/shm/taskray-*.lock; do
        [ -f "$f" ] || continue
        p=$(awk '{print $3}' "$f" 2>/dev/null || true)
        for q in $pids; do
            if [ "$p" = "$q" ]; then
                basename "$f" | sed 's/-[0-9]*\.lock$//'
                return 0
            fi
        done
    done
    tr_fail "$1: no owner lock in /dev/shm names the pids $pids"
}

shm_of() { ls /dev/shm 2>/dev/null | grep "^$1-" || true; }
spill_of() { find "$TASKRAY_SPILL_DIR" -maxdepth 1 -name "$1" 2>/dev/null; }

# gone PREFIX WHAT: nothing of the job in /dev/shm or the spill dir (within 10 s)
gone()
{
    tries=0
    while [ -n "$(shm_of "$1")$(spill_of "$1")" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || tr_fail "$2 left behind: $(shm_of "$1") $(spill_of "$1")"
        sleep 0.2
    done
}

echo "== (a) a normal run leaves nothing"
start a 2
ja=$(prefix a)
echo "job a is $ja: $(shm_of "$ja" | tr '\n' ' ')"
[ -n "$(spill_of "$ja")" ] || tr_fail "job a spilled nothing (the test needs a spill directory)"
rc=0; wait "$pid_a" || rc=$?
cat "$work/a.out"
[ "$rc" -eq 0 ] || tr_fail "job a exited with status $rc"
gone "$ja" "a normal run"

echo "== (b) kill -9 of every rank leaves files; the next job removes them"
start b 120
jb=$(prefix b)
echo "job b is $jb: $(shm_of "$jb" | tr '\n' ' ')"
# shellcheck disable=SC2046 # one pid a word
kill -9 $(cat "$work/b"/pid.*)
rc=0; wait "$pid_b" || rc=$?
[ "$rc" -ne 0 ] || tr_fail "job b was killed but exited with status 0"
left=$(shm_of "$jb")
echo "job b left: $left $(spill_of "$jb")"
[ -n "$left" ] || tr_fail "job b was killed but left no segment: nothing for the next job to clean"
start c 0
rc=0; wait "$pid_c" || rc=$?
cat "$work/c.out"
[ "$rc" -eq 0 ] || tr_fail "job c exited with status $rc"
grep -q "removed the leftovers of dead rank [0-9]* of job ${jb#taskray-}" "$work/c.out" ||
    tr_fail "job c did not say that it removed job b's leftovers"
gone "$jb" "job b, killed, after job c started,"

echo "== (c) a live job keeps its files while another job runs"
start d 30
jd=$(prefix d)
before=$(shm_of "$jd" | sort | tr '\n' ' ')
echo "job d is $jd: $before"
start e 0
rc=0; wait "$pid_e" || rc=$?
cat "$work/e.out"
[ "$rc" -eq 0 ] || tr_fail "job e exited with status $rc"
after=$(shm_of "$jd" | sort | tr '\n' ' ')
[ "$before" = "$after" ] || tr_fail "job e removed files of live job d: before '$before', after '$after'"
[ -n "$(spill_of "$jd")" ] || tr_fail "job e removed the spill directory of live job d"
if grep -q "${jd#taskray-}" "$work/e.out"; then tr_fail "job e named live job d's files as leftovers"; fi
rc=0; wait "$pid_d" || rc=$?
cat "$work/d.out"
[ "$rc" -eq 0 ] || tr_fail "job d exited with status $rc"
gone "$jd" "job d"
echo "run_leftovers: all scenarios passed"
