/* Topology (hwloc): what this rank may run on. */
#ifndef TR_TOPO_H
#define TR_TOPO_H

#include <taskray.h>

typedef struct tr__topo {
    int ncores_bound;  /* cores in the cpuset the launcher bound us to (whole machine if unbound) */
    int npus_bound;    /* hardware threads in that cpuset */
    int numa_node;     /* NUMA node of the binding, -1 when unknown/several */
} tr__topo_t;

tr_status_t tr__topo_load(tr__topo_t *topo);

#endif
