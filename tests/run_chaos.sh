#!/bin/sh
# A short, bounded tests/chaos: 3 iterations of the mixed workload on 6
# ranks, each with one or two random workers killed (SIGKILL), seeds drawn
# at random (a failure prints its seed; replay it with tests/chaos --seed S).
# Skipped (77) under an MPI whose launcher cannot survive a death: MPICH
# without tools/taskray-run.  CHAOS_ITERATIONS changes the count.
set -u
b=${builddir:-.}
[ -x "$b/chaos" ] || { echo "FAIL: $b/chaos was not built"; exit 1; }
"$b/chaos" --timeout 40 "${CHAOS_ITERATIONS:-3}"
