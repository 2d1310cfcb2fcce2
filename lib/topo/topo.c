/*
 * hwloc topology: the cores this rank may use (they size the executor pool
 * and are where its executors are bound), NUMA-local memory for the object
 * store, and the machine's memory.  GPUs are in gpu.c.
 *
 * Launchers often bind every rank of a node to the same set (Open MPI with
 * --bind-to none, or more ranks than cores; srun without --cpu-bind), or to
 * nothing.  Ranks given the same set split it in rank order, contiguously in
 * hwloc's logical order, so that each share sits on as few NUMA nodes and
 * caches as possible and two ranks' executors never fight for a core when
 * there are enough of them.
 */
#include "topo/topo.h"
#include "topo/topo_int.h"
#include "base/base.h"

#include <stdio.h>
#include <strings.h>
#include <unistd.h>

/* What a "core" is inside @set: cores, or PUs when the set holds no whole
 * core (the launcher bound the rank to one hardware thread). */
static hwloc_obj_type_t unit_type(hwloc_topology_t t, hwloc_const_bitmap_t set)
{
    return hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

/* ncores_bound, npus_bound, numa_node from the current share. */
static void share_stats(tr__topo_t *topo)
{
    hwloc_topology_t t = topo->hw;
    hwloc_bitmap_t set = topo->cpuset;
    topo->npus_bound = hwloc_bitmap_weight(set);
    topo->ncores_bound = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, unit_type(t, set));
    if (topo->ncores_bound <= 0) topo->ncores_bound = topo->npus_bound > 0 ? topo->npus_bound : 1;
    if (topo->npus_bound <= 0) topo->npus_bound = topo->ncores_bound;
    topo->numa_node = -1;
    hwloc_bitmap_t ns = hwloc_bitmap_alloc();
    if (ns == NULL) return;
    if (hwloc_cpuset_to_nodeset(t, set, ns) == 0 && hwloc_bitmap_weight(ns) == 1)
        topo->numa_node = hwloc_bitmap_first(ns);
    hwloc_bitmap_free(ns);
}

static uint64_t machine_memory(hwloc_topology_t t)
{
    uint64_t sum = 0;
    for (hwloc_obj_t n = NULL; (n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) != NULL;)
        sum += n->attr ? n->attr->numanode.local_memory : 0;
    if (sum == 0) sum = hwloc_get_root_obj(t)->total_memory;
    if (sum == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psize > 0) sum = (uint64_t)pages * (uint64_t)psize;
    }
    return sum;
}

static int bind_mode(void)
{
    const char *b = getenv("TASKRAY_BIND");
    if (b == NULL || *b == '\0') {
        tr__config_set("TASKRAY_BIND", "default", "core");
        return 1;
    }
    if (strcasecmp(b, "none") == 0 || strcasecmp(b, "core") == 0) {
        tr__config_set("TASKRAY_BIND", "environment", "%s", b);
        return strcasecmp(b, "core") == 0;
    }
    tr__warn("TASKRAY_BIND='%s' is not one of core, none; using core", b);
    tr__config_set("TASKRAY_BIND", "default", "core");
    return 1;
}

static tr_status_t open_topology(hwloc_topology_t *t_p, int *synthetic_p)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) {
        tr__set_error("hwloc_topology_init failed: %s", strerror(errno));
        tr__error("%s", tr_last_error());
        return TR_ERR_TOPOLOGY;
    }
    if (hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0)
        tr__debug("hwloc: cannot keep I/O devices (%m): no GPU will be found");
    const char *xml = getenv("TASKRAY_TOPOLOGY");
    *synthetic_p = xml != NULL && *xml != '\0';
    if (*synthetic_p) {
        tr__config_set("TASKRAY_TOPOLOGY", "environment", "%s", xml);
        /* an XML file name has no ':' in practice; a synthetic description always has one */
        int rc = (strchr(xml, ':') != NULL) ? hwloc_topology_set_synthetic(t, xml) : hwloc_topology_set_xml(t, xml);
        if (rc != 0) {
            tr__set_error("TASKRAY_TOPOLOGY='%s' is neither a readable hwloc XML file nor a synthetic description "
                          "such as \"pack:2 core:4 pu:1\"", xml);
            tr__error("%s", tr_last_error());
            hwloc_topology_destroy(t);
            return TR_ERR_TOPOLOGY;
        }
    }
    if (hwloc_topology_load(t) != 0) {
        tr__set_error("hwloc could not load the topology%s%s: %s", *synthetic_p ? " of TASKRAY_TOPOLOGY=" : "",
                      *synthetic_p ? xml : "", strerror(errno));
        tr__error("%s", tr_last_error());
        hwloc_topology_destroy(t);
        return TR_ERR_TOPOLOGY;
    }
    *t_p = t;
    return TR_OK;
}

tr_status_t tr__topo_load(tr__topo_t *topo)
{
    hwloc_topology_t t;
    memset(topo, 0, sizeof(*topo));
    topo->numa_node = -1;
    tr_status_t st = open_topology(&t, &topo->synthetic);
    if (st != TR_OK) return st;
    topo->hw = t;
    topo->bind = bind_mode();
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set == NULL) { tr__topo_destroy(topo); return TR_ERR_NO_MEMORY; }
    topo->cpuset = set;
    if (topo->synthetic || hwloc_get_cpubind(t, set, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(set)) {
        if (hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(t)) != 0) {
            tr__topo_destroy(topo);
            return TR_ERR_NO_MEMORY;
        }
    }
    share_stats(topo);
    topo->nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (topo->nnuma < 1) topo->nnuma = 1;
    topo->node_memory = machine_memory(t);
    if ((st = tr__topo_find_gpus(topo)) != TR_OK) { tr__topo_destroy(topo); return st; }
    return TR_OK;
}

void tr__topo_destroy(tr__topo_t *topo)
{
    tr__topo_free_gpus(topo);
    if (topo->cpuset) hwloc_bitmap_free(topo->cpuset);
    if (topo->hw) hwloc_topology_destroy(topo->hw);
    topo->cpuset = topo->hw = NULL;
}

void tr__topo_start_set(const tr__topo_t *topo, char *buf, size_t len)
{
    memset(buf, 0, len);
    int n = hwloc_bitmap_list_snprintf(buf, len, topo->cpuset);
    if (n < 0 || (size_t)n >= len) memset(buf, 0, len);   /* too long: not split */
}

void tr__topo_cpuset_string(const tr__topo_t *topo, char *buf, size_t len)
{
    if (len == 0) return;
    buf[0] = '\0';
    if (topo->cpuset != NULL && hwloc_bitmap_list_snprintf(buf, len, topo->cpuset) < 0) buf[0] = '\0';
}

/* Rank @r's published set (NUL-terminated copy in @buf), "" when none. */
static const char *set_string(const char *sets, size_t stride, int r, char *buf)
{
    size_t n = stride < TR__TOPO_SET_LEN ? stride : TR__TOPO_SET_LEN;
    memcpy(buf, sets + (size_t)r * stride, n);
    buf[n < TR__TOPO_SET_LEN ? n : TR__TOPO_SET_LEN - 1] = '\0';
    return buf;
}

/*
 * Rank @r's share (a new bitmap), or NULL when its set is unknown.  The k-th
 * of the m ranks of its node with the same set takes cores
 * [k*n/m, (k+1)*n/m) of the set's n cores; with m > n, core k*n/m, shared.
 */
static hwloc_bitmap_t share_of(const tr__topo_t *topo, const char *sets, size_t stride, const int *node_of,
                               int size, int r)
{
    hwloc_topology_t t = topo->hw;
    char mine[TR__TOPO_SET_LEN], other[TR__TOPO_SET_LEN];
    if (*set_string(sets, stride, r, mine) == '\0') return NULL;
    hwloc_bitmap_t set = hwloc_bitmap_alloc(), out = hwloc_bitmap_alloc();
    if (set == NULL || out == NULL || hwloc_bitmap_list_sscanf(set, mine) != 0 ||
        hwloc_bitmap_and(set, set, hwloc_topology_get_topology_cpuset(t)) != 0 || hwloc_bitmap_iszero(set))
        goto fail;
    if (!topo->bind) { hwloc_bitmap_free(out); return set; }
    int k = 0, m = 0;
    for (int q = 0; q < size; q++) {
        if (node_of[q] != node_of[r] || strcmp(set_string(sets, stride, q, other), mine) != 0) continue;
        if (q < r) k++;
        m++;
    }
    hwloc_obj_type_t type = unit_type(t, set);
    int n = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, type);
    if (n <= 0 || m <= 1) { hwloc_bitmap_free(out); return set; }
    int lo = (int)((int64_t)k * n / m), hi = m <= n ? (int)((int64_t)(k + 1) * n / m) : lo + 1;
    for (int i = lo; i < hi; i++) {
        hwloc_obj_t o = hwloc_get_obj_inside_cpuset_by_type(t, set, type, (unsigned)i);
        if (o == NULL || hwloc_bitmap_or(out, out, o->cpuset) != 0) goto fail;
    }
    if (hwloc_bitmap_and(out, out, set) != 0) goto fail;
    hwloc_bitmap_free(set);
    return out;
fail:
    if (set) hwloc_bitmap_free(set);
    if (out) hwloc_bitmap_free(out);
    return NULL;
}

/* Does @mine have a core (unit) that no other local share touches? */
static int has_own_core(hwloc_topology_t t, hwloc_bitmap_t *shares, int size, int rank)
{
    hwloc_bitmap_t mine = shares[rank];
    hwloc_obj_type_t type = unit_type(t, mine);
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_inside_cpuset_by_type(t, mine, type, o)) != NULL;) {
        int alone = 1;
        for (int q = 0; q < size && alone; q++)
            if (q != rank && shares[q] != NULL && hwloc_bitmap_intersects(shares[q], o->cpuset)) alone = 0;
        if (alone) return 1;
    }
    return 0;
}

tr_status_t tr__topo_split(tr__topo_t *topo, const char *sets, size_t stride, const int *node_of, int size,
                           int rank)
{
    hwloc_bitmap_t *shares = calloc((size_t)size, sizeof(*shares));
    if (shares == NULL) return TR_ERR_NO_MEMORY;
    for (int r = 0; r < size; r++)
        if (node_of[r] == node_of[rank]) shares[r] = share_of(topo, sets, stride, node_of, size, r);
    if (shares[rank] != NULL) {   /* else: our set did not fit the message, keep it whole */
        hwloc_bitmap_free(topo->cpuset);
        topo->cpuset = shares[rank];
    } else {
        shares[rank] = topo->cpuset;
    }
    share_stats(topo);
    topo->exclusive = has_own_core(topo->hw, shares, size, rank);
    topo->bound = topo->bind && !topo->synthetic && topo->exclusive;
    tr_status_t st = tr__topo_assign_gpus(topo, (void **)shares, node_of, size, rank);
    for (int r = 0; r < size; r++)
        if (r != rank && shares[r] != NULL) hwloc_bitmap_free(shares[r]);
    free(shares);
    return st;
}

int tr__topo_bind_thread(tr__topo_t *topo, int index)
{
    static int warned;
    hwloc_topology_t t = topo->hw;
    if (t == NULL || !topo->bound || index < 0) return 1;
    hwloc_obj_type_t type = unit_type(t, topo->cpuset);
    int n = hwloc_get_nbobjs_inside_cpuset_by_type(t, topo->cpuset, type);
    if (n <= 0) return 1;
    hwloc_obj_t o = hwloc_get_obj_inside_cpuset_by_type(t, topo->cpuset, type, (unsigned)(index % n));
    if (o == NULL) return 1;
    if (hwloc_set_cpubind(t, o->cpuset, HWLOC_CPUBIND_THREAD) != 0) {
        if (!__atomic_fetch_add(&warned, 1, __ATOMIC_RELAXED))
            tr__warn("could not bind an executor thread to its core: %m");
        return -1;
    }
    return 0;
}

int tr__topo_bind_area(tr__topo_t *topo, void *base, size_t size)
{
    hwloc_topology_t t = topo->hw;
    if (t == NULL || topo->synthetic || !topo->bind) return 1;
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) < 2) return 1;
    if (hwloc_set_area_membind(t, base, size, topo->cpuset, HWLOC_MEMBIND_BIND, 0) != 0) {
        tr__warn("could not bind the object store to this rank's NUMA node: %m");
        return -1;
    }
    return 0;
}
