#!/bin/sh
# The example programs must run and exit 0: quickstart on 4 ranks, pi on 2,
# fib 20 on 1 and 2 ranks, and fib 18 without any launcher (embedded mode).
# fib must print its result.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

ex=${top_builddir:-..}/examples
for p in quickstart pi fib; do
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
echo "run_examples: passed"
