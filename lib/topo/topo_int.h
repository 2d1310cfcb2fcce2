/* Inside lib/topo: what topo.c and gpu.c share. */
#ifndef TR_TOPO_INT_H
#define TR_TOPO_INT_H

#include "topo/topo.h"

#include <errno.h>
#include <hwloc.h>

/* Every NVIDIA/AMD GPU of the loaded topology into topo->all (bus order). */
tr_status_t tr__topo_find_gpus(tr__topo_t *topo);
void        tr__topo_free_gpus(tr__topo_t *topo);
/* Give each GPU to a rank of this node (@shares: hwloc_bitmap_t per rank,
 * NULL for ranks of other nodes or unknown sets); fills topo->held. */
tr_status_t tr__topo_assign_gpus(tr__topo_t *topo, void *const *shares, const int *node_of, int size, int rank);

#endif
