#!/bin/sh
# taskray-run under the configured launcher ($MPIRUN: Open MPI's mpirun or
# MPICH's mpiexec): it exits with rank 0's own status, reports a signal
# death as 128+N with a message, and keeps the other ranks running to the
# end when one rank is killed.  Then its srun command line and rank-0
# status, through a stand-in srun (Slurm is not needed).
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

run=${top_builddir:-..}/tools/taskray-run
prog=${builddir:-.}/launch_kill
[ -x "$run" ] || tr_fail "$run was not built"
[ -x "$prog" ] || tr_fail "$prog was not built"
TR_TEST_TIMEOUT=60

dir=$(mktemp -d "${TMPDIR:-/tmp}/run_launcher.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# launch MODE: launch_kill MODE on 4 ranks under taskray-run; sets rc, out.
launch()
{
    rm -f "$dir"/survived.*
    echo "+ $run --launcher $MPIRUN -n 4 $MPIRUN_FLAGS -- $prog $1 $dir"
    # shellcheck disable=SC2086 # MPIRUN_FLAGS is a list of words
    out=$(timeout -k 10 "$TR_TEST_TIMEOUT" "$run" --launcher "$MPIRUN" -n 4 $MPIRUN_FLAGS -- \
        "$prog" "$1" "$dir" 2>&1) && rc=0 || rc=$?
    echo "$out"
    case $rc in 124|137) [ "$1" = kill0 ] && [ "$rc" = 137 ] ||
        tr_fail "$1: the job hung until the test's own timeout" ;; esac
}

launch ok
[ "$rc" -eq 0 ] || tr_fail "ok: taskray-run exited $rc, not 0"

launch exit5
[ "$rc" -eq 5 ] || tr_fail "exit5: taskray-run exited $rc, not rank 0's 5"

launch kill2
[ "$rc" -eq 3 ] || tr_fail "kill2: taskray-run exited $rc, not rank 0's 3"
for r in 0 1 3; do
    [ -e "$dir/survived.$r" ] || tr_fail "kill2: rank $r did not survive rank 2's death"
done
echo "$out" | grep -q "rank 2 .*killed by signal 9" || tr_fail "kill2: no message about rank 2"

start=$(date +%s)
launch kill0
[ "$rc" -eq 137 ] || tr_fail "kill0: taskray-run exited $rc, not 137"
echo "$out" | grep -q "rank 0 (the driver) was killed by signal 9" ||
    tr_fail "kill0: no message about rank 0"
[ $(($(date +%s) - start)) -lt 30 ] || tr_fail "kill0: taskray-run took 30 s or more"

# Usage errors are taskray-run's own status, 125.
"$run" -n 2 --bogus-launcher-flag "$prog" ok "$dir" 2>"$dir/err" && rc=0 || rc=$?
[ "$rc" -eq 125 ] || tr_fail "a launcher option without -- exited $rc, not 125"
grep -q "must end with --" "$dir/err" || tr_fail "no message for a launcher option without --"

# TASKRAY_* variables reach the ranks through the launcher's own flags.
TASKRAY_LAUNCHER_TEST=yes "$run" --dry-run --launcher "$MPIRUN" -n 2 -- "$prog" ok "$dir" \
    2>"$dir/cmd"
cat "$dir/cmd"
case $tr_mpi_flavor in
openmpi) want="--enable-recovery -x TASKRAY_LAUNCHER_TEST" ;;
*)       want="-disable-auto-cleanup -genv TASKRAY_LAUNCHER_TEST yes" ;;
esac
grep -q -e "$want" "$dir/cmd" || tr_fail "the launcher's command line lacks '$want'"

# Slurm: a stand-in srun that records its arguments and starts the tasks
# itself with SLURM_PROCID set, as srun does.
mkdir "$dir/bin"
cat >"$dir/bin/srun" <<'EOF'
#!/bin/sh
echo "srun $*" >"$FAKE_SRUN_LOG"
n=1
while [ $# -gt 0 ]; do
    case $1 in -n) n=$2; shift 2 ;; -*) shift ;; *) break ;; esac
done
i=0 pids=
while [ "$i" -lt "$n" ]; do
    SLURM_PROCID=$i "$@" &
    pids="$pids $!"
    i=$((i + 1))
done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
exit "$rc"
EOF
chmod +x "$dir/bin/srun"
slurm()
{
    out=$(env -u TASKRAY_LAUNCHER PATH="$dir/bin:$PATH" SLURM_JOB_ID=1 \
        FAKE_SRUN_LOG="$dir/srun.log" "$run" -n 3 -- sh -c "$1" 2>&1) && rc=0 || rc=$?
    echo "$out"
}
slurm '[ "$SLURM_PROCID" = 0 ] && exit 4; exit 0'
cat "$dir/srun.log"
grep -q -e "--kill-on-bad-exit=0 --wait=0" "$dir/srun.log" ||
    tr_fail "srun was not given --kill-on-bad-exit=0 --wait=0"
[ "$rc" -eq 4 ] || tr_fail "srun: taskray-run exited $rc, not rank 0's 4"
slurm '[ "$SLURM_PROCID" = 0 ] && kill -9 $$; exit 0'
[ "$rc" -eq 137 ] || tr_fail "srun: taskray-run exited $rc, not 137"
echo "$out" | grep -q "rank 0 (the driver) was killed by signal 9" ||
    tr_fail "srun: no message about rank 0"

echo "run_launcher: passed"
