/*
 * hwloc topology.  Issue-2 scope: the cores this rank was bound to, which
 * size the executor pool.  Placement (binding threads, NUMA-local arenas,
 * GPUs) builds on this.
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
    st = TR_OK;
    hwloc_bitmap_free(set);
out_destroy:
    hwloc_topology_destroy(t);
    return st;
}
