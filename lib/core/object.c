/*
 * Objects and refs on the owner: lifetime counts, readiness, waiters, and
 * the read path (local copy, a same-node peer's arena mapped read-only, or a
 * ucp_get from another node).
 */
#include "core/core.h"
#include "base/handle.h"
#include "base/completion.h"

#include <errno.h>
#include <stdio.h>
#include "comm/wire.h"
#include <inttypes.h>
#include <sys/mman.h>
#ifdef MADV_POPULATE_WRITE
#define TR__MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define TR__MADV_POPULATE_WRITE 23   /* Linux 5.14; older kernels answer EINVAL */
#endif

tr__obj_t *tr__obj_new(uint64_t id)
{
    tr__obj_t *o = calloc(1, sizeof(*o));
    if (o == NULL) return NULL;
    o->id = id;
    o->owner = tr__rt->rank;
    o->refcnt = 1;
    o->holder = -1;
    o->err_rank = -1;
    return o;
}

int tr__same_node(int a, int b) { return tr__rt->boot.node_of[a] == tr__rt->boot.node_of[b]; }

/* A proxy whose owner died and that this rank now makes itself (the task
 * that made it runs here again, under the same ids): it becomes the owned
 * object, so that every handle to it sees the new value.  NULL if none. */
tr__obj_t *tr__obj_adopt_locked(uint64_t id)
{
    tr__rt_t *rt = tr__rt;
    tr__obj_t *p = tr__hmap_get(&rt->objs, id);
    /* ids are made by tasks: the same id again means a task running again
     * after the rank that ran it died (even if this rank has not heard yet) */
    if (p == NULL || p->owner == rt->rank) return NULL;
    p->owner = rt->rank;
    rt->n_borrowed--;
    rt->n_owned++;
    if (p->lineage) { tr__lineage_unref_locked(p->lineage); p->lineage = NULL; }   /* a proxy's, not a maker */
    tr__obj_unmake_locked(p, 0);
    p->refcnt++;   /* the caller's, as tr__obj_new() gives */
    return p;
}

void tr__obj_unmake_locked(tr__obj_t *o, int rebuilding)
{
    if (o->blob) { tr__blob_unref(o->blob); o->blob = NULL; }
    for (int k = 0; o->inner && k < o->ninner; k++) tr__obj_unref_locked(o->inner[k]);
    free(o->inner);
    o->inner = NULL;
    free(o->irefs);
    o->irefs = NULL;
    o->ninner = 0;
    o->stored = 0;
    o->nlocs = 0;
    o->holder = -1;
    o->rebuilding = (uint8_t)rebuilding;
    __atomic_store_n(&o->state, TR__OBJ_PENDING, __ATOMIC_RELEASE);
}

void tr__obj_publish_locked(tr__obj_t *o)
{
    if (o->in_table) return;
    tr__obj_t *old = tr__hmap_get(&tr__rt->objs, o->id);
    if (old != NULL && old != o) {
        if (old->owner == tr__rt->rank && o->owner == tr__rt->rank) {
            /* a task running again here makes what its first run made here
             * (the first run's owner died): the new object is the one peers
             * name from now on; the old one lives on for whoever holds it */
            tr__hmap_del(&tr__rt->objs, o->id);
            old->in_table = 0;
            old->nlocs = 0;   /* its copies are under the same id as the new one's: never FREE them */
            tr__rt->n_owned--;
        } else {   /* never shadow another object of that id */
            tr__warn("object %016" PRIx64 " exists here already; the new one is not indexed", o->id);
            return;
        }
    }
    if (tr__hmap_put(&tr__rt->objs, o->id, o) < 0) {
        tr__warn("out of memory indexing object %016" PRIx64 "; peers cannot reach it", o->id);
        return;
    }
    o->in_table = 1;
    if (o->owner == tr__rt->rank) tr__rt->n_owned++;
    else tr__rt->n_borrowed++;
}

static int sending(void) { return tr__rt->comm != NULL && atomic_load(&tr__state) == 1; }

void tr__obj_unref_locked(tr__obj_t *o)
{
    tr__rt_t *rt = tr__rt;
    if (--o->refcnt > 0) return;
    if (o->in_table) {
        tr__hmap_del(&rt->objs, o->id);
        if (o->owner == rt->rank) rt->n_owned--;
        else rt->n_borrowed--;
    }
    if (o->owner == rt->rank) {
        if (o->is_actor) tr__actor_gone_locked(o);   /* no handle left: destroy once drained */
        /* nothing can reach it any more: every copy, on every node, goes */
        for (int i = 0; i < o->nlocs; i++) {
            if (o->locs[i] == rt->rank) tr__store_remove(&rt->store, o->id, -1);
            else if (sending()) tr__send_ids(o->locs[i], TR__MSG_FREE, &o->id, 1);
        }
        for (tr__fetch_t *f = o->fetching, *n; f; f = n) {
            n = f->next;
            free(f->wait_rank); free(f->wait_tag); free(f);
        }
    } else if (o->in_table && sending()) {
        tr__send_ids(o->owner, TR__MSG_UNBORROW, &o->id, 1);
    }
    if (o->lineage) tr__lineage_unref_locked(o->lineage);
    if (o->blob) tr__blob_unref(o->blob);
    for (int i = 0; o->inner && i < o->ninner; i++) tr__obj_unref_locked(o->inner[i]);
    free(o->inner);
    free(o->aq);
    if (o->ainfo) tr__ainfo_free(o->ainfo);
    free(o->irefs);
    free(o->locs);
    free(o->borrowers);
    free(o->subs);
    free(o->err_msg);
    free(o->deps);
    free(o);
}

static void wake_locked(tr__obj_t *o)
{
    for (tr__wnode_t *n = o->waiters, *next; n; n = next) {
        next = n->next;
        n->next = NULL;
        if (--n->w->remaining <= 0) pthread_cond_signal(&n->w->cv);
    }
    o->waiters = NULL;
    int nd = o->ndeps;
    tr__spec_t **deps = o->deps;
    o->deps = NULL; o->ndeps = o->capdeps = 0;
    for (int i = 0; i < nd; i++) tr__spec_dep_ready_locked(deps[i]);
    free(deps);
    if (o->owner == tr__rt->rank) tr__notify_subs_locked(o);
}

void tr__obj_set_ready_locked(tr__obj_t *o, tr__blob_t *blob, int holder, size_t size)
{
    o->blob = blob;
    o->holder = holder;
    o->size = blob ? blob->size : size;
    if (blob == NULL) {
        o->stored = 1;
        if (o->owner == tr__rt->rank && holder >= 0) {
            free(o->locs);
            o->nlocs = o->caplocs = 0;
            o->locs = malloc(sizeof(int) * 2);
            if (o->locs) { o->locs[0] = holder; o->nlocs = 1; o->caplocs = 2; }
        }
    }
    __atomic_store_n(&o->state, TR__OBJ_READY, __ATOMIC_RELEASE);   /* read unlocked by spinners */
    wake_locked(o);
    if (o->rebuilding) tr__rebuild_done_locked(o);
}

void tr__obj_set_failed_locked(tr__obj_t *o, tr_status_t err, int rank, const char *msg)
{
    o->err = err;
    o->err_rank = rank;
    free(o->err_msg);
    o->err_msg = strdup(msg ? msg : tr_status_string(err));
    __atomic_store_n(&o->state, TR__OBJ_FAILED, __ATOMIC_RELEASE);
    wake_locked(o);
    if (o->rebuilding) tr__rebuild_done_locked(o);
}

/* ----------------------------------------------------------------- refs */

tr_status_t tr__ref_new(tr__obj_t *o, tr_ref_h *ref_p)
{
    uint64_t h = tr__handle_alloc(TR__HANDLE_REF, o);
    if (h == 0) return TR_ERR_NO_MEMORY;
    *ref_p = (tr_ref_h)(uintptr_t)h;
    return TR_OK;
}

tr__obj_t *tr__ref_obj(tr_ref_h ref)
{
    return tr__handle_get((uint64_t)(uintptr_t)ref, TR__HANDLE_REF);
}

tr_status_t tr_ref_release(tr_ref_h ref)
{
    if (atomic_load(&tr__state) == 0) return TR_ERR_NOT_INITIALIZED;
    tr__obj_t *o = tr__handle_free((uint64_t)(uintptr_t)ref, TR__HANDLE_REF);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_unref_locked(o);
    pthread_mutex_unlock(&tr__rt->lock);
    return TR_OK;
}

tr_status_t tr_ref_dup(tr_ref_h ref, tr_ref_h *ref_p)
{
    if (atomic_load(&tr__state) == 0) return TR_ERR_NOT_INITIALIZED;
    if (ref_p == NULL) return TR_ERR_INVALID_ARG;
    tr__obj_t *o = tr__ref_obj(ref);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    pthread_mutex_lock(&tr__rt->lock);
    o->refcnt++;
    tr_status_t st = tr__ref_new(o, ref_p);
    if (st != TR_OK) tr__obj_unref_locked(o);
    pthread_mutex_unlock(&tr__rt->lock);
    return st;
}

tr_status_t tr_ref_error(tr_ref_h ref, tr_status_t *status_p, int *rank_p, char *msg, size_t msg_len)
{
    if (atomic_load(&tr__state) == 0) return TR_ERR_NOT_INITIALIZED;
    if (status_p == NULL || (msg == NULL && msg_len > 0)) return TR_ERR_INVALID_ARG;
    tr__obj_t *o = tr__ref_obj(ref);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    pthread_mutex_lock(&tr__rt->lock);
    tr_status_t st = o->state == TR__OBJ_FAILED ? o->err : TR_OK;
    if (rank_p) *rank_p = o->state == TR__OBJ_FAILED ? o->err_rank : -1;
    if (msg_len) snprintf(msg, msg_len, "%s", o->state == TR__OBJ_FAILED && o->err_msg ? o->err_msg : "");
    pthread_mutex_unlock(&tr__rt->lock);
    *status_p = st;
    return TR_OK;
}

/* --------------------------------------------------------------- waiting */

static int is_done(const tr__obj_t *o) { return o->state != TR__OBJ_PENDING; }

/* Wait (rt->lock held) until @k of @objs are done.  0, or ETIMEDOUT. */
static int wait_locked(tr__obj_t **objs, size_t n, size_t k, int64_t timeout_ms)
{
    size_t ready = 0;
    for (size_t i = 0; i < n; i++) ready += is_done(objs[i]);
    if (ready >= k) return 0;
    if (timeout_ms == 0) return ETIMEDOUT;
    if (n == 1 && k == 1 && tr__rt->pool.spin_ns && !tr__on_executor) {
        /* a short spin before sleeping: most tiny tasks finish within it.
         * Not in a task: its executor slot must go to the work it waits for. */
        uint64_t until = tr__now_ns() + tr__rt->pool.spin_ns;
        pthread_mutex_unlock(&tr__rt->lock);
        while (__atomic_load_n(&objs[0]->state, __ATOMIC_ACQUIRE) == TR__OBJ_PENDING && tr__now_ns() < until)
            tr__spin_yield();
        pthread_mutex_lock(&tr__rt->lock);
        if (is_done(objs[0])) return 0;
    }

    tr__waiter_t w;
    tr__wnode_t one, *nodes = (n == 1) ? &one : calloc(n, sizeof(*nodes));
    if (nodes == NULL) return ENOMEM;
    pthread_cond_init(&w.cv, NULL);
    w.remaining = (int)(k - ready);
    for (size_t i = 0; i < n; i++) {
        nodes[i].w = &w;
        nodes[i].next = NULL;
        if (is_done(objs[i])) continue;
        nodes[i].next = objs[i]->waiters;
        objs[i]->waiters = &nodes[i];
    }
    struct timespec ts;
    bool timed = tr__deadline(timeout_ms, &ts);
    int rc = 0;
    if (tr__on_executor) tr__pool_block_enter();
    while (w.remaining > 0 && rc != ETIMEDOUT)
        rc = timed ? pthread_cond_timedwait(&w.cv, &tr__rt->lock, &ts)
                   : pthread_cond_wait(&w.cv, &tr__rt->lock);
    if (tr__on_executor) tr__pool_block_leave();
    /* unlink from objects that are still pending */
    for (size_t i = 0; i < n; i++) {
        if (is_done(objs[i])) continue;
        for (tr__wnode_t **pp = &objs[i]->waiters; *pp; pp = &(*pp)->next)
            if (*pp == &nodes[i]) { *pp = nodes[i].next; break; }
    }
    pthread_cond_destroy(&w.cv);
    if (nodes != &one) free(nodes);
    return w.remaining > 0 ? ETIMEDOUT : 0;
}

tr_status_t tr__wait(tr__obj_t **objs, size_t n, size_t k, int64_t timeout_ms, size_t *idx, size_t *nready)
{
    pthread_mutex_lock(&tr__rt->lock);
    int rc = wait_locked(objs, n, k, timeout_ms);
    size_t c = 0;
    for (size_t i = 0; i < n && c < k; i++)
        if (is_done(objs[i])) idx[c++] = i;
    pthread_mutex_unlock(&tr__rt->lock);
    if (rc == ENOMEM) return TR_ERR_NO_MEMORY;
    *nready = c;
    return TR_OK;
}

/* ------------------------------------------------------------- reading */

const void *tr__peer_arena(int rank)
{
    tr__rt_t *rt = tr__rt;
    pthread_mutex_lock(&rt->map_lock);
    if (rt->peer_maps[rank] == NULL)
        rt->peer_maps[rank] = tr__arena_map_peer(rt->boot.name_id, rank, tr__comm_arena_size(rt->comm, rank));
    void *p = rt->peer_maps[rank];
    pthread_mutex_unlock(&rt->map_lock);
    return p;
}

tr__blob_t *tr__blob_for(size_t size, tr_status_t *st_p)
{
    if (size > tr__rt->inline_max) return tr__store_alloc(&tr__rt->store, size, st_p);
    tr__blob_t *b = tr__blob_heap(size);
    if (b == NULL) *st_p = TR_ERR_NO_MEMORY;
    return b;
}

static tr_status_t make_view(tr__blob_t *b, tr__obj_t *o, tr_buf_h *buf_p)
{
    tr__view_t *v = malloc(sizeof(*v));
    uint64_t h = v ? tr__handle_alloc(TR__HANDLE_BUF, v) : 0;
    if (h == 0) {
        free(v);
        tr__blob_unref(b);
        if (o) { pthread_mutex_lock(&tr__rt->lock); tr__obj_unref_locked(o); pthread_mutex_unlock(&tr__rt->lock); }
        return TR_ERR_NO_MEMORY;
    }
    v->blob = b;
    v->obj = o;
    *buf_p = (tr_buf_h)(uintptr_t)h;
    return TR_OK;
}

void tr__view_free(tr__view_t *v)
{
    tr__blob_unref(v->blob);
    if (v->obj) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(v->obj);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    free(v);
}

/* A zero-copy view of a same-node peer's copy ends: unpin it there. */
static void release_rpin(tr__blob_t *b)
{
    if (tr__rt && tr__rt->comm && atomic_load(&tr__state) != 0)
        tr__send_ids((int)(intptr_t)b->arg, TR__MSG_UNPIN, &b->off, 1);
}

/* PIN at @holder: where the copy lies in its arena. */
static tr_status_t pin_at(int holder, uint64_t id, uint64_t *off_p, uint64_t *size_p)
{
    tr__rpc_t r;
    uint64_t tag = tr__rpc_open(&r, 1);
    tr__wbuf_t w;
    tr__wbuf_init(&w, 16);
    tr__wbuf_u64(&w, tag);
    tr__wbuf_u64(&w, id);
    tr__rpc_peer(tag, holder);
    if (tr__send(holder, &w, TR__MSG_PIN) != TR_OK) tr__rpc_reply(tag, -1, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
    tr_status_t st = tr__rpc_wait(&r);
    *off_p = r.off;
    *size_p = r.size;
    return st;
}

/* The bytes a same-node @holder pinned for us (pin_at), read in place;
 * unpinned again when they cannot be mapped. */
static tr_status_t pinned_view(int holder, uint64_t id, uint64_t off, uint64_t size, tr__blob_t **b_p)
{
    const char *base = tr__peer_arena(holder);
    tr__blob_t *b = base ? tr__blob_ext(base + off, (size_t)size, release_rpin, (void *)(intptr_t)holder) : NULL;
    if (b == NULL) {
        tr__send_ids(holder, TR__MSG_UNPIN, &id, 1);
        tr__set_error("cannot map rank %d's object store", holder);
        return base ? TR_ERR_NO_MEMORY : TR_ERR_OBJECT_LOST;
    }
    b->off = id;   /* for the unpin */
    *b_p = b;
    return TR_OK;
}

static void report_fetch(int owner, uint64_t id, int ok)
{
    tr__rt_t *rt = tr__rt;
    if (owner == rt->rank) {
        pthread_mutex_lock(&rt->lock);
        tr__obj_t *o = tr__hmap_get(&rt->objs, id);
        if (o && o->owner == rt->rank) tr__fetched_locked(o, rt->rank, ok);
        pthread_mutex_unlock(&rt->lock);
        return;
    }
    tr__wbuf_t w;
    tr__wbuf_init(&w, 9);
    tr__wbuf_u64(&w, id);
    tr__wbuf_u8(&w, (uint8_t)ok);
    tr__send(owner, &w, TR__MSG_ADD_LOC);
}

typedef struct chunked {
    tr__completion_t done;
    _Atomic int      left;
    _Atomic int      failed;
} chunked_t;

static void chunk_done(void *arg, tr_status_t st)
{
    chunked_t *c = arg;
    if (st != TR_OK) atomic_store(&c->failed, 1);
    if (atomic_fetch_sub(&c->left, 1) == 1)
        tr__completion_done(&c->done, atomic_load(&c->failed) ? TR_ERR_TRANSPORT : TR_OK);
}

/* Pull a copy of @id from @holder (another node) into this rank's store,
 * in pipelined chunks, and tell the owner.  */
static tr_status_t fetch_copy(int owner, int holder, uint64_t id, int primary)
{
    tr__rt_t *rt = tr__rt;
    uint64_t off, size;
    tr_status_t st = pin_at(holder, id, &off, &size);
    if (st != TR_OK) { report_fetch(owner, id, 0); return st; }
    tr__blob_t *b = tr__store_alloc(&rt->store, (size_t)size, &st);
    if (b == NULL) {
        tr__send_ids(holder, TR__MSG_UNPIN, &id, 1);
        report_fetch(owner, id, 0);
        return st;
    }
    /* fault the destination in with one call rather than one fault per
     * page inside the transport's receive path */
    if (size >= (1u << 20)) (void)madvise(b->data, (size_t)size, TR__MADV_POPULATE_WRITE);
    size_t chunk = rt->fetch_chunk;
    int n = size ? (int)((size + chunk - 1) / chunk) : 0;
    chunked_t c = { TR__COMPLETION_INIT, n, 0 };
    if (tr__on_executor) tr__pool_block_enter();
    for (int i = 0; i < n; i++) {
        size_t o = (size_t)i * chunk, l = size - o < chunk ? size - o : chunk;
        tr__comm_get(rt->comm, holder, off + o, (char *)b->data + o, l, chunk_done, &c);
    }
    st = n ? tr__completion_wait(&c.done) : TR_OK;
    if (tr__on_executor) tr__pool_block_leave();
    tr__send_ids(holder, TR__MSG_UNPIN, &id, 1);
    if (st == TR_OK) st = tr__store_insert(&rt->store, id, owner, primary, b);
    tr__blob_unref(b);
    if (st != TR_OK) {
        tr__set_error("reading a %" PRIu64 "-byte object from rank %d failed", size, holder);
        report_fetch(owner, id, 0);
        return TR_ERR_OBJECT_LOST;
    }
    tr__store_count_fetch(&rt->store, (size_t)size);
    report_fetch(owner, id, 1);
    return TR_OK;
}

/* Ask the owner where a copy for this node is (or run the owner's logic). */
static tr_status_t locate(int owner, uint64_t id, int bad, int *holder_p, int *fetch_p)
{
    tr__rt_t *rt = tr__rt;
    tr__rpc_t r;
    uint64_t tag = tr__rpc_open(&r, 1);
    if (owner == rt->rank) {
        pthread_mutex_lock(&rt->lock);
        tr__obj_t *o = tr__hmap_get(&rt->objs, id);
        int mine = o && o->owner == rt->rank;
        if (mine) tr__locate_locked(o, rt->rank, tag, bad);
        pthread_mutex_unlock(&rt->lock);
        if (!mine) tr__rpc_reply(tag, -1, TR_ERR_OBJECT_LOST, -1, 0, 0, 0);
    } else {
        tr__wbuf_t w;
        tr__wbuf_init(&w, 20);
        tr__wbuf_u64(&w, tag);
        tr__wbuf_u64(&w, id);
        tr__wbuf_u32(&w, (uint32_t)(int32_t)bad);
        tr__rpc_peer(tag, owner);
        if (tr__send(owner, &w, TR__MSG_LOCATE) != TR_OK) tr__rpc_reply(tag, -1, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
    }
    tr_status_t st = tr__rpc_wait(&r);
    *holder_p = r.holder;
    *fetch_p = r.fetch;
    return st;
}

int tr__replica_rank(uint64_t id, int owner, int k)
{
    tr__rt_t *rt = tr__rt;
    int n = 0, other_nodes = 0;
    for (int r = 0; r < rt->size; r++) other_nodes += !tr__same_node(r, owner);
    for (int r = 0; r < rt->size; r++)
        n += r != owner && (other_nodes == 0 || !tr__same_node(r, owner));
    if (k < 0 || k >= n) return -1;
    int pick = (int)((tr__hash2(id, (uint64_t)owner) + (uint64_t)k) % (uint64_t)n);
    for (int r = 0; r < rt->size; r++) {
        if (r == owner || (other_nodes > 0 && tr__same_node(r, owner))) continue;
        if (pick-- == 0) return r;
    }
    return -1;
}

tr_status_t tr__replica_fetch(int owner, uint64_t id)
{
    return fetch_copy(owner, owner, id, 1);
}

/* The owner of @id died: read one of its replicas (tr_put_replicated), if
 * it was made with some.  A copy pulled from another node stays here. */
static tr_status_t read_replica(int owner, uint64_t id, tr__blob_t **b_p)
{
    tr__rt_t *rt = tr__rt;
    for (int k = 0; k < TR__MAX_REPLICAS; k++) {
        int r = tr__replica_rank(id, owner, k);
        if (r < 0) break;
        if (tr__rank_is_dead(r)) continue;
        if (r == rt->rank) {
            if (tr__store_pin(&rt->store, id, b_p) == TR_OK) return TR_OK;
            continue;
        }
        if (tr__same_node(r, rt->rank)) {
            uint64_t off, size;
            if (pin_at(r, id, &off, &size) == TR_OK && pinned_view(r, id, off, size, b_p) == TR_OK) return TR_OK;
            continue;
        }
        if (fetch_copy(owner, r, id, 0) == TR_OK && tr__store_pin(&rt->store, id, b_p) == TR_OK) return TR_OK;
    }
    return TR_ERR_OBJECT_LOST;
}

tr_status_t tr__read_stored(int owner, uint64_t id, int hint, tr__blob_t **b_p)
{
    tr__rt_t *rt = tr__rt;
    int bad = -1;
    for (int tries = 0; tries < 64; tries++) {
        tr_status_t st = tr__store_pin(&rt->store, id, b_p);
        if (st != TR_ERR_OBJECT_LOST) return st;     /* here (or corrupt) */
        if (rt->comm == NULL) break;
        int holder = hint, fetch = 0;
        if (tries > 0 || hint < 0 || hint == rt->rank || !tr__same_node(hint, rt->rank)) {
            if ((st = locate(owner, id, bad, &holder, &fetch)) != TR_OK) {
                if (st == TR_ERR_WORKER_DIED) {
                    if (read_replica(owner, id, b_p) == TR_OK) return TR_OK;
                    tr__set_error("object %016" PRIx64 " is lost: its owner, rank %d, died", id, owner);
                    return TR_ERR_OBJECT_LOST;
                }
                if (st == TR_ERR_OBJECT_LOST)
                    tr__set_error("object %016" PRIx64 " is lost: no rank holds a copy", id);
                return st;
            }
        }
        bad = -1;
        if (holder == rt->rank) { bad = holder; continue; }   /* the owner thinks we have it: we do not */
        if (!fetch && tr__same_node(holder, rt->rank)) {
            uint64_t off, size;
            st = pin_at(holder, id, &off, &size);
            if (st == TR_ERR_OBJECT_LOST || st == TR_ERR_WORKER_DIED) { bad = holder; continue; }   /* evicted or died meanwhile */
            if (st != TR_OK) return st;
            return pinned_view(holder, id, off, size, b_p);
        }
        st = fetch_copy(owner, holder, id, 0);
        if (st == TR_ERR_OBJECT_LOST || st == TR_ERR_WORKER_DIED || st == TR_ERR_TRANSPORT) { bad = holder; continue; }
        if (st != TR_OK) return st;
    }
    tr__set_error("object %016" PRIx64 " could not be read: every copy named by its owner (rank %d) was gone", id, owner);
    return TR_ERR_OBJECT_LOST;
}

tr_status_t tr__obj_get(tr__obj_t *o, int64_t timeout_ms, tr_buf_h *buf_p)
{
    tr__rt_t *rt = tr__rt;
    pthread_mutex_lock(&rt->lock);
again:;
    int rc = wait_locked(&o, 1, 1, timeout_ms);
    if (rc != 0) {
        pthread_mutex_unlock(&rt->lock);
        return rc == ETIMEDOUT ? TR_ERR_TIMEOUT : TR_ERR_NO_MEMORY;
    }
    if (o->state == TR__OBJ_FAILED) {
        tr_status_t err = o->err;
        tr__set_error("%s", o->err_msg ? o->err_msg : tr_status_string(err));
        pthread_mutex_unlock(&rt->lock);
        return err;
    }
    tr__obj_t *keep = NULL;
    if (o->ninner > 0) { keep = o; o->refcnt++; }   /* the view reads its refs */
    if (o->blob) {
        tr__blob_t *b = o->blob;
        tr__blob_ref(b);
        pthread_mutex_unlock(&rt->lock);
        return make_view(b, keep, buf_p);
    }
    int owner = o->owner, hint = o->holder;
    uint64_t id = o->id;
    pthread_mutex_unlock(&rt->lock);
    tr__blob_t *b = NULL;
    tr_status_t st = tr__read_stored(owner, id, hint, &b);
    if (st == TR_OK) return make_view(b, keep, buf_p);
    pthread_mutex_lock(&rt->lock);
    if (keep) tr__obj_unref_locked(keep);
    if (st == TR_ERR_OBJECT_LOST && (o->state == TR__OBJ_PENDING || o->owner != owner)) {
        /* its owner died while we read, and it is being made again (or
         * already was, by a new owner): read that */
        goto again;
    }
    pthread_mutex_unlock(&rt->lock);
    return st;
}

/* ----------------------------------------------------------------- puts */

tr_status_t tr__put_obj(tr__blob_t *b, tr__obj_t **inner, int ninner, tr__obj_t **o_p)
{
    tr__rt_t *rt = tr__rt;
    struct tr_task *t = tr__cur_task;
    size_t size = b->size;
    uint64_t id = t ? tr__hash2(t->ctx_id, (1ull << 63) | t->put_seq++)
                    : tr__hash2(rt->root_id, (1ull << 63) | atomic_fetch_add(&rt->put_seq, 1));
    tr__obj_t *o = tr__obj_new(id);
    tr__obj_t **in = ninner ? malloc(sizeof(*in) * (size_t)ninner) : NULL;
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (o == NULL || (ninner && in == NULL)) goto err;
    if (b->kind == TR__BLOB_ARENA) {
        if ((st = tr__store_insert(&rt->store, id, rt->rank, 1, b)) != TR_OK) goto err;
        tr__blob_unref(b);   /* the store holds it */
        b = NULL;
    }
    pthread_mutex_lock(&rt->lock);
    if (t != NULL) {   /* a task running again puts again what a dead rank put */
        tr__obj_t *p = tr__obj_adopt_locked(id);
        if (p) { free(o); o = p; }
    }
    o->is_put = 1;
    for (int i = 0; i < ninner; i++) { in[i] = inner[i]; inner[i]->refcnt++; }
    o->inner = in;
    o->ninner = ninner;
    tr__obj_set_ready_locked(o, b, rt->rank, size);
    tr__obj_publish_locked(o);
    pthread_mutex_unlock(&rt->lock);
    *o_p = o;
    return TR_OK;
err:
    if (b) tr__blob_unref(b);
    free(o);
    free(in);
    return st;
}

tr_status_t tr__put_blob(tr__blob_t *b, tr__obj_t **inner, int ninner, tr_ref_h *ref_p)
{
    tr__obj_t *o;
    tr_status_t st = tr__put_obj(b, inner, ninner, &o);
    if (st != TR_OK) return st;
    if ((st = tr__ref_new(o, ref_p)) != TR_OK) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    return st;
}

/* ------------------------------------------------------------ borrowing */

tr_status_t tr__borrow(const tr__iref_t *refs, int n, tr__obj_t **objs)
{
    tr__rt_t *rt = tr__rt;
    int fresh = 0;
    tr_status_t st = TR_OK;
    uint8_t *isnew = calloc((size_t)n ? (size_t)n : 1, 1);
    if (isnew == NULL) return TR_ERR_NO_MEMORY;
    pthread_mutex_lock(&rt->lock);
    for (int i = 0; i < n; i++) {
        tr__obj_t *o = tr__hmap_get(&rt->objs, refs[i].id);
        if (o == NULL && refs[i].owner == rt->rank) {
            /* we own it, and it is gone: the container did not keep it */
            st = TR_ERR_OBJECT_LOST;
            tr__set_error("object %016" PRIx64 " is no longer owned here", refs[i].id);
            objs[i] = NULL;
            continue;
        }
        if (o == NULL) {
            if ((o = tr__obj_new(refs[i].id)) == NULL) { st = TR_ERR_NO_MEMORY; objs[i] = NULL; continue; }
            o->owner = refs[i].owner;
            o->refcnt = 0;
            tr__obj_publish_locked(o);
            if (!o->in_table) { free(o); st = TR_ERR_NO_MEMORY; objs[i] = NULL; continue; }
            isnew[i] = 1;
            fresh++;
        }
        o->refcnt++;
        objs[i] = o;
    }
    pthread_mutex_unlock(&rt->lock);
    if (fresh > 0) {
        /* register with the owners and wait for their answers: once a
         * borrower is known, its owner cannot free the object under it */
        tr__rpc_t r;
        uint64_t tag = tr__rpc_open(&r, fresh);
        for (int i = 0; i < n; i++)
            if (objs[i] != NULL && isnew[i]) tr__send_borrow(objs[i]->owner, tag, objs[i]->id, rt->rank);
        tr_status_t rst = tr__rpc_wait(&r);
        if (rst != TR_OK && st == TR_OK) {
            st = rst;
            tr__set_error("an object's owner refused the borrow: %s", tr_status_string(rst));
        }
    }
    if (st != TR_OK) {
        pthread_mutex_lock(&rt->lock);
        for (int i = 0; i < n; i++) if (objs[i]) { tr__obj_unref_locked(objs[i]); objs[i] = NULL; }
        pthread_mutex_unlock(&rt->lock);
    }
    free(isnew);
    return st;
}

/* ----------------------------------------------------------------- views */

static tr__view_t *view_of(tr_buf_h buf) { return tr__handle_get((uint64_t)(uintptr_t)buf, TR__HANDLE_BUF); }

const void *tr_buf_data(tr_buf_h buf)
{
    tr__view_t *v = view_of(buf);
    return v ? v->blob->data : NULL;
}

size_t tr_buf_size(tr_buf_h buf)
{
    tr__view_t *v = view_of(buf);
    return v ? v->blob->size : 0;
}

size_t tr_buf_num_refs(tr_buf_h buf)
{
    tr__view_t *v = view_of(buf);
    return v && v->obj ? (size_t)v->obj->ninner : 0;
}

tr_status_t tr_buf_refs(tr_buf_h buf, tr_ref_h *refs_p, size_t n)
{
    if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;
    tr__view_t *v = view_of(buf);
    if (v == NULL || (refs_p == NULL && n > 0)) return TR_ERR_INVALID_ARG;
    size_t have = v->obj ? (size_t)v->obj->ninner : 0;
    if (n > have) {
        tr__set_error("the object contains %zu refs, not %zu", have, n);
        return TR_ERR_INVALID_ARG;
    }
    if (n == 0) return TR_OK;
    tr__obj_t *o = v->obj, **objs = malloc(sizeof(*objs) * n);
    if (objs == NULL) return TR_ERR_NO_MEMORY;
    tr_status_t st = TR_OK;
    if (o->inner) {
        pthread_mutex_lock(&tr__rt->lock);
        for (size_t i = 0; i < n; i++) { objs[i] = o->inner[i]; objs[i]->refcnt++; }
        pthread_mutex_unlock(&tr__rt->lock);
    } else if ((st = tr__borrow(o->irefs, (int)n, objs)) != TR_OK) {
        free(objs);   /* tr__borrow dropped what it took */
        return st;
    }
    size_t made = 0;
    for (; made < n; made++)
        if ((st = tr__ref_new(objs[made], &refs_p[made])) != TR_OK) break;
    if (st != TR_OK) {
        for (size_t i = 0; i < made; i++) tr__handle_free((uint64_t)(uintptr_t)refs_p[i], TR__HANDLE_REF);
        pthread_mutex_lock(&tr__rt->lock);
        for (size_t i = 0; i < n; i++) tr__obj_unref_locked(objs[i]);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    free(objs);
    return st;
}

tr_status_t tr_buf_release(tr_buf_h buf)
{
    tr__view_t *v = tr__handle_free((uint64_t)(uintptr_t)buf, TR__HANDLE_BUF);
    if (v == NULL) return TR_ERR_INVALID_ARG;
    tr__view_free(v);
    return TR_OK;
}
