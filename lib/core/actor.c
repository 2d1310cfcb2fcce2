/*
 * Actors.  An actor lives on one rank (the "actor's rank"); its handle is a
 * ref to a small object owned by the creator (the "handle object"), whose
 * inline value says where the actor lives.  So handles travel, are borrowed
 * and are counted exactly like refs (lib/core/proto.c), and when the handle
 * object dies on its owner the actor is destroyed once its calls drain.
 *
 * Caller side: each rank keeps, per actor handle object, the calls it made
 * in submission order; a call leaves (ACALL, or straight into the local
 * actor) when it and every call before it have their arguments ready, with
 * the next sequence number of this rank's stream.
 *
 * Actor side: calls are taken in sequence order per calling rank (early
 * ones wait in a small map), queued, and run on executor threads, at most
 * max_concurrency at once.  The constructor is the first thing queued;
 * calls that arrive before the creation message wait in rt->actor_early.
 * Everything here is guarded by rt->lock; user code (constructor, methods,
 * destructor) runs on executors with no lock held.
 */
#include "core/core.h"
#include "comm/wire.h"
#include "base/handle.h"

#include <inttypes.h>
#include <stdio.h>

#define ACTOR_MAGIC 0x54524143u   /* "TRAC" */

typedef struct actor_val {
    uint32_t magic;
    uint32_t rank;
    uint64_t id;
    uint64_t class_id;
    uint64_t reserved;
} actor_val_t;

struct tr__actor {
    uint64_t           id;
    int                owner;
    const tr__class_t *cls;
    void              *state;
    int                max_conc, running;
    int                ready;       /* constructor done */
    int                dead;        /* 0 live, 1 killed, 2 destroy once drained */
    int                fini_queued;
    struct tr_task    *qh, *qt;     /* runnable calls, in order */
    tr__hmap_t         expect;      /* stream -> next sequence number + 1 */
    tr__hmap_t         early;       /* hash(stream, seq) -> call that came too soon */
    tr__req_t          held;        /* resources held for its life */
    char              *name;
    char              *why;         /* why it died */
    uint32_t           incarnation; /* 0 first; n after the n-th restart */
    tr__blob_t        *ckpt;        /* a restart: the state to restore, or NULL */
};

/* Owner side: what restarting an actor elsewhere takes. */
struct tr__ainfo {
    char              *head;        /* ACREATE up to the name (id, class, conc, resources, name) */
    size_t             head_len;
    char              *args;        /* ACREATE's nargs and encoded constructor arguments */
    size_t             args_len;
    tr__req_t          need;
    tr_actor_params_t  place;       /* the placement fields of the creation */
    int                max_restarts, restarts, max_task_retries;
    uint32_t           incarnation;
    tr__blob_t        *ckpt;        /* the last checkpoint, or NULL */
    int                killed;
};

void tr__ainfo_free(struct tr__ainfo *ai)
{
    free(ai->head);
    free(ai->args);
    if (ai->ckpt) tr__blob_unref(ai->ckpt);
    free(ai);
}

/* ------------------------------------------------------- handle values */

/* The actor a handle object names; 0 when it is not a (ready) actor handle. */
static int handle_val(const tr__obj_t *o, actor_val_t *v)
{
    if (o->state != TR__OBJ_READY || o->blob == NULL || o->blob->size != sizeof(*v)) return 0;
    memcpy(v, o->blob->data, sizeof(*v));
    return v->magic == ACTOR_MAGIC && (int)v->rank >= 0 && (int)v->rank < tr__rt->size;
}

tr_status_t tr__actors_init(void)
{
    tr__rt_t *rt = tr__rt;
    if (tr__hmap_init(&rt->actors, 64) != 0 || tr__hmap_init(&rt->actor_early, 16) != 0 ||
        tr__hmap_init(&rt->actor_dead, 64) != 0 || tr__hmap_init(&rt->names, 16) != 0 ||
        (rt->actors_placed = calloc((size_t)rt->size, sizeof(int))) == NULL)
        return TR_ERR_NO_MEMORY;
    return TR_OK;
}

/* ------------------------------------------------------- actor side */

static const char *aname(const tr__actor_t *a) { return a->cls ? a->cls->name : "?"; }

/* Remember why an actor id is dead, for calls that arrive later. */
static void mark_dead_locked(uint64_t id, const char *why)
{
    tr__rt_t *rt = tr__rt;
    char *old = tr__hmap_get(&rt->actor_dead, id);
    char *w = strdup(why);
    if (w == NULL) return;
    if (tr__hmap_put(&rt->actor_dead, id, w) < 0) { free(w); return; }
    free(old);
}

static void q_push(tr__actor_t *a, struct tr_task *t)
{
    t->next = NULL;
    if (a->qt) a->qt->next = t; else a->qh = t;
    a->qt = t;
}

static struct tr_task *q_pop(tr__actor_t *a)
{
    struct tr_task *t = a->qh;
    if (t) { a->qh = t->next; if (a->qh == NULL) a->qt = NULL; t->next = NULL; }
    return t;
}

/* Work to finish once rt->lock is released (results go through it). */
typedef struct doomed {
    struct tr_task **t;
    int n, cap;
} doomed_t;

static void doom(doomed_t *d, struct tr_task *t, const char *why)
{
    if (t->fail_msg == NULL) tr__task_failmsg(t, "%s", why);
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 8;
        struct tr_task **n = realloc(d->t, sizeof(*n) * (size_t)cap);
        if (n == NULL) { tr__error("out of memory failing a call of a dead actor; its caller waits"); return; }
        d->t = n; d->cap = cap;
    }
    d->t[d->n++] = t;
}

static void doomed_finish(doomed_t *d);

/* With rt->lock held: calls doomed here belong to callers, and their results
 * go through rt->lock, so finish them with it released. */
static void doomed_finish_relock(doomed_t *d)
{
    if (d->n == 0) return;
    pthread_mutex_unlock(&tr__rt->lock);
    doomed_finish(d);
    pthread_mutex_lock(&tr__rt->lock);
}

static void doomed_finish(doomed_t *d)
{
    for (int i = 0; i < d->n; i++) {
        if (d->t[i]->actor_op == TR__AOP_INIT) tr__task_free(d->t[i]);   /* nobody waits for it */
        else tr__task_finish(d->t[i], TR_ERR_ACTOR_DIED);
    }
    free(d->t);
    d->t = NULL;
    d->n = d->cap = 0;
}

static void run_locked(tr__actor_t *a);

/* Queue the destructor once nothing runs (and, draining, nothing waits). */
static void maybe_destroy_locked(tr__actor_t *a)
{
    if (!a->dead || a->fini_queued || a->running > 0) return;
    if (a->dead == 2 && a->qh) return;
    struct tr_task *t = tr__task_new(tr__hash2(a->id, 0x66696e69ull), NULL, tr__rt->rank, 0, 1, 0);
    if (t == NULL) { tr__error("out of memory destroying actor '%s'; it leaks", aname(a)); return; }
    a->fini_queued = 1;
    t->actor = a;
    t->actor_op = TR__AOP_FINI;
    tr__pool_push(&tr__rt->pool, t);
}

static void kill_locked(tr__actor_t *a, int graceful, doomed_t *d, const char *why)
{
    if (a->dead == 1 || (graceful && a->dead)) return;
    a->dead = graceful ? 2 : 1;
    if (!graceful) {
        free(a->why);
        a->why = strdup(why);
        for (struct tr_task *t; (t = q_pop(a)) != NULL;) doom(d, t, why);
        for (size_t i = 0; i <= a->early.mask; i++)
            if (a->early.vals[i]) { doom(d, a->early.vals[i], why); a->early.vals[i] = NULL; }
        a->early.count = 0;
    }
    maybe_destroy_locked(a);
}

static void run_locked(tr__actor_t *a)
{
    if (!a->ready && a->running > 0) return;   /* the constructor runs first, alone */
    while (a->qh && a->running < (a->ready ? a->max_conc : 1) && a->dead != 1) {
        struct tr_task *t = q_pop(a);
        a->running++;
        tr__pool_push(&tr__rt->pool, t);
        if (!a->ready) break;
    }
    maybe_destroy_locked(a);
}

/* A call in its stream's sequence: queue it, then any that waited for it.
 * A stream is one rank's handle object for the actor (a rank that drops
 * its handle and borrows it again starts a new stream). */
static void deliver_locked(tr__actor_t *a, struct tr_task *t, doomed_t *d)
{
    if (a->dead == 1) { doom(d, t, a->why ? a->why : "the actor was killed"); return; }
    uint64_t next = (uint64_t)(uintptr_t)tr__hmap_get(&a->expect, t->astream);
    next = next ? next - 1 : 0;
    if (t->aseq != next) {
        if (t->aseq < next || tr__hmap_put(&a->early, tr__hash2(t->astream, t->aseq), t) != 0) {
            tr__warn("dropped a repeated or unstorable call (sequence %" PRIu64 ") from rank %d", t->aseq, t->owner);
            doom(d, t, "the call arrived twice or out of memory");
        }
        return;
    }
    for (;;) {
        q_push(a, t);
        next++;
        t = tr__hmap_del(&a->early, tr__hash2(t->astream, next));
        if (t == NULL) break;
    }
    if (tr__hmap_put(&a->expect, a->qt->astream, (void *)(uintptr_t)(next + 1)) < 0)
        tr__error("out of memory tracking the order of calls to actor '%s'", aname(a));
    run_locked(a);
}

static tr__actor_t *actor_new(uint64_t id, int owner, const tr__class_t *cls, int max_conc)
{
    tr__actor_t *a = calloc(1, sizeof(*a));
    if (a == NULL) return NULL;
    a->id = id; a->owner = owner; a->cls = cls; a->max_conc = max_conc;
    if (tr__hmap_init(&a->expect, 4) != 0 || tr__hmap_init(&a->early, 4) != 0) {
        tr__hmap_destroy(&a->expect);
        free(a);
        return NULL;
    }
    return a;
}

static void actor_free(tr__actor_t *a)
{
    if (a->ckpt) tr__blob_unref(a->ckpt);
    tr__hmap_destroy(&a->early);
    tr__hmap_destroy(&a->expect);
    free(a->name);
    free(a->why);
    free(a);
}

/* Calls parked before the actor existed, now in order. */
static void adopt_early_locked(tr__actor_t *a, doomed_t *d)
{
    struct tr_task *t = tr__hmap_del(&tr__rt->actor_early, a->id);
    while (t) {
        struct tr_task *n = t->next;
        t->actor = a;
        deliver_locked(a, t, d);
        t = n;
    }
}

/* The actor's rank: construct.  @t is the constructor's task (args set). */
static void create_locked(tr__actor_t *a, struct tr_task *t, doomed_t *d)
{
    tr__rt_t *rt = tr__rt;
    if (tr__hmap_put(&rt->actors, a->id, a) != 0) {
        doom(d, t, "out of memory registering the actor");
        actor_free(a);
        return;
    }
    if (a->held.cpus > 0 || a->held.nres > 0) tr__pool_hold(&rt->pool, &a->held, 1);
    t->actor = a;
    t->actor_op = TR__AOP_INIT;
    q_push(a, t);
    adopt_early_locked(a, d);
    run_locked(a);
}

static void send_name(int op, const char *name, uint64_t tag, int owner, uint64_t id);
static void recv_restart(int src, tr__rbuf_t *r);
static void recv_ckpt(int src, tr__rbuf_t *r);

static void destroy(tr__actor_t *a)
{
    tr__rt_t *rt = tr__rt;
    if (a->ready && a->cls->fini) a->cls->fini(a->state);
    pthread_mutex_lock(&rt->lock);
    tr__hmap_del(&rt->actors, a->id);
    mark_dead_locked(a->id, a->why ? a->why : "the actor was collected: no handle to it was left");
    if (a->held.cpus > 0 || a->held.nres > 0) tr__pool_hold(&rt->pool, &a->held, 0);
    if (a->name) send_name(2, a->name, 0, a->owner, a->id);
    pthread_mutex_unlock(&rt->lock);
    tr__debug("actor '%s' %016" PRIx64 " destroyed", aname(a), a->id);
    actor_free(a);
}

static tr_status_t call_method(tr__actor_t *a, struct tr_task *t)
{
    const tr__method_t *m = tr__class_method(a->cls, t->method_id);
    if (m == NULL) {
        tr__task_failmsg(t, "actor class '%s' has no such method", aname(a));
        return TR_ERR_UNKNOWN_METHOD;
    }
    tr__cur_task = t;
    tr_status_t st = m->fn(t, a->state);
    tr__cur_task = NULL;
    if (st == TR_ERR_ACTOR_DIED || st == TR_ERR_UNKNOWN_METHOD) st = TR_ERR_TASK_FAILED;   /* its own, not ours */
    return st;
}

/* Executor: run a constructor, a method or a destructor. */
void tr__actor_run(struct tr_task *t)
{
    tr__rt_t *rt = tr__rt;
    tr__actor_t *a = t->actor;
    doomed_t d = { 0 };
    if (t->actor_op == TR__AOP_FINI) {
        destroy(a);
        tr__task_free(t);
        return;
    }
    tr_status_t st;
    tr__task_resolve_args(t);
    if (t->fetch_status != TR_OK) {
        st = t->fetch_status;
    } else if (t->actor_op == TR__AOP_INIT) {
        void *state = NULL;
        tr__cur_task = t;
        if (a->ckpt && a->cls->restore) st = a->cls->restore(a->ckpt->data, a->ckpt->size, &state);
        else st = a->cls->init(t, &state);
        tr__cur_task = NULL;
        if (a->ckpt) { tr__blob_unref(a->ckpt); a->ckpt = NULL; }
        pthread_mutex_lock(&rt->lock);
        a->running--;
        if (st == TR_OK) {
            a->state = state;
            a->ready = 1;
        } else {
            char why[640];
            snprintf(why, sizeof(why), "the constructor of actor '%s' failed on rank %d: %s", aname(a), rt->rank,
                     t->fail_msg ? t->fail_msg : tr_status_string(st));
            tr__warn("%s", why);
            kill_locked(a, 0, &d, why);
        }
        run_locked(a);
        pthread_mutex_unlock(&rt->lock);
        doomed_finish(&d);
        tr__task_free(t);
        return;
    } else {
        st = call_method(a, t);
    }
    /* the executor goes on with the actor's next call, if one may start:
     * no trip through the pool between two calls of a busy actor */
    for (;;) {
        struct tr_task *next = NULL;
        pthread_mutex_lock(&rt->lock);
        a->running--;
        if (a->ready && a->dead != 1 && a->qh && a->running < a->max_conc) {
            next = q_pop(a);
            a->running++;
        }
        run_locked(a);
        pthread_mutex_unlock(&rt->lock);
        tr__task_finish(t, st);
        if (next == NULL) return;
        t = next;
        atomic_fetch_add_explicit(&rt->tasks_run, 1, memory_order_relaxed);
        tr__task_resolve_args(t);
        st = t->fetch_status != TR_OK ? t->fetch_status : call_method(a, t);
    }
}

/* ----------------------------------------------------- actor messages */

/* ACREATE: id, class id, max_conc, held cpus + resources, name, nargs, args. */
static void recv_create(int src, const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    void *copy = malloc(len);
    if (copy == NULL) { tr__error("out of memory receiving an actor from rank %d; dropped", src); return; }
    memcpy(copy, msg, len);
    tr__wire_open(copy, len, &h, &r);
    uint64_t id = tr__rbuf_u64(&r), cid = tr__rbuf_u64(&r);
    uint32_t conc = tr__rbuf_u32(&r);
    tr__req_t held;
    tr__decode_req(&r, &held);
    uint16_t nlen = tr__rbuf_u16(&r);
    const char *nm = tr__rbuf_get(&r, nlen);
    uint32_t inc = tr__rbuf_u32(&r);
    uint64_t clen = tr__rbuf_u64(&r);
    const void *cdata = clen <= len ? tr__rbuf_get(&r, (size_t)clen) : NULL;
    if (clen > len) r.bad = true;
    uint16_t nargs = tr__rbuf_u16(&r);
    const tr__class_t *cls = tr__class_by_id(cid);
    if (r.bad || cls == NULL || conc < 1 || conc > 1024) {
        tr__warn("dropped a malformed actor creation from rank %d", src);
        free(copy);
        return;
    }
    tr__actor_t *a = actor_new(id, src, cls, (int)conc);
    struct tr_task *t = a ? tr__task_new(id, NULL, src, 0, 1, nargs) : NULL;
    if (t == NULL) {
        tr__error("out of memory creating actor '%s'; its calls will fail", cls->name);
        if (a) actor_free(a);
        free(copy);
        return;
    }
    a->held = held;
    a->incarnation = inc;
    if (clen > 0 && cdata) {
        if ((a->ckpt = tr__blob_heap((size_t)clen)) == NULL) { tr__task_failmsg(t, "out of memory restoring the actor"); t->fetch_status = TR_ERR_NO_MEMORY; }
        else memcpy(a->ckpt->data, cdata, (size_t)clen);
    }
    if (nlen) a->name = strndup(nm, nlen);
    t->msgbuf = copy;
    tr__decode_args(&r, t, len);
    if (r.bad) { tr__task_failmsg(t, "the actor creation message was malformed"); t->fetch_status = TR_ERR_PROTOCOL; }
    doomed_t d = { 0 };
    pthread_mutex_lock(&rt->lock);
    const char *why = tr__hmap_get(&rt->actor_dead, id);
    if (why) {
        /* killed (by a rank faster than its creator's message) before it
         * existed: it never starts, and calls that waited for it fail */
        struct tr_task *early = tr__hmap_del(&rt->actor_early, id);
        for (struct tr_task *n; early; early = n) { n = early->next; doom(&d, early, why); }
        tr__task_free(t);
        if (a->name) send_name(2, a->name, 0, a->owner, a->id);
        actor_free(a);
    } else {
        create_locked(a, t, &d);
    }
    pthread_mutex_unlock(&rt->lock);
    doomed_finish(&d);
}

/* A call for actor @id (local or from ACALL): deliver, park, or fail. */
static void take_call_locked(uint64_t id, struct tr_task *t, doomed_t *d)
{
    tr__rt_t *rt = tr__rt;
    tr__actor_t *a = tr__hmap_get(&rt->actors, id);
    if (a) { t->actor = a; deliver_locked(a, t, d); return; }
    const char *why = tr__hmap_get(&rt->actor_dead, id);
    if (why) { doom(d, t, why); return; }
    /* not created yet: the creation message may trail a borrower's call;
     * park it, in arrival order */
    t->next = NULL;
    struct tr_task *head = tr__hmap_get(&rt->actor_early, id);
    if (head == NULL) {
        if (tr__hmap_put(&rt->actor_early, id, t) < 0) doom(d, t, "out of memory");
        return;
    }
    while (head->next) head = head->next;
    head->next = t;
}

/* ACALL: actor id, seq, call id, nret, method id, nargs, args. */
static void recv_call(int src, const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    void *copy = malloc(len);
    if (copy == NULL) { tr__error("out of memory receiving an actor call from rank %d; dropped", src); return; }
    memcpy(copy, msg, len);
    tr__wire_open(copy, len, &h, &r);
    uint64_t aid = tr__rbuf_u64(&r), stream = tr__rbuf_u64(&r), seq = tr__rbuf_u64(&r), cid = tr__rbuf_u64(&r);
    uint32_t attempt = tr__rbuf_u32(&r);
    uint16_t nret = tr__rbuf_u16(&r);
    uint64_t mid = tr__rbuf_u64(&r);
    uint16_t nargs = tr__rbuf_u16(&r);
    if (r.bad || nret < 1 || nret > TR_MAX_RETURNS) {
        tr__warn("dropped a malformed actor call from rank %d", src);
        free(copy);
        return;
    }
    struct tr_task *t = tr__task_new(cid, NULL, src, (int)attempt, nret, nargs);
    if (t == NULL) { free(copy); tr__error("out of memory receiving an actor call; dropped"); return; }
    t->msgbuf = copy;
    t->actor_op = TR__AOP_CALL;
    t->method_id = mid;
    t->aseq = seq;
    t->astream = stream;
    tr__decode_args(&r, t, len);
    if (r.bad) { tr__task_failmsg(t, "the actor call message was malformed"); t->fetch_status = TR_ERR_PROTOCOL; }
    doomed_t d = { 0 };
    pthread_mutex_lock(&rt->lock);
    take_call_locked(aid, t, &d);
    pthread_mutex_unlock(&rt->lock);
    doomed_finish(&d);
}

static void kill_id_locked(uint64_t id, int graceful, doomed_t *d)
{
    const char *why = graceful ? "the actor was collected" : "the actor was killed (tr_actor_kill)";
    tr__actor_t *a = tr__hmap_get(&tr__rt->actors, id);
    if (a) kill_locked(a, graceful, d, why);
    else if (!graceful) mark_dead_locked(id, why);   /* killed before it was created */
}

/* --------------------------------------------------------------- names */

typedef struct name_ent {
    char    *name;
    int      owner;
    uint64_t id;
} name_ent_t;

static int name_home(const char *name) { return (int)(tr__hash_str(name) % (uint64_t)tr__rt->size); }

/* op 0 register (reply EXISTS/OK), 1 look up (reply owner, id), 2 drop. */
static void name_op_locked(int op, const char *name, int from, uint64_t tag, int owner, uint64_t id)
{
    tr__rt_t *rt = tr__rt;
    uint64_t key = tr__hash_str(name);
    name_ent_t *e = tr__hmap_get(&rt->names, key);
    if (e && strcmp(e->name, name) != 0) e = NULL;   /* a hash collision: treat as absent for a look-up */
    tr_status_t st = TR_OK;
    switch (op) {
    case 0:
        if (e) { st = TR_ERR_EXISTS; break; }
        if (tr__hmap_get(&rt->names, key)) { st = TR_ERR_EXISTS; break; }   /* collision: refuse, never shadow */
        if ((e = calloc(1, sizeof(*e))) == NULL || (e->name = strdup(name)) == NULL ||
            tr__hmap_put(&rt->names, key, e) < 0) {
            if (e) free(e->name);
            free(e);
            st = TR_ERR_NO_MEMORY;
            break;
        }
        e->owner = owner; e->id = id;
        break;
    case 1:
        if (e == NULL) st = TR_ERR_ACTOR_NOT_FOUND;
        else { owner = e->owner; id = e->id; }
        break;
    default:
        if (e && e->id == id) { tr__hmap_del(&rt->names, key); free(e->name); free(e); }
        return;
    }
    tr__reply_to_locked(from, tag, st, owner, 0, id, 0);
}

/* Send (or do here) a name operation; rt->lock held. */
static void send_name(int op, const char *name, uint64_t tag, int owner, uint64_t id)
{
    tr__rt_t *rt = tr__rt;
    int home = name_home(name);
    if (home == rt->rank) { name_op_locked(op, name, rt->rank, tag, owner, id); return; }
    size_t n = strlen(name);
    tr__wbuf_t w;
    tr__wbuf_init(&w, 32 + n);
    tr__wbuf_u8(&w, (uint8_t)op);
    tr__wbuf_u64(&w, tag);
    tr__wbuf_u32(&w, (uint32_t)owner);
    tr__wbuf_u64(&w, id);
    tr__wbuf_u16(&w, (uint16_t)n);
    tr__wbuf_put(&w, name, n);
    if (tag && op != 2) tr__rpc_peer_locked(tag, home);
    if (tr__send(home, &w, TR__MSG_NAME) != TR_OK && op != 2) tr__rpc_reply_locked(tag, -1, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
}

static void recv_name(int src, tr__rbuf_t *r)
{
    uint8_t op = tr__rbuf_u8(r);
    uint64_t tag = tr__rbuf_u64(r);
    int owner = (int)tr__rbuf_u32(r);
    uint64_t id = tr__rbuf_u64(r);
    uint16_t n = tr__rbuf_u16(r);
    const char *nm = tr__rbuf_get(r, n);
    if (r->bad || op > 2 || n == 0 || owner < 0 || owner >= tr__rt->size) {
        tr__warn("dropped a malformed actor-name message from rank %d", src);
        return;
    }
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(n < 255 ? n : 255), nm);
    pthread_mutex_lock(&tr__rt->lock);
    name_op_locked(op, name, src, tag, owner, id);
    pthread_mutex_unlock(&tr__rt->lock);
}

void tr__actor_recv(int type, const void *msg, size_t len)
{
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    switch (type) {
    case TR__MSG_ACREATE: recv_create((int)h.src, msg, len); return;
    case TR__MSG_ACALL:   recv_call((int)h.src, msg, len); return;
    case TR__MSG_NAME:    recv_name((int)h.src, &r); return;
    case TR__MSG_ARESTART: recv_restart((int)h.src, &r); return;
    case TR__MSG_ACKPT:   recv_ckpt((int)h.src, &r); return;
    case TR__MSG_AKILL: {
        uint64_t id = tr__rbuf_u64(&r);
        uint8_t graceful = tr__rbuf_u8(&r);
        if (r.bad) { tr__warn("dropped a malformed actor kill from rank %u", h.src); return; }
        doomed_t d = { 0 };
        pthread_mutex_lock(&tr__rt->lock);
        kill_id_locked(id, graceful, &d);
        pthread_mutex_unlock(&tr__rt->lock);
        doomed_finish(&d);
        return;
    }
    default:
        return;
    }
}

/* ------------------------------------------------------- caller side */

static void send_kill(int rank, uint64_t id, int graceful)
{
    tr__rt_t *rt = tr__rt;
    if (rank == rt->rank) {
        doomed_t d = { 0 };
        kill_id_locked(id, graceful, &d);
        doomed_finish_relock(&d);
        return;
    }
    if (rt->comm == NULL || atomic_load(&tr__state) != 1) return;
    tr__wbuf_t w;
    tr__wbuf_init(&w, 9);
    tr__wbuf_u64(&w, id);
    tr__wbuf_u8(&w, (uint8_t)graceful);
    tr__send(rank, &w, TR__MSG_AKILL);
}

void tr__actor_gone_locked(tr__obj_t *o)
{
    actor_val_t v;
    if (!handle_val(o, &v)) return;
    if (tr__rt->actors_placed && tr__rt->actors_placed[v.rank] > 0) tr__rt->actors_placed[v.rank]--;
    send_kill((int)v.rank, v.id, 1);
}

void tr__actor_pump_locked(tr__obj_t *a)
{
    tr__rt_t *rt = tr__rt;
    actor_val_t v;
    while (a->aqh < a->naq) {
        tr__spec_t *s = a->aq[a->aqh];
        if (s->unresolved > 0 || a->state == TR__OBJ_PENDING || a->asusp) return;
        if (++a->aqh == a->naq) a->aqh = a->naq = 0;
        if (a->state == TR__OBJ_FAILED || !handle_val(a, &v)) {
            tr__spec_fail_locked(s, TR_ERR_ACTOR_DIED, -1, a->state == TR__OBJ_FAILED && a->err_msg ? a->err_msg
                                                       : "the handle does not name an actor");
            continue;
        }
        if (tr__spec_args_failed_locked(s)) continue;
        const tr__class_t *cls = tr__class_by_id(v.class_id);
        if (cls && tr__class_method(cls, s->method_id) == NULL) {
            char buf[512];
            snprintf(buf, sizeof(buf), "actor class '%s' has no method '%s'", cls->name, s->name ? s->name : "?");
            tr__spec_fail_locked(s, TR_ERR_UNKNOWN_METHOD, (int)v.rank, buf);
            continue;
        }
        if (a->astream == 0) a->astream = tr__hash2(tr__hash2(rt->boot.job_id, (uint64_t)rt->rank), ++rt->stream_seq) | 1;
        uint64_t seq = a->aseq++;
        s->aseq_sent = seq;
        tr__spec_sent_locked(s, (int)v.rank);
        if ((int)v.rank == rt->rank) {
            struct tr_task *t = tr__task_new(s->id, NULL, rt->rank, s->attempt, s->nret, s->nargs);
            if (t == NULL) { tr__spec_fail_locked(s, TR_ERR_NO_MEMORY, rt->rank, "out of memory"); continue; }
            t->actor_op = TR__AOP_CALL;
            t->method_id = s->method_id;
            t->aseq = seq;
            t->astream = a->astream;
            tr__local_args(t, s);
            tr__actor_t *act = tr__hmap_get(&rt->actors, v.id);
            const char *dead_why = act ? (act->dead == 1 ? (act->why ? act->why : "the actor was killed") : NULL)
                                       : tr__hmap_get(&rt->actor_dead, v.id);
            if (dead_why) {
                /* ours and dead: fail it here, under the lock we hold */
                tr__spec_fail_locked(s, TR_ERR_ACTOR_DIED, rt->rank, dead_why);
                tr__task_free(t);
                continue;
            }
            doomed_t d = { 0 };
            take_call_locked(v.id, t, &d);
            doomed_finish_relock(&d);
            continue;
        }
        tr__wbuf_t w;
        tr__wbuf_init(&w, 64 + (size_t)s->nargs * 32);
        tr__wbuf_u64(&w, v.id);
        tr__wbuf_u64(&w, a->astream);
        tr__wbuf_u64(&w, seq);
        tr__wbuf_u64(&w, s->id);
        tr__wbuf_u32(&w, (uint32_t)s->attempt);
        tr__wbuf_u16(&w, (uint16_t)s->nret);
        tr__wbuf_u64(&w, s->method_id);
        tr__wbuf_u16(&w, (uint16_t)s->nargs);
        tr__encode_args(&w, s, (int)v.rank);
        if (tr__send((int)v.rank, &w, TR__MSG_ACALL) != TR_OK)
            tr__spec_fail_locked(s, TR_ERR_NO_MEMORY, rt->rank, "out of memory sending the call");
    }
}

/* ------------------------------------------------------------ restarts */

#define CHECK_UP()                                                             \
    do {                                                                       \
        if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;       \
    } while (0)

static int pick_rank(const tr__req_t *need, const tr_actor_params_t *p, tr_status_t *st);
static tr_status_t send_create_locked(tr__obj_t *o, int rank);

/* ACREATE of the actor whose handle object (owned here) is @o, on @rank:
 * its incarnation and last checkpoint between the head and the arguments. */
static tr_status_t send_create_locked(tr__obj_t *o, int rank)
{
    struct tr__ainfo *ai = o->ainfo;
    size_t clen = ai->ckpt ? ai->ckpt->size : 0;
    tr__wbuf_t w;
    tr__wbuf_init(&w, ai->head_len + ai->args_len + 16 + clen);
    tr__wbuf_put(&w, ai->head, ai->head_len);
    tr__wbuf_u32(&w, ai->incarnation);
    tr__wbuf_u64(&w, clen);
    if (clen) tr__wbuf_put(&w, ai->ckpt->data, clen);
    tr__wbuf_put(&w, ai->args, ai->args_len);
    return tr__send(rank, &w, TR__MSG_ACREATE);
}

/* Write where the actor lives now into its handle object's value. */
static void set_handle_rank_locked(tr__obj_t *o, int rank)
{
    actor_val_t v;
    if (!handle_val(o, &v)) return;
    v.rank = (uint32_t)rank;
    tr__blob_t *b = tr__blob_heap(sizeof(v));
    if (b == NULL) { tr__error("out of memory moving an actor handle; its calls fail"); return; }
    memcpy(b->data, &v, sizeof(v));
    tr__blob_unref(o->blob);   /* views of the old value keep theirs */
    o->blob = b;
}

static int cmp_aseq(const void *a, const void *b)
{
    const tr__spec_t *x = *(tr__spec_t *const *)a, *y = *(tr__spec_t *const *)b;
    return x->aseq_sent < y->aseq_sent ? -1 : x->aseq_sent > y->aseq_sent;
}

/* This rank's calls through handle @o that went to the actor's old rank:
 * sent again (first, in their order) to @rank, or failed. */
static void restarted_locked(tr__obj_t *o, int rank, int max_task_retries, const char *why)
{
    tr__rt_t *rt = tr__rt;
    o->asusp = 0;
    tr__hmap_t *m = &rt->specs;
    size_t n = 0;
    tr__spec_t **sent = malloc(sizeof(*sent) * (m->count + 1));
    if (sent == NULL) { tr__error("out of memory re-sending calls to a restarted actor"); return; }
    for (size_t i = 0; i <= m->mask; i++) {
        tr__spec_t *s = m->vals[i];
        if (s && s->actor == o && s->state == TR__SPEC_QUEUED) sent[n++] = s;
    }
    qsort(sent, n, sizeof(*sent), cmp_aseq);
    if (rank < 0) {
        o->err = TR_ERR_ACTOR_DIED;
        free(o->err_msg);
        o->err_msg = strdup(why);
        __atomic_store_n(&o->state, TR__OBJ_FAILED, __ATOMIC_RELEASE);   /* later calls fail at once */
        for (size_t k = 0; k < n; k++) tr__spec_fail_locked(sent[k], TR_ERR_ACTOR_DIED, -1, why);
        free(sent);
        tr__actor_pump_locked(o);
        return;
    }
    set_handle_rank_locked(o, rank);
    o->astream = 0;   /* a new stream, numbered from 0, for the new incarnation */
    o->aseq = 0;
    size_t keep = 0;
    for (size_t k = 0; k < n; k++) {
        tr__spec_t *s = sent[k];
        if ((max_task_retries < 0 || s->attempt < max_task_retries) && tr__spec_rewait_locked(s) == 0) {
            s->attempt++;
            rt->fstats.calls_retried++;
            sent[keep++] = s;
            continue;
        }
        char buf[640];
        snprintf(buf, sizeof(buf), "%s; the call was not retried (max_task_retries %d)", why, max_task_retries);
        tr__spec_fail_locked(s, TR_ERR_ACTOR_DIED, -1, buf);
    }
    if (keep > 0) {   /* in front of the calls not sent yet */
        int pending = o->naq - o->aqh;
        tr__spec_t **q = malloc(sizeof(*q) * ((size_t)pending + keep));
        if (q == NULL) {
            tr__error("out of memory re-sending calls to a restarted actor; they fail");
            for (size_t k = 0; k < keep; k++) tr__spec_fail_locked(sent[k], TR_ERR_NO_MEMORY, -1, "out of memory");
        } else {
            memcpy(q, sent, sizeof(*q) * keep);
            if (pending) memcpy(q + keep, o->aq + o->aqh, sizeof(*q) * (size_t)pending);
            free(o->aq);
            o->aq = q;
            o->aqh = 0;
            o->naq = o->capaq = (int)keep + pending;
        }
    }
    free(sent);
    tr__actor_pump_locked(o);
}

/* ARESTART: actor id, new rank (-1: it is gone), max_task_retries, why. */
static void send_restart_locked(int to, uint64_t id, int rank, int retries, const char *why)
{
    size_t n = strlen(why);
    tr__wbuf_t w;
    tr__wbuf_init(&w, 24 + n);
    tr__wbuf_u64(&w, id);
    tr__wbuf_u32(&w, (uint32_t)rank);
    tr__wbuf_u32(&w, (uint32_t)retries);
    tr__wbuf_u16(&w, (uint16_t)n);
    tr__wbuf_put(&w, why, n);
    tr__send(to, &w, TR__MSG_ARESTART);
}

static void recv_restart(int src, tr__rbuf_t *r)
{
    tr__rt_t *rt = tr__rt;
    uint64_t id = tr__rbuf_u64(r);
    int rank = (int32_t)tr__rbuf_u32(r), retries = (int32_t)tr__rbuf_u32(r);
    uint16_t n = tr__rbuf_u16(r);
    const char *why = tr__rbuf_get(r, n);
    if (r->bad || rank < -1 || rank >= rt->size || retries < -1) { tr__warn("dropped a malformed actor restart from rank %d", src); return; }
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < 511 ? n : 511), why ? why : "");
    pthread_mutex_lock(&rt->lock);
    tr__obj_t *o = tr__hmap_get(&rt->objs, id);
    if (o && o->owner == src && o->state == TR__OBJ_READY) restarted_locked(o, rank, retries, buf);
    pthread_mutex_unlock(&rt->lock);
}

/* ACKPT: actor id, incarnation, the saved state. */
static void recv_ckpt(int src, tr__rbuf_t *r)
{
    tr__rt_t *rt = tr__rt;
    uint64_t id = tr__rbuf_u64(r);
    uint32_t inc = tr__rbuf_u32(r);
    uint64_t n = tr__rbuf_u64(r);
    const void *data = n <= (uint64_t)(r->end - r->p) ? tr__rbuf_get(r, (size_t)n) : NULL;
    if (r->bad || data == NULL) { tr__warn("dropped a malformed actor checkpoint from rank %d", src); return; }
    tr__blob_t *b = tr__blob_heap((size_t)n);
    if (b == NULL) { tr__error("out of memory keeping an actor checkpoint; the previous one stays"); return; }
    memcpy(b->data, data, (size_t)n);
    pthread_mutex_lock(&rt->lock);
    tr__obj_t *o = tr__hmap_get(&rt->objs, id);
    actor_val_t v;
    if (o && o->owner == rt->rank && o->ainfo && o->ainfo->incarnation == inc && handle_val(o, &v) && (int)v.rank == src) {
        if (o->ainfo->ckpt) tr__blob_unref(o->ainfo->ckpt);
        o->ainfo->ckpt = b;
        b = NULL;
    }
    pthread_mutex_unlock(&rt->lock);
    if (b) tr__blob_unref(b);
}

/* @rank died.  Actors this rank owns that lived there restart elsewhere
 * (max_restarts), and every rank that borrows their handles is told where;
 * handles to actors there owned by others wait for their owner's word. */
void tr__actors_rank_died_locked(int rank)
{
    tr__rt_t *rt = tr__rt;
    tr__hmap_t *m = &rt->objs;
    size_t n = 0;
    tr__obj_t **hs = malloc(sizeof(*hs) * (m->count + 1));
    if (hs == NULL) { tr__error("out of memory restarting the actors of dead rank %d", rank); return; }
    for (size_t i = 0; i <= m->mask; i++) {
        tr__obj_t *o = m->vals[i];
        actor_val_t v;
        if (o && handle_val(o, &v) && ((int)v.rank == rank || o->owner == rank)) { o->refcnt++; hs[n++] = o; }
    }
    if (rt->actors_placed) rt->actors_placed[rank] = 0;
    for (size_t k = 0; k < n; k++) {
        tr__obj_t *o = hs[k];
        actor_val_t v;
        handle_val(o, &v);
        const tr__class_t *cls = tr__class_by_id(v.class_id);
        char why[256];
        if (o->owner != rt->rank) {
            if (o->owner == rank || tr__rank_is_dead(o->owner)) {
                snprintf(why, sizeof(why), "actor '%s' is gone: %s rank %d died", cls ? cls->name : "?",
                         o->owner == rank ? "its owner," : "its rank,", rank);
                if ((int)v.rank == rank || o->owner == rank) restarted_locked(o, (int)v.rank == rank ? -1 : (int)v.rank, 0, why);
            } else {
                o->asusp = 1;   /* its owner decides, and says so */
            }
            continue;
        }
        struct tr__ainfo *ai = o->ainfo;
        int to = -1;
        tr_status_t st = TR_OK;
        if (ai && !ai->killed && (ai->max_restarts < 0 || ai->restarts < ai->max_restarts)) {
            to = pick_rank(&ai->need, &ai->place, &st);
            if (to >= 0) {
                ai->restarts++;
                ai->incarnation++;
                set_handle_rank_locked(o, to);
                if (send_create_locked(o, to) != TR_OK) to = -1;
                else {
                    rt->actors_placed[to]++;
                    rt->fstats.actors_restarted++;
                    tr__warn("actor '%s' lived on rank %d, which died: restarted on rank %d (restart %d%s)",
                             cls ? cls->name : "?", rank, to, ai->restarts, ai->ckpt ? ", from its checkpoint" : "");
                }
            }
        }
        if (to >= 0)
            snprintf(why, sizeof(why), "actor '%s' restarted on rank %d after rank %d died", cls ? cls->name : "?", to, rank);
        else if (ai && ai->killed)
            snprintf(why, sizeof(why), "actor '%s' was killed", cls ? cls->name : "?");
        else if (st != TR_OK)
            snprintf(why, sizeof(why), "actor '%s' died with rank %d and no live rank can hold it: %s", cls ? cls->name : "?", rank, tr_last_error());
        else
            snprintf(why, sizeof(why), "actor '%s' died with rank %d (max_restarts %d)", cls ? cls->name : "?", rank, ai ? ai->max_restarts : 0);
        int retries = ai ? ai->max_task_retries : 0;
        for (int b = 0; b < o->nborrowers; b++)
            if (!rt->sched.dead[o->borrowers[b].rank]) send_restart_locked(o->borrowers[b].rank, o->id, to, retries, why);
        o->refcnt++;
        restarted_locked(o, to, retries, why);
        tr__obj_unref_locked(o);
    }
    for (size_t k = 0; k < n; k++) tr__obj_unref_locked(hs[k]);
    free(hs);
}

tr_status_t tr_actor_checkpoint(tr_task_h task)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    struct tr_task *t = tr__cur_task;
    if (t == NULL || t != task || t->actor == NULL || t->actor_op != TR__AOP_CALL) return TR_ERR_INVALID_ARG;
    tr__actor_t *a = t->actor;
    if (a->cls->save == NULL || a->cls->restore == NULL) {
        tr__set_error("actor class '%s' has no save/restore functions", aname(a));
        return TR_ERR_INVALID_ARG;
    }
    void *data = NULL;
    size_t size = 0;
    tr_status_t st = a->cls->save(a->state, &data, &size);
    if (st != TR_OK) return st;
    if (data == NULL && size > 0) return TR_ERR_INVALID_ARG;
    tr__wbuf_t w;
    tr__wbuf_init(&w, 24 + size);
    tr__wbuf_u64(&w, a->id);
    tr__wbuf_u32(&w, a->incarnation);
    tr__wbuf_u64(&w, size);
    tr__wbuf_put(&w, data, size);
    free(data);
    if (rt->comm == NULL) { free(w.buf); return TR_OK; }   /* one rank: nowhere to restart */
    return tr__send(a->owner, &w, TR__MSG_ACKPT);
}

int tr_actor_was_restarted(tr_task_h task)
{
    if (atomic_load(&tr__state) != 1) return -1;
    struct tr_task *t = tr__cur_task;
    if (t == NULL || t != task || t->actor == NULL) return -1;
    return t->actor->incarnation > 0;
}

/* ------------------------------------------------------------- public */


static int pick_rank(const tr__req_t *need, const tr_actor_params_t *p, tr_status_t *st)
{
    tr__rt_t *rt = tr__rt;
    const char *why = NULL;
    int soft = p && (p->field_mask & TR_ACTOR_FIELD_SOFT) && p->soft;
    if (soft && (p->field_mask & TR_ACTOR_FIELD_RANK)) {
        /* a preference: that rank if it can hold the actor, else placed */
        if (p->rank < 0 || p->rank >= rt->size) {
            tr__set_error("rank %d is out of range (the job has %d ranks)", p->rank, rt->size);
            *st = TR_ERR_INVALID_ARG;
            return -1;
        }
        if (!rt->sched.dead[p->rank] && tr__req_fits(&rt->sched.totals[p->rank], need, &why)) return p->rank;
        tr_actor_params_t q = *p;
        q.field_mask &= ~(uint64_t)(TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_NODE);
        return pick_rank(need, &q, st);
    }
    if (p && (p->field_mask & TR_ACTOR_FIELD_RANK)) {
        if (p->rank < 0 || p->rank >= rt->size) {
            tr__set_error("rank %d is out of range (the job has %d ranks)", p->rank, rt->size);
            *st = TR_ERR_INVALID_ARG;
            return -1;
        }
        if (rt->sched.dead[p->rank]) {
            tr__set_error("rank %d died", p->rank);
            *st = TR_ERR_UNSCHEDULABLE;
            return -1;
        }
        if (!tr__req_fits(&rt->sched.totals[p->rank], need, &why)) {
            tr__set_error("rank %d cannot hold the actor: %s", p->rank, why ? why : "resources");
            *st = TR_ERR_UNSCHEDULABLE;
            return -1;
        }
        return p->rank;
    }
    int node = -1;
    if (p && (p->field_mask & TR_ACTOR_FIELD_NODE)) {
        if (p->node < 0 || p->node >= rt->boot.nnodes) {
            tr__set_error("node %d is out of range (the job has %d nodes)", p->node, rt->boot.nnodes);
            *st = TR_ERR_INVALID_ARG;
            return -1;
        }
        node = p->node;
    }
    if (node < 0 && p && (p->field_mask & TR_ACTOR_FIELD_SPREAD) && p->spread && rt->boot.nnodes > 1) {
        /* spread: the node with the fewest actors from this rank first */
        int *per = calloc((size_t)rt->boot.nnodes, sizeof(int));
        if (per) {
            for (int r = 0; r < rt->size; r++) per[rt->boot.node_of[r]] += rt->actors_placed[r];
            for (int i = 0; i < rt->size; i++) {
                int r = (rt->rank + i) % rt->size;
                if (rt->sched.dead[r] || !tr__req_fits(&rt->sched.totals[r], need, &why)) continue;
                if (node < 0 || per[rt->boot.node_of[r]] < per[node]) node = rt->boot.node_of[r];
            }
            free(per);
        }
    }
    if (soft && node >= 0) {   /* a preferred node that cannot hold it: anywhere */
        int any = 0;
        for (int r = 0; r < rt->size && !any; r++)
            any = rt->boot.node_of[r] == node && !rt->sched.dead[r] && tr__req_fits(&rt->sched.totals[r], need, &why);
        if (!any) node = -1;
    }
    int best = -1;
    for (int i = 0; i < rt->size; i++) {
        int r = (rt->rank + i) % rt->size;   /* ties go to this rank, then its neighbours */
        if (node >= 0 && rt->boot.node_of[r] != node) continue;
        if (rt->sched.dead[r]) continue;
        if (!tr__req_fits(&rt->sched.totals[r], need, &why)) continue;
        if (best < 0 || rt->actors_placed[r] < rt->actors_placed[best]) best = r;
    }
    if (best < 0) {
        tr__set_error("no rank%s can hold the actor: %s", node >= 0 ? " of that node" : "", why ? why : "resources");
        *st = TR_ERR_UNSCHEDULABLE;
    }
    return best;
}

static tr_status_t name_rpc(int op, const char *name, int owner, uint64_t id, int *owner_p, uint64_t *id_p)
{
    tr__rpc_t r;
    uint64_t tag = tr__rpc_open(&r, 1);
    pthread_mutex_lock(&tr__rt->lock);
    send_name(op, name, tag, owner, id);
    pthread_mutex_unlock(&tr__rt->lock);
    tr_status_t st = tr__rpc_wait(&r);
    if (owner_p) *owner_p = r.holder;
    if (id_p) *id_p = r.off;
    return st;
}

tr_status_t tr_actor_create(const char *class_name, const tr_arg_t *args, int nargs,
                            const tr_actor_params_t *params, tr_actor_h *actor_p)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    if (class_name == NULL || actor_p == NULL || nargs < 0 || nargs > 65535 || (args == NULL && nargs > 0))
        return TR_ERR_INVALID_ARG;
    if (!tr_is_driver()) return TR_ERR_WRONG_MODE;
    const tr__class_t *cls = tr__class_by_name(class_name);
    if (cls == NULL) {
        tr__set_error("no actor class '%s' is registered", class_name);
        return TR_ERR_UNKNOWN_FUNCTION;
    }
    tr__req_t need = { 0 };
    int conc = 1, restarts = 0, task_retries = 0;
    const char *name = NULL;
    if (params) {
        if (params->field_mask & TR_ACTOR_FIELD_NUM_CPUS) {
            if (!(params->num_cpus >= 0) || params->num_cpus > 1e6) return TR_ERR_INVALID_ARG;
            need.cpus = params->num_cpus;
        }
        if ((params->field_mask & TR_ACTOR_FIELD_RESOURCES) && params->resources) {
            tr_status_t st = tr__req_parse(params->resources, &need);
            if (st != TR_OK) return st;
        }
        if ((params->field_mask & TR_ACTOR_FIELD_NUM_GPUS) && params->num_gpus != 0) {
            if (!(params->num_gpus > 0) || params->num_gpus > 1e6) {
                tr__set_error("num_gpus must be a finite number >= 0");
                return TR_ERR_INVALID_ARG;
            }
            char spec[64];
            snprintf(spec, sizeof(spec), "gpus=%.17g", params->num_gpus);
            tr__req_t g = { 0 };
            tr_status_t st = tr__req_parse(spec, &g);
            if (st != TR_OK) return st;
            int k = 0;
            for (; k < need.nres && strcmp(need.res[k].name, "gpus") != 0; k++) {}
            if (k == need.nres) {
                if (need.nres >= TR__MAX_RES) return TR_ERR_INVALID_ARG;
                need.res[need.nres++] = g.res[0];
            } else {
                need.res[k].amount += g.res[0].amount;
            }
        }
        if (params->field_mask & TR_ACTOR_FIELD_MAX_CONCURRENCY) {
            if (params->max_concurrency < 1 || params->max_concurrency > 1024) {
                tr__set_error("max_concurrency must be in 1..1024");
                return TR_ERR_INVALID_ARG;
            }
            conc = params->max_concurrency;
        }
        if ((params->field_mask & TR_ACTOR_FIELD_NAME) && params->name) {
            if (*params->name == '\0' || strlen(params->name) > 255) return TR_ERR_INVALID_ARG;
            name = params->name;
        }
        if (params->field_mask & TR_ACTOR_FIELD_MAX_RESTARTS) {
            if (params->max_restarts < -1) { tr__set_error("max_restarts must be >= -1"); return TR_ERR_INVALID_ARG; }
            restarts = params->max_restarts;
        }
        if (params->field_mask & TR_ACTOR_FIELD_MAX_TASK_RETRIES) {
            if (params->max_task_retries < -1) { tr__set_error("max_task_retries must be >= -1"); return TR_ERR_INVALID_ARG; }
            task_retries = params->max_task_retries;
        }
        if ((params->field_mask & TR_ACTOR_FIELD_MEMORY) && params->memory > 0) {
            if (params->memory > (uint64_t)1e18) { tr__set_error("memory is too large"); return TR_ERR_INVALID_ARG; }
            tr_status_t st = tr__req_set(&need, "memory", (double)params->memory);
            if (st != TR_OK) return st;
        }
        if (params->field_mask & TR_ACTOR_FIELD_PLACEMENT_GROUP) {
            if (params->field_mask & (TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_NODE)) {
                tr__set_error("an actor in a placement group takes no rank or node");
                return TR_ERR_INVALID_ARG;
            }
            if (params->bundle_index < -1 || params->bundle_index >= TR_PG_MAX_BUNDLES) {
                tr__set_error("bundle_index %d is out of range", params->bundle_index);
                return TR_ERR_INVALID_ARG;
            }
            /* the actor holds its resources from the bundle: it must be reserved */
            tr_status_t st = tr_placement_group_wait(params->placement_group, TR_TIMEOUT_INFINITE);
            if (st != TR_OK) return st;
        }
    }
    tr_status_t st = TR_OK;
    pthread_mutex_lock(&rt->lock);
    int rank;
    if (params && (params->field_mask & TR_ACTOR_FIELD_PLACEMENT_GROUP)) {
        st = tr__pg_check_locked(params->placement_group, params->bundle_index, &need, "actor", class_name);
        rank = st == TR_OK ? tr__pg_actor_rank_locked(&need, class_name, &st) : -1;
    } else {
        rank = pick_rank(&need, params, &st);
    }
    pthread_mutex_unlock(&rt->lock);
    if (rank < 0) return st;

    /* the handle object: its value says where the actor lives */
    actor_val_t v = { ACTOR_MAGIC, (uint32_t)rank, 0, cls->id, 0 };
    tr__blob_t *b = tr__blob_heap(sizeof(v));
    if (b == NULL) return TR_ERR_NO_MEMORY;
    tr__obj_t *o;
    /* the id is the handle object's own: put one, then write its id in */
    memcpy(b->data, &v, sizeof(v));
    if ((st = tr__put_obj(b, NULL, 0, &o)) != TR_OK) return st;
    v.id = o->id;
    memcpy(o->blob->data, &v, sizeof(v));
    if (name && (st = name_rpc(0, name, rt->rank, o->id, NULL, NULL)) != TR_OK) {
        if (st == TR_ERR_EXISTS) tr__set_error("an actor named '%s' exists", name);
        pthread_mutex_lock(&rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&rt->lock);
        return st;
    }

    /* the creation, as a spec-less message: the constructor's arguments are
     * encoded like a task's (a temporary spec holds them) */
    tr__spec_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.nargs = nargs;
    tmp.args = calloc((size_t)(nargs ? nargs : 1), sizeof(*tmp.args));
    if (tmp.args == NULL) st = TR_ERR_NO_MEMORY;
    for (int i = 0; i < nargs && st == TR_OK; i++) {
        const tr_arg_t *a = &args[i];
        tr__blob_t *ab = NULL;
        if ((st = tr__arg_value(a, i, 0, &ab)) != TR_OK) break;
        tr__obj_t *ro = a->kind == TR_ARG_KIND_REF || a->kind == TR_ARG_KIND_BORROW ? tr__ref_obj(a->u.ref) : NULL;
        if ((a->kind == TR_ARG_KIND_REF || a->kind == TR_ARG_KIND_BORROW) && ro == NULL) { st = TR_ERR_REF_RELEASED; break; }
        if (a->kind == TR_ARG_KIND_REF) {
            /* a constructor takes values: wait for the ref here */
            tr_buf_h vb;
            if ((st = tr__obj_get(ro, TR_TIMEOUT_INFINITE, &vb)) != TR_OK) break;
            size_t n = tr_buf_size(vb);
            if ((ab = tr__blob_heap(n)) != NULL && n) memcpy(ab->data, tr_buf_data(vb), n);
            tr_buf_release(vb);
            if (ab == NULL) st = TR_ERR_NO_MEMORY;
        } else if (a->kind == TR_ARG_KIND_BORROW) {
            pthread_mutex_lock(&rt->lock);
            ro->refcnt++;
            pthread_mutex_unlock(&rt->lock);
            tmp.args[i].obj = ro;
            tmp.args[i].borrow = 1;
        }
        tmp.args[i].blob = ab;
    }
    struct tr__ainfo *ai = st == TR_OK ? calloc(1, sizeof(*ai)) : NULL;
    if (st == TR_OK && ai == NULL) st = TR_ERR_NO_MEMORY;
    if (st == TR_OK) {
        /* what the creation message says, kept by the owner for restarts */
        size_t nlen = name ? strlen(name) : 0;
        tr__wbuf_t hw, aw;
        tr__wbuf_init(&hw, 96 + nlen);
        tr__wbuf_u64(&hw, o->id);
        tr__wbuf_u64(&hw, cls->id);
        tr__wbuf_u32(&hw, (uint32_t)conc);
        tr__encode_req(&hw, &need);
        tr__wbuf_u16(&hw, (uint16_t)nlen);
        tr__wbuf_put(&hw, name, nlen);
        tr__wbuf_init(&aw, 16 + (size_t)nargs * 32);
        tr__wbuf_u16(&aw, (uint16_t)nargs);
        tr__encode_args(&aw, &tmp, rank);
        size_t hl = sizeof(tr__wire_hdr_t);
        if (!hw.oom && !aw.oom && (ai->head = malloc(hw.len - hl)) != NULL && (ai->args = malloc(aw.len - hl)) != NULL) {
            memcpy(ai->head, hw.buf + hl, hw.len - hl);
            ai->head_len = hw.len - hl;
            memcpy(ai->args, aw.buf + hl, aw.len - hl);
            ai->args_len = aw.len - hl;
        } else {
            st = TR_ERR_NO_MEMORY;
        }
        free(hw.buf);
        free(aw.buf);
        ai->need = need;
        if (params) ai->place = *params;
        /* a restart goes to any rank that fits: a rank named at creation is the one that died */
        ai->place.field_mask &= TR_ACTOR_FIELD_NODE | TR_ACTOR_FIELD_SPREAD | TR_ACTOR_FIELD_SOFT;
        ai->need.pg = 0;   /* a restart cannot use a group whose rank died */
        ai->max_restarts = restarts;
        ai->max_task_retries = task_retries;
    }
    if (st == TR_OK) {
        pthread_mutex_lock(&rt->lock);
        o->ainfo = ai;
        ai = NULL;
        if (rank == rt->rank) {
            tr__actor_t *a = actor_new(o->id, rt->rank, cls, conc);
            struct tr_task *t = a ? tr__task_new(o->id, NULL, rt->rank, 0, 1, nargs) : NULL;
            if (t == NULL) {
                if (a) actor_free(a);
                st = TR_ERR_NO_MEMORY;
            } else {
                a->held = need;
                if (name) a->name = strdup(name);
                tr__local_args(t, &tmp);
                doomed_t d = { 0 };
                create_locked(a, t, &d);
                doomed_finish_relock(&d);
            }
        } else {
            st = send_create_locked(o, rank);
        }
        if (st == TR_OK) { o->is_actor = 1; rt->actors_placed[rank]++; }
        pthread_mutex_unlock(&rt->lock);
    }
    pthread_mutex_lock(&rt->lock);
    for (int i = 0; i < nargs && tmp.args; i++) {
        if (tmp.args[i].blob) tr__blob_unref(tmp.args[i].blob);
        /* a borrowed argument stays counted until the actor's rank has
         * registered its borrow: the constructor runs with the handle
         * object alive, which holds nothing; keep it for the actor's life */
        if (tmp.args[i].obj && st != TR_OK) tr__obj_unref_locked(tmp.args[i].obj);
        else if (tmp.args[i].obj) {
            /* attach to the handle object: released when it dies */
            tr__obj_t **in = realloc(o->inner, sizeof(*in) * (size_t)(o->ninner + 1));
            if (in) { o->inner = in; in[o->ninner++] = tmp.args[i].obj; }
            else tr__obj_unref_locked(tmp.args[i].obj);
        }
    }
    free(tmp.args);
    if (ai) tr__ainfo_free(ai);
    if (st != TR_OK) {
        if (name) send_name(2, name, 0, rt->rank, o->id);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&rt->lock);
        return st;
    }
    pthread_mutex_unlock(&rt->lock);
    st = tr__ref_new(o, (tr_ref_h *)actor_p);
    if (st != TR_OK) {
        pthread_mutex_lock(&rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&rt->lock);
    }
    return st;
}

/* The handle object of an actor handle, waited for until it is ready. */
static tr_status_t actor_obj(tr_actor_h actor, tr__obj_t **o_p, actor_val_t *v)
{
    tr__obj_t *o = tr__ref_obj((tr_ref_h)actor);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    if (v) {
        tr_buf_h b;
        tr_status_t st = tr__obj_get(o, TR_TIMEOUT_INFINITE, &b);
        if (st != TR_OK) return st;
        int ok = tr_buf_size(b) == sizeof(*v);
        if (ok) memcpy(v, tr_buf_data(b), sizeof(*v));
        tr_buf_release(b);
        if (!ok || v->magic != ACTOR_MAGIC || (int)v->rank < 0 || (int)v->rank >= tr__rt->size) {
            tr__set_error("the ref does not name an actor");
            return TR_ERR_INVALID_ARG;
        }
    }
    *o_p = o;
    return TR_OK;
}

tr_status_t tr_actor_call(tr_actor_h actor, const char *method, const tr_arg_t *args, int nargs,
                          const tr_task_params_t *params, tr_ref_h *refs_p)
{
    CHECK_UP();
    if (method == NULL || *method == '\0' || refs_p == NULL || nargs < 0 || nargs > 65535 || (args == NULL && nargs > 0))
        return TR_ERR_INVALID_ARG;
    if (!tr_is_driver()) return TR_ERR_WRONG_MODE;
    tr__obj_t *o = tr__ref_obj((tr_ref_h)actor);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    actor_val_t v;
    pthread_mutex_lock(&tr__rt->lock);
    int not_actor = o->state == TR__OBJ_READY && !handle_val(o, &v);   /* a pending one is checked when ready */
    pthread_mutex_unlock(&tr__rt->lock);
    if (not_actor) {
        tr__set_error("tr_actor_call: the handle is a ref that does not name an actor");
        return TR_ERR_INVALID_ARG;
    }
    return tr__submit(NULL, o, tr__method_id(method), method, args, nargs, params, refs_p);
}

tr_status_t tr_actor_kill(tr_actor_h actor)
{
    CHECK_UP();
    tr__obj_t *o;
    actor_val_t v;
    tr_status_t st = actor_obj(actor, &o, &v);
    if (st != TR_OK) return st;
    pthread_mutex_lock(&tr__rt->lock);
    if (o->ainfo) o->ainfo->killed = 1;
    send_kill((int)v.rank, v.id, 0);
    pthread_mutex_unlock(&tr__rt->lock);
    return TR_OK;
}

tr_status_t tr_actor_release(tr_actor_h actor) { return tr_ref_release((tr_ref_h)actor); }
tr_status_t tr_actor_dup(tr_actor_h actor, tr_actor_h *actor_p) { return tr_ref_dup((tr_ref_h)actor, (tr_ref_h *)actor_p); }
tr_status_t tr_actor_ref(tr_actor_h actor, tr_ref_h *ref_p) { return tr_ref_dup((tr_ref_h)actor, ref_p); }

tr_status_t tr_actor_from_ref(tr_ref_h ref, tr_actor_h *actor_p)
{
    CHECK_UP();
    if (actor_p == NULL) return TR_ERR_INVALID_ARG;
    tr__obj_t *o;
    actor_val_t v;
    tr_status_t st = actor_obj((tr_actor_h)ref, &o, &v);
    if (st != TR_OK) return st;
    return tr_ref_dup(ref, (tr_ref_h *)actor_p);
}

tr_status_t tr_task_arg_actor(tr_task_h task, int i, tr_actor_h *actor_p)
{
    if (actor_p == NULL) return TR_ERR_INVALID_ARG;
    tr_ref_h r;
    tr_status_t st = tr_task_arg_ref(task, i, &r);
    if (st != TR_OK) return st;
    st = tr_actor_from_ref(r, actor_p);
    tr_ref_release(r);
    return st;
}

tr_status_t tr_actor_get_by_name(const char *name, tr_actor_h *actor_p)
{
    CHECK_UP();
    if (name == NULL || *name == '\0' || strlen(name) > 255 || actor_p == NULL) return TR_ERR_INVALID_ARG;
    int owner;
    uint64_t id;
    tr_status_t st = name_rpc(1, name, 0, 0, &owner, &id);
    if (st != TR_OK) {
        if (st == TR_ERR_ACTOR_NOT_FOUND) tr__set_error("no live actor is named '%s'", name);
        return st;
    }
    tr__iref_t ir = { owner, id };
    tr__obj_t *o;
    if ((st = tr__borrow(&ir, 1, &o)) != TR_OK) {
        tr__set_error("no live actor is named '%s'", name);
        return TR_ERR_ACTOR_NOT_FOUND;
    }
    if ((st = tr__ref_new(o, (tr_ref_h *)actor_p)) != TR_OK) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    return st;
}

tr_status_t tr_actor_self(tr_task_h task, tr_actor_h *actor_p)
{
    CHECK_UP();
    struct tr_task *t = tr__cur_task;
    if (t == NULL || t != task || t->actor == NULL || actor_p == NULL) return TR_ERR_INVALID_ARG;
    tr__iref_t ir = { t->actor->owner, t->actor->id };
    tr__obj_t *o;
    tr_status_t st = tr__borrow(&ir, 1, &o);
    if (st != TR_OK) return st;
    if ((st = tr__ref_new(o, (tr_ref_h *)actor_p)) != TR_OK) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    return st;
}

/* ------------------------------------------------------------ shutdown */

void tr__actors_shutdown(void)
{
    tr__rt_t *rt = tr__rt;
    if (rt->actors.vals == NULL) return;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i <= rt->actors.mask; i++) {
        tr__actor_t *a = rt->actors.vals[i];
        if (a == NULL) continue;
        if (a->ready && a->cls->fini) a->cls->fini(a->state);   /* not destroyed yet: its FINI never ran */
        for (struct tr_task *t; (t = q_pop(a)) != NULL;) tr__task_free(t);
        for (size_t k = 0; k <= a->early.mask; k++) if (a->early.vals[k]) tr__task_free(a->early.vals[k]);
        actor_free(a);
        rt->actors.vals[i] = NULL;
    }
    for (size_t i = 0; rt->actor_early.vals && i <= rt->actor_early.mask; i++)
        for (struct tr_task *t = rt->actor_early.vals[i], *n; t; t = n) { n = t->next; tr__task_free(t); }
    for (size_t i = 0; rt->names.vals && i <= rt->names.mask; i++) {
        name_ent_t *e = rt->names.vals[i];
        if (e) { free(e->name); free(e); }
    }
    tr__hmap_destroy(&rt->actors);
    tr__hmap_destroy(&rt->actor_early);
    for (size_t i = 0; rt->actor_dead.vals && i <= rt->actor_dead.mask; i++) free(rt->actor_dead.vals[i]);
    tr__hmap_destroy(&rt->actor_dead);
    tr__hmap_destroy(&rt->names);
    free(rt->actors_placed);
    rt->actors_placed = NULL;
    pthread_mutex_unlock(&rt->lock);
}
