#!/bin/sh
# A stuck bootstrap fails with a message instead of hanging: with
# TASKRAY_BOOTSTRAP_TIMEOUT=3 and a rank that arrives 120 s late, the job
# must end (well before the 120 s) with a non-zero status and the
# watchdog's message.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

prog=${builddir:-.}/mpi_watchdog
[ -x "$prog" ] || tr_fail "$prog was not built"

TASKRAY_BOOTSTRAP_TIMEOUT=3
TR_TEST_TIMEOUT=60
export TASKRAY_BOOTSTRAP_TIMEOUT TR_TEST_TIMEOUT
# shellcheck disable=SC2046 # tr_env prints launcher flags as words
out=$(tr_mpirun 2 $(tr_env TASKRAY_BOOTSTRAP_TIMEOUT) "$prog" 2>&1) && rc=0 || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || tr_fail "the job exited 0 although start-up could not finish"
case $rc in 124|137) tr_fail "the job hung until the test's own timeout" ;; esac
echo "$out" | grep -q "did not complete within 3 s" || tr_fail "no watchdog message"
echo "$out" | grep -q "WATCHDOG-DID-NOT-FIRE" && tr_fail "tr_init returned on a rank"
echo "run_watchdog: passed"
