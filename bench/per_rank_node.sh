#!/bin/sh
# per_rank_node.sh PROGRAM [ARGS]: run PROGRAM with TASKRAY_NODE_ID set to
# the launcher's rank, so that every rank is a node of its own: objects move
# between ranks with UCX ucp_get over network transports (taskray sets
# UCX_TLS=^sm), as between the hosts of a cluster.  For get_cross_node_gbps
# and limit_ucx_get_gbps on one host (microbench --node-per-rank does the
# same by itself):
#   mpirun -n 2 sh bench/per_rank_node.sh bench/microbench --filter cross_node
set -eu
r=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${PMI_RANK:-${SLURM_PROCID:-}}}}
if [ -z "$r" ]; then
    echo "per_rank_node.sh: no launcher rank in the environment" >&2
    exit 1
fi
TASKRAY_NODE_ID=$r
export TASKRAY_NODE_ID
exec "$@"
