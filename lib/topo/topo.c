/*
 * hwloc topology: the cores this rank was bound to (they size the executor
 * pool) and NUMA-local memory for the object store.  Placement (binding
 * threads, GPUs) builds on this.
 */
#include "topo/topo.h"
#include "base/base.h"

#include <hwloc.h>

tr_status_t tr__topo_load(tr__topo_t *topo)
{
    hwloc_topology_t t;
    hwloc_bitmap_t set = NULL;
    tr_status_t st = TR_ERR_TOPOLOGY;

    if (hwloc_topology_init(&t) != 0) {
        tr__error("hwloc_topology_init failed: %m");
        return TR_ERR_TOPOLOGY;
    }
    const char *xml = getenv("TASKRAY_TOPOLOGY");
    if (xml != NULL && *xml != '\0') {
        int rc = (strchr(xml, ':') != NULL) ? hwloc_topology_set_synthetic(t, xml)
                                            : hwloc_topology_set_xml(t, xml);
        if (rc != 0) {
            tr__error("TASKRAY_TOPOLOGY='%s' is neither an hwloc XML file nor a synthetic description", xml);
            goto out_destroy;
        }
    }
    if (hwloc_topology_load(t) != 0) {
        tr__error("hwloc_topology_load failed: %m");
        goto out_destroy;
    }
    set = hwloc_bitmap_alloc();
    if (set == NULL) { st = TR_ERR_NO_MEMORY; goto out_destroy; }
    if (xml != NULL || hwloc_get_cpubind(t, set, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(set))
        hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(t));

    topo->npus_bound = hwloc_bitmap_weight(set);
    topo->ncores_bound = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_CORE);
    if (topo->ncores_bound <= 0) topo->ncores_bound = topo->npus_bound > 0 ? topo->npus_bound : 1;
    if (topo->npus_bound <= 0) topo->npus_bound = topo->ncores_bound;
    int nnuma = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_NUMANODE);
    topo->numa_node = -1;
    if (nnuma == 1) {
        hwloc_obj_t n = hwloc_get_next_obj_inside_cpuset_by_type(t, set, HWLOC_OBJ_NUMANODE, NULL);
        if (n) topo->numa_node = (int)n->os_index;
    }
    topo->hw = t;
    topo->cpuset = set;
    topo->synthetic = xml != NULL && *xml != '\0';
    return TR_OK;
out_destroy:
    hwloc_topology_destroy(t);
    return st;
}

void tr__topo_destroy(tr__topo_t *topo)
{
    if (topo->cpuset) hwloc_bitmap_free(topo->cpuset);
    if (topo->hw) hwloc_topology_destroy(topo->hw);
    topo->cpuset = topo->hw = NULL;
}

int tr__topo_bind_area(tr__topo_t *topo, void *base, size_t size)
{
    hwloc_topology_t t = topo->hw;
    if (t == NULL || topo->synthetic) return 1;
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) < 2) return 1;
    if (hwloc_set_area_membind(t, base, size, topo->cpuset, HWLOC_MEMBIND_BIND, 0) != 0) {
        tr__warn("could not bind the object store to this rank's NUMA node: %m");
        return -1;
    }
    return 0;
}
