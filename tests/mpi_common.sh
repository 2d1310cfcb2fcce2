# Sourced by the run_*.sh test scripts: how to start MPI jobs here.
#
# From the environment (tests/Makefile.am sets them for `make check`):
#   MPIRUN        the launcher (default: mpirun)
#   MPIRUN_FLAGS  extra launcher flags (Open MPI: --oversubscribe is added)
#   TR_TEST_TIMEOUT  seconds before a hung job is killed (default 300)
#   TR_SAN_VARS   sanitizer builds: the variables (ASAN_OPTIONS, ...) that
#                 the launcher must pass to every rank; added to MPIRUN_FLAGS
# Provides:
#   tr_mpirun N [launcher args] prog [args]   run an N-rank job under timeout
#   tr_env VAR...   launcher flags that pass VAR (already set here) to the ranks
#   tr_fail MSG     print MSG and exit 1

: "${MPIRUN:=mpirun}"
: "${MPIRUN_FLAGS:=}"
: "${TR_TEST_TIMEOUT:=300}"
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM

if "$MPIRUN" --version 2>&1 | grep -q -e 'Open MPI' -e 'OpenRTE'; then
    tr_mpi_flavor=openmpi
    case " $MPIRUN_FLAGS " in
    *" --oversubscribe "*) ;;
    *) MPIRUN_FLAGS="$MPIRUN_FLAGS --oversubscribe" ;;
    esac
else
    tr_mpi_flavor=other
fi

tr_fail()
{
    echo "FAIL: $*" >&2
    exit 1
}

tr_env()
{
    for tr_v in "$@"; do
        if [ "$tr_mpi_flavor" = openmpi ]; then
            printf ' -x %s' "$tr_v"
        else
            eval "printf ' -genv %s %s' \"\$tr_v\" \"\${$tr_v}\""
        fi
    done
}

tr_mpirun()
{
    tr_n=$1
    shift
    echo "+ $MPIRUN $MPIRUN_FLAGS -n $tr_n $*"
    # shellcheck disable=SC2086 # MPIRUN_FLAGS is a list of words
    timeout -k 10 "$TR_TEST_TIMEOUT" "$MPIRUN" $MPIRUN_FLAGS -n "$tr_n" "$@"
}

# Sanitizer options reach every rank explicitly, not only through the
# environment a local launcher happens to pass on.
if [ -n "${TR_SAN_VARS:-}" ]; then
    # shellcheck disable=SC2086 # a list of names
    case " $MPIRUN_FLAGS " in
    *" ${TR_SAN_VARS%% *} "*) ;;
    *) MPIRUN_FLAGS="$MPIRUN_FLAGS$(tr_env $TR_SAN_VARS)" ;;
    esac
    export MPIRUN_FLAGS
fi
