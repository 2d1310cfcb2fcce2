#!/bin/sh
# Two different binaries in one MPMD job: tr_init() must return
# TR_ERR_MISMATCH on both ranks, the library must say on stderr that the
# binaries (their remote function tables) differ, and both processes must
# still exit cleanly.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

status=0
echo "+ $MPIRUN $MPIRUN_FLAGS -n 1 ./mpi_mismatch_a : -n 1 ./mpi_mismatch_b"
# shellcheck disable=SC2086
timeout -k 10 120 "$MPIRUN" $MPIRUN_FLAGS -n 1 ./mpi_mismatch_a : -n 1 ./mpi_mismatch_b \
    >"$out" 2>"$err" || status=$?
echo "--- stdout"
cat "$out"
echo "--- stderr"
cat "$err"
echo "---"

case $status in
124 | 137) tr_fail "the job hung (killed after 120 s)" ;;
esac
grep -q "MISMATCH-DETECTED rank 0" "$out" || tr_fail "rank 0 did not get TR_ERR_MISMATCH"
grep -q "MISMATCH-DETECTED rank 1" "$out" || tr_fail "rank 1 did not get TR_ERR_MISMATCH"
grep -qi "differ" "$err" || tr_fail "no message on stderr saying the binaries differ"
[ "$status" -eq 0 ] || tr_fail "mpirun exited with status $status"
echo "run_mismatch: passed"
