#!/bin/sh
# Replays every input under fuzz/regressions/<target>/ (each once crashed a
# fuzz target; see fuzz/README.md) and the seed corpus fuzz/corpus/<target>/
# through the target's code, built with the normal compiler
# (fuzz_replay_<target>, tests/Makefile.am).  A crash, abort or failed
# check in the target fails the test.
set -u
: "${builddir:=.}" "${top_srcdir:=..}"
TASKRAY_LOG_LEVEL=error; export TASKRAY_LOG_LEVEL
rc=0
for t in wire args spill; do
    dirs=""
    for d in "$top_srcdir/fuzz/regressions/fuzz_$t" "$top_srcdir/fuzz/corpus/fuzz_$t"; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    # shellcheck disable=SC2086
    if ! timeout 120 "$builddir/fuzz_replay_$t" $dirs; then
        echo "run_fuzz_regressions: fuzz_$t failed on an input of:$dirs"
        rc=1
    fi
done
exit $rc
