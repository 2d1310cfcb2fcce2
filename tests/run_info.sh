#!/bin/sh
# topo_env prints launcher words: its $(...) is left unquoted on purpose.
# shellcheck disable=SC2046
# taskray-info(1): alone (the one-rank view) and under the launcher with 2
# ranks (the whole job); a synthetic TASKRAY_TOPOLOGY shared by 2 ranks;
# --json that parses; a bad TASKRAY_TOPOLOGY (exit 1, naming it); and, when
# tests/topo/two-numa-two-gpu.xml exists, its 2 GPUs with the PUs near each.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

info=${top_builddir:-..}/tools/taskray-info
[ -x "$info" ] || tr_fail "$info was not built"
TR_TEST_TIMEOUT=60
unset TASKRAY_TOPOLOGY TASKRAY_NODE_ID TASKRAY_RESOURCES 2>/dev/null || :

dir=$(mktemp -d "${TMPDIR:-/tmp}/run_info.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# run LABEL [mpirun N [launcher words]] prog args: under timeout; standard
# output in $dir/out, error in $dir/err, the status in rc.
run()
{
    tr_label=$1
    shift
    echo "== $tr_label"
    if [ "$1" = mpirun ]; then
        tr_n=$2
        shift 2
        # shellcheck disable=SC2086 # MPIRUN_FLAGS is a list of words
        set -- "$MPIRUN" $MPIRUN_FLAGS -n "$tr_n" "$@"
    fi
    echo "+ $*"
    timeout -k 10 "$TR_TEST_TIMEOUT" "$@" >"$dir/out" 2>"$dir/err" && rc=0 || rc=$?
    cat "$dir/out" "$dir/err"
    case $rc in 124|137) tr_fail "$tr_label: hung until the test's own timeout" ;; esac
}

# json_check LABEL PYTHON-EXPRESSION: the expression, on the JSON object d
# read from $dir/out, is true.
have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1
json_check()
{
    if [ "$have_python" = 0 ]; then
        echo "python3 not found: '$1' not checked"
        return 0
    fi
    python3 -m json.tool "$dir/out" >/dev/null || tr_fail "$1: the output is not JSON"
    python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if ($2) else 1)" "$dir/out" || tr_fail "$1: not true: $2"
}

# Launcher words that pass TASKRAY_TOPOLOGY to the ranks: Open MPI needs
# -x; Hydra passes the whole environment (and -genv would split a
# synthetic description at its spaces).
topo_env()
{
    if [ "$tr_mpi_flavor" = openmpi ]; then tr_env TASKRAY_TOPOLOGY; fi
}

run "alone" "$info"
[ "$rc" -eq 0 ] || tr_fail "alone: exit status $rc"
host=$(uname -n | cut -c1-63)
grep -q -F "$host" "$dir/out" || tr_fail "alone: the hostname '$host' is not shown"
grep -q '^configuration (as rank 0 sees it)$' "$dir/out" || tr_fail "alone: no configuration header"
grep -q '^rank 0 ' "$dir/out" || tr_fail "alone: no rank 0"

run "--version" "$info" --version
[ "$rc" -eq 0 ] && grep -q '^taskray-info (taskray) ' "$dir/out" || tr_fail "--version"
run "a bad option" "$info" --bogus
[ "$rc" -eq 1 ] && grep -q -e '--bogus' "$dir/err" || tr_fail "a bad option: exit $rc, or no message"

run "2 ranks" mpirun 2 "$info"
[ "$rc" -eq 0 ] || tr_fail "2 ranks: exit status $rc"
grep -q '^  ranks  *2$' "$dir/out" || tr_fail "2 ranks: the job does not say 2 ranks"
grep -q '^rank 0 ' "$dir/out" && grep -q '^rank 1 ' "$dir/out" || tr_fail "2 ranks: not both ranks listed"
[ "$(grep -c '^configuration' "$dir/out")" -eq 1 ] || tr_fail "2 ranks: printed more than once"

run "2 ranks, --json" mpirun 2 "$info" --json
[ "$rc" -eq 0 ] || tr_fail "2 ranks, --json: exit status $rc"
json_check "2 ranks, --json" 'd["ranks"] == 2 and len(d["rank_info"]) == 2 and d["nodes"] >= 1 and len(d["config"]) > 0'
json_check "2 ranks, --json, fields" 'all(k in r for r in d["rank_info"] for k in ("rank", "node", "hostname", "cpuset", "num_cores", "num_executors", "bound", "numa_node", "num_numa_nodes", "num_gpus", "gpus", "cpus", "gpus_res", "memory", "resources"))'
json_check "2 ranks, --json, config" 'all(set(c) == {"name", "value", "source"} for c in d["config"])'

TASKRAY_TOPOLOGY="pack:2 core:4 pu:1"
export TASKRAY_TOPOLOGY
run "2 ranks on '$TASKRAY_TOPOLOGY'" mpirun 2 $(topo_env) "$info"
[ "$rc" -eq 0 ] || tr_fail "synthetic topology: exit status $rc"
[ "$(grep -c '^  cores  *4$' "$dir/out")" -eq 2 ] || tr_fail "synthetic topology: the 2 ranks do not show 4 cores each"
grep -q "$TASKRAY_TOPOLOGY" "$dir/out" || tr_fail "synthetic topology: not in the configuration"
run "2 ranks on '$TASKRAY_TOPOLOGY', --json" mpirun 2 $(topo_env) "$info" --json
[ "$rc" -eq 0 ] || tr_fail "synthetic topology, --json: exit status $rc"
json_check "synthetic topology, --json" 'd["ranks"] == 2 and [r["num_cores"] for r in d["rank_info"]] == [4, 4]'

TASKRAY_TOPOLOGY=$dir/no-such-topology.xml
run "a bad TASKRAY_TOPOLOGY" "$info"
[ "$rc" -eq 1 ] || tr_fail "bad TASKRAY_TOPOLOGY: exit status $rc, not 1"
grep -q '^taskray-info: .*TASKRAY_TOPOLOGY' "$dir/err" || tr_fail "bad TASKRAY_TOPOLOGY: taskray-info's message does not name it"
[ ! -s "$dir/out" ] || tr_fail "bad TASKRAY_TOPOLOGY: printed on standard output"

xml=$here/topo/two-numa-two-gpu.xml
if [ -f "$xml" ]; then
    TASKRAY_TOPOLOGY=$xml
    run "alone on two-numa-two-gpu.xml" "$info"
    [ "$rc" -eq 0 ] || tr_fail "two-numa-two-gpu.xml: exit status $rc"
    grep -q '^  GPUs  *2$' "$dir/out" || tr_fail "two-numa-two-gpu.xml: the node does not show 2 GPUs"
    [ "$(grep -c ' near [0-9]' "$dir/out")" -ge 2 ] || tr_fail "two-numa-two-gpu.xml: no near cores"
    run "alone on two-numa-two-gpu.xml, --json" "$info" --json
    json_check "two-numa-two-gpu.xml, --json" 'len(d["node_info"][0]["gpus"]) == 2 and all(g["near"] for g in d["node_info"][0]["gpus"]) and d["rank_info"][0]["num_numa_nodes"] == 2'
    run "2 ranks on two-numa-two-gpu.xml, --json" mpirun 2 $(topo_env) "$info" --json
    [ "$rc" -eq 0 ] || tr_fail "two-numa-two-gpu.xml, 2 ranks: exit status $rc"
    json_check "two-numa-two-gpu.xml, 2 ranks, --json" 'len(d["node_info"]) == 1 and len(d["node_info"][0]["gpus"]) == 2 and all(g["near"] for g in d["node_info"][0]["gpus"])'
else
    echo "$xml not found: GPU checks skipped"
fi
echo "taskray-info: all runs passed"
