#!/bin/sh
# make fuzz-smoke: build the libFuzzer targets (fuzz/fuzz.mk) and run each
# for FUZZ_TIME seconds (default 30) on a copy of its seed corpus, so that
# fuzz/corpus/ is never modified.  Fails when a target crashes, leaks or
# trips a sanitizer (the input is kept under $FUZZ_OUT).  Without a clang
# that links -fsanitize=fuzzer it says "skipped" and succeeds, unless
# FUZZ_REQUIRED=1 (CI), where that is a failure.
#
# Environment (set by the top-level Makefile): top_srcdir, top_builddir,
# DEP_CFLAGS, DEP_LIBS, MAKE; optional FUZZ_CC (clang), FUZZ_TIME,
# FUZZ_TARGETS, FUZZ_OUT, FUZZ_JOBS (parallel compiles, 2).
set -u
FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_TIME=${FUZZ_TIME:-30}
FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz_wire fuzz_args fuzz_spill"}
MAKE=${MAKE:-make}
build=$top_builddir/fuzz/build

probe=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-probe.XXXXXX") || exit 1
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    rm -rf "$probe"
    if [ "${FUZZ_REQUIRED:-0}" = 1 ]; then
        echo "fuzz-smoke: FAILED: no clang with libFuzzer ('$FUZZ_CC' cannot link -fsanitize=fuzzer) and FUZZ_REQUIRED=1"
        exit 1
    fi
    echo "fuzz-smoke: skipped: no clang with libFuzzer ('$FUZZ_CC' cannot link -fsanitize=fuzzer; apt-get install clang, or FUZZ_CC=...)"
    exit 0
fi
rm -rf "$probe"

$MAKE -j"${FUZZ_JOBS:-2}" -f "$top_srcdir/fuzz/fuzz.mk" FUZZ_CC="$FUZZ_CC" top_srcdir="$top_srcdir" top_builddir="$top_builddir" \
    DEP_CFLAGS="$DEP_CFLAGS" DEP_LIBS="$DEP_LIBS" all || { echo "fuzz-smoke: FAILED: the targets did not build"; exit 1; }

FUZZ_OUT=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fuzz-smoke.XXXXXX")} || exit 1
failed=""
for t in $FUZZ_TARGETS; do
    mkdir -p "$FUZZ_OUT/$t/corpus" "$FUZZ_OUT/$t/crash"
    cp "$top_srcdir/fuzz/corpus/$t/"* "$FUZZ_OUT/$t/corpus/"
    [ -d "$top_srcdir/fuzz/regressions/$t" ] && cp "$top_srcdir/fuzz/regressions/$t/"* "$FUZZ_OUT/$t/corpus/" 2>/dev/null
    echo "fuzz-smoke: $t for ${FUZZ_TIME}s"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} TASKRAY_LOG_LEVEL=error \
        "$build/$t" -max_total_time="$FUZZ_TIME" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$FUZZ_OUT/$t/crash/" "$FUZZ_OUT/$t/corpus" >"$FUZZ_OUT/$t/log" 2>&1
    rc=$?
    grep -E 'DONE|stat::number_of_executed_units|stat::average_exec_per_sec' "$FUZZ_OUT/$t/log" | sed "s/^/  $t: /"
    if [ $rc -ne 0 ]; then
        tail -40 "$FUZZ_OUT/$t/log"
        echo "fuzz-smoke: $t FAILED (exit $rc); inputs in $FUZZ_OUT/$t/crash/, log $FUZZ_OUT/$t/log"
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz-smoke: FAILED:$failed"
    exit 1
fi
rm -rf "$FUZZ_OUT"
echo "fuzz-smoke: passed ($FUZZ_TARGETS, ${FUZZ_TIME}s each)"
