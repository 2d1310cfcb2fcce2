#!/bin/sh
# pair_node.sh PROGRAM [ARGS]: run PROGRAM with TASKRAY_NODE_ID set to the
# launcher's rank divided by 2, so that ranks {0,1}, {2,3}, ... are nodes of
# two ranks each: ranks of a pair share memory, pairs talk over UCX's
# network transports.  Usage: mpirun -n 4 sh pair_node.sh ./mpi_objects
set -eu
r=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${PMI_RANK:-${SLURM_PROCID:-}}}}
if [ -z "$r" ]; then
    echo "pair_node.sh: no launcher rank in the environment" >&2
    exit 1
fi
TASKRAY_NODE_ID=$((r / 2))
export TASKRAY_NODE_ID
exec "$@"
