#include "sched/sched.h"
#include "base/base.h"

#include <ctype.h>
#include <stdio.h>

tr_status_t tr__req_parse(const char *spec, tr__req_t *req)
{
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == '\0') break;
        const char *eq = strchr(p, '=');
        size_t n = eq ? (size_t)(eq - p) : 0;
        if (eq == NULL || n == 0 || n >= TR__RES_NAME_LEN) {
            tr__set_error("bad resource list '%s': expected name=amount[,name=amount...] with names shorter than %d characters",
                          spec, TR__RES_NAME_LEN);
            return TR_ERR_INVALID_ARG;
        }
        char *end;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || !(v >= 0) || v > 1e18 || (*end != '\0' && *end != ',' && *end != ' ')) {
            tr__set_error("bad amount in resource list '%s'", spec);
            return TR_ERR_INVALID_ARG;
        }
        char name[TR__RES_NAME_LEN];
        memcpy(name, p, n); name[n] = '\0';
        if (tr__req_set(req, name, v) != TR_OK) {
            tr__set_error("more than %d custom resources in '%s'", TR__MAX_RES, spec);
            return TR_ERR_INVALID_ARG;
        }
        p = end;
    }
    return TR_OK;
}

tr_status_t tr__req_set(tr__req_t *req, const char *name, double amount)
{
    int i;
    for (i = 0; i < req->nres; i++)
        if (strcmp(req->res[i].name, name) == 0) break;
    if (i == req->nres) {
        if (req->nres == TR__MAX_RES) {
            tr__set_error("more than %d resources", TR__MAX_RES);
            return TR_ERR_INVALID_ARG;
        }
        req->nres++;
        snprintf(req->res[i].name, TR__RES_NAME_LEN, "%s", name);
    }
    req->res[i].amount = amount;
    return TR_OK;
}

double tr__req_get(const tr__req_t *r, const char *name)
{
    for (int i = 0; i < r->nres; i++)
        if (strcmp(r->res[i].name, name) == 0) return r->res[i].amount;
    return 0;
}

int tr__req_fits(const tr__req_t *have, const tr__req_t *need, const char **why)
{
    if (need->cpus > have->cpus + 1e-9) { *why = "cpus"; return 0; }
    for (int i = 0; i < need->nres; i++) {
        if (need->res[i].amount <= 0) continue;
        if (tr__req_get(have, need->res[i].name) + 1e-9 < need->res[i].amount) {
            *why = need->res[i].name;
            return 0;
        }
    }
    return 1;
}

tr_status_t tr__sched_init(tr__sched_t *s, tr__boot_t *boot, const tr__req_t *totals)
{
    memset(s, 0, sizeof(*s));
    s->size = boot->size;
    s->self = boot->rank;
    s->totals = calloc((size_t)s->size, sizeof(tr__req_t));
    s->reserved = calloc((size_t)s->size, sizeof(tr__req_t));
    s->load = calloc((size_t)s->size, sizeof(int));
    s->mem = calloc((size_t)s->size, sizeof(double));
    s->dead = calloc((size_t)s->size, 1);
    if (s->totals == NULL || s->reserved == NULL || s->load == NULL || s->mem == NULL || s->dead == NULL) {
        tr__sched_destroy(s);
        return TR_ERR_NO_MEMORY;
    }
    s->cursor = boot->rank;
    s->node_of = boot->node_of;
    s->nnodes = boot->nnodes > 0 ? boot->nnodes : 1;
    s->spread_node = s->node_of ? s->node_of[s->self] : 0;
    s->locality = (int)tr__env_i64("TASKRAY_LOCALITY", 1, 0, 1);
    s->locality_min = (uint64_t)tr__env_i64("TASKRAY_LOCALITY_MIN_BYTES", 1 << 20, 0, 1ll << 50);
    memcpy(s->totals, totals, sizeof(tr__req_t) * (size_t)s->size);
    for (int r = 0; r < s->size; r++) {   /* peers are untrusted: sanitize */
        tr__req_t *t = &s->totals[r];
        if (t->nres < 0 || t->nres > TR__MAX_RES) t->nres = 0;
        if (!(t->cpus >= 0) || t->cpus > 1e6) t->cpus = 0;
        for (int i = 0; i < t->nres; i++) t->res[i].name[TR__RES_NAME_LEN - 1] = '\0';
        t->pg = 0;
        t->bundle = 0;
    }
    return TR_OK;
}

void tr__sched_destroy(tr__sched_t *s)
{
    free(s->totals); free(s->reserved); free(s->load); free(s->mem); free(s->dead);
    s->totals = NULL; s->reserved = NULL; s->load = NULL; s->mem = NULL; s->dead = NULL;
}

void tr__sched_rank_dead(tr__sched_t *s, int rank)
{
    if (!s->dead[rank]) s->ndead++;
    __atomic_store_n(&s->dead[rank], 1, __ATOMIC_RELAXED);   /* read without the lock */
    s->load[rank] = 0;
    s->mem[rank] = 0;
}

static int node_of(const tr__sched_t *s, int r)
{
    return s->node_of ? s->node_of[r] : 0;
}

void tr__sched_account(tr__sched_t *s, int rank, const tr__req_t *need, int sign)
{
    if (rank < 0 || rank >= s->size) return;
    s->load[rank] += sign;
    if (s->load[rank] < 0) s->load[rank] = 0;
    s->mem[rank] += sign * tr__req_get(need, "memory");
    if (s->mem[rank] < 0) s->mem[rank] = 0;
}

/* Can @r ever run @need?  (@free_only: with what this rank's placement
 * groups reserve there taken out.)  A task inside a placement group is
 * checked against its bundle by the group's code, not here. */
static int fits2(const tr__sched_t *s, int r, const tr__req_t *need, const char **why, int free_only)
{
    if (s->dead[r]) { *why = NULL; return 0; }
    if (need->pg) return 1;
    const tr__req_t *have = &s->totals[r], *res = &s->reserved[r];
    if (need->cpus > have->cpus - (free_only ? res->cpus : 0) + 1e-9) { *why = "cpus"; return 0; }
    for (int i = 0; i < need->nres; i++) {
        if (need->res[i].amount <= 0) continue;
        const char *n = need->res[i].name;
        if (tr__req_get(have, n) - (free_only ? tr__req_get(res, n) : 0) + 1e-9 < need->res[i].amount) { *why = n; return 0; }
    }
    return 1;
}

static int fits(const tr__sched_t *s, int r, const tr__req_t *need, const char **why)
{
    return fits2(s, r, need, why, 0);
}

static double slots(const tr__sched_t *s, int r)
{
    return s->totals[r].cpus > 1 ? s->totals[r].cpus : 1;
}

/* Busy beyond what waiting for it is worth: twice its slots queued, or
 * the declared memory of this owner's tasks there would pass its memory. */
static int overloaded(const tr__sched_t *s, int r, const tr__req_t *need)
{
    if (s->load[r] >= 2 * slots(s, r)) return 1;
    double m = tr__req_get(need, "memory");
    if (m > 0 && s->mem[r] + m > tr__req_get(&s->totals[r], "memory") + 1e-9) return 1;
    return 0;
}

/* The least-loaded feasible rank (of @node when >= 0), ties round-robin
 * from the cursor; ranks whose memory the placed tasks would pass come
 * last. */
static int least_loaded(tr__sched_t *s, const tr__req_t *need, int node, const char **why)
{
    int best = -1, best_over = 0;
    double best_load = 0;
    for (int i = 1; i <= s->size; i++) {
        int r = (s->cursor + i) % s->size;
        const char *w = NULL;
        if (node >= 0 && node_of(s, r) != node) continue;
        if (!fits(s, r, need, &w)) { if (w) *why = w; continue; }
        double m = tr__req_get(need, "memory");
        int over = m > 0 && s->mem[r] + m > tr__req_get(&s->totals[r], "memory") + 1e-9;
        if (!fits2(s, r, need, &w, 1)) over = 2;   /* only once a placement group is removed */
        double load = s->load[r] / slots(s, r);
        if (best < 0 || over < best_over || (over == best_over && load < best_load - 1e-12)) {
            best = r; best_load = load; best_over = over;
        }
    }
    return best;
}

static void unschedulable(const tr__sched_t *s, const tr__req_t *need, const char *why, const char *what,
                          const char *name, const char *where)
{
    if (why == NULL) {
        tr__set_error("%s '%s' cannot be placed: %s", what, name, where ? where : "every rank died");
        return;
    }
    double want = strcmp(why, "cpus") == 0 ? need->cpus : tr__req_get(need, why);
    tr__set_error("%s '%s' needs %s=%g but no %srank%s has that much", what, name, why, want,
                  s->ndead ? "live " : "", where ? where : " of the job");
}

int tr__sched_feasible(tr__sched_t *s, const tr__req_t *need, int rank, int node, const char *what,
                       const char *name)
{
    const char *why = "cpus";
    for (int r = 0; r < s->size; r++) {
        const char *w = NULL;
        if ((rank >= 0 && r != rank) || (node >= 0 && node_of(s, r) != node)) continue;
        if (fits(s, r, need, &w)) return 1;
        if (w) why = w;
    }
    char where[48];
    if (rank >= 0 && s->dead[rank]) { tr__set_error("%s '%s' must run on rank %d, which died", what, name, rank); return 0; }
    if (rank >= 0) snprintf(where, sizeof(where), " (it must run on rank %d)", rank);
    else if (node >= 0) snprintf(where, sizeof(where), " on node %d", node);
    unschedulable(s, need, why, what, name, rank >= 0 || node >= 0 ? where : NULL);
    return 0;
}

/* Locality: the node, then the rank, holding the most bytes of the
 * stored arguments; -1 when there are too few bytes to matter, or the
 * node has no feasible rank that is not overloaded. */
static int by_locality(tr__sched_t *s, const tr__req_t *need, const tr__place_t *pl)
{
    if (!s->locality || pl == NULL || pl->nloc == 0) return -1;
    uint64_t total = 0, best_bytes = 0;
    int best_node = -1;
    for (int i = 0; i < pl->nloc; i++) total += pl->loc_bytes[i];
    if (total < s->locality_min || total == 0) return -1;
    for (int i = 0; i < pl->nloc; i++) {
        int r = pl->loc_rank[i];
        if (r < 0 || r >= s->size) continue;
        int n = node_of(s, r);
        uint64_t b = 0;
        for (int j = 0; j < pl->nloc; j++)
            if (pl->loc_rank[j] >= 0 && pl->loc_rank[j] < s->size && node_of(s, pl->loc_rank[j]) == n) b += pl->loc_bytes[j];
        if (b > best_bytes) { best_bytes = b; best_node = n; }
    }
    if (best_node < 0) return -1;
    /* within the node: the rank holding most (its copies are read without
     * even a same-node map), unless overloaded; then the node's least loaded */
    int best = -1;
    uint64_t bb = 0;
    for (int i = 0; i < pl->nloc; i++) {
        int r = pl->loc_rank[i];
        const char *w;
        if (r < 0 || r >= s->size || node_of(s, r) != best_node || !fits(s, r, need, &w) || overloaded(s, r, need)) continue;
        uint64_t b = 0;
        for (int j = 0; j < pl->nloc; j++) if (pl->loc_rank[j] == r) b += pl->loc_bytes[j];
        if (b > bb) { bb = b; best = r; }
    }
    if (best >= 0) return best;
    const char *w = NULL;
    int r = least_loaded(s, need, best_node, &w);
    if (r >= 0 && !overloaded(s, r, need)) return r;
    return -1;
}

/* TR_STRATEGY_SPREAD: the next node (round-robin) with a feasible rank,
 * and its least-loaded rank. */
static int by_spread(tr__sched_t *s, const tr__req_t *need, const char **why)
{
    for (int i = 1; i <= s->nnodes; i++) {
        int n = (s->spread_node + i) % s->nnodes;
        int r = least_loaded(s, need, n, why);
        if (r >= 0) { s->spread_node = n; return r; }
    }
    return -1;
}

int tr__sched_place(tr__sched_t *s, const tr__req_t *need, const tr__place_t *pl, const char *what,
                    const char *name, tr_status_t *st)
{
    const char *why = "cpus";
    int r;
    *st = TR_ERR_UNSCHEDULABLE;
    if (pl && pl->rank >= 0) {
        if (pl->rank >= s->size) {
            tr__set_error("%s '%s': rank %d is out of range (the job has %d ranks)", what, name, pl->rank, s->size);
            *st = TR_ERR_INVALID_ARG;
            return -1;
        }
        /* soft: kept while the rank is alive and has the resources; what
         * queues up there is for idle ranks to steal */
        if (fits(s, pl->rank, need, &why)) {
            s->n_affinity++;
            return pl->rank;
        }
        if (!pl->soft) {
            if (s->dead[pl->rank]) tr__set_error("%s '%s' must run on rank %d, which died", what, name, pl->rank);
            else {
                char where[48];
                snprintf(where, sizeof(where), " (it must run on rank %d)", pl->rank);
                unschedulable(s, need, why, what, name, where);
            }
            return -1;
        }
    }
    if (pl && pl->node >= 0) {
        if (pl->node >= s->nnodes) {
            tr__set_error("%s '%s': node %d is out of range (the job has %d nodes)", what, name, pl->node, s->nnodes);
            *st = TR_ERR_INVALID_ARG;
            return -1;
        }
        r = least_loaded(s, need, pl->node, &why);
        if (r >= 0) {
            s->n_affinity++;
            s->cursor = r;
            return r;
        }
        if (!pl->soft) {
            char where[48];
            snprintf(where, sizeof(where), " on node %d", pl->node);
            unschedulable(s, need, r < 0 ? why : NULL, what, name, where);
            if (r >= 0) tr__set_error("%s '%s' must run on node %d", what, name, pl->node);
            return -1;
        }
    }
    if (pl && pl->strategy == TR_STRATEGY_SPREAD) {
        if ((r = by_spread(s, need, &why)) >= 0) { s->n_spread++; return r; }
        unschedulable(s, need, why, what, name, NULL);
        return -1;
    }
    if ((r = by_locality(s, need, pl)) >= 0) { s->n_locality++; return r; }
    /* hybrid, like Ray's default: keep work on the owner's own rank while
     * it is less than half busy (no message at all), then spread by load */
    if (s->load[s->self] * 2 < slots(s, s->self) && fits(s, s->self, need, &why) && !overloaded(s, s->self, need)) {
        s->n_local++;
        return s->self;
    }
    r = least_loaded(s, need, -1, &why);
    if (r < 0) {
        unschedulable(s, need, why, what, name, NULL);
        return -1;
    }
    s->n_load++;
    s->cursor = r;
    return r;
}

int tr__sched_pick(tr__sched_t *s, const tr__req_t *need, const char *task_name)
{
    tr_status_t st;
    return tr__sched_place(s, need, NULL, "task", task_name, &st);
}
