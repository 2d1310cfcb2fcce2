/*
 * Placement groups: bundles of resources reserved on chosen ranks, for
 * tasks and actors scheduled into them.
 *
 * The creating rank owns the group.  It chooses a rank for each bundle
 * from the job's resource table minus what its own groups already hold
 * (sched.reserved), tells each rank to reserve its bundle (PG RESERVE),
 * and the group is ready when every rank said so (PG READY).  A rank
 * reserves a bundle in its executor pool once the resources are free of
 * running tasks (lib/core/exec.c), and tasks of the bundle then draw from
 * the reservation instead of the rank's free resources.  Tasks submitted
 * before the group is ready wait at the owner.  Removal (PG REMOVE) fails
 * what still waits, and each rank gives the reservation back once the
 * bundle's running tasks end.
 */
#include "core/core.h"
#include "comm/wire.h"
#include "base/handle.h"

#include <inttypes.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>

enum { PG_RESERVE = 1, PG_READY = 2, PG_REMOVE = 3 };

typedef struct tr__pg {
    uint64_t   id;
    uint64_t   handle;
    int        strategy, n;
    tr__req_t *b;          /* the bundles */
    int       *rank;       /* where each is reserved */
    uint8_t   *ready;
    int        nready;
    int        failed;     /* a bundle's rank died */
    int        rr;         /* bundle_index -1: round-robin over fitting bundles */
    uint64_t  *wait;       /* ids of specs waiting for readiness */
    int        nwait, capwait;
} tr__pg_t;

static const char *strategy_name(int s)
{
    switch (s) {
    case TR_PG_PACK: return "PACK";
    case TR_PG_SPREAD: return "SPREAD";
    case TR_PG_STRICT_PACK: return "STRICT_PACK";
    default: return "STRICT_SPREAD";
    }
}

tr_status_t tr__pgs_init(void)
{
    return tr__hmap_init(&tr__rt->pgs, 8) == 0 ? TR_OK : TR_ERR_NO_MEMORY;
}

static void pg_free(tr__pg_t *p)
{
    free(p->b); free(p->rank); free(p->ready); free(p->wait);
    free(p);
}

void tr__pgs_free(void)
{
    tr__hmap_t *m = &tr__rt->pgs;
    if (m->vals == NULL) return;
    for (size_t i = 0; i <= m->mask; i++) if (m->vals[i]) pg_free(m->vals[i]);
    tr__hmap_destroy(m);
}

/* -------------------------------------------------------------- placing */

static void req_sub(tr__req_t *have, const tr__req_t *r, double sign)
{
    have->cpus -= sign * r->cpus;
    for (int i = 0; i < r->nres; i++) {
        int j;
        for (j = 0; j < have->nres; j++)
            if (strcmp(have->res[j].name, r->res[i].name) == 0) break;
        if (j == have->nres) {
            if (have->nres == TR__MAX_RES) continue;
            snprintf(have->res[j].name, TR__RES_NAME_LEN, "%s", r->res[i].name);
            have->res[j].amount = 0;
            have->nres++;
        }
        have->res[j].amount -= sign * r->res[i].amount;
    }
}

/* The rank of @node (-1: any) with the most free cpus where @need fits. */
static int roomiest(tr__req_t *free_, const tr__req_t *need, int node, const char **why)
{
    tr__rt_t *rt = tr__rt;
    int best = -1;
    for (int i = 0; i < rt->size; i++) {
        int r = (rt->rank + i) % rt->size;
        const char *w = NULL;
        if (rt->sched.dead[r] || (node >= 0 && rt->boot.node_of[r] != node)) continue;
        if (!tr__req_fits(&free_[r], need, &w)) { if (w) *why = w; continue; }
        if (best < 0 || free_[r].cpus > free_[best].cpus) best = r;
    }
    return best;
}

/* All bundles on @node; 0 when they do not fit there (free_ unchanged). */
static int pack_on(tr__req_t *free_, const tr__req_t *b, int n, int node, int *rank, const char **why)
{
    tr__rt_t *rt = tr__rt;
    tr__req_t *tmp = malloc(sizeof(*tmp) * (size_t)rt->size);
    if (tmp == NULL) return 0;
    memcpy(tmp, free_, sizeof(*tmp) * (size_t)rt->size);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        int r = roomiest(tmp, &b[i], node, why);
        if (r < 0) ok = 0;
        else { rank[i] = r; req_sub(&tmp[r], &b[i], 1); }
    }
    if (ok) memcpy(free_, tmp, sizeof(*tmp) * (size_t)rt->size);
    free(tmp);
    return ok;
}

/* A rank for each bundle, or -1 with the message set. */
static int place_bundles(const tr__req_t *b, int n, int strategy, int *rank)
{
    tr__rt_t *rt = tr__rt;
    tr__sched_t *s = &rt->sched;
    int nn = rt->boot.nnodes > 0 ? rt->boot.nnodes : 1, me = rt->boot.node_of[rt->rank];
    const char *why = "cpus";
    tr__req_t *free_ = malloc(sizeof(*free_) * (size_t)rt->size);
    int *per = calloc((size_t)nn, sizeof(int));
    int ok = 0;
    if (free_ == NULL || per == NULL) { tr__set_error("out of memory"); goto out; }
    for (int r = 0; r < rt->size; r++) { free_[r] = s->totals[r]; req_sub(&free_[r], &s->reserved[r], 1); }
    /* a bundle that fits no rank at all is named first */
    for (int i = 0; i < n; i++) {
        const char *w = "cpus";
        if (roomiest(free_, &b[i], -1, &w) < 0) {
            double want = strcmp(w, "cpus") == 0 ? b[i].cpus : tr__req_get(&b[i], w);
            tr__set_error("placement group: bundle %d needs %s=%g but no live rank has that much free", i, w, want);
            goto out;
        }
    }
    switch (strategy) {
    case TR_PG_STRICT_PACK:
    case TR_PG_PACK:
        for (int k = 0; k < nn && !ok; k++) ok = pack_on(free_, b, n, (me + k) % nn, rank, &why);
        if (ok || strategy == TR_PG_STRICT_PACK) break;
        /* PACK across nodes: stay on the node of the previous bundle while it fits */
        ok = 1;
        for (int i = 0, node = me; i < n && ok; i++) {
            int r = roomiest(free_, &b[i], node, &why);
            if (r < 0) r = roomiest(free_, &b[i], -1, &why);
            if (r < 0) ok = 0;
            else { rank[i] = r; node = rt->boot.node_of[r]; req_sub(&free_[r], &b[i], 1); }
        }
        break;
    case TR_PG_SPREAD:
    case TR_PG_STRICT_SPREAD:
        ok = 1;
        for (int i = 0; i < n && ok; i++) {
            int best = -1, bestnode = -1;
            for (int k = 0; k < nn; k++) {
                int node = (me + i + k) % nn;
                if (strategy == TR_PG_STRICT_SPREAD && per[node] > 0) continue;
                int r = roomiest(free_, &b[i], node, &why);
                if (r >= 0 && (best < 0 || per[node] < per[bestnode])) { best = r; bestnode = node; }
            }
            if (best < 0) ok = 0;
            else { rank[i] = best; per[bestnode]++; req_sub(&free_[best], &b[i], 1); }
        }
        break;
    }
    if (!ok) {
        if (strategy == TR_PG_STRICT_SPREAD && n > nn)
            tr__set_error("placement group (STRICT_SPREAD): %d bundles need %d nodes, the job has %d", n, n, nn);
        else
            tr__set_error("placement group (%s): the %d bundles do not fit the free resources of the job's %s "
                          "(short of %s)", strategy_name(strategy), n,
                          strategy == TR_PG_STRICT_PACK ? "nodes, one at a time" : "ranks", why);
    }
out:
    free(free_);
    free(per);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------- messages */

static void send_pg(int dst, int op, uint64_t pg, int idx, const tr__req_t *req)
{
    tr__wbuf_t w;
    tr__wbuf_init(&w, 32 + (req ? sizeof(*req) : 0));
    tr__wbuf_u8(&w, (uint8_t)op);
    tr__wbuf_u64(&w, pg);
    tr__wbuf_u32(&w, (uint32_t)idx);
    if (req) tr__encode_req(&w, req);
    tr__send(dst, &w, TR__MSG_PG);
}

static void dispatch_waiting_locked(tr__pg_t *p)
{
    uint64_t *ids = p->wait;
    int n = p->nwait;
    p->wait = NULL; p->nwait = p->capwait = 0;
    for (int i = 0; i < n; i++) {
        tr__spec_t *s = tr__hmap_get(&tr__rt->specs, ids[i]);
        if (s && s->state == TR__SPEC_WAITING && s->unresolved == 0 && s->req.pg == p->id) tr__spec_dispatch_locked(s);
    }
    free(ids);
}

static void mark_ready_locked(uint64_t id, int idx)
{
    tr__pg_t *p = tr__hmap_get(&tr__rt->pgs, id);
    if (p == NULL || idx < 0 || idx >= p->n || p->ready[idx]) return;
    p->ready[idx] = 1;
    if (++p->nready == p->n) {
        pthread_cond_broadcast(&tr__rt->state_cv);
        dispatch_waiting_locked(p);
    }
}

void tr__pg_reserved(uint64_t pg, int idx, int owner)
{
    tr__rt_t *rt = tr__rt;
    if (owner != rt->rank) {
        send_pg(owner, PG_READY, pg, idx, NULL);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    mark_ready_locked(pg, idx);
    pthread_mutex_unlock(&rt->lock);
}

void tr__pg_recv(int type, const void *msg, size_t len)
{
    (void)type;
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    int op = tr__rbuf_u8(&r);
    uint64_t pg = tr__rbuf_u64(&r);
    int idx = (int)tr__rbuf_u32(&r);
    tr__req_t req;
    if (op == PG_RESERVE) tr__decode_req(&r, &req);
    if (r.bad || idx < 0 || idx >= TR_PG_MAX_BUNDLES || (op == PG_RESERVE && req.pg != 0)) {
        tr__warn("dropped a malformed placement-group message from rank %u", h.src);
        return;
    }
    switch (op) {
    case PG_RESERVE:
        if (tr__pool_bundle_reserve(&rt->pool, pg, idx, (int)h.src, &req)) send_pg((int)h.src, PG_READY, pg, idx, NULL);
        break;
    case PG_READY:
        pthread_mutex_lock(&rt->lock);
        mark_ready_locked(pg, idx);
        pthread_mutex_unlock(&rt->lock);
        break;
    case PG_REMOVE:
        tr__pool_bundle_remove(&rt->pool, pg);
        break;
    default:
        tr__warn("dropped a placement-group message of unknown kind %d from rank %u", op, h.src);
    }
}

/* --------------------------------------------------------------- owner */

static tr__pg_t *pg_of(tr_pg_h h)
{
    return tr__handle_get((uint64_t)(uintptr_t)h, TR__HANDLE_PG);
}

tr_status_t tr__pg_check_locked(tr_pg_h h, int bundle, tr__req_t *req, const char *what, const char *name)
{
    tr__pg_t *p = pg_of(h);
    if (p == NULL) {
        tr__set_error("%s '%s': the placement group was removed (or is not one)", what, name);
        return TR_ERR_REF_RELEASED;
    }
    if (bundle >= p->n) {
        tr__set_error("%s '%s': bundle_index %d, but the placement group has %d bundles", what, name, bundle, p->n);
        return TR_ERR_INVALID_ARG;
    }
    const char *why = "cpus";
    int ok = 0;
    for (int i = bundle < 0 ? 0 : bundle; i < (bundle < 0 ? p->n : bundle + 1) && !ok; i++) {
        const char *w = NULL;
        ok = tr__req_fits(&p->b[i], req, &w);
        if (w) why = w;
    }
    if (!ok) {
        double want = strcmp(why, "cpus") == 0 ? req->cpus : tr__req_get(req, why);
        if (bundle >= 0)
            tr__set_error("%s '%s' needs %s=%g but bundle %d of its placement group has less", what, name, why, want, bundle);
        else
            tr__set_error("%s '%s' needs %s=%g but no bundle of its placement group has that much", what, name, why, want);
        return TR_ERR_UNSCHEDULABLE;
    }
    req->pg = p->id;
    req->bundle = bundle;
    return TR_OK;
}

/* The bundle of @p that @req names, or for bundle -1 the next one that
 * fits, round-robin (written into @req); -1 with the message set. */
static int bundle_locked(tr__pg_t *p, tr__req_t *req)
{
    for (int k = 0; k < p->n && req->bundle < 0; k++) {
        int i = (p->rr + k) % p->n;
        const char *w;
        if (tr__req_fits(&p->b[i], req, &w)) {
            req->bundle = i;
            p->rr = i + 1;
        }
    }
    if (req->bundle < 0) tr__set_error("no bundle of the placement group fits");
    return req->bundle;
}

int tr__pg_target_locked(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    tr__pg_t *p = tr__hmap_get(&rt->pgs, s->req.pg);
    if (p == NULL) {
        tr__set_error("task '%s': its placement group was removed before it could run",
                      s->name ? s->name : s->fn ? s->fn->name : "?");
        return -2;
    }
    if (p->failed) {
        tr__set_error("task '%s': a rank of its placement group died", s->name ? s->name : s->fn ? s->fn->name : "?");
        return -2;
    }
    if (p->nready < p->n) {
        if (p->nwait == p->capwait) {
            int cap = p->capwait ? p->capwait * 2 : 8;
            uint64_t *w = realloc(p->wait, sizeof(*w) * (size_t)cap);
            if (w == NULL) { tr__set_error("out of memory"); return -2; }
            p->wait = w; p->capwait = cap;
        }
        p->wait[p->nwait++] = s->id;
        return -1;
    }
    int b = bundle_locked(p, &s->req);
    if (b < 0) return -2;
    if (rt->sched.dead[p->rank[b]]) {
        tr__set_error("the rank of bundle %d of its placement group died", b);
        return -2;
    }
    return p->rank[b];
}

int tr__pg_actor_rank_locked(tr__req_t *req, const char *name, tr_status_t *st)
{
    tr__pg_t *p = tr__hmap_get(&tr__rt->pgs, req->pg);
    (void)name;
    *st = TR_ERR_UNSCHEDULABLE;
    if (p == NULL) { tr__set_error("the placement group was removed"); return -1; }
    if (p->failed) { tr__set_error("a rank of the placement group died"); return -1; }
    int b = bundle_locked(p, req);
    if (b < 0) return -1;
    if (tr__rt->sched.dead[p->rank[b]]) { tr__set_error("the rank of bundle %d died", b); return -1; }
    *st = TR_OK;
    return p->rank[b];
}

void tr__pgs_rank_died_locked(int rank)
{
    tr__rt_t *rt = tr__rt;
    for (size_t i = 0; rt->pgs.vals && i <= rt->pgs.mask; i++) {
        tr__pg_t *p = rt->pgs.vals[i];
        if (p == NULL) continue;
        int hit = 0;
        for (int k = 0; k < p->n; k++) hit |= p->rank[k] == rank;
        if (!hit || p->failed) continue;
        p->failed = 1;
        uint64_t *ids = p->wait;
        int n = p->nwait;
        p->wait = NULL; p->nwait = p->capwait = 0;
        for (int k = 0; k < n; k++) {
            tr__spec_t *s = tr__hmap_get(&rt->specs, ids[k]);
            if (s && s->state == TR__SPEC_WAITING && s->req.pg == p->id) {
                char buf[160];
                snprintf(buf, sizeof(buf), "rank %d, which held a bundle of its placement group, died", rank);
                tr__spec_fail_locked(s, TR_ERR_WORKER_DIED, rank, buf);
            }
        }
        free(ids);
    }
    pthread_cond_broadcast(&rt->state_cv);
}

/* --------------------------------------------------------------- public */

#define CHECK_UP()                                                             \
    do {                                                                       \
        if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;       \
    } while (0)

static tr_status_t bundle_req(const tr_bundle_t *b, int i, tr__req_t *req)
{
    memset(req, 0, sizeof(*req));
    if (!(b->num_cpus >= 0) || !isfinite(b->num_cpus) || b->num_cpus > 1e6) {
        tr__set_error("bundle %d: num_cpus must be a finite number >= 0", i);
        return TR_ERR_INVALID_ARG;
    }
    if (!(b->num_gpus >= 0) || b->num_gpus > TR__MAX_GPUS) {
        tr__set_error("bundle %d: num_gpus must be in 0..%d", i, TR__MAX_GPUS);
        return TR_ERR_INVALID_ARG;
    }
    req->cpus = b->num_cpus;
    if (b->resources && tr__req_parse(b->resources, req) != TR_OK) return TR_ERR_INVALID_ARG;
    if (b->num_gpus > 0 && tr__req_set(req, "gpus", b->num_gpus) != TR_OK) return TR_ERR_INVALID_ARG;
    if (b->memory > (uint64_t)1e18) {
        tr__set_error("bundle %d: memory is too large", i);
        return TR_ERR_INVALID_ARG;
    }
    if (b->memory > 0 && tr__req_set(req, "memory", (double)b->memory) != TR_OK) return TR_ERR_INVALID_ARG;
    if (req->cpus == 0) {
        int any = 0;
        for (int k = 0; k < req->nres; k++) any |= req->res[k].amount > 0;
        if (!any) { tr__set_error("bundle %d reserves nothing", i); return TR_ERR_INVALID_ARG; }
    }
    return TR_OK;
}

tr_status_t tr_placement_group_create(const tr_bundle_t *bundles, int nbundles, tr_pg_strategy_t strategy,
                                      tr_pg_h *pg_p)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    if (bundles == NULL || pg_p == NULL || nbundles < 1 || nbundles > TR_PG_MAX_BUNDLES) {
        tr__set_error("placement group: NULL bundles or result, or nbundles not in 1..%d", TR_PG_MAX_BUNDLES);
        return TR_ERR_INVALID_ARG;
    }
    if (strategy < TR_PG_PACK || strategy > TR_PG_STRICT_SPREAD) {
        tr__set_error("placement group: unknown strategy %d", (int)strategy);
        return TR_ERR_INVALID_ARG;
    }
    if (!tr_is_driver()) return TR_ERR_WRONG_MODE;
    tr__pg_t *p = calloc(1, sizeof(*p));
    if (p == NULL) return TR_ERR_NO_MEMORY;
    p->n = nbundles;
    p->strategy = strategy;
    p->b = calloc((size_t)nbundles, sizeof(*p->b));
    p->rank = calloc((size_t)nbundles, sizeof(int));
    p->ready = calloc((size_t)nbundles, 1);
    if (p->b == NULL || p->rank == NULL || p->ready == NULL) { pg_free(p); return TR_ERR_NO_MEMORY; }
    for (int i = 0; i < nbundles; i++) {
        tr_status_t st = bundle_req(&bundles[i], i, &p->b[i]);
        if (st != TR_OK) { pg_free(p); return st; }
    }
    pthread_mutex_lock(&rt->lock);
    if (place_bundles(p->b, nbundles, strategy, p->rank) != 0) {
        pthread_mutex_unlock(&rt->lock);
        pg_free(p);
        return TR_ERR_UNSCHEDULABLE;
    }
    p->id = tr__hash2(rt->root_id ^ 0x7067ull, ++rt->pg_seq);
    if ((p->handle = tr__handle_alloc(TR__HANDLE_PG, p)) == 0 || tr__hmap_put(&rt->pgs, p->id, p) != 0) {
        if (p->handle) tr__handle_free(p->handle, TR__HANDLE_PG);
        pthread_mutex_unlock(&rt->lock);
        pg_free(p);
        return TR_ERR_NO_MEMORY;
    }
    for (int i = 0; i < nbundles; i++) {
        int r = p->rank[i];
        req_sub(&rt->sched.reserved[r], &p->b[i], -1);
        if (r == rt->rank) {
            if (tr__pool_bundle_reserve(&rt->pool, p->id, i, rt->rank, &p->b[i])) mark_ready_locked(p->id, i);
        } else {
            send_pg(r, PG_RESERVE, p->id, i, &p->b[i]);
        }
    }
    *pg_p = (tr_pg_h)(uintptr_t)p->handle;
    pthread_mutex_unlock(&rt->lock);
    return TR_OK;
}

tr_status_t tr_placement_group_wait(tr_pg_h pg, int64_t timeout_ms)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    struct timespec ts;
    bool timed = tr__deadline(timeout_ms, &ts);
    tr_status_t st = TR_OK;
    pthread_mutex_lock(&rt->lock);
    for (;;) {
        tr__pg_t *p = pg_of(pg);   /* looked up again after each wake: it may be removed */
        if (p == NULL) { st = TR_ERR_REF_RELEASED; break; }
        if (p->failed) {
            tr__set_error("a rank holding a bundle of the placement group died");
            st = TR_ERR_WORKER_DIED;
            break;
        }
        if (p->nready == p->n) break;
        if (atomic_load(&tr__state) != 1) { st = TR_ERR_SHUTDOWN; break; }
        if (timed) {
            if (pthread_cond_timedwait(&rt->state_cv, &rt->lock, &ts) == ETIMEDOUT) {
                p = pg_of(pg);
                if (p && p->nready < p->n && !p->failed) { st = TR_ERR_TIMEOUT; break; }
            }
        } else {
            pthread_cond_wait(&rt->state_cv, &rt->lock);
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return st;
}

int tr_placement_group_bundle_rank(tr_pg_h pg, int i)
{
    if (atomic_load(&tr__state) != 1) return -1;
    pthread_mutex_lock(&tr__rt->lock);
    tr__pg_t *p = pg_of(pg);
    int r = p && i >= 0 && i < p->n ? p->rank[i] : -1;
    pthread_mutex_unlock(&tr__rt->lock);
    return r;
}

tr_status_t tr_placement_group_remove(tr_pg_h pg)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    pthread_mutex_lock(&rt->lock);
    tr__pg_t *p = tr__handle_free((uint64_t)(uintptr_t)pg, TR__HANDLE_PG);
    if (p == NULL) { pthread_mutex_unlock(&rt->lock); return TR_ERR_REF_RELEASED; }
    tr__hmap_del(&rt->pgs, p->id);
    for (int k = 0; k < p->nwait; k++) {
        tr__spec_t *s = tr__hmap_get(&rt->specs, p->wait[k]);
        if (s && s->state == TR__SPEC_WAITING && s->req.pg == p->id)
            tr__spec_fail_locked(s, TR_ERR_UNSCHEDULABLE, -1, "its placement group was removed before it was ready");
    }
    int local = 0;
    for (int i = 0; i < p->n; i++) {
        int r = p->rank[i], seen = 0;
        req_sub(&rt->sched.reserved[r], &p->b[i], 1);
        for (int k = 0; k < i; k++) seen |= p->rank[k] == r;
        if (seen || rt->sched.dead[r]) continue;
        if (r == rt->rank) local = 1;
        else send_pg(r, PG_REMOVE, p->id, 0, NULL);
    }
    uint64_t id = p->id;
    pthread_cond_broadcast(&rt->state_cv);
    pthread_mutex_unlock(&rt->lock);
    pg_free(p);
    /* outside rt->lock: giving the reservation back may reserve another
     * group's pending bundle, which reports to its owner */
    if (local) tr__pool_bundle_remove(&rt->pool, id);
    return TR_OK;
}
