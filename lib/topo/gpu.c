/*
 * GPUs: found in hwloc's PCI tree (display class 0x03xx, NVIDIA or AMD),
 * numbered by their CUDA/NVML/RSMI/OpenCL OS device when hwloc has one,
 * else by their rank among the vendor's GPUs in PCI bus order (what
 * CUDA_DEVICE_ORDER=PCI_BUS_ID numbers).  Each GPU of a node goes to one
 * rank of that node, near its cores when possible, and the rank exports its
 * GPUs to the CUDA/HIP runtimes through their *_VISIBLE_DEVICES variables.
 */
#include "topo/topo_int.h"
#include "base/base.h"

#include <stdio.h>

#define PCI_VENDOR_NVIDIA 0x10de
#define PCI_VENDOR_AMD    0x1002

/* The device number an OS device name gives, -1 when it names none.  The
 * lower @pref, the better the source (CUDA/NVML/RSMI before OpenCL). */
static int osdev_number(const char *name, int *pref)
{
    static const char *const one[] = { "cuda%d%n", "nvml%d%n", "rsmi%d%n" };
    int v, w, end = 0;
    for (int i = 0; i < (int)TR__ARRAY_SIZE(one); i++) {
        end = 0;
        if (sscanf(name, one[i], &v, &end) == 1 && end > 0 && name[end] == '\0' && v >= 0) {
            *pref = i;
            return v;
        }
    }
    end = 0;
    if (sscanf(name, "opencl%dd%d%n", &w, &v, &end) == 2 && end > 0 && name[end] == '\0' && v >= 0) {
        *pref = 3;
        return v;
    }
    return -1;
}

static int cmp_busid(const void *a, const void *b)
{
    const tr__gpu_t *x = a, *y = b;
    return strcmp(x->busid, y->busid);   /* fixed-width hex: text order is bus order */
}

static void describe(hwloc_topology_t t, hwloc_obj_t pci, tr__gpu_t *g)
{
    struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
    snprintf(g->busid, sizeof(g->busid), "%04x:%02x:%02x.%01x", a->domain & 0xffffu, a->bus, a->dev, a->func);
    g->vendor = a->vendor_id == PCI_VENDOR_NVIDIA ? TR__GPU_NVIDIA : TR__GPU_AMD;
    g->device = -1;
    const char *model = NULL;
    int best = 99;
    for (hwloc_obj_t o = pci->io_first_child; o != NULL; o = o->next_sibling) {
        if (o->type != HWLOC_OBJ_OS_DEVICE || o->name == NULL) continue;
        int pref, n = osdev_number(o->name, &pref);
        if (n < 0 || pref >= best) continue;
        best = pref;
        g->device = n;
        snprintf(g->osdev, sizeof(g->osdev), "%s", o->name);
        const char *m = hwloc_obj_get_info_by_name(o, "GPUModel");
        if (m != NULL) model = m;
    }
    if (model == NULL) model = hwloc_obj_get_info_by_name(pci, "PCIDevice");
    if (model != NULL) snprintf(g->name, sizeof(g->name), "%s", model);
    else snprintf(g->name, sizeof(g->name), "GPU [%04x:%04x]", a->vendor_id, a->device_id);
    hwloc_obj_t near = hwloc_get_non_io_ancestor_obj(t, pci);
    g->near_set = near != NULL && near->cpuset != NULL ? hwloc_bitmap_dup(near->cpuset) : NULL;
    if (g->near_set == NULL || hwloc_bitmap_list_snprintf(g->near, sizeof(g->near), g->near_set) < 0)
        g->near[0] = '\0';
}

tr_status_t tr__topo_find_gpus(tr__topo_t *topo)
{
    hwloc_topology_t t = topo->hw;
    int n = 0;
    for (hwloc_obj_t p = NULL; (p = hwloc_get_next_pcidev(t, p)) != NULL;) n++;
    if (n == 0) return TR_OK;
    if ((topo->all = calloc((size_t)n, sizeof(tr__gpu_t))) == NULL) return TR_ERR_NO_MEMORY;
    for (hwloc_obj_t p = NULL; (p = hwloc_get_next_pcidev(t, p)) != NULL;) {
        struct hwloc_pcidev_attr_s *a = &p->attr->pcidev;
        if ((a->class_id >> 8) != 0x03 || (a->vendor_id != PCI_VENDOR_NVIDIA && a->vendor_id != PCI_VENDOR_AMD))
            continue;
        describe(t, p, &topo->all[topo->nall]);
        if (topo->all[topo->nall].near_set == NULL) { topo->nall++; tr__topo_free_gpus(topo); return TR_ERR_NO_MEMORY; }
        topo->nall++;
    }
    qsort(topo->all, (size_t)topo->nall, sizeof(tr__gpu_t), cmp_busid);
    int count[3] = { 0, 0, 0 };
    for (int i = 0; i < topo->nall; i++) {   /* no OS device: index among the vendor's GPUs */
        tr__gpu_t *g = &topo->all[i];
        int idx = count[g->vendor]++;
        if (g->device < 0) g->device = idx;
        tr__debug("gpu %s %s '%s' device %d near %s", g->busid, g->osdev, g->name, g->device, g->near);
    }
    return TR_OK;
}

void tr__topo_free_gpus(tr__topo_t *topo)
{
    for (int i = 0; i < topo->nall; i++)
        if (topo->all[i].near_set) hwloc_bitmap_free(topo->all[i].near_set);
    free(topo->all);
    free(topo->held);
    topo->all = NULL;
    topo->held = NULL;
    topo->nall = topo->nheld = 0;
}

/*
 * Each GPU in bus order goes to the rank of this node whose share touches
 * its near cores and that holds the fewest GPUs so far (ties: lowest rank);
 * when no rank is near it, to the rank with the fewest.
 */
tr_status_t tr__topo_assign_gpus(tr__topo_t *topo, void *const *shares, const int *node_of, int size, int rank)
{
    free(topo->held);
    topo->held = NULL;
    topo->nheld = 0;
    if (topo->nall == 0) return TR_OK;
    int *count = calloc((size_t)size, sizeof(int));
    topo->held = calloc((size_t)topo->nall, sizeof(int));
    if (count == NULL || topo->held == NULL) { free(count); return TR_ERR_NO_MEMORY; }
    for (int i = 0; i < topo->nall; i++) {
        int best = -1, best_far = -1;
        for (int r = 0; r < size; r++) {
            if (node_of[r] != node_of[rank]) continue;
            if (best_far < 0 || count[r] < count[best_far]) best_far = r;
            if (shares[r] != NULL && hwloc_bitmap_intersects(shares[r], topo->all[i].near_set) &&
                (best < 0 || count[r] < count[best]))
                best = r;
        }
        if (best < 0) best = best_far;
        count[best]++;
        if (best == rank) topo->held[topo->nheld++] = i;
    }
    free(count);
    return TR_OK;
}

static void export_var(const char *name, const char *value)
{
    const char *had = getenv(name);
    if (had != NULL) {
        tr__info("%s='%s' was set already: leaving it (taskray would have set '%s')", name, had, value);
        tr__config_set(name, "environment", "%s", had);
        return;
    }
    if (setenv(name, value, 1) != 0) {
        tr__warn("cannot set %s: %m", name);
        return;
    }
    tr__config_set(name, "topology", "%s", value);
}

void tr__topo_gpu_env(const tr__topo_t *topo)
{
    char list[2][256] = { "", "" };   /* NVIDIA, AMD */
    for (int i = 0; i < topo->nheld; i++) {
        const tr__gpu_t *g = &topo->all[topo->held[i]];
        char *l = list[g->vendor == TR__GPU_AMD];
        size_t len = strlen(l);
        snprintf(l + len, sizeof(list[0]) - len, "%s%d", len ? "," : "", g->device);
    }
    if (list[0][0]) {
        export_var("CUDA_VISIBLE_DEVICES", list[0]);
        if (getenv("CUDA_DEVICE_ORDER") == NULL && setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1) == 0)
            tr__config_set("CUDA_DEVICE_ORDER", "topology", "PCI_BUS_ID");
    }
    if (list[1][0]) {
        export_var("HIP_VISIBLE_DEVICES", list[1]);
        export_var("ROCR_VISIBLE_DEVICES", list[1]);
    }
}

int tr__topo_ngpus(const tr__topo_t *topo) { return topo->nheld; }

const tr__gpu_t *tr__topo_gpu(const tr__topo_t *topo, int i)
{
    return i >= 0 && i < topo->nheld ? &topo->all[topo->held[i]] : NULL;
}

int tr__topo_gpu_device(const tr__topo_t *topo, int i)
{
    const tr__gpu_t *g = tr__topo_gpu(topo, i);
    return g ? g->device : -1;
}
