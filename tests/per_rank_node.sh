#!/bin/sh
# per_rank_node.sh PROGRAM [ARGS]: run PROGRAM with TASKRAY_NODE_ID set to
# the launcher's rank, so that every rank is a node of its own and objects
# move between ranks over UCX's network transports (ucp_get), not shared
# memory.  Usage: mpirun -n 3 sh per_rank_node.sh ./mpi_tasks
set -eu
r=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${PMI_RANK:-${SLURM_PROCID:-}}}}
if [ -z "$r" ]; then
    echo "per_rank_node.sh: no launcher rank in the environment" >&2
    exit 1
fi
TASKRAY_NODE_ID=$r
export TASKRAY_NODE_ID
exec "$@"
