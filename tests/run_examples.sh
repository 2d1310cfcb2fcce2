#!/bin/sh
# The example programs must run and exit 0: quickstart on 4 ranks, pi on 2,
# fib 20 on 1 and 2 ranks, and fib 18 and 25 without any launcher (embedded mode).
# fib must print its result.  The actor examples: counter on 1 and 3 ranks,
# param_server on 2 and 4 ranks (small models); each checks its own result.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

ex=${top_builddir:-..}/examples
for p in quickstart pi fib counter param_server; do
    [ -x "$ex/$p" ] || tr_fail "$ex/$p was not built"
done

echo "== quickstart, 4 ranks"
tr_mpirun 4 "$ex/quickstart" || tr_fail "quickstart"

echo "== pi, 2 ranks"
tr_mpirun 2 "$ex/pi" || tr_fail "pi"

for n in 1 2; do
    echo "== fib 20, $n rank(s)"
    out=$(tr_mpirun "$n" "$ex/fib" 20) || { echo "$out"; tr_fail "fib 20 on $n rank(s)"; }
    echo "$out"
    echo "$out" | grep -qw 6765 || tr_fail "fib 20 did not print 6765"
done

echo "== fib 18, no launcher"
out=$(timeout -k 10 "$TR_TEST_TIMEOUT" "$ex/fib" 18) || { echo "$out"; tr_fail "fib 18 embedded"; }
echo "$out"
echo "$out" | grep -qw 2584 || tr_fail "fib 18 did not print 2584"
# 242,785 nested tasks on 2 executors: a regression test for a pool that
# once stalled (wake-ups counted that never came) or started thousands of
# threads on this tree.
echo "== fib 25, no launcher, 2 executors"
out=$(TASKRAY_NUM_EXECUTORS=2 timeout -k 10 "$TR_TEST_TIMEOUT" "$ex/fib" 25 2>&1) || { echo "$out"; tr_fail "fib 25 embedded"; }
echo "$out"
echo "$out" | grep -qw 75025 || tr_fail "fib 25 did not print 75025"
echo "$out" | grep -q "executor threads are blocked" && tr_fail "fib 25 needed thousands of executor threads"

for n in 1 3; do
    echo "== counter, $n rank(s)"
    out=$(tr_mpirun "$n" "$ex/counter" -n 200 -t 6 -k 40 2>&1) || { echo "$out"; tr_fail "counter on $n rank(s)"; }
    echo "$out"
    echo "$out" | grep -q "counter: ok" || tr_fail "counter on $n rank(s) did not print 'counter: ok'"
done

for n in 2 4; do
    echo "== param_server, $n ranks"
    out=$(tr_mpirun "$n" "$ex/param_server" -w "$((n + 1))" -i 20 -d 200 2>&1) ||
        { echo "$out"; tr_fail "param_server on $n ranks"; }
    echo "$out"
    echo "$out" | grep -q "param_server: ok" || tr_fail "param_server on $n ranks did not print 'param_server: ok'"
done
echo "run_examples: passed"
