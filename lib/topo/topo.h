/* Topology (hwloc): what this rank may run on. */
#ifndef TR_TOPO_H
#define TR_TOPO_H

#include <taskray.h>

typedef struct tr__topo {
    int ncores_bound;  /* cores in the cpuset the launcher bound us to (whole machine if unbound) */
    int npus_bound;    /* hardware threads in that cpuset */
    int numa_node;     /* NUMA node of the binding, -1 when unknown/several */
    void *hw;          /* hwloc_topology_t, kept for memory binding */
    void *cpuset;      /* hwloc_bitmap_t: the binding */
    int   synthetic;   /* TASKRAY_TOPOLOGY: not this machine, bind nothing */
} tr__topo_t;

tr_status_t tr__topo_load(tr__topo_t *topo);
void        tr__topo_destroy(tr__topo_t *topo);
/* Bind [base, base+size) to the NUMA node(s) of this rank's cores before it
 * is touched.  0 when bound, 1 when not applicable (one node, synthetic
 * topology), -1 when hwloc refused (logged). */
int         tr__topo_bind_area(tr__topo_t *topo, void *base, size_t size);

#endif
