#!/bin/sh
# A short, bounded tests/chaos: 3 iterations of the mixed workload on 6
# ranks, each with one or two random workers killed (SIGKILL), seeds drawn
# at random (a failure prints its seed; replay it with tests/chaos --seed S).
# Skipped (77) under an MPI whose launcher cannot survive a death: MPICH
# without tools/taskray-run.  CHAOS_ITERATIONS changes the count.
#
# One failure is a known limit, not a bug of ours (doc/architecture.md,
# "Known limits of the failure handling"): a worker killed while writing
# into the driver's UCX shared-memory queue leaves the driver unable to
# receive, and the driver ends the job saying so.  When every failed
# iteration is that one, this script reports a skip (77), never a pass;
# any other failure fails it.  The full tests/chaos counts it as a failure.
set -u
b=${builddir:-.}
[ -x "$b/chaos" ] || { echo "FAIL: $b/chaos was not built"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
"$b/chaos" --timeout 40 "${CHAOS_ITERATIONS:-3}" > "$out" 2>&1 || rc=$?
cat "$out"
[ "$rc" -eq 0 ] && exit 0
[ "$rc" -eq 77 ] && exit 77
logs=$(sed -n 's/^ *log: \([^;]*\);.*/\1/p' "$out")
[ -n "$logs" ] || exit "$rc"
for log in $logs; do
    grep -q "the driver can no longer receive messages" "$log" 2>/dev/null || exit "$rc"
done
echo "run_chaos: every failure was the driver made deaf by a worker killed mid-write into its"
echo "shared-memory queue (a known limit of UCX's transport, see doc/architecture.md): skipped"
exit 77
