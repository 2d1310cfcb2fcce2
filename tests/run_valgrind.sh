#!/bin/sh
# tr_env prints several launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# `make check-valgrind`: the single-process suites (check_taskray,
# check_spill) and a few MPI programs on 2 ranks under valgrind's memcheck.
# A memory error, or a definite leak, fails the run; valgrind.supp hides
# only those of Open MPI, PMIx, UCX, hwloc and libevent.
#
# Environment: VALGRIND (default valgrind), LIBTOOL (to run the uninstalled
# programs), VALGRIND_SUITES (the libcheck suites of check_taskray to run,
# space-separated; default all), VALGRIND_MPI (the MPI programs; default
# "mpi_spmd mpi_tasks mpi_objects").
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

: "${VALGRIND:=valgrind}"
: "${LIBTOOL:=${SHELL:-/bin/sh} ${top_builddir:-..}/libtool}"
: "${VALGRIND_MPI:=mpi_spmd mpi_tasks mpi_objects}"
command -v "$VALGRIND" >/dev/null || { echo "SKIP: $VALGRIND not found"; exit 77; }

# Open MPI and PMIx keep their components loaded, so that suppressions can
# name them; UCX's memory hooks would patch malloc under valgrind's feet.
OMPI_MCA_mca_base_component_disable_dlclose=1
PMIX_MCA_mca_base_component_disable_dlclose=1
UCX_MEM_MALLOC_HOOKS=no
UCX_MEM_MMAP_HOOK_MODE=none
export OMPI_MCA_mca_base_component_disable_dlclose PMIX_MCA_mca_base_component_disable_dlclose
export UCX_MEM_MALLOC_HOOKS UCX_MEM_MMAP_HOOK_MODE
# Long timeouts: memcheck runs programs 20-50 times slower.
TASKRAY_BOOTSTRAP_TIMEOUT=${TASKRAY_BOOTSTRAP_TIMEOUT:-300}
CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600}
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-20}
export TASKRAY_BOOTSTRAP_TIMEOUT CK_DEFAULT_TIMEOUT CK_TIMEOUT_MULTIPLIER
TR_TEST_TIMEOUT=1800

vg="$VALGRIND --tool=memcheck --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --suppressions=$here/valgrind.supp --keep-debuginfo=yes --num-callers=40"
fails=

# run LABEL PROG [ARGS]: PROG under valgrind (through libtool, which finds
# the uninstalled library).
run()
{
    label=$1
    shift
    echo "== $label"
    # shellcheck disable=SC2086 # LIBTOOL and vg are lists of words
    timeout -k 10 "$TR_TEST_TIMEOUT" $LIBTOOL --mode=execute $vg "$@" ||
        fails="$fails $label"
}

run check_spill ./check_spill
if [ -n "${VALGRIND_SUITES:-}" ]; then
    for s in $VALGRIND_SUITES; do
        CK_RUN_SUITE=$s run "check_taskray $s" ./check_taskray
    done
else
    run check_taskray ./check_taskray
fi
for p in $VALGRIND_MPI; do
    echo "== $p, 2 ranks"
    # shellcheck disable=SC2086 # LIBTOOL and vg are lists of words
    tr_mpirun 2 $(tr_env OMPI_MCA_mca_base_component_disable_dlclose \
            PMIX_MCA_mca_base_component_disable_dlclose UCX_MEM_MALLOC_HOOKS \
            UCX_MEM_MMAP_HOOK_MODE TASKRAY_BOOTSTRAP_TIMEOUT) \
        $LIBTOOL --mode=execute $vg "./$p" || fails="$fails $p"
done

if [ -n "$fails" ]; then
    echo "FAIL: under valgrind:$fails"
    exit 1
fi
echo "run_valgrind: no memory errors and no definite leaks of taskray's"
