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

tr__obj_t *tr__obj_new(uint64_t id)
{
    tr__obj_t *o = calloc(1, sizeof(*o));
    if (o == NULL) return NULL;
    o->id = id;
    o->refcnt = 1;
    o->holder = -1;
    o->err_rank = -1;
    return o;
}

static void send_free(int holder, uint64_t off)
{
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 8);
    tr__wbuf_u64(&w, off);
    void *m = tr__wbuf_finish(&w, TR__MSG_FREE, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m) tr__comm_send(tr__rt->comm, holder, m, len);
}

void tr__obj_unref_locked(tr__obj_t *o)
{
    if (--o->refcnt > 0) return;
    if (o->blob) tr__blob_unref(o->blob);
    else if (o->state == TR__OBJ_READY && o->holder >= 0 && o->holder != tr__rt->rank &&
             tr__rt->comm != NULL && atomic_load(&tr__state) == 1)
        send_free(o->holder, o->off);
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
}

void tr__obj_set_ready_locked(tr__obj_t *o, tr__blob_t *blob, int holder, uint64_t off, size_t size)
{
    o->blob = blob;
    o->holder = holder;
    o->off = off;
    o->size = blob ? blob->size : size;
    __atomic_store_n(&o->state, TR__OBJ_READY, __ATOMIC_RELEASE);   /* read unlocked by spinners */
    wake_locked(o);
}

void tr__obj_set_failed_locked(tr__obj_t *o, tr_status_t err, int rank, const char *msg)
{
    o->err = err;
    o->err_rank = rank;
    free(o->err_msg);
    o->err_msg = strdup(msg ? msg : tr_status_string(err));
    __atomic_store_n(&o->state, TR__OBJ_FAILED, __ATOMIC_RELEASE);
    wake_locked(o);
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
        rt->peer_maps[rank] = tr__arena_map_peer(rt->boot.job_id, rank, tr__comm_arena_size(rt->comm, rank));
    void *p = rt->peer_maps[rank];
    pthread_mutex_unlock(&rt->map_lock);
    return p;
}

tr__blob_t *tr__blob_for(size_t size)
{
    if (size > tr__rt->inline_max) {
        tr__blob_t *b = tr__blob_arena(&tr__rt->arena, size);
        if (b) return b;
        tr__info("arena full: a %zu-byte value goes to the heap", size);
    }
    return tr__blob_heap(size);
}

static void unpin_obj(tr__blob_t *b)
{
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_unref_locked(b->arg);
    pthread_mutex_unlock(&tr__rt->lock);
}

static tr_status_t make_buf(tr__blob_t *b, tr_buf_h *buf_p)
{
    uint64_t h = tr__handle_alloc(TR__HANDLE_BUF, b);
    if (h == 0) { tr__blob_unref(b); return TR_ERR_NO_MEMORY; }
    *buf_p = (tr_buf_h)(uintptr_t)h;
    return TR_OK;
}

/* Copy a value held on another node into a local blob (rt->lock not held). */
static tr_status_t fetch_remote(int holder, uint64_t off, size_t size, tr__blob_t **blob_p)
{
    tr__blob_t *b = tr__blob_for(size);
    if (b == NULL) return TR_ERR_NO_MEMORY;
    tr__completion_t f = TR__COMPLETION_INIT;
    if (tr__on_executor) tr__pool_block_enter();
    tr__comm_get(tr__rt->comm, holder, off, b->data, size, tr__completion_done, &f);
    tr_status_t st = tr__completion_wait(&f);
    if (tr__on_executor) tr__pool_block_leave();
    if (st != TR_OK) {
        tr__blob_unref(b);
        tr__set_error("reading a %zu-byte object from rank %d failed", size, holder);
        return TR_ERR_OBJECT_LOST;
    }
    *blob_p = b;
    return TR_OK;
}

tr_status_t tr__obj_get(tr__obj_t *o, int64_t timeout_ms, tr_buf_h *buf_p)
{
    tr__rt_t *rt = tr__rt;
    pthread_mutex_lock(&rt->lock);
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
    if (o->blob) {
        tr__blob_t *b = o->blob;
        tr__blob_ref(b);
        pthread_mutex_unlock(&rt->lock);
        return make_buf(b, buf_p);
    }
    int holder = o->holder;
    uint64_t off = o->off;
    size_t size = o->size;
    o->refcnt++;   /* keeps the remote copy alive while we read it */
    if (rt->boot.node_of[holder] == rt->boot.node_of[rt->rank]) {
        pthread_mutex_unlock(&rt->lock);
        const char *base = tr__peer_arena(holder);
        tr__blob_t *b = base ? tr__blob_ext(base + off, size, unpin_obj, o) : NULL;
        if (b == NULL) {
            pthread_mutex_lock(&rt->lock); tr__obj_unref_locked(o); pthread_mutex_unlock(&rt->lock);
            tr__set_error("cannot map rank %d's object store", holder);
            return base ? TR_ERR_NO_MEMORY : TR_ERR_OBJECT_LOST;
        }
        return make_buf(b, buf_p);
    }
    pthread_mutex_unlock(&rt->lock);
    tr__blob_t *b = NULL;
    tr_status_t st = fetch_remote(holder, off, size, &b);
    pthread_mutex_lock(&rt->lock);
    if (st == TR_OK) {
        if (o->blob == NULL) { o->blob = b; tr__blob_ref(b); }  /* keep it as a local copy */
        else { tr__blob_unref(b); b = o->blob; tr__blob_ref(b); }
    }
    tr__obj_unref_locked(o);
    pthread_mutex_unlock(&rt->lock);
    return st == TR_OK ? make_buf(b, buf_p) : st;
}

/* ----------------------------------------------------------------- puts */

tr_status_t tr__put_blob(tr__blob_t *b, tr_ref_h *ref_p)
{
    struct tr_task *t = tr__cur_task;
    uint64_t id = t ? tr__hash2(t->ctx_id, (1ull << 63) | t->put_seq++)
                    : tr__hash2(tr__rt->root_id, (1ull << 63) | atomic_fetch_add(&tr__rt->put_seq, 1));
    tr__obj_t *o = tr__obj_new(id);
    if (o == NULL) { tr__blob_unref(b); return TR_ERR_NO_MEMORY; }
    o->is_put = 1;
    o->state = TR__OBJ_READY;
    o->blob = b;
    o->size = b->size;
    o->holder = tr__rt->rank;
    tr_status_t st = tr__ref_new(o, ref_p);
    if (st != TR_OK) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    return st;
}

/* ----------------------------------------------------------------- views */

const void *tr_buf_data(tr_buf_h buf)
{
    tr__blob_t *b = tr__handle_get((uint64_t)(uintptr_t)buf, TR__HANDLE_BUF);
    return b ? b->data : NULL;
}

size_t tr_buf_size(tr_buf_h buf)
{
    tr__blob_t *b = tr__handle_get((uint64_t)(uintptr_t)buf, TR__HANDLE_BUF);
    return b ? b->size : 0;
}

tr_status_t tr_buf_release(tr_buf_h buf)
{
    tr__blob_t *b = tr__handle_free((uint64_t)(uintptr_t)buf, TR__HANDLE_BUF);
    if (b == NULL) return TR_ERR_INVALID_ARG;
    tr__blob_unref(b);
    return TR_OK;
}
