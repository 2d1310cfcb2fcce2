/*
 * Tasks.  Owner side: specs wait for their ref arguments, are placed and
 * dispatched (to the local pool or as a TASK message), and their results
 * (RESULT messages, or a direct call for local tasks) make their return
 * objects ready, fail them, or trigger a retry.  Executor side: a TASK
 * message becomes a runnable task once its arguments are readable.
 */
#include "core/core.h"
#include "comm/wire.h"
#include "base/handle.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

enum { OUT_OK = 0, OUT_FAIL = 1, OUT_RETRY = 2, OUT_CANCELLED = 3, OUT_ACTOR_DIED = 4, OUT_UNKNOWN_METHOD = 5 };

typedef struct tr__val {
    tr__blob_t *blob;     /* inline value, or NULL: stored on @holder */
    int         holder;
    size_t      size;
    tr__obj_t **inner;    /* refs the value contains (counted), or NULL */
    int         ninner;
} tr__val_t;

/* Values not taken by an object: drop their contained refs (rt->lock held). */
static void vals_drop_inner_locked(tr__val_t *vals, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < vals[i].ninner; k++) if (vals[i].inner[k]) tr__obj_unref_locked(vals[i].inner[k]);
        free(vals[i].inner);
        vals[i].inner = NULL;
        vals[i].ninner = 0;
    }
}

uint64_t tr__next_task_id(void)
{
    struct tr_task *t = tr__cur_task;
    if (t) return tr__hash2(t->ctx_id, ++t->child_seq);
    return tr__hash2(tr__rt->root_id, atomic_fetch_add(&tr__rt->root_seq, 1) + 1);
}

static const char *spec_name(const tr__spec_t *s)
{
    if (s->name) return s->name;
    if (s->fn) return s->fn->name;
    const char *m = s->actor ? tr__method_name(s->method_id) : NULL;
    return m ? m : "?";
}

/* ------------------------------------------------------ executor tasks */

void tr__task_free(struct tr_task *t)
{
    if (t == NULL) return;
    for (int i = 0; i < t->nargs && t->args; i++)
        if (t->args[i].blob) tr__blob_unref(t->args[i].blob);
    for (int i = 0; i < t->nret && t->rets; i++)
        if (t->rets[i]) tr__blob_unref(t->rets[i]);
    free(t->args);
    free(t->rets);
    free(t->msgbuf);
    free(t->fail_msg);
    free(t);
}

struct tr_task *tr__task_new(uint64_t id, const tr__fn_t *fn, int owner, int attempt, int nret, int nargs)
{
    struct tr_task *t = calloc(1, sizeof(*t));
    if (t == NULL) return NULL;
    t->id = id; t->fn = fn; t->owner = owner; t->attempt = attempt;
    t->nret = nret; t->nargs = nargs;
    t->ctx_id = id;   /* a retry after its rank died makes the same children */
    t->args = calloc((size_t)(nargs ? nargs : 1), sizeof(*t->args));
    t->rets = calloc((size_t)nret, sizeof(*t->rets));
    if (t->args == NULL || t->rets == NULL) { tr__task_free(t); return NULL; }
    return t;
}

/* On the executor thread, before the function runs: stored arguments are
 * pinned where they are (own store, a same-node peer's: no copy) or pulled
 * from another node.  A failure fails the task with the reason. */
void tr__task_resolve_args(struct tr_task *t)
{
    for (int i = 0; i < t->nargs && t->fetch_status == TR_OK; i++) {
        tr__xarg_t *a = &t->args[i];
        if (a->kind != TR__VAL_REF || a->blob != NULL) continue;
        tr__blob_t *b = NULL;
        tr_status_t st = tr__read_stored(a->owner, a->id, a->hint, &b);
        if (st != TR_OK) {
            tr__task_failmsg(t, "cannot read argument %d (owned by rank %d): %s", i, a->owner, tr_last_error());
            t->fetch_status = st;
            return;
        }
        if (b->size != a->size) {
            tr__task_failmsg(t, "argument %d has %zu bytes, the owner announced %zu", i, b->size, a->size);
            tr__blob_unref(b);
            t->fetch_status = TR_ERR_PROTOCOL;
            return;
        }
        a->blob = b;
        a->data = b->data;
    }
}

/* --------------------------------------------------------- owner side */

static void spec_free(tr__spec_t *s)
{
    for (int i = 0; i < s->nargs; i++) {
        if (s->args[i].blob) tr__blob_unref(s->args[i].blob);
        if (s->args[i].obj) tr__obj_unref_locked(s->args[i].obj);
    }
    for (int i = 0; i < s->nret; i++) {
        if (s->rets[i] == NULL) continue;
        s->rets[i]->producer = NULL;
        tr__obj_unref_locked(s->rets[i]);
    }
    if (s->actor) tr__obj_unref_locked(s->actor);
    free(s->args);
    free(s->rets);
    free(s->name);
    free(s);
}

/* ------------------------------------------------------------- lineage
 * A successful spec is kept while any of its return objects lives (and
 * while a kept spec names it as the maker of an argument), so that lost
 * objects can be rebuilt by running it again.  Kept specs drop their
 * argument objects (values may go) but keep the small by-value arguments
 * and, per ref argument, its id and the spec that made it.  Past
 * TASKRAY_MAX_LINEAGE_BYTES the oldest kept specs are evicted: they lose
 * their arguments and can no longer rebuild anything. */

static void lineage_unlink_locked(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    if (s->lin_prev) s->lin_prev->lin_next = s->lin_next; else rt->lin_head = s->lin_next;
    if (s->lin_next) s->lin_next->lin_prev = s->lin_prev; else rt->lin_tail = s->lin_prev;
    s->lin_prev = s->lin_next = NULL;
    rt->lineage_bytes -= s->lineage_size;
}

static void lineage_drop_args_locked(tr__spec_t *s)
{
    for (int i = 0; i < s->nargs; i++) {
        if (s->args[i].blob) { tr__blob_unref(s->args[i].blob); s->args[i].blob = NULL; }
        tr__spec_t *l = s->args[i].lineage;
        s->args[i].lineage = NULL;
        if (l) tr__lineage_unref_locked(l);
    }
}

void tr__lineage_unref_locked(tr__spec_t *s)
{
    if (--s->lineage_refs > 0) return;
    if (!s->lineage_evicted) lineage_unlink_locked(s);
    lineage_drop_args_locked(s);
    free(s->args);
    free(s->rets);
    free(s->name);
    free(s);
}

static void lineage_keep_locked(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    size_t bytes = sizeof(*s) + sizeof(tr__sarg_t) * (size_t)s->nargs + (s->name ? strlen(s->name) : 0);
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *o = s->args[i].obj;
        if (s->args[i].blob) bytes += s->args[i].blob->size;
        if (o == NULL) continue;
        s->args[i].arg_id = o->id;
        if (o->lineage && o->owner == tr__rt->rank) { s->args[i].lineage = o->lineage; o->lineage->lineage_refs++; }
        s->args[i].obj = NULL;
        tr__obj_unref_locked(o);
    }
    for (int i = 0; i < s->nret; i++) {
        tr__obj_t *o = s->rets[i];
        if (o == NULL) continue;
        o->producer = NULL;
        s->rets[i] = NULL;
        if (o->refcnt > 1) { o->lineage = s; s->lineage_refs++; }
        tr__obj_unref_locked(o);
    }
    if (s->lineage_refs == 0) { s->lineage_refs = 1; s->lineage_evicted = 1; tr__lineage_unref_locked(s); return; }
    s->lineage_size = bytes;
    s->lin_prev = rt->lin_tail;
    if (rt->lin_tail) rt->lin_tail->lin_next = s; else rt->lin_head = s;
    rt->lin_tail = s;
    rt->lineage_bytes += bytes;
    while (rt->lineage_bytes > rt->max_lineage && rt->lin_head) {
        tr__spec_t *old = rt->lin_head;
        lineage_unlink_locked(old);
        old->lineage_evicted = 1;
        lineage_drop_args_locked(old);
    }
}

static void spec_done_locked(tr__spec_t *s, int ok)
{
    tr__rt_t *rt = tr__rt;
    s->state = TR__SPEC_DONE;
    if (s->from) {   /* a re-run of kept lineage: it may run again later */
        /* refs it was run again for that it did not make again (it failed,
         * or ran differently): they cannot come back */
        tr__hmap_t *m = &rt->objs;
        for (size_t i = 0; i <= m->mask; i++) {
            tr__obj_t *p = m->vals[i];
            if (p && p->owner != rt->rank && p->lineage == s->from && p->rebuilding &&
                p->state == TR__OBJ_PENDING && tr__rank_is_dead(p->owner))
                tr__obj_set_failed_locked(p, TR_ERR_OBJECT_LOST, p->owner,
                                          "its owner died, and running again the task that returned it did not make it again");
        }
        s->from->rerun = NULL;
        tr__lineage_unref_locked(s->from);
        s->from = NULL;
    }
    tr__hmap_del(&rt->specs, s->id);
    if (--rt->owned_pending == 0) pthread_cond_broadcast(&rt->state_cv);
    if (s->actor) {   /* failed or cancelled before it was sent: out of the caller's queue */
        tr__obj_t *a = s->actor;
        for (int i = a->aqh; i < a->naq; i++)
            if (a->aq[i] == s) { memmove(&a->aq[i], &a->aq[i + 1], sizeof(*a->aq) * (size_t)(a->naq - i - 1)); a->naq--; break; }
        if (a->aqh == a->naq) a->aqh = a->naq = 0;
    }
    if (ok && rt->max_lineage > 0 && s->actor == NULL) lineage_keep_locked(s);
    else spec_free(s);
}

void tr__spec_fail_locked(tr__spec_t *s, tr_status_t err, int rank, const char *msg)
{
    for (int i = 0; i < s->nret; i++) tr__obj_set_failed_locked(s->rets[i], err, rank, msg);
    spec_done_locked(s, 0);
}

static void dispatch_locked(tr__spec_t *s);
static void redispatch_locked(tr__spec_t *s);
static int add_dep_locked(tr__obj_t *o, tr__spec_t *s);

static void spec_result_locked(tr__spec_t *s, int outcome, int exec_rank, const char *msg, tr__val_t *vals)
{
    tr__rt_t *rt = tr__rt;
    if (s->actor == NULL && s->target >= 0) tr__sched_account(&rt->sched, s->target, &s->req, -1);
    char buf[768];
    switch (outcome) {
    case OUT_OK:
        if (s->actor == NULL && rt->max_lineage > 0) {
            /* refs owned elsewhere that the task returned: if their owner
             * dies, running this task again makes them again */
            for (int i = 0; i < s->nret; i++)
                for (int k = 0; k < vals[i].ninner; k++) {
                    tr__obj_t *p = vals[i].inner[k];
                    if (p->owner == rt->rank || p->lineage) continue;
                    p->lineage = s;
                    s->lineage_refs++;
                }
        }
        for (int i = 0; i < s->nret; i++) {
            /* contained refs first: the state sent to borrowers lists them */
            s->rets[i]->inner = vals[i].inner;
            s->rets[i]->ninner = vals[i].ninner;
            vals[i].inner = NULL;
            vals[i].ninner = 0;
            tr__obj_set_ready_locked(s->rets[i], vals[i].blob, vals[i].holder, vals[i].size);
            vals[i].blob = NULL;  /* the object owns it now */
        }
        spec_done_locked(s, 1);
        return;
    case OUT_RETRY:
        if (!s->cancel_sent && (s->max_retries < 0 || s->attempt < s->max_retries)) {
            tr__info("task '%s' asked for a retry on rank %d (attempt %d): %s", spec_name(s),
                     exec_rank, s->attempt, msg ? msg : "");
            s->attempt++;
            s->gen++;   /* a different run: its children get new ids */
            redispatch_locked(s);
            return;
        }
        snprintf(buf, sizeof(buf), "task '%s' failed on rank %d after %d attempt%s: %s", spec_name(s),
                 exec_rank, s->attempt + 1, s->attempt ? "s" : "", msg && *msg ? msg : "it asked for a retry");
        tr__spec_fail_locked(s, TR_ERR_TASK_FAILED, exec_rank, buf);
        return;
    case OUT_CANCELLED:
        snprintf(buf, sizeof(buf), "task '%s' was cancelled before it ran", spec_name(s));
        tr__spec_fail_locked(s, TR_ERR_TASK_CANCELLED, exec_rank, buf);
        return;
    case OUT_ACTOR_DIED:
        tr__spec_fail_locked(s, TR_ERR_ACTOR_DIED, exec_rank, msg && *msg ? msg : "the actor died");
        return;
    case OUT_UNKNOWN_METHOD:
        tr__spec_fail_locked(s, TR_ERR_UNKNOWN_METHOD, exec_rank, msg && *msg ? msg : "unknown method");
        return;
    default:
        snprintf(buf, sizeof(buf), "%s '%s' failed on rank %d: %s", s->actor ? "actor call" : "task",
                 spec_name(s), exec_rank, msg && *msg ? msg : "it returned an error");
        tr__spec_fail_locked(s, TR_ERR_TASK_FAILED, exec_rank, buf);
        return;
    }
}

/* A holder of @o's value for a reader on @target's node: one there if any. */
static int best_holder(const tr__obj_t *o, int target)
{
    for (int i = 0; i < o->nlocs; i++) if (tr__same_node(o->locs[i], target)) return o->locs[i];
    return o->holder;
}

/* Resources as they travel: cpus, then the named amounts. */
void tr__encode_req(tr__wbuf_t *w, const tr__req_t *req)
{
    tr__wbuf_f64(w, req->cpus);
    tr__wbuf_u8(w, (uint8_t)req->nres);
    for (int i = 0; i < req->nres; i++) {
        tr__wbuf_put(w, req->res[i].name, TR__RES_NAME_LEN);
        tr__wbuf_f64(w, req->res[i].amount);
    }
    tr__wbuf_u64(w, req->pg);
    tr__wbuf_u32(w, (uint32_t)req->bundle);
}

/* Sets r->bad on too many resources or a negative cpu count. */
void tr__decode_req(tr__rbuf_t *r, tr__req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->cpus = tr__rbuf_f64(r);
    req->nres = tr__rbuf_u8(r);
    if (req->nres > TR__MAX_RES || !(req->cpus >= 0)) { r->bad = true; req->nres = 0; return; }
    for (int i = 0; i < req->nres && !r->bad; i++) {
        const char *nm = tr__rbuf_get(r, TR__RES_NAME_LEN);
        req->res[i].amount = tr__rbuf_f64(r);
        if (nm) { memcpy(req->res[i].name, nm, TR__RES_NAME_LEN); req->res[i].name[TR__RES_NAME_LEN - 1] = 0; }
        if (!(req->res[i].amount >= 0) || req->res[i].amount > 1e18) r->bad = true;
    }
    req->pg = tr__rbuf_u64(r);
    req->bundle = (int)tr__rbuf_u32(r);
    if (req->pg && (req->bundle < 0 || req->bundle >= TR_PG_MAX_BUNDLES)) r->bad = true;
}

void tr__encode_args(tr__wbuf_t *w, const tr__spec_t *s, int target)
{
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *o = s->args[i].obj;
        tr__blob_t *b = o ? o->blob : s->args[i].blob;
        if (s->args[i].borrow) {
            tr__wbuf_u8(w, TR__VAL_BORROW);
            tr__wbuf_u32(w, (uint32_t)o->owner);
            tr__wbuf_u64(w, o->id);
        } else if (b != NULL) {
            tr__wbuf_u8(w, TR__VAL_INLINE);
            tr__wbuf_u64(w, b->size);
            tr__wbuf_put(w, b->data, b->size);
        } else {
            tr__wbuf_u8(w, TR__VAL_REF);
            tr__wbuf_u32(w, (uint32_t)o->owner);
            tr__wbuf_u64(w, o->id);
            tr__wbuf_u64(w, o->size);
            tr__wbuf_u32(w, (uint32_t)best_holder(o, target));
        }
    }
}

static void send_task(tr__spec_t *s, int target)
{
    tr__rt_t *rt = tr__rt;
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 64 + (size_t)s->nargs * 32);
    tr__wbuf_u64(&w, s->id);
    tr__wbuf_u64(&w, s->fn->id);
    tr__wbuf_u32(&w, (uint32_t)s->attempt);
    tr__wbuf_u32(&w, (uint32_t)s->gen);
    tr__wbuf_u16(&w, (uint16_t)s->nret);
    tr__wbuf_u16(&w, (uint16_t)s->nargs);
    tr__wbuf_u8(&w, s->no_steal ? TR__TASK_NO_STEAL : 0);
    tr__encode_req(&w, &s->req);
    tr__encode_args(&w, s, target);
    void *m = tr__wbuf_finish(&w, TR__MSG_TASK, (uint32_t)rt->rank, rt->boot.job_id, &len);
    if (m == NULL) {
        tr__val_t none[1];
        spec_result_locked(s, OUT_FAIL, rt->rank, "out of memory building the task message", none);
        return;
    }
    tr__comm_send(rt->comm, target, m, len);
}

void tr__local_args(struct tr_task *t, const tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *o = s->args[i].obj;
        tr__blob_t *b = o ? o->blob : s->args[i].blob;
        tr__xarg_t *a = &t->args[i];
        if (s->args[i].borrow) {
            a->kind = TR__VAL_BORROW; a->owner = o->owner; a->id = o->id;
        } else if (b) {
            tr__blob_ref(b);
            a->kind = TR__VAL_INLINE; a->blob = b; a->data = b->data; a->size = b->size;
        } else {   /* pinned by the executor before the task runs */
            a->kind = TR__VAL_REF; a->owner = o->owner; a->id = o->id; a->size = o->size;
            a->hint = best_holder(o, rt->rank);
        }
    }
}

static void run_here(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    struct tr_task *t = tr__task_new(s->id, s->fn, rt->rank, s->attempt, s->nret, s->nargs);
    if (t == NULL) {
        tr__val_t none[1];
        spec_result_locked(s, OUT_FAIL, rt->rank, "out of memory", none);
        return;
    }
    t->ctx_id = s->gen ? tr__hash2(s->id, (uint64_t)s->gen) : s->id;
    t->gen = (uint32_t)s->gen;
    t->no_steal = s->no_steal;
    t->req = s->req;
    tr__local_args(t, s);
    tr__pool_push(&rt->pool, t);
}

int tr__spec_args_failed_locked(tr__spec_t *s)
{
    char buf[768];
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *o = s->args[i].obj;
        if (o == NULL || s->args[i].borrow || o->state != TR__OBJ_FAILED) continue;
        snprintf(buf, sizeof(buf), "%s '%s' was not run because its argument %d failed: %s",
                 s->actor ? "actor call" : "task", spec_name(s), i, o->err_msg ? o->err_msg : tr_status_string(o->err));
        tr__spec_fail_locked(s, o->err, o->err_rank, buf);
        return 1;
    }
    return 0;
}

void tr__spec_sent_locked(tr__spec_t *s, int target)
{
    s->target = target;
    s->state = TR__SPEC_QUEUED;
}

#define LOC_MAX 64

/* Where the stored arguments' bytes are, for locality: the owner knows
 * every copy of what it owns; a borrower knows one holder. */
static int place_locked(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    int lr[LOC_MAX];
    uint64_t lb[LOC_MAX];
    tr__place_t pl = { s->strategy, s->aff_rank, s->aff_node, s->soft, 0, lr, lb };
    for (int i = 0; i < s->nargs && pl.nloc < LOC_MAX; i++) {
        tr__obj_t *o = s->args[i].obj;
        if (o == NULL || s->args[i].borrow || !o->stored || o->size == 0) continue;
        if (o->owner == rt->rank && o->nlocs > 0) {
            for (int k = 0; k < o->nlocs && pl.nloc < LOC_MAX; k++) { lr[pl.nloc] = o->locs[k]; lb[pl.nloc++] = o->size; }
        } else if (o->holder >= 0) {
            lr[pl.nloc] = o->holder; lb[pl.nloc++] = o->size;
        }
    }
    tr_status_t st;
    return tr__sched_place(&rt->sched, &s->req, &pl, "task", spec_name(s), &st);
}

static void dispatch_locked(tr__spec_t *s)
{
    tr__rt_t *rt = tr__rt;
    if (s->actor) { tr__actor_pump_locked(s->actor); return; }
    s->target = -1;
    if (tr__spec_args_failed_locked(s)) return;
    int target;
    if (s->req.pg) {
        if ((target = tr__pg_target_locked(s)) == -1) return;   /* waits for its group */
    } else {
        target = place_locked(s);
    }
    if (target < 0) {
        tr__spec_fail_locked(s, TR_ERR_UNSCHEDULABLE, -1, tr_last_error());
        return;
    }
    s->target = target;
    s->state = TR__SPEC_QUEUED;
    tr__sched_account(&rt->sched, target, &s->req, 1);
    if (target == rt->rank) run_here(s);
    else send_task(s, target);
}

/* A spec that runs again (its rank died, or it asked to): an argument may
 * be pending again (being rebuilt, or its owner died and it is made
 * again); wait for those, then dispatch. */
int tr__spec_rewait_locked(tr__spec_t *s)
{
    s->state = TR__SPEC_WAITING;
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *o = s->args[i].obj;
        if (o == NULL || s->args[i].borrow || o->state != TR__OBJ_PENDING) continue;
        if (add_dep_locked(o, s) != 0) return -1;
    }
    return 0;
}

static void redispatch_locked(tr__spec_t *s)
{
    if (tr__spec_rewait_locked(s) != 0) { tr__spec_fail_locked(s, TR_ERR_NO_MEMORY, tr__rt->rank, "out of memory"); return; }
    if (s->unresolved == 0) dispatch_locked(s);
}

void tr__spec_dispatch_locked(tr__spec_t *s)
{
    dispatch_locked(s);
}

void tr__spec_dep_ready_locked(tr__spec_t *s)
{
    if (--s->unresolved == 0 && s->state == TR__SPEC_WAITING) dispatch_locked(s);
}

typedef struct {
    int8_t  strategy;
    uint8_t soft;
    int     rank, node;
    tr_pg_h pg;
    int     bundle;
} splace_t;

static tr_status_t check_params(const tr_task_params_t *p, tr__req_t *req, int *nret, int *retries, splace_t *pl)
{
    *nret = 1; *retries = 3;
    memset(req, 0, sizeof(*req));
    req->cpus = 1;
    *pl = (splace_t){ TR_STRATEGY_DEFAULT, 0, -1, -1, TR_PG_NULL, -1 };
    if (p == NULL) return TR_OK;
    if (p->field_mask & TR_TASK_FIELD_NUM_RETURNS) {
        if (p->num_returns < 1 || p->num_returns > TR_MAX_RETURNS) {
            tr__set_error("num_returns must be in 1..%d, not %d", TR_MAX_RETURNS, p->num_returns);
            return TR_ERR_INVALID_ARG;
        }
        *nret = p->num_returns;
    }
    if (p->field_mask & TR_TASK_FIELD_MAX_RETRIES) {
        if (p->max_retries < -1) { tr__set_error("max_retries must be >= -1"); return TR_ERR_INVALID_ARG; }
        *retries = p->max_retries;
    }
    if (p->field_mask & TR_TASK_FIELD_NUM_CPUS) {
        if (!(p->num_cpus >= 0) || !isfinite(p->num_cpus) || p->num_cpus > 1e6) {
            tr__set_error("num_cpus must be a finite number >= 0");
            return TR_ERR_INVALID_ARG;
        }
        req->cpus = p->num_cpus;
    }
    if ((p->field_mask & TR_TASK_FIELD_RESOURCES) && p->resources != NULL) {
        tr_status_t st = tr__req_parse(p->resources, req);
        if (st != TR_OK) return st;
    }
    if ((p->field_mask & TR_TASK_FIELD_NAME) && p->name != NULL && strlen(p->name) > 255) {
        tr__set_error("task names are at most 255 characters");
        return TR_ERR_INVALID_ARG;
    }
    if (p->field_mask & TR_TASK_FIELD_NUM_GPUS) {
        if (!(p->num_gpus >= 0) || p->num_gpus > TR__MAX_GPUS) {
            tr__set_error("num_gpus must be in 0..%d, not %g", TR__MAX_GPUS, p->num_gpus);
            return TR_ERR_INVALID_ARG;
        }
        if (p->num_gpus > 1 && p->num_gpus != floor(p->num_gpus)) {
            tr__set_error("num_gpus above 1 must be a whole number, not %g", p->num_gpus);
            return TR_ERR_INVALID_ARG;
        }
        if (p->num_gpus > 0 && (tr__req_set(req, "gpus", p->num_gpus) != TR_OK)) return TR_ERR_INVALID_ARG;
    }
    if ((p->field_mask & TR_TASK_FIELD_MEMORY) && p->memory > 0) {
        if (p->memory > (uint64_t)1e18) { tr__set_error("memory %" PRIu64 " is too large", p->memory); return TR_ERR_INVALID_ARG; }
        if (tr__req_set(req, "memory", (double)p->memory) != TR_OK) return TR_ERR_INVALID_ARG;
    }
    if (p->field_mask & TR_TASK_FIELD_STRATEGY) {
        if (p->strategy != TR_STRATEGY_DEFAULT && p->strategy != TR_STRATEGY_SPREAD) {
            tr__set_error("unknown strategy %d", (int)p->strategy);
            return TR_ERR_INVALID_ARG;
        }
        pl->strategy = (int8_t)p->strategy;
    }
    if (p->field_mask & TR_TASK_FIELD_RANK) {
        if (p->rank < 0 || p->rank >= tr__rt->size) {
            tr__set_error("rank %d is out of range (the job has %d ranks)", p->rank, tr__rt->size);
            return TR_ERR_INVALID_ARG;
        }
        pl->rank = p->rank;
    }
    if (p->field_mask & TR_TASK_FIELD_NODE) {
        if (p->node < 0 || p->node >= tr__rt->boot.nnodes) {
            tr__set_error("node %d is out of range (the job has %d nodes)", p->node, tr__rt->boot.nnodes);
            return TR_ERR_INVALID_ARG;
        }
        pl->node = p->node;
    }
    if (p->field_mask & (TR_TASK_FIELD_RANK | TR_TASK_FIELD_NODE)) pl->soft = p->soft != 0;
    if (p->field_mask & TR_TASK_FIELD_PLACEMENT_GROUP) {
        if (p->placement_group == TR_PG_NULL) { tr__set_error("placement_group is NULL"); return TR_ERR_INVALID_ARG; }
        if (p->bundle_index < -1 || p->bundle_index >= TR_PG_MAX_BUNDLES) {
            tr__set_error("bundle_index %d is out of range", p->bundle_index);
            return TR_ERR_INVALID_ARG;
        }
        if (pl->rank >= 0 || pl->node >= 0) {
            tr__set_error("a task in a placement group takes no rank or node affinity");
            return TR_ERR_INVALID_ARG;
        }
        pl->pg = p->placement_group;
        pl->bundle = p->bundle_index;
    }
    return TR_OK;
}

/* @s waits for @o to be done; -1 when out of memory. */
static int add_dep_locked(tr__obj_t *o, tr__spec_t *s)
{
    if (o->ndeps == o->capdeps) {
        int cap = o->capdeps ? o->capdeps * 2 : 4;
        tr__spec_t **d = realloc(o->deps, sizeof(*d) * (size_t)cap);
        if (d == NULL) return -1;
        o->deps = d;
        o->capdeps = cap;
    }
    o->deps[o->ndeps++] = s;
    s->unresolved++;
    return 0;
}

tr_status_t tr__arg_value(const tr_arg_t *a, int i, int may_store, tr__blob_t **b_p)
{
    tr_status_t st = TR_ERR_NO_MEMORY;
    tr__blob_t *b = NULL;
    *b_p = NULL;
    switch (a->kind) {
    case TR_ARG_KIND_BYTES:
        if (a->u.bytes.data == NULL && a->u.bytes.size > 0) {
            tr__set_error("argument %d: NULL data with size %zu", i, a->u.bytes.size);
            return TR_ERR_INVALID_ARG;
        }
        b = may_store ? tr__blob_for(a->u.bytes.size, &st) : tr__blob_heap(a->u.bytes.size);
        if (b == NULL) return st;
        if (a->u.bytes.size) memcpy(b->data, a->u.bytes.data, a->u.bytes.size);
        break;
    case TR_ARG_KIND_I64:
    case TR_ARG_KIND_F64:
        if ((b = tr__blob_heap(8)) == NULL) return TR_ERR_NO_MEMORY;
        memcpy(b->data, a->kind == TR_ARG_KIND_I64 ? (const void *)&a->u.i64 : (const void *)&a->u.f64, 8);
        break;
    case TR_ARG_KIND_REF:
    case TR_ARG_KIND_BORROW:
        if (tr__ref_obj(a->u.ref) == NULL) {
            tr__set_error("argument %d is a released or invalid ref", i);
            return TR_ERR_REF_RELEASED;
        }
        break;
    default:
        tr__set_error("argument %d has an unknown kind %d", i, (int)a->kind);
        return TR_ERR_INVALID_ARG;
    }
    *b_p = b;
    return TR_OK;
}

tr_status_t tr__task_submit(const tr__fn_t *fn, const tr_arg_t *args, int nargs,
                            const tr_task_params_t *params, tr_ref_h *refs_p)
{
    return tr__submit(fn, NULL, 0, NULL, args, nargs, params, refs_p);
}

tr_status_t tr__submit(const tr__fn_t *fn, tr__obj_t *actor, uint64_t method_id, const char *method,
                       const tr_arg_t *args, int nargs, const tr_task_params_t *params, tr_ref_h *refs_p)
{
    tr__rt_t *rt = tr__rt;
    tr__req_t req;
    int nret, retries;
    if (actor && params && (params->field_mask & ~(uint64_t)(TR_TASK_FIELD_NUM_RETURNS | TR_TASK_FIELD_NAME))) {
        tr__set_error("an actor call takes only num_returns and name");
        return TR_ERR_INVALID_ARG;
    }
    splace_t place;
    tr_status_t st = check_params(params, &req, &nret, &retries, &place);
    if (st != TR_OK) return st;
    if (actor) { req.cpus = 0; req.nres = 0; place.pg = TR_PG_NULL; }   /* the actor holds its resources */

    tr__spec_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return TR_ERR_NO_MEMORY;
    s->fn = fn; s->nret = nret; s->nargs = nargs; s->max_retries = retries; s->req = req;
    s->target = -1;
    s->strategy = place.strategy; s->soft = place.soft; s->aff_rank = place.rank; s->aff_node = place.node;
    /* placed by a constraint: never stolen (a soft affinity is only where it starts) */
    s->no_steal = (!place.soft && (place.rank >= 0 || place.node >= 0)) || place.pg != TR_PG_NULL;
    s->method_id = method_id;
    s->args = calloc((size_t)(nargs ? nargs : 1), sizeof(*s->args));
    s->rets = calloc((size_t)nret, sizeof(*s->rets));
    if (params && (params->field_mask & TR_TASK_FIELD_NAME) && params->name)
        s->name = strdup(params->name);
    else if (method && tr__method_name(method_id) == NULL)
        s->name = strdup(method);   /* no class has it: kept for the error message */
    tr_ref_h refs[TR_MAX_RETURNS] = { 0 };
    int nrefs = 0;
    st = TR_ERR_NO_MEMORY;
    if (s->args == NULL || s->rets == NULL) goto err;

    /* by-value arguments are copied now: the caller may reuse its buffers */
    for (int i = 0; i < nargs; i++) {
        tr__blob_t *b = NULL;
        if ((st = tr__arg_value(&args[i], i, 1, &b)) != TR_OK) goto err;
        if (b && b->kind == TR__BLOB_ARENA) {   /* a large value: an object of the spec's */
            if ((st = tr__put_obj(b, NULL, 0, &s->args[i].obj)) != TR_OK) goto err;
            b = NULL;
        }
        s->args[i].blob = b;
    }
    st = TR_ERR_NO_MEMORY;   /* what the failures below mean unless they say otherwise */

    pthread_mutex_lock(&rt->lock);
    s->id = tr__next_task_id();
    /* only a task's children can be submitted twice (its re-run); a
     * driver's top-level ids are new each time: no look-up for them */
    tr__spec_t *dup = tr__cur_task ? tr__hmap_get(&rt->specs, s->id) : NULL;
    if (dup != NULL && (actor == NULL) == (dup->actor == NULL) && dup->fn == fn && dup->method_id == method_id &&
        dup->nret == nret) {
        /* a task running again after its first run's owner died submits
         * what the first run submitted here, under the same ids: that task
         * is already under way here, so this is the same work; share it */
        int ok = 1;
        for (int i = 0; i < nret && ok; i++) {
            dup->rets[i]->refcnt++;
            if (tr__ref_new(dup->rets[i], &refs[i]) != TR_OK) { dup->rets[i]->refcnt--; ok = 0; }
            else nrefs++;
        }
        if (ok) {
            spec_free(s);
            pthread_mutex_unlock(&rt->lock);
            memcpy(refs_p, refs, sizeof(tr_ref_h) * (size_t)nret);
            return TR_OK;
        }
        for (int i = 0; i < nrefs; i++) {
            tr__obj_t *o = tr__handle_free((uint64_t)(uintptr_t)refs[i], TR__HANDLE_REF);
            if (o) tr__obj_unref_locked(o);
        }
        spec_free(s);
        pthread_mutex_unlock(&rt->lock);
        return TR_ERR_NO_MEMORY;
    }
    if (actor == NULL) {
        /* what no rank can ever run fails now, naming the resource */
        const char *nm = s->name ? s->name : fn->name;
        if (place.pg != TR_PG_NULL) st = tr__pg_check_locked(place.pg, place.bundle, &s->req, "task", nm);
        else st = tr__sched_feasible(&rt->sched, &req, place.soft ? -1 : place.rank, place.soft ? -1 : place.node,
                                     "task", nm) ? TR_OK : TR_ERR_UNSCHEDULABLE;
        if (st != TR_OK) {
            pthread_mutex_unlock(&rt->lock);
            goto err;
        }
    }
    for (int i = 0; i < nret; i++) {
        uint64_t rid = tr__hash2(s->id, (uint64_t)i + 1);
        tr__obj_t *o = tr__cur_task ? tr__obj_adopt_locked(rid) : NULL;   /* made again here */
        int adopted = o != NULL;
        if (o == NULL) o = tr__obj_new(rid);
        if (o == NULL || tr__ref_new(o, &refs[i]) != TR_OK) {
            if (adopted) o->refcnt--;
            else free(o);
            pthread_mutex_unlock(&rt->lock);
            goto err;
        }
        nrefs++;
        o->refcnt++;            /* the handle (from tr__obj_new) and the producer */
        o->producer = s;
        o->holder = -1;
        s->rets[i] = o;
        tr__obj_publish_locked(o);
    }
    for (int i = 0; i < nargs; i++) {
        if (args[i].kind != TR_ARG_KIND_REF && args[i].kind != TR_ARG_KIND_BORROW) continue;
        tr__obj_t *o = tr__ref_obj(args[i].u.ref);
        if (o == NULL) {   /* released by another thread meanwhile */
            pthread_mutex_unlock(&rt->lock);
            st = TR_ERR_REF_RELEASED;
            goto err;
        }
        o->refcnt++;
        s->args[i].obj = o;
        s->args[i].borrow = args[i].kind == TR_ARG_KIND_BORROW;
        if (s->args[i].borrow || o->state != TR__OBJ_PENDING) continue;
        if (add_dep_locked(o, s) != 0) { pthread_mutex_unlock(&rt->lock); goto err; }
    }
    if (actor) {
        /* the call waits for the actor's handle object too (a borrowed
         * handle learns where the actor lives from its owner), and joins
         * this rank's queue of calls to the actor: they leave in order */
        if (actor->naq == actor->capaq && actor->aqh > 0) {   /* compact */
            memmove(actor->aq, actor->aq + actor->aqh, sizeof(*actor->aq) * (size_t)(actor->naq - actor->aqh));
            actor->naq -= actor->aqh;
            actor->aqh = 0;
        }
        if (actor->naq == actor->capaq) {
            int cap = actor->capaq ? actor->capaq * 2 : 8;
            tr__spec_t **q = realloc(actor->aq, sizeof(*q) * (size_t)cap);
            if (q == NULL) { pthread_mutex_unlock(&rt->lock); st = TR_ERR_NO_MEMORY; goto err; }
            actor->aq = q; actor->capaq = cap;
        }
        if (actor->state == TR__OBJ_PENDING && add_dep_locked(actor, s) != 0) {
            pthread_mutex_unlock(&rt->lock);
            goto err;
        }
        actor->refcnt++;
        s->actor = actor;
        actor->aq[actor->naq++] = s;
    }
    tr__hmap_put(&rt->specs, s->id, s);
    rt->owned_pending++;
    rt->tasks_submitted++;
    if (s->unresolved == 0) dispatch_locked(s);
    pthread_mutex_unlock(&rt->lock);
    memcpy(refs_p, refs, sizeof(tr_ref_h) * (size_t)nret);
    return TR_OK;

err:
    /* nothing was published: undo in reverse */
    pthread_mutex_lock(&rt->lock);
    for (int i = 0; i < nrefs; i++) tr__handle_free((uint64_t)(uintptr_t)refs[i], TR__HANDLE_REF);
    for (int i = 0; i < nargs && s->args; i++) {
        if (s->args[i].obj) {   /* drop the dependency we registered */
            tr__obj_t *o = s->args[i].obj;
            for (int d = 0; d < o->ndeps; d++)
                if (o->deps[d] == s) { o->deps[d] = o->deps[--o->ndeps]; break; }
        }
    }
    for (int i = 0; i < s->nret && s->rets; i++) if (s->rets[i]) s->rets[i]->refcnt = 1;
    spec_free(s);
    pthread_mutex_unlock(&rt->lock);
    return st;
}

tr_status_t tr__task_cancel(tr__obj_t *o)
{
    tr__rt_t *rt = tr__rt;
    tr_status_t st = TR_ERR_TASK_STARTED;
    pthread_mutex_lock(&rt->lock);
    if (o->is_put) { st = TR_ERR_INVALID_ARG; goto out; }
    tr__spec_t *s = o->producer;
    if (s == NULL || s->state == TR__SPEC_DONE) goto out;
    if (s->state == TR__SPEC_WAITING) {
        for (int i = 0; i < s->nargs; i++) {
            tr__obj_t *a = s->args[i].obj;
            if (a == NULL || a->state != TR__OBJ_PENDING) continue;
            for (int d = 0; d < a->ndeps; d++)
                if (a->deps[d] == s) { a->deps[d] = a->deps[--a->ndeps]; d--; }
        }
        tr__val_t none[1];
        spec_result_locked(s, OUT_CANCELLED, rt->rank, NULL, none);
        st = TR_OK;
    } else if (s->target == rt->rank) {
        struct tr_task *t;
        if (tr__pool_remove(&rt->pool, s->id, &t)) {
            tr__task_free(t);
            tr__val_t none[1];
            spec_result_locked(s, OUT_CANCELLED, rt->rank, NULL, none);
            st = TR_OK;
        }
    } else if (!s->cancel_sent) {
        tr__wbuf_t w;
        size_t len;
        tr__wbuf_init(&w, 8);
        tr__wbuf_u64(&w, s->id);
        void *m = tr__wbuf_finish(&w, TR__MSG_CANCEL, (uint32_t)rt->rank, rt->boot.job_id, &len);
        if (m == NULL) { st = TR_ERR_NO_MEMORY; goto out; }
        tr__comm_send(rt->comm, s->target, m, len);
        s->cancel_sent = 1;
        st = TR_OK;
    } else {
        st = TR_OK;
    }
out:
    pthread_mutex_unlock(&rt->lock);
    return st;
}

/* ------------------------------------------------------- task outcome */

/* Large returns become primary copies in this rank's store, under the ids
 * the owner gave the return objects; small ones travel inline. */
static tr_status_t store_returns(struct tr_task *t)
{
    for (int i = 0; i < t->nret; i++) {
        tr__blob_t *b = t->rets[i];
        if (b->kind != TR__BLOB_ARENA) continue;
        tr_status_t st = tr__store_insert(&tr__rt->store, tr__hash2(t->id, (uint64_t)i + 1), t->owner, 1, b);
        if (st != TR_OK) return st;
    }
    return TR_OK;
}

static void apply_local_result(struct tr_task *t, int outcome, const char *msg)
{
    tr__rt_t *rt = tr__rt;
    tr__val_t vals[TR_MAX_RETURNS];
    for (int i = 0; i < t->nret; i++) {
        tr__blob_t *b = t->rets[i];
        vals[i].inner = NULL;
        vals[i].ninner = 0;
        if (t->rinner && outcome == OUT_OK) {   /* the task's counts pass to the result */
            vals[i].inner = t->rinner[i].objs;
            vals[i].ninner = t->rinner[i].n;
            t->rinner[i].objs = NULL;
            t->rinner[i].n = 0;
        }
        vals[i].holder = rt->rank;
        vals[i].size = b ? b->size : 0;
        vals[i].blob = b && b->kind != TR__BLOB_ARENA ? b : NULL;
        if (b && b->kind == TR__BLOB_ARENA) tr__blob_unref(b);   /* the store holds it */
        t->rets[i] = NULL;
    }
    pthread_mutex_lock(&rt->lock);
    tr__spec_t *s = tr__hmap_get(&rt->specs, t->id);
    if (s && s->attempt == t->attempt && s->state == TR__SPEC_QUEUED) spec_result_locked(s, outcome, rt->rank, msg, vals);
    vals_drop_inner_locked(vals, t->nret);
    pthread_mutex_unlock(&rt->lock);
    for (int i = 0; i < t->nret; i++) if (vals[i].blob) tr__blob_unref(vals[i].blob);
}

/* The owner of a task's result must borrow the refs the result contains
 * before the task drops its own counts: register it in advance (here, or
 * at the refs' owners, waiting for their answers).  It borrows for itself
 * when the result arrives and cancels these. */
static void preregister_inner(struct tr_task *t)
{
    tr__rt_t *rt = tr__rt;
    int remote = 0;
    pthread_mutex_lock(&rt->lock);
    for (int i = 0; i < t->nret; i++)
        for (int k = 0; k < t->rinner[i].n; k++) {
            tr__obj_t *o = t->rinner[i].objs[k];
            if (o->owner == t->owner) continue;
            if (o->owner == rt->rank) tr__borrow_add_locked(o, t->owner);
            else remote++;
        }
    pthread_mutex_unlock(&rt->lock);
    if (remote == 0) return;
    tr__rpc_t r;
    uint64_t tag = tr__rpc_open(&r, remote);
    for (int i = 0; i < t->nret; i++)
        for (int k = 0; k < t->rinner[i].n; k++) {
            tr__obj_t *o = t->rinner[i].objs[k];
            if (o->owner != t->owner && o->owner != rt->rank) tr__send_borrow(o->owner, tag, o->id, t->owner);
        }
    tr_status_t st = tr__rpc_wait(&r);
    if (st != TR_OK) tr__warn("registering the refs of a task's result for rank %d: %s", t->owner, tr_status_string(st));
}

static void put_inner(tr__wbuf_t *w, const struct tr_task *t, int i)
{
    int n = t->rinner ? t->rinner[i].n : 0;
    tr__wbuf_u32(w, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        tr__wbuf_u32(w, (uint32_t)t->rinner[i].objs[k]->owner);
        tr__wbuf_u64(w, t->rinner[i].objs[k]->id);
    }
}

/* RESULT: task id, attempt, outcome, message, then @nvals values. */
static void put_result_head(tr__wbuf_t *w, uint64_t id, uint32_t attempt, int outcome, const char *msg, int nvals)
{
    size_t mlen = msg ? strlen(msg) : 0;
    tr__wbuf_u64(w, id);
    tr__wbuf_u32(w, attempt);
    tr__wbuf_u8(w, (uint8_t)outcome);
    tr__wbuf_u32(w, (uint32_t)mlen);
    tr__wbuf_put(w, msg, mlen);
    tr__wbuf_u16(w, (uint16_t)nvals);
}

static void send_result(struct tr_task *t, int outcome, const char *msg)
{
    tr__rt_t *rt = tr__rt;
    tr__wbuf_t w;
    size_t len, mlen = msg ? strlen(msg) : 0;
    size_t hint = 64 + mlen;
    for (int i = 0; i < t->nret; i++) if (t->rets[i] && t->rets[i]->kind != TR__BLOB_ARENA) hint += t->rets[i]->size;
    tr__wbuf_init(&w, hint);
    put_result_head(&w, t->id, (uint32_t)t->attempt, outcome, msg, outcome == OUT_OK ? t->nret : 0);
    if (outcome == OUT_OK && t->rinner) preregister_inner(t);
    for (int i = 0; outcome == OUT_OK && i < t->nret; i++) {
        tr__blob_t *b = t->rets[i];
        if (b->kind == TR__BLOB_ARENA) {
            tr__wbuf_u8(&w, TR__VAL_REF);
            tr__wbuf_u64(&w, b->size);
        } else {
            tr__wbuf_u8(&w, TR__VAL_INLINE);
            tr__wbuf_u64(&w, b->size);
            tr__wbuf_put(&w, b->data, b->size);
        }
        put_inner(&w, t, i);
    }
    void *m = tr__wbuf_finish(&w, TR__MSG_RESULT, (uint32_t)rt->rank, rt->boot.job_id, &len);
    if (m == NULL) { tr__error("out of memory sending the result of a task to rank %d", t->owner); return; }
    tr__comm_send(rt->comm, t->owner, m, len);
}

void tr__task_finish(struct tr_task *t, tr_status_t st)
{
    int outcome = st == TR_OK ? OUT_OK : st == TR_ERR_TASK_RETRY && t->actor == NULL ? OUT_RETRY
                : st == TR_ERR_TASK_CANCELLED && t->fail_msg == NULL ? OUT_CANCELLED
                : st == TR_ERR_ACTOR_DIED && t->actor_op != TR__AOP_NONE ? OUT_ACTOR_DIED
                : st == TR_ERR_UNKNOWN_METHOD && t->actor_op != TR__AOP_NONE ? OUT_UNKNOWN_METHOD : OUT_FAIL;
    char fallback[128];
    const char *msg = t->fail_msg;
    if (outcome == OUT_OK) {
        for (int i = 0; i < t->nret; i++) {
            if (t->rets[i] == NULL && (t->rets[i] = tr__blob_heap(0)) == NULL) {
                outcome = OUT_FAIL;
                msg = "out of memory storing its results";
                break;
            }
        }
        if (outcome == OUT_OK && (st = store_returns(t)) != TR_OK) {
            outcome = OUT_FAIL;
            msg = "out of memory storing its results";
        }
    } else if (msg == NULL && outcome == OUT_FAIL) {
        snprintf(fallback, sizeof(fallback), "it returned '%s'", tr_status_string(st));
        msg = fallback;
    }
    if (t->owner == tr__rt->rank) apply_local_result(t, outcome, msg);
    else send_result(t, outcome, msg);
    tr__rinner_release(t);   /* after the result: the owner's borrows are in place */
    tr__task_free(t);
}

/* --------------------------------------------------- message handlers */

void tr__task_reply_failed(int owner, uint64_t id, uint32_t attempt, const char *why)
{
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 32 + strlen(why));
    put_result_head(&w, id, attempt, OUT_FAIL, why, 0);
    void *m = tr__wbuf_finish(&w, TR__MSG_RESULT, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m) tr__comm_send(tr__rt->comm, owner, m, len);
}

void tr__decode_args(tr__rbuf_t *r, struct tr_task *t, size_t len)
{
    int nargs = t->nargs;
    for (int i = 0; i < nargs && !r->bad; i++) {
        tr__xarg_t *a = &t->args[i];
        a->kind = tr__rbuf_u8(r);
        if (a->kind == TR__VAL_INLINE) {
            uint64_t size = tr__rbuf_u64(r);
            const void *d = (size <= len) ? tr__rbuf_get(r, (size_t)size) : (r->bad = true, NULL);
            a->data = d; a->size = (size_t)size;
        } else if (a->kind == TR__VAL_REF || a->kind == TR__VAL_BORROW) {
            a->owner = (int)tr__rbuf_u32(r);
            a->id = tr__rbuf_u64(r);
            if (a->kind == TR__VAL_REF) {
                a->size = (size_t)tr__rbuf_u64(r);
                a->hint = (int)tr__rbuf_u32(r);
                if (a->hint < -1 || a->hint >= tr__rt->size) r->bad = true;   /* -1: no copy known, ask the owner */
            }
            if (a->owner < 0 || a->owner >= tr__rt->size) r->bad = true;
        } else {
            r->bad = true;
        }
    }
}

struct tr_task *tr__task_decode(tr__rbuf_t *r, void *copy, size_t len, int owner,
                                uint64_t *id_p, uint32_t *attempt_p, const char **why_p)
{
    uint64_t id = tr__rbuf_u64(r), fn_id = tr__rbuf_u64(r);
    uint32_t attempt = tr__rbuf_u32(r), gen = tr__rbuf_u32(r);
    uint16_t nret = tr__rbuf_u16(r), nargs = tr__rbuf_u16(r);
    uint8_t flags = tr__rbuf_u8(r);
    tr__req_t req;
    tr__decode_req(r, &req);
    const tr__fn_t *fn = tr__fn_by_id(fn_id);
    *id_p = id;
    *attempt_p = attempt;
    *why_p = NULL;
    /* every argument takes at least 9 bytes (a kind and a size): a count
     * the message cannot hold is refused before anything is allocated */
    if (!r->bad && (size_t)nargs * 9 > (size_t)(r->end - r->p)) r->bad = true;
    if (r->bad || nret < 1 || nret > TR_MAX_RETURNS || fn == NULL) {
        *why_p = fn == NULL && !r->bad ? "the executing rank does not know its remote function"
                                       : "the task message was malformed";
        return NULL;
    }
    struct tr_task *t = tr__task_new(id, fn, owner, (int)attempt, nret, nargs);
    if (t == NULL) return NULL;
    t->ctx_id = gen ? tr__hash2(id, (uint64_t)gen) : id;
    t->gen = gen;
    t->no_steal = (flags & TR__TASK_NO_STEAL) != 0;
    t->msgbuf = copy;
    t->req = req;
    tr__decode_args(r, t, len);
    return t;
}

/* The TASK body of a queued task (tr__task_decode reads it back): its
 * arguments as the executor holds them, unpinned. */
void tr__task_encode(tr__wbuf_t *w, const struct tr_task *t)
{
    tr__wbuf_u64(w, t->id);
    tr__wbuf_u64(w, t->fn->id);
    tr__wbuf_u32(w, (uint32_t)t->attempt);
    tr__wbuf_u32(w, t->gen);
    tr__wbuf_u16(w, (uint16_t)t->nret);
    tr__wbuf_u16(w, (uint16_t)t->nargs);
    tr__wbuf_u8(w, t->no_steal ? TR__TASK_NO_STEAL : 0);
    tr__encode_req(w, &t->req);
    for (int i = 0; i < t->nargs; i++) {
        const tr__xarg_t *a = &t->args[i];
        tr__wbuf_u8(w, a->kind);
        if (a->kind == TR__VAL_INLINE) {
            tr__wbuf_u64(w, a->size);
            tr__wbuf_put(w, a->data, a->size);
            continue;
        }
        tr__wbuf_u32(w, (uint32_t)a->owner);
        tr__wbuf_u64(w, a->id);
        if (a->kind == TR__VAL_REF) {
            tr__wbuf_u64(w, a->size);
            tr__wbuf_u32(w, (uint32_t)a->hint);
        }
    }
}

void tr__recv_task(const void *msg, size_t len)
{
    tr__wire_hdr_t h;
    memcpy(&h, msg, sizeof(h));
    void *copy = malloc(len);
    if (copy == NULL) { tr__error("out of memory receiving a task from rank %u; dropped", h.src); return; }
    memcpy(copy, msg, len);
    tr__rbuf_t r;
    tr__wire_open(copy, len, &h, &r);
    uint64_t id;
    uint32_t attempt;
    const char *why;
    struct tr_task *t = tr__task_decode(&r, copy, len, (int)h.src, &id, &attempt, &why);
    if (t == NULL) {
        free(copy);
        if (why == NULL) { tr__error("out of memory receiving a task; dropped"); return; }
        /* answer, so that the owner's task fails instead of waiting forever
         * (an owner drops results for tasks it does not know) */
        tr__warn("refused a malformed task message from rank %u", h.src);
        tr__task_reply_failed((int)h.src, id, attempt, why);
        return;
    }
    if (r.bad) {
        tr__warn("malformed arguments in a task message from rank %u", h.src);
        tr__task_failmsg(t, "the task message was malformed");
        t->fetch_status = TR_ERR_PROTOCOL;
    }
    tr__pool_push(&tr__rt->pool, t);
}

/* The refs a received result contains become counted local objects: our
 * own, or proxies we borrow (registering ourselves, then cancelling the
 * registration the executor made for us in advance). */
static void take_irefs_locked(tr__val_t *v, const tr__iref_t *ir, int n)
{
    tr__rt_t *rt = tr__rt;
    if (n == 0) return;
    v->inner = calloc((size_t)n, sizeof(*v->inner));
    for (int k = 0; k < n; k++) {
        tr__obj_t *o = tr__hmap_get(&rt->objs, ir[k].id);
        if (ir[k].owner == rt->rank) {
            if (o == NULL || o->owner != rt->rank) { tr__warn("a task result names object %016" PRIx64 " we no longer own", ir[k].id); continue; }
            o->refcnt++;
        } else {
            if (o == NULL) {
                if ((o = tr__obj_new(ir[k].id)) == NULL) goto cancel;
                o->owner = ir[k].owner;
                tr__obj_publish_locked(o);
                if (!o->in_table) { free(o); o = NULL; goto cancel; }
                tr__send_borrow(o->owner, 0, o->id, rt->rank);   /* no answer wanted; the state follows */
            } else if (o->owner != ir[k].owner && tr__rank_is_dead(o->owner)) {
                /* made again by a new owner after its first owner died:
                 * the proxy follows it (and gets its state from it) */
                o->owner = ir[k].owner;
                o->refcnt++;
                tr__send_borrow(o->owner, 0, o->id, rt->rank);
            } else {
                o->refcnt++;
            }
        cancel:
            tr__send_ids(ir[k].owner, TR__MSG_UNBORROW, &ir[k].id, 1);
        }
        if (v->inner && o) v->inner[v->ninner++] = o;
        else if (o) tr__obj_unref_locked(o);
    }
}

/* A RESULT message as received: parsed with no runtime state but the
 * number of ranks (tr__result_check runs it on any bytes, for the fuzzer).
 * vals/irefs/nirefs hold the first @nmem entries, zeroed or filled. */
typedef struct {
    uint64_t    id;
    uint32_t    attempt;
    uint8_t     outcome;
    uint16_t    n;
    int         nmem;
    char        text[512];
    tr__val_t   vals[TR_MAX_RETURNS];
    tr__iref_t *irefs[TR_MAX_RETURNS];
    int         nirefs[TR_MAX_RETURNS];
} result_in_t;

/* Returns true when the message is well formed; either way the caller
 * frees what res->vals and res->irefs hold (result_in_free). */
static bool result_decode(result_in_t *res, tr__rbuf_t *r, size_t len, int src, int nranks)
{
    res->id = tr__rbuf_u64(r);
    res->attempt = tr__rbuf_u32(r);
    res->outcome = tr__rbuf_u8(r);
    uint32_t mlen = tr__rbuf_u32(r);
    const char *m = tr__rbuf_get(r, mlen);
    res->text[0] = '\0';
    if (m && mlen) snprintf(res->text, sizeof(res->text), "%.*s", (int)(mlen < sizeof(res->text) ? mlen : sizeof(res->text) - 1), m);
    uint16_t n = res->n = tr__rbuf_u16(r);
    tr__val_t *vals = res->vals;
    tr__iref_t **irefs = res->irefs;
    int *nirefs = res->nirefs;
    int nv = 0;
    res->nmem = 0;
    if (n > TR_MAX_RETURNS || res->outcome > OUT_UNKNOWN_METHOD) r->bad = true;
    else {   /* only the ones this message has */
        memset(vals, 0, sizeof(vals[0]) * n);
        memset(irefs, 0, sizeof(irefs[0]) * n);
        memset(nirefs, 0, sizeof(nirefs[0]) * n);
        res->nmem = n;
    }
    for (; nv < n && !r->bad; nv++) {
        uint8_t kind = tr__rbuf_u8(r);
        if (kind == TR__VAL_INLINE) {
            uint64_t size = tr__rbuf_u64(r);
            const void *d = size <= len ? tr__rbuf_get(r, (size_t)size) : NULL;
            if (d == NULL) { r->bad = true; break; }
            if ((vals[nv].blob = tr__blob_heap((size_t)size)) == NULL) { r->bad = true; break; }
            memcpy(vals[nv].blob->data, d, (size_t)size);
        } else if (kind == TR__VAL_REF) {
            vals[nv].holder = src;
            vals[nv].size = (size_t)tr__rbuf_u64(r);
            if (r->bad) break;
        } else {
            r->bad = true;
            break;
        }
        uint32_t ni = tr__rbuf_u32(r);   /* refs the value contains */
        if (ni == 0) continue;
        if ((uint64_t)ni * 12 > (uint64_t)(r->end - r->p) || (irefs[nv] = malloc(sizeof(tr__iref_t) * ni)) == NULL) {
            r->bad = true;
            break;
        }
        nirefs[nv] = (int)ni;
        for (uint32_t k = 0; k < ni; k++) {
            irefs[nv][k].owner = (int)tr__rbuf_u32(r);
            irefs[nv][k].id = tr__rbuf_u64(r);
            if (irefs[nv][k].owner < 0 || irefs[nv][k].owner >= nranks) r->bad = true;
        }
    }
    return !r->bad;
}

/* @nclean: values not taken by an object (their blobs are dropped). */
static void result_in_free(result_in_t *res, int nclean)
{
    for (int i = 0; i < nclean; i++) if (res->vals[i].blob) tr__blob_unref(res->vals[i].blob);
    for (int i = 0; i < res->nmem; i++) free(res->irefs[i]);
}

int tr__result_check(const void *msg, size_t len, int nranks)
{
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    result_in_t *res = malloc(sizeof(*res));
    if (res == NULL) return -1;
    tr__wire_open(msg, len, &h, &r);
    bool ok = result_decode(res, &r, len, (int)h.src, nranks);
    result_in_free(res, res->nmem);
    free(res);
    return ok ? 0 : -1;
}

void tr__recv_result(const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    result_in_t res;
    tr__wire_open(msg, len, &h, &r);
    result_decode(&res, &r, len, (int)h.src, rt->size);
    uint64_t id = res.id;
    uint32_t attempt = res.attempt;
    uint8_t outcome = res.outcome;
    uint16_t n = res.n;
    const char *text = res.text;
    tr__val_t *vals = res.vals;
    tr__iref_t **irefs = res.irefs;
    int *nirefs = res.nirefs;
    int nclean = res.nmem;
    pthread_mutex_lock(&rt->lock);
    tr__spec_t *s = r.bad ? NULL : tr__hmap_get(&rt->specs, id);
    if (r.bad) tr__warn("dropped a malformed result message from rank %u", h.src);
    /* a plain task may come from another rank than its target: a thief that
     * stole it, before the victim's MOVED arrives (the attempt tells runs apart) */
    else if (s == NULL || s->state != TR__SPEC_QUEUED || s->attempt != (int)attempt ||
             (s->target != (int)h.src && s->actor != NULL) || (outcome == OUT_OK && n != s->nret)) {
        if (s && s->attempt != (int)attempt && rt->ndead > 0)   /* a run that was written off */
            tr__debug("dropped a result from rank %u of an earlier attempt", h.src);
        else if (s == NULL && rt->ndead > 0)   /* a written-off run finished after its re-run */
            tr__debug("dropped a result from rank %u for task %016" PRIx64 ", which is no longer pending", h.src, id);
        else if (s == NULL)
            tr__warn("dropped a result from rank %u for task %016" PRIx64 ", which this rank does not run (stale or forged)", h.src, id);
        else
            tr__warn("dropped a result from rank %u for task '%s' (attempt %u; this rank has attempt %d %s on rank %d)",
                     h.src, spec_name(s), attempt, s->attempt,
                     s->state == TR__SPEC_QUEUED ? "queued" : s->state == TR__SPEC_WAITING ? "waiting" : "done", s->target);
    }
    else {
        for (int i = 0; i < n; i++) take_irefs_locked(&vals[i], irefs[i], nirefs[i]);
        spec_result_locked(s, outcome, (int)h.src, text, vals);
        vals_drop_inner_locked(vals, n);   /* a failed outcome keeps none */
        nclean = 0;   /* the objects own the values now */
    }
    if (nclean && !r.bad)   /* dropped: the executor registered us in advance; cancel that */
        for (int i = 0; i < n; i++)
            for (int k = 0; k < nirefs[i]; k++)
                if (irefs[i][k].owner != rt->rank) tr__send_ids(irefs[i][k].owner, TR__MSG_UNBORROW, &irefs[i][k].id, 1);
    pthread_mutex_unlock(&rt->lock);
    result_in_free(&res, nclean);
}

void tr__recv_cancel(const void *msg, size_t len)
{
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    uint64_t id = tr__rbuf_u64(&r);
    struct tr_task *t;
    if (r.bad) { tr__warn("dropped a malformed cancel message from rank %u", h.src); return; }
    if (!tr__pool_remove(&tr__rt->pool, id, &t)) return;   /* started or finished: nothing to do */
    if (t->owner != (int)h.src) {   /* only the owner may cancel: put it back */
        tr__pool_push(&tr__rt->pool, t);
        return;
    }
    tr__task_finish(t, TR_ERR_TASK_CANCELLED);
}


/* ------------------------------------------------------------ failures */

/* @rank died: the tasks this rank sent there run again elsewhere while
 * their max_retries allow; past that their results fail. */
void tr__tasks_rank_died_locked(int rank)
{
    tr__rt_t *rt = tr__rt;
    tr__hmap_t *m = &rt->specs;
    size_t n = 0;
    tr__spec_t **lost = malloc(sizeof(*lost) * (m->count + 1));
    if (lost == NULL) { tr__error("out of memory retrying the tasks of dead rank %d", rank); return; }
    for (size_t i = 0; i <= m->mask; i++) {
        tr__spec_t *s = m->vals[i];
        if (s && s->actor == NULL && s->state == TR__SPEC_QUEUED && s->target == rank) lost[n++] = s;
    }
    for (size_t k = 0; k < n; k++) tr__spec_lost_locked(lost[k], rank);
    free(lost);
}

void tr__spec_lost_locked(tr__spec_t *s, int rank)
{
    if (s->max_retries < 0 || s->attempt < s->max_retries) {
        tr__info("task '%s' was on rank %d, which died: running it again (attempt %d)", spec_name(s), rank, s->attempt + 2);
        s->attempt++;
        tr__rt->fstats.tasks_retried++;
        redispatch_locked(s);
        return;
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "task '%s' was running on rank %d, which died, and it has no retries left "
             "(max_retries %d)", spec_name(s), rank, s->max_retries);
    tr__spec_fail_locked(s, TR_ERR_WORKER_DIED, rank, buf);
}

/* An owned object lost every copy: run the task that made it again, under
 * its id and its children's ids; its arguments are rebuilt first when they
 * are gone too.  Returns 1 when @o is (now) being made, 0 when it cannot be
 * (a put, evicted lineage, or an argument that cannot be had). */
int tr__rebuild_locked(tr__obj_t *o)
{
    if (o->state == TR__OBJ_PENDING) return o->producer != NULL;
    if (o->lineage == NULL || o->is_put) return 0;
    return tr__rerun_locked(o->lineage, o->id);
}

/* Run the kept spec @L again (see tr__rebuild_locked); @for_id names the
 * object that needs it, for messages.  1: running (or already). */
int tr__rerun_locked(tr__spec_t *L, uint64_t for_id)
{
    tr__rt_t *rt = tr__rt;
    if (L->rerun) return 1;
    if (L->lineage_evicted) return 0;
    if (tr__hmap_get(&rt->specs, L->id) != NULL) {
        /* the task that made it is already running again here (its parent
         * ran again): two specs cannot share an id */
        tr__set_error("object %016" PRIx64 " cannot be rebuilt while the task that makes it runs again", for_id);
        return 0;
    }
    tr__spec_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return 0;
    s->from = L;   /* L stays while it runs again, even when its returns let go of it */
    L->lineage_refs++;
    s->id = L->id; s->fn = L->fn; s->nret = L->nret; s->nargs = L->nargs;
    s->max_retries = L->max_retries; s->req = L->req; s->gen = L->gen;
    s->strategy = L->strategy; s->soft = L->soft; s->aff_rank = L->aff_rank; s->aff_node = L->aff_node;
    s->attempt = L->attempt + 1;   /* results of the lost run are not taken */
    s->target = -1;
    s->no_steal = L->no_steal;
    s->name = L->name ? strdup(L->name) : NULL;
    s->args = calloc((size_t)(s->nargs ? s->nargs : 1), sizeof(*s->args));
    s->rets = calloc((size_t)s->nret, sizeof(*s->rets));
    if (s->args == NULL || s->rets == NULL) goto fail;
    for (int i = 0; i < s->nargs; i++) {
        const tr__sarg_t *la = &L->args[i];
        s->args[i].borrow = la->borrow;
        if (la->blob) { tr__blob_ref(la->blob); s->args[i].blob = la->blob; continue; }
        if (la->arg_id == 0) continue;
        tr__obj_t *a = tr__hmap_get(&rt->objs, la->arg_id);
        if (a == NULL && la->lineage && !la->lineage->lineage_evicted) {
            /* the argument is gone too: bring it back under its id */
            if ((a = tr__obj_new(la->arg_id)) == NULL) goto fail;
            a->owner = rt->rank;
            a->refcnt = 0;
            a->stored = 1;
            a->state = TR__OBJ_READY;   /* "ready, no copy": rebuilt below */
            a->lineage = la->lineage;
            la->lineage->lineage_refs++;
            tr__obj_publish_locked(a);
            if (!a->in_table) { tr__lineage_unref_locked(la->lineage); free(a); goto fail; }
            a->refcnt++;
            s->args[i].obj = a;
            if (!tr__rebuild_locked(a)) goto fail;
            continue;
        }
        if (a == NULL) goto fail;
        a->refcnt++;
        s->args[i].obj = a;
    }
    for (int i = 0; i < s->nret; i++) {
        uint64_t rid = tr__hash2(s->id, (uint64_t)i + 1);
        tr__obj_t *r = tr__hmap_get(&rt->objs, rid);
        if (r && r->owner == rt->rank && r->lineage == L && r->state != TR__OBJ_PENDING) {
            /* made again: pending until the new run answers */
            r->refcnt++;
            tr__obj_unmake_locked(r, 1);
            r->lineage = NULL;
            tr__lineage_unref_locked(L);
            r->producer = s;
            s->rets[i] = r;
        } else {
            /* a sibling nobody needs again: made and dropped */
            if ((r = tr__obj_new(rid)) == NULL) goto fail_rets;
            r->holder = -1;
            r->producer = s;
            s->rets[i] = r;
        }
    }
    for (int i = 0; i < s->nargs; i++) {
        tr__obj_t *a = s->args[i].obj;
        if (a && !s->args[i].borrow && a->state == TR__OBJ_PENDING && add_dep_locked(a, s) != 0) goto fail_rets;
    }
    rt->fstats.objects_rebuilt++;
    tr__info("object %016" PRIx64 " must be made again: running task '%s' again", for_id, spec_name(s));
    L->rerun = s;
    tr__hmap_put(&rt->specs, s->id, s);
    rt->owned_pending++;
    s->state = TR__SPEC_WAITING;
    if (s->unresolved == 0) dispatch_locked(s);
    return 1;
fail_rets:
    /* objects already reset stay pending: fail them with the reason */
    for (int i = 0; i < s->nret; i++) {
        if (s->rets[i] == NULL) continue;
        s->rets[i]->producer = NULL;
        if (s->rets[i]->state == TR__OBJ_PENDING)
            tr__obj_set_failed_locked(s->rets[i], TR_ERR_OBJECT_LOST, rt->rank, "its lineage could not be run again");
        tr__obj_unref_locked(s->rets[i]);
        s->rets[i] = NULL;
    }
fail:
    tr__set_error("object %016" PRIx64 " cannot be rebuilt: an argument of the task that made it is gone", for_id);
    for (int i = 0; s->args && i < s->nargs; i++) {
        if (s->args[i].blob) tr__blob_unref(s->args[i].blob);
        if (s->args[i].obj) tr__obj_unref_locked(s->args[i].obj);
    }
    free(s->args); free(s->rets); free(s->name); free(s);
    tr__lineage_unref_locked(L);
    return 0;
}
