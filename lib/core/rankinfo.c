/*
 * Placement at start-up: the rank's share of its node's cores and GPUs
 * (lib/topo), the executor count, the rank's resources, and the
 * tr_rank_info_t of every rank, which tr_rank_info() and taskray-info read.
 */
#include "core/core.h"

#include <stdio.h>
#include <unistd.h>

/* Every rank publishes the launcher's set; ranks of a node given the same
 * set split it, and the node's GPUs are dealt out (collective). */
static tr_status_t share_cores(tr__rt_t *rt)
{
    char mine[TR__TOPO_SET_LEN];
    tr__topo_start_set(&rt->topo, mine, sizeof(mine));
    char *all = malloc(sizeof(mine) * (size_t)rt->size);
    if (all == NULL) return TR_ERR_NO_MEMORY;
    tr_status_t st = tr__boot_allgather(&rt->boot, mine, sizeof(mine), all);
    if (st == TR_OK)
        st = tr__topo_split(&rt->topo, all, sizeof(mine), rt->boot.node_of, rt->size, rt->rank);
    free(all);
    if (st != TR_OK) return st;
    tr__topo_gpu_env(&rt->topo);
    return TR_OK;
}

static int executors(tr__rt_t *rt, const tr_init_params_t *params)
{
    int nexec = (int)tr__env_i64("TASKRAY_NUM_EXECUTORS", rt->topo.ncores_bound, 1, 4096);
    const char *src = tr__config_source("TASKRAY_NUM_EXECUTORS");
    src = (src != NULL && strcmp(src, "environment") == 0) ? "environment" : "topology";
    if (params && (params->field_mask & TR_INIT_FIELD_NUM_EXECUTORS)) {
        nexec = params->num_executors;
        src = "tr_init_params";
    }
    tr__config_set("TASKRAY_NUM_EXECUTORS", src, "%d", nexec);
    return nexec;
}

static void set_amount(tr__req_t *r, const char *name, double v)
{
    int i;
    for (i = 0; i < r->nres; i++)
        if (strcmp(r->res[i].name, name) == 0) break;
    if (i == r->nres) {
        if (r->nres == TR__MAX_RES) return;
        r->nres++;
        snprintf(r->res[i].name, TR__RES_NAME_LEN, "%s", name);
    }
    r->res[i].amount = v;
}

/* cpus = executors, gpus held, memory = the host's memory over its ranks;
 * then TASKRAY_RESOURCES ("cpus=" sets cpus, other names amounts). */
static void resources(tr__rt_t *rt, int nexec)
{
    tr__req_t *m = &rt->mine;
    memset(m, 0, sizeof(*m));
    m->cpus = nexec;
    int nhost = rt->boot.host_size > 0 ? rt->boot.host_size : (rt->boot.local_size > 0 ? rt->boot.local_size : 1);
    set_amount(m, "gpus", tr__topo_ngpus(&rt->topo));
    set_amount(m, "memory", (double)(rt->topo.node_memory / (uint64_t)nhost));
    const char *spec = getenv("TASKRAY_RESOURCES");
    if (spec == NULL) return;
    tr__config_env_str("TASKRAY_RESOURCES");
    tr__req_t o = *m;
    if (tr__req_parse(spec, &o) != TR_OK) {
        tr__warn("ignoring TASKRAY_RESOURCES: %s", tr_last_error());
        return;
    }
    for (int i = 0; i < o.nres; i++) {
        if (strcmp(o.res[i].name, "cpus") != 0) continue;
        o.cpus = o.res[i].amount;
        o.res[i] = o.res[--o.nres];
        break;
    }
    *m = o;
}

static void gpu_lines(const tr__topo_t *topo, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < tr__topo_ngpus(topo) && used < len; i++) {
        const tr__gpu_t *g = tr__topo_gpu(topo, i);
        char dev[16];
        if (g->osdev[0]) snprintf(dev, sizeof(dev), "%s", g->osdev);
        else snprintf(dev, sizeof(dev), "%s%d", g->vendor == TR__GPU_AMD ? "hip" : "cuda", g->device);
        int n = snprintf(buf + used, len - used, "%s %s %s near %s\n", dev, g->busid, g->name, g->near);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static void fill_info(tr__rt_t *rt, int nexec, tr_rank_info_t *in)
{
    memset(in, 0, sizeof(*in));
    in->rank = rt->rank;
    in->node = rt->boot.node_of[rt->rank];
    if (gethostname(in->hostname, sizeof(in->hostname)) != 0) snprintf(in->hostname, sizeof(in->hostname), "?");
    tr__topo_cpuset_string(&rt->topo, in->cpuset, sizeof(in->cpuset));
    in->num_cores = rt->topo.ncores_bound;
    in->num_executors = nexec;
    in->bound = rt->topo.bound;
    in->numa_node = rt->topo.numa_node;
    in->num_numa_nodes = rt->topo.nnuma;
    in->num_gpus = tr__topo_ngpus(&rt->topo);
    gpu_lines(&rt->topo, in->gpus, sizeof(in->gpus));
    in->cpus = rt->mine.cpus;
    in->gpus_res = tr__req_get(&rt->mine, "gpus");
    in->memory = (uint64_t)tr__req_get(&rt->mine, "memory");
    size_t used = 0;
    for (int i = 0; i < rt->mine.nres && used < sizeof(in->resources); i++) {
        const tr__res_t *r = &rt->mine.res[i];
        if (strcmp(r->name, "gpus") == 0 || strcmp(r->name, "memory") == 0) continue;
        int n = snprintf(in->resources + used, sizeof(in->resources) - used, "%s%s=%g", used ? "," : "",
                         r->name, r->amount);
        if (n < 0) break;
        used += (size_t)n;
    }
}

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

/* Every rank's tr_rank_info_t and its resources for the scheduler, in one
 * collective (each costs a round of the whole job). */
static tr_status_t gather_info(tr__rt_t *rt, int nexec)
{
    struct card { tr_rank_info_t info; tr__req_t req; } mine, *all;
    memset(&mine, 0, sizeof(mine));
    fill_info(rt, nexec, &mine.info);
    mine.req = rt->mine;
    tr__config_set("cpuset", "topology", "%s", mine.info.cpuset);
    tr__config_set("gpus", "topology", "%d", mine.info.num_gpus);
    if ((rt->info = calloc((size_t)rt->size, sizeof(*rt->info))) == NULL) return TR_ERR_NO_MEMORY;
    tr__req_t *totals = malloc(sizeof(*totals) * (size_t)rt->size);
    if ((all = malloc(sizeof(*all) * (size_t)rt->size)) == NULL || totals == NULL) {
        free(all);
        free(totals);
        return TR_ERR_NO_MEMORY;
    }
    tr_status_t st = tr__boot_allgather(&rt->boot, &mine, sizeof(mine), all);
    for (int r = 0; st == TR_OK && r < rt->size; r++) {
        rt->info[r] = all[r].info;
        totals[r] = all[r].req;
    }
    free(all);
    if (st == TR_OK) st = tr__sched_init(&rt->sched, &rt->boot, totals);
    free(totals);
    if (st != TR_OK) return st;
    for (int r = 0; r < rt->size; r++) {   /* peers are untrusted */
        tr_rank_info_t *in = &rt->info[r];
        TERMINATE(in->hostname);
        TERMINATE(in->cpuset);
        TERMINATE(in->gpus);
        TERMINATE(in->resources);
        in->rank = r;
        in->node = rt->boot.node_of[r];
    }
    return TR_OK;
}

tr_status_t tr__rt_placement(tr__rt_t *rt, const tr_init_params_t *params, int *nexec_p)
{
    tr_status_t st = share_cores(rt);
    if (st != TR_OK) return st;
    int nexec = executors(rt, params);
    resources(rt, nexec);
    static const char *const strs[] = { "TASKRAY_NODE_ID", "TASKRAY_SPILL_DIR", "TASKRAY_LOG_LEVEL" };
    for (int i = 0; i < (int)TR__ARRAY_SIZE(strs); i++) tr__config_env_str(strs[i]);
    if ((st = gather_info(rt, nexec)) != TR_OK) return st;
    const tr_rank_info_t *in = &rt->info[rt->rank];
    tr__debug("cores %s (%d, %s), numa %d of %d, %d executor(s), %d gpu(s)", in->cpuset, in->num_cores,
              in->bound ? "bound" : "not bound", in->numa_node, in->num_numa_nodes, nexec, in->num_gpus);
    *nexec_p = nexec;
    return TR_OK;
}
