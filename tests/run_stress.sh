#!/bin/sh
# tests/stress at its bounded sizes (16 ranks, 100,000 tasks, 10,000 live
# objects, 1,000 actors, nested depth 1,000); `tests/stress --scale 10`
# is the full load.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

[ -x ./stress ] || make stress >/dev/null
echo "== tests/stress, bounded sizes"
TR_STRESS_TIMEOUT=$TR_TEST_TIMEOUT ./stress || tr_fail "tests/stress"
echo "stress: passed"
