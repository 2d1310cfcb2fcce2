/*
 * The object protocol between owners, borrowers and holders (Ray's
 * ownership design, see doc/architecture.md):
 *
 *   borrower -> owner  BORROW (register and subscribe), UNBORROW
 *   owner -> borrower  STATE (the object is done: inline value, or size and
 *                      a holder, or the error; and the refs it contains)
 *   reader -> owner    LOCATE (a copy for my node, or "pull it yourself"),
 *                      ADD_LOC (I pulled a copy), DROP_LOC (I evicted mine)
 *   reader -> holder   PIN (where is it in your arena), UNPIN
 *   owner -> holder    FREE
 *   any                REPLY to BORROW, LOCATE and PIN, matched by tag
 *
 * Every handler runs on the loop thread and treats the sender as untrusted:
 * malformed or unexpected messages are dropped with a warning.
 */
#include "core/core.h"
#include "comm/wire.h"

#include <inttypes.h>
#include <stdio.h>

/* ------------------------------------------------------------- replies */

uint64_t tr__rpc_open(tr__rpc_t *r, int nreplies)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->done.m, NULL);
    pthread_cond_init(&r->done.cv, NULL);
    r->remaining = nreplies;
    r->holder = -1;
    r->peers = r->peers_inline;
    r->cappeers = 2;
    pthread_mutex_lock(&tr__rt->lock);
    uint64_t tag = ++tr__rt->rpc_seq;
    if (nreplies > 0 && tr__hmap_put(&tr__rt->rpcs, tag, r) < 0) {
        r->remaining = 0;
        r->status = TR_ERR_NO_MEMORY;
    }
    if (r->remaining == 0) r->done.done = 1;
    pthread_mutex_unlock(&tr__rt->lock);
    return tag;
}

void tr__rpc_peer_locked(uint64_t tag, int rank)
{
    tr__rpc_t *r = tr__hmap_get(&tr__rt->rpcs, tag);
    if (r == NULL) return;
    if (tr__rt->sched.dead && tr__rt->sched.dead[rank]) {   /* it will never answer */
        tr__rpc_reply_locked(tag, -1, TR_ERR_WORKER_DIED, -1, 0, 0, 0);
        return;
    }
    if (r->npeers == r->cappeers) {
        int cap = r->cappeers * 2;
        int *n = malloc(sizeof(int) * (size_t)cap);
        if (n == NULL) return;   /* its death then goes unnoticed by this call only */
        memcpy(n, r->peers, sizeof(int) * (size_t)r->npeers);
        if (r->peers != r->peers_inline) free(r->peers);
        r->peers = n;
        r->cappeers = cap;
    }
    r->peers[r->npeers++] = rank;
}

void tr__rpc_peer(uint64_t tag, int rank)
{
    pthread_mutex_lock(&tr__rt->lock);
    tr__rpc_peer_locked(tag, rank);
    pthread_mutex_unlock(&tr__rt->lock);
}

tr_status_t tr__rpc_wait(tr__rpc_t *r)
{
    if (tr__on_executor) tr__pool_block_enter();
    tr_status_t st = tr__completion_wait(&r->done);
    if (tr__on_executor) tr__pool_block_leave();
    pthread_mutex_destroy(&r->done.m);
    pthread_cond_destroy(&r->done.cv);
    if (r->peers != r->peers_inline) free(r->peers);
    r->peers = NULL;
    return st == TR_OK ? r->status : st;
}

void tr__rpcs_rank_died_locked(int rank)
{
    tr__hmap_t *m = &tr__rt->rpcs;
    uint64_t *tags = NULL;
    int n = 0, cap = 0;
    for (size_t i = 0; m->vals && i <= m->mask; i++) {
        tr__rpc_t *r = m->vals[i];
        if (r == NULL) continue;
        for (int k = 0; k < r->npeers; k++) {
            if (r->peers[k] != rank) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                uint64_t *t = realloc(tags, sizeof(*t) * (size_t)cap);
                if (t == NULL) { tr__error("out of memory failing the requests to dead rank %d", rank); goto out; }
                tags = t;
            }
            tags[n++] = m->keys[i];
        }
    }
out:
    for (int i = 0; i < n; i++) tr__rpc_reply_locked(tags[i], rank, TR_ERR_WORKER_DIED, -1, 0, 0, 0);
    free(tags);
}

void tr__rpc_reply_locked(uint64_t tag, int src, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size)
{
    tr__rpc_t *r = tr__hmap_get(&tr__rt->rpcs, tag);
    if (r == NULL) { if (src != -1 && st != TR_ERR_WORKER_DIED) tr__warn("dropped a reply with an unknown tag"); return; }
    if (src >= 0) {   /* one reply fewer expected from it */
        for (int k = 0; k < r->npeers; k++)
            if (r->peers[k] == src) { r->peers[k] = r->peers[--r->npeers]; break; }
    }
    if (st != TR_OK && r->status == TR_OK) r->status = st;
    r->holder = holder;
    r->fetch = fetch;
    r->off = off;
    r->size = size;
    if (--r->remaining > 0) return;
    tr__hmap_del(&tr__rt->rpcs, tag);
    tr__completion_done(&r->done, r->status);
}

void tr__rpc_reply(uint64_t tag, int src, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size)
{
    pthread_mutex_lock(&tr__rt->lock);
    tr__rpc_reply_locked(tag, src, st, holder, fetch, off, size);
    pthread_mutex_unlock(&tr__rt->lock);
}

tr_status_t tr__send(int dst, tr__wbuf_t *w, int type)
{
    size_t len;
    void *m = tr__wbuf_finish(w, (tr__msg_type_t)type, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m == NULL) { tr__error("out of memory sending a message to rank %d", dst); return TR_ERR_NO_MEMORY; }
    tr__comm_send(tr__rt->comm, dst, m, len);
    return TR_OK;
}

void tr__send_borrow(int owner, uint64_t tag, uint64_t id, int who)
{
    tr__wbuf_t w;
    tr__wbuf_init(&w, 20);
    tr__wbuf_u64(&w, tag);
    tr__wbuf_u64(&w, id);
    tr__wbuf_u32(&w, (uint32_t)who);
    if (tag) tr__rpc_peer(tag, owner);
    if (tr__send(owner, &w, TR__MSG_BORROW) != TR_OK && tag) tr__rpc_reply(tag, -1, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
}

/* Answer @rank's request @tag; this rank's own requests are completed
 * directly (rt->lock held). */
void tr__reply_to_locked(int rank, uint64_t tag, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size)
{
    if (rank == tr__rt->rank) { tr__rpc_reply_locked(tag, rank, st, holder, fetch, off, size); return; }
    tr__wbuf_t w;
    tr__wbuf_init(&w, 40);
    tr__wbuf_u64(&w, tag);
    tr__wbuf_u32(&w, (uint32_t)(int32_t)st);
    tr__wbuf_u32(&w, (uint32_t)(int32_t)holder);
    tr__wbuf_u8(&w, (uint8_t)fetch);
    tr__wbuf_u64(&w, off);
    tr__wbuf_u64(&w, size);
    tr__send(rank, &w, TR__MSG_REPLY);
}

void tr__send_ids(int dst, int type, const uint64_t *vals, int n)
{
    tr__wbuf_t w;
    tr__wbuf_init(&w, 4 + 8 * (size_t)n);
    tr__wbuf_u32(&w, (uint32_t)n);
    for (int i = 0; i < n; i++) tr__wbuf_u64(&w, vals[i]);
    tr__send(dst, &w, type);
}

/* ------------------------------------------------------- owner: state */

static void send_state_locked(tr__obj_t *o, int dst)
{
    tr__wbuf_t w;
    size_t msglen = o->err_msg ? strlen(o->err_msg) : 0;
    tr__wbuf_init(&w, 64 + msglen + (o->blob ? o->blob->size : 0) + 12 * (size_t)o->ninner);
    tr__wbuf_u64(&w, o->id);
    tr__wbuf_u8(&w, o->state);
    if (o->state == TR__OBJ_FAILED) {
        tr__wbuf_u32(&w, (uint32_t)(int32_t)o->err);
        tr__wbuf_u32(&w, (uint32_t)(int32_t)o->err_rank);
        tr__wbuf_u32(&w, (uint32_t)msglen);
        tr__wbuf_put(&w, o->err_msg, msglen);
    } else {
        tr__wbuf_u8(&w, o->stored);
        tr__wbuf_u64(&w, o->size);
        if (o->stored) tr__wbuf_u32(&w, (uint32_t)(o->nlocs ? o->locs[0] : o->holder));
        else tr__wbuf_put(&w, o->blob ? o->blob->data : NULL, o->blob ? o->blob->size : 0);
        tr__wbuf_u32(&w, (uint32_t)o->ninner);
        for (int i = 0; i < o->ninner; i++) {
            tr__wbuf_u32(&w, (uint32_t)o->inner[i]->owner);
            tr__wbuf_u64(&w, o->inner[i]->id);
        }
    }
    tr__send(dst, &w, TR__MSG_STATE);
}

void tr__notify_subs_locked(tr__obj_t *o)
{
    if (tr__rt->comm == NULL || atomic_load(&tr__state) != 1) return;
    for (int i = 0; i < o->nsubs; i++) send_state_locked(o, o->subs[i]);
    free(o->subs);
    o->subs = NULL;
    o->nsubs = 0;
}

static tr__obj_t *owned(uint64_t id)
{
    tr__obj_t *o = tr__hmap_get(&tr__rt->objs, id);
    return o && o->owner == tr__rt->rank ? o : NULL;
}

/* Count one borrow of @o by @rank (subscribing it to the state). */
tr_status_t tr__borrow_add_locked(tr__obj_t *o, int rank)
{
    int i = 0;
    for (; i < o->nborrowers && o->borrowers[i].rank != rank; i++) {}
    if (i == o->nborrowers) {
        tr__borrower_t *b = realloc(o->borrowers, sizeof(*b) * (size_t)(i + 1));
        int *s = realloc(o->subs, sizeof(*s) * (size_t)(o->nsubs + 1));
        if (s) o->subs = s;
        if (b) o->borrowers = b;
        if (b == NULL || s == NULL) return TR_ERR_NO_MEMORY;
        b[i].rank = rank;
        b[i].count = 0;
        o->nborrowers++;
        if (o->state == TR__OBJ_PENDING) o->subs[o->nsubs++] = rank;
    }
    o->borrowers[i].count++;
    o->refcnt++;
    return TR_OK;
}

/* BORROW: tag, id, borrowing rank.  The borrower is usually the sender;
 * a task's executor registers the task's owner in advance for refs inside
 * the task's returns (the owner then borrows and cancels this one). */
static void recv_borrow(int src, tr__rbuf_t *r)
{
    uint64_t tag = tr__rbuf_u64(r), id = tr__rbuf_u64(r);
    int who = (int)tr__rbuf_u32(r);
    if (r->bad || who < 0 || who >= tr__rt->size) { tr__warn("dropped a malformed borrow message from rank %d", src); return; }
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_t *o = owned(id);
    tr_status_t st = o ? tr__borrow_add_locked(o, who) : TR_ERR_OBJECT_LOST;
    if (tag) tr__reply_to_locked(src, tag, st, -1, 0, 0, 0);
    if (st == TR_OK && who == src && o->state != TR__OBJ_PENDING) send_state_locked(o, src);
    pthread_mutex_unlock(&tr__rt->lock);
}

static void recv_unborrow(int src, uint64_t id)
{
    tr__obj_t *o = owned(id);
    int i = 0;
    for (; o && i < o->nborrowers && o->borrowers[i].rank != src; i++) {}
    if (o == NULL || i == o->nborrowers) {
        tr__warn("dropped a release from rank %d of object %016" PRIx64 " it does not borrow", src, id);
        return;
    }
    if (--o->borrowers[i].count == 0) {
        o->borrowers[i] = o->borrowers[--o->nborrowers];
        for (int k = 0; k < o->nsubs; k++)
            if (o->subs[k] == src) { o->subs[k] = o->subs[--o->nsubs]; break; }
    }
    tr__obj_unref_locked(o);
}

/* --------------------------------------------------- borrower: state */

static void recv_state(int src, tr__rbuf_t *r)
{
    tr__rt_t *rt = tr__rt;
    uint64_t id = tr__rbuf_u64(r);
    uint8_t state = tr__rbuf_u8(r);
    pthread_mutex_lock(&rt->lock);
    tr__obj_t *o = tr__hmap_get(&rt->objs, id);
    if (o == NULL || o->owner != src || o->state != TR__OBJ_PENDING) {
        pthread_mutex_unlock(&rt->lock);   /* released meanwhile, or a repeat */
        return;
    }
    if (state == TR__OBJ_FAILED) {
        int32_t err = (int32_t)tr__rbuf_u32(r), erank = (int32_t)tr__rbuf_u32(r);
        uint32_t mlen = tr__rbuf_u32(r);
        const char *m = tr__rbuf_get(r, mlen);
        if (!r->bad && err < 0 && err > -1000) {
            char text[768];
            snprintf(text, sizeof(text), "%.*s", (int)(mlen < sizeof(text) ? mlen : sizeof(text) - 1), m ? m : "");
            tr__obj_set_failed_locked(o, (tr_status_t)err, erank, text);
            pthread_mutex_unlock(&rt->lock);
            return;
        }
    } else if (state == TR__OBJ_READY) {
        uint8_t stored = tr__rbuf_u8(r);
        uint64_t size = tr__rbuf_u64(r);
        int holder = -1;
        tr__blob_t *b = NULL;
        if (stored) {
            holder = (int)tr__rbuf_u32(r);
            if (holder < 0 || holder >= rt->size) r->bad = true;
        } else {
            const void *d = size <= (uint64_t)(r->end - r->p) ? tr__rbuf_get(r, (size_t)size) : (r->bad = true, NULL);
            if (!r->bad && (b = tr__blob_heap((size_t)size)) != NULL && size) memcpy(b->data, d, (size_t)size);
            if (!r->bad && b == NULL) r->bad = true;
        }
        uint32_t ninner = tr__rbuf_u32(r);
        tr__iref_t *irefs = NULL;
        if (!r->bad && ninner > 0) {
            if ((uint64_t)ninner * 12 > (uint64_t)(r->end - r->p) || (irefs = malloc(sizeof(*irefs) * ninner)) == NULL)
                r->bad = true;
            for (uint32_t i = 0; !r->bad && i < ninner; i++) {
                irefs[i].owner = (int)tr__rbuf_u32(r);
                irefs[i].id = tr__rbuf_u64(r);
                if (irefs[i].owner < 0 || irefs[i].owner >= rt->size) r->bad = true;
            }
        }
        if (!r->bad) {
            o->stored = stored;
            o->irefs = irefs;
            o->ninner = (int)ninner;
            tr__obj_set_ready_locked(o, b, holder, (size_t)size);
            pthread_mutex_unlock(&rt->lock);
            return;
        }
        free(irefs);
        if (b) tr__blob_unref(b);
    }
    tr__warn("dropped a malformed object state from rank %d", src);
    pthread_mutex_unlock(&rt->lock);
}

/* ------------------------------------------------- owner: locations */

static int has_loc(const tr__obj_t *o, int rank)
{
    for (int i = 0; i < o->nlocs; i++) if (o->locs[i] == rank) return 1;
    return 0;
}

static void drop_loc_locked(tr__obj_t *o, int rank)
{
    for (int i = 0; i < o->nlocs; i++)
        if (o->locs[i] == rank) { memmove(&o->locs[i], &o->locs[i + 1], sizeof(int) * (size_t)(o->nlocs - i - 1)); o->nlocs--; return; }
}

static int add_loc_locked(tr__obj_t *o, int rank)
{
    if (has_loc(o, rank)) return 0;
    if (o->nlocs == o->caplocs) {
        int cap = o->caplocs ? o->caplocs * 2 : 2;
        int *l = realloc(o->locs, sizeof(int) * (size_t)cap);
        if (l == NULL) return -1;
        o->locs = l;
        o->caplocs = cap;
    }
    o->locs[o->nlocs++] = rank;
    return 0;
}

/* A LOCATE answered once the object has been rebuilt (or failed to be). */
typedef struct rwait {
    int      *rank;
    uint64_t *tag;
    int       n, cap;
} rwait_t;

static void rebuild_wait_locked(tr__obj_t *o, int reader, uint64_t tag)
{
    tr__rt_t *rt = tr__rt;
    rwait_t *w = tr__hmap_get(&rt->rebuild_wait, o->id);
    if (w == NULL) {
        if ((w = calloc(1, sizeof(*w))) == NULL || tr__hmap_put(&rt->rebuild_wait, o->id, w) < 0) {
            free(w);
            tr__reply_to_locked(reader, tag, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
            return;
        }
    }
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 4;
        int *r = realloc(w->rank, sizeof(int) * (size_t)cap);
        if (r) w->rank = r;
        uint64_t *t = r ? realloc(w->tag, sizeof(uint64_t) * (size_t)cap) : NULL;
        if (t == NULL) { tr__reply_to_locked(reader, tag, TR_ERR_NO_MEMORY, -1, 0, 0, 0); return; }
        w->tag = t;
        w->cap = cap;
    }
    w->rank[w->n] = reader;
    w->tag[w->n++] = tag;
}

void tr__rebuild_done_locked(tr__obj_t *o)
{
    tr__rt_t *rt = tr__rt;
    o->rebuilding = 0;
    rwait_t *w = tr__hmap_del(&rt->rebuild_wait, o->id);
    if (w == NULL) return;
    for (int i = 0; i < w->n; i++) {
        if (o->state == TR__OBJ_READY) tr__locate_locked(o, w->rank[i], w->tag[i], -1);
        else tr__reply_to_locked(w->rank[i], w->tag[i], o->state == TR__OBJ_FAILED ? o->err : TR_ERR_OBJECT_LOST, -1, 0, 0, 0);
    }
    free(w->rank);
    free(w->tag);
    free(w);
}

void tr__locate_locked(tr__obj_t *o, int reader, uint64_t tag, int bad)
{
    tr__rt_t *rt = tr__rt;
    if (bad >= 0 && bad != reader) drop_loc_locked(o, bad);
    if (bad == reader) drop_loc_locked(o, reader);
    if (o->state == TR__OBJ_PENDING && o->rebuilding) {
        rebuild_wait_locked(o, reader, tag);
        return;
    }
    if (o->state == TR__OBJ_READY && o->stored && o->nlocs == 0 && o->fetching == NULL) {
        /* every copy is gone: make it again from its lineage */
        if (tr__rebuild_locked(o) && o->state == TR__OBJ_PENDING) {
            rebuild_wait_locked(o, reader, tag);
            return;
        }
        /* no lineage, or the re-run failed at once (no live rank can run it) */
        tr__reply_to_locked(reader, tag, o->state == TR__OBJ_FAILED ? o->err : TR_ERR_OBJECT_LOST, -1, 0, 0, 0);
        return;
    }
    if (o->state == TR__OBJ_FAILED) {
        tr__reply_to_locked(reader, tag, o->err, -1, 0, 0, 0);
        return;
    }
    if (o->state != TR__OBJ_READY || !o->stored) {
        tr__reply_to_locked(reader, tag, TR_ERR_INVALID_ARG, -1, 0, 0, 0);
        return;
    }
    int node = rt->boot.node_of[reader];
    for (int i = 0; i < o->nlocs; i++)
        if (rt->boot.node_of[o->locs[i]] == node) { tr__reply_to_locked(reader, tag, TR_OK, o->locs[i], 0, 0, 0); return; }
    if (o->nlocs == 0) {
        tr__reply_to_locked(reader, tag, TR_ERR_OBJECT_LOST, -1, 0, 0, 0);
        return;
    }
    for (tr__fetch_t *f = o->fetching; f; f = f->next) {
        if (f->node != node) continue;
        /* (a fetcher that gives up reports it first, so this is never the
         * fetcher asking again: threads of one rank wait like other ranks) */
        if (f->nwait == f->capwait) {
            int cap = f->capwait ? f->capwait * 2 : 4;
            int *wr = realloc(f->wait_rank, sizeof(int) * (size_t)cap);
            if (wr) f->wait_rank = wr;
            uint64_t *wt = wr ? realloc(f->wait_tag, sizeof(uint64_t) * (size_t)cap) : NULL;
            if (wt == NULL) { tr__reply_to_locked(reader, tag, TR_ERR_NO_MEMORY, -1, 0, 0, 0); return; }
            f->wait_tag = wt;
            f->capwait = cap;
        }
        f->wait_rank[f->nwait] = reader;
        f->wait_tag[f->nwait++] = tag;
        return;
    }
    tr__fetch_t *f = calloc(1, sizeof(*f));
    if (f == NULL) { tr__reply_to_locked(reader, tag, TR_ERR_NO_MEMORY, -1, 0, 0, 0); return; }
    f->node = node;
    f->rank = reader;
    f->next = o->fetching;
    o->fetching = f;
    /* spread pulls over the copies there are */
    int pick = o->locs[(size_t)(o->id + (uint64_t)reader) % (size_t)o->nlocs];
    tr__reply_to_locked(reader, tag, TR_OK, pick, 1, 0, 0);
}

/* @rank finished pulling a copy (@ok) or gave up: answer who waited. */
void tr__fetched_locked(tr__obj_t *o, int rank, int ok)
{
    if (ok) add_loc_locked(o, rank);
    for (tr__fetch_t **pp = &o->fetching, *f; (f = *pp) != NULL; pp = &f->next) {
        if (f->rank != rank) continue;
        *pp = f->next;
        for (int i = 0; i < f->nwait; i++) {
            if (ok) tr__reply_to_locked(f->wait_rank[i], f->wait_tag[i], TR_OK, rank, 0, 0, 0);
            else tr__locate_locked(o, f->wait_rank[i], f->wait_tag[i], -1);
        }
        free(f->wait_rank);
        free(f->wait_tag);
        free(f);
        break;
    }
}

static void recv_locate(int src, tr__rbuf_t *r)
{
    uint64_t tag = tr__rbuf_u64(r), id = tr__rbuf_u64(r);
    int bad = (int32_t)tr__rbuf_u32(r);
    if (r->bad || bad < -1 || bad >= tr__rt->size) { tr__warn("dropped a malformed locate message from rank %d", src); return; }
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_t *o = owned(id);
    if (o) tr__locate_locked(o, src, tag, bad);
    else tr__reply_to_locked(src, tag, TR_ERR_OBJECT_LOST, -1, 0, 0, 0);
    pthread_mutex_unlock(&tr__rt->lock);
}

static void recv_add_loc(int src, tr__rbuf_t *r)
{
    uint64_t id = tr__rbuf_u64(r);
    uint8_t ok = tr__rbuf_u8(r);
    if (r->bad) { tr__warn("dropped a malformed location message from rank %d", src); return; }
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_t *o = owned(id);
    if (o && o->stored) tr__fetched_locked(o, src, ok);
    else if (ok && tr__rt->comm) tr__send_ids(src, TR__MSG_FREE, &id, 1);   /* freed meanwhile: drop the copy */
    pthread_mutex_unlock(&tr__rt->lock);
}

/* --------------------------------------------------------- holder side */

/* Pins held here by each reading rank, so that a reader's death releases
 * them (it never sends its UNPINs): hash(rank, id) -> entry. */
typedef struct rpin_ent {
    int      rank, n;
    uint64_t id;
} rpin_ent_t;

static void rpin_count_locked(int rank, uint64_t id, int delta)
{
    tr__rt_t *rt = tr__rt;
    uint64_t key = tr__hash2((uint64_t)rank, id);
    rpin_ent_t *e = tr__hmap_get(&rt->rpins, key);
    if (e == NULL) {
        if (delta < 0 || (e = calloc(1, sizeof(*e))) == NULL) return;
        e->rank = rank; e->id = id;
        if (tr__hmap_put(&rt->rpins, key, e) < 0) { free(e); return; }
    }
    if ((e->n += delta) <= 0) { tr__hmap_del(&rt->rpins, key); free(e); }
}

void tr__rpins_rank_died_locked(int rank)
{
    tr__rt_t *rt = tr__rt;
    tr__hmap_t *m = &rt->rpins;
    for (size_t i = 0; m->vals && i <= m->mask; i++) {
        rpin_ent_t *e = m->vals[i];
        if (e == NULL || e->rank != rank) continue;
        for (; e->n > 0; e->n--) tr__store_runpin(&rt->store, e->id);
        tr__hmap_del(m, m->keys[i]);
        free(e);
        i--;   /* the slot may hold a moved entry now */
    }
}

void tr__rpins_free(void)
{
    tr__hmap_t *m = &tr__rt->rpins;
    for (size_t i = 0; m->vals && i <= m->mask; i++) free(m->vals[i]);
    tr__hmap_destroy(m);
}

static void recv_pin(int src, tr__rbuf_t *r)
{
    uint64_t tag = tr__rbuf_u64(r), id = tr__rbuf_u64(r);
    if (r->bad) { tr__warn("dropped a malformed pin message from rank %d", src); return; }
    uint64_t off = 0, size = 0;
    tr_status_t st = tr__store_rpin(&tr__rt->store, id, &off, &size);
    pthread_mutex_lock(&tr__rt->lock);
    if (st == TR_OK) rpin_count_locked(src, id, 1);
    tr__reply_to_locked(src, tag, st, tr__rt->rank, 0, off, size);
    pthread_mutex_unlock(&tr__rt->lock);
}

static void recv_reply(int src, tr__rbuf_t *r)
{
    uint64_t tag = tr__rbuf_u64(r);
    int32_t st = (int32_t)tr__rbuf_u32(r), holder = (int32_t)tr__rbuf_u32(r);
    uint8_t fetch = tr__rbuf_u8(r);
    uint64_t off = tr__rbuf_u64(r), size = tr__rbuf_u64(r);
    if (r->bad || st > 0 || st < -1000 || holder < -1 || holder >= tr__rt->size) {
        tr__warn("dropped a malformed reply from rank %d", src);
        return;
    }
    if (st == TR_OK && size > 0 && holder >= 0) {   /* a PIN answer: the range must be in the arena */
        uint64_t cap = holder == tr__rt->rank ? tr__rt->store.arena.size : tr__comm_arena_size(tr__rt->comm, holder);
        if (off > cap || size > cap - off) { tr__warn("dropped a reply from rank %d naming bytes outside its arena", src); return; }
    }
    tr__rpc_reply(tag, src, (tr_status_t)st, holder, fetch, off, size);
}

void tr__store_evicted(void *arg, uint64_t id, int owner)
{
    (void)arg;
    if (owner != tr__rt->rank && tr__rt->comm && atomic_load(&tr__state) == 1)
        tr__send_ids(owner, TR__MSG_DROP_LOC, &id, 1);
}

/* ------------------------------------------------------------ failures */

/* Owner recovery: proxies owned by the dead @rank that an object of ours
 * contains (a task's result that returned refs to its children).  The task
 * that made the container runs again; it makes them again under the same
 * ids, and the new result names their new owner (take_irefs re-points
 * them).  Until then they are pending. */
static void orphans_locked(int rank, tr__obj_t **all, size_t n)
{
    tr__rt_t *rt = tr__rt;
    tr__obj_t **kids = NULL;
    for (size_t k = 0; k < n; k++) {
        tr__obj_t *c = all[k];
        if (c->owner != rt->rank || c->ninner == 0 || c->inner == NULL || c->lineage == NULL) continue;
        int nk = 0;
        tr__obj_t **nkids = realloc(kids, sizeof(*kids) * (size_t)c->ninner);
        if (nkids == NULL) break;
        kids = nkids;
        for (int i = 0; i < c->ninner; i++) {
            tr__obj_t *p = c->inner[i];
            if (p->owner == rank && !(p->state == TR__OBJ_READY && !p->stored) && !p->rebuilding) { p->refcnt++; kids[nk++] = p; }
        }
        if (nk == 0) continue;
        if (tr__rebuild_locked(c) && c->state == TR__OBJ_PENDING) {   /* not failed at once */
            for (int i = 0; i < nk; i++) tr__obj_unmake_locked(kids[i], 1);   /* re-pointed by take_irefs */
            tr__info("%d object%s lost their owner, rank %d: running the task that returned them again",
                     nk, nk > 1 ? "s" : "", rank);
        }
        for (int i = 0; i < nk; i++) tr__obj_unref_locked(kids[i]);
    }
    free(kids);
    /* refs whose container is gone: the task that returned them still
     * knows how to make them again */
    for (size_t k = 0; k < n; k++) {
        tr__obj_t *p = all[k];
        if (p->owner != rank || p->rebuilding || p->lineage == NULL || (p->state == TR__OBJ_READY && !p->stored)) continue;
        if (!tr__rerun_locked(p->lineage, p->id)) continue;
        tr__obj_unmake_locked(p, 1);
        tr__info("object %016" PRIx64 " lost its owner, rank %d: running the task that returned it again", p->id, rank);
    }
}

/* @rank died.  Owned objects forget it as a holder, a fetcher and a
 * borrower; proxies it owned that are still pending fail (their values can
 * no longer arrive), ready ones fail when they are read. */
void tr__objs_rank_died_locked(int rank)
{
    tr__rt_t *rt = tr__rt;
    tr__hmap_t *m = &rt->objs;
    size_t n = 0;
    tr__obj_t **all = malloc(sizeof(*all) * (m->count + 1));
    if (all == NULL) { tr__error("out of memory recovering the objects of dead rank %d", rank); return; }
    for (size_t i = 0; i <= m->mask; i++) {
        tr__obj_t *o = m->vals[i];
        if (o == NULL || (o->owner != rt->rank && o->owner != rank)) continue;
        o->refcnt++;   /* alive while we work */
        all[n++] = o;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "its owner, rank %d, died", rank);
    orphans_locked(rank, all, n);
    for (size_t k = 0; k < n; k++) {
        tr__obj_t *o = all[k];
        if (o->owner == rank) {
            /* pending and not about to be made again: its value cannot come */
            if (o->state == TR__OBJ_PENDING && !o->rebuilding) tr__obj_set_failed_locked(o, TR_ERR_OBJECT_LOST, rank, msg);
            continue;
        }
        drop_loc_locked(o, rank);
        if (o->holder == rank) o->holder = o->nlocs ? o->locs[0] : -1;
        for (tr__fetch_t *f = o->fetching; f; f = f->next)
            if (f->rank == rank) { tr__fetched_locked(o, rank, 0); break; }
        for (tr__fetch_t *f = o->fetching; f; f = f->next)   /* it waited for another node's pull */
            for (int i = 0; i < f->nwait; i++)
                if (f->wait_rank[i] == rank) { f->wait_rank[i] = f->wait_rank[--f->nwait]; f->wait_tag[i] = f->wait_tag[f->nwait]; i--; }
        for (int k2 = 0; k2 < o->nsubs; k2++)
            if (o->subs[k2] == rank) { o->subs[k2] = o->subs[--o->nsubs]; break; }
        for (int i = 0; i < o->nborrowers; i++) {
            if (o->borrowers[i].rank != rank) continue;
            int c = o->borrowers[i].count;
            o->borrowers[i] = o->borrowers[--o->nborrowers];
            while (c-- > 0) tr__obj_unref_locked(o);
            break;
        }
    }
    for (size_t k = 0; k < n; k++) tr__obj_unref_locked(all[k]);
    free(all);
}

/* ------------------------------------------------------------ dispatch */

void tr__proto_recv(int type, const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    int src = (int)h.src;
    switch (type) {
    case TR__MSG_BORROW:  recv_borrow(src, &r); return;
    case TR__MSG_STATE:   recv_state(src, &r); return;
    case TR__MSG_LOCATE:  recv_locate(src, &r); return;
    case TR__MSG_ADD_LOC: recv_add_loc(src, &r); return;
    case TR__MSG_PIN:     recv_pin(src, &r); return;
    case TR__MSG_REPLICATE: {
        /* pulling the copy waits: an executor does it, not the loop */
        uint64_t tag = tr__rbuf_u64(&r), id = tr__rbuf_u64(&r);
        if (r.bad) { tr__warn("dropped a malformed replicate message from rank %d", src); return; }
        struct tr_task *t = tr__task_new(id, NULL, src, 0, 1, 0);
        if (t == NULL) {
            pthread_mutex_lock(&rt->lock);
            tr__reply_to_locked(src, tag, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
            pthread_mutex_unlock(&rt->lock);
            return;
        }
        t->actor_op = TR__AOP_REPLICATE;
        t->aseq = tag;
        t->req.cpus = 0;
        tr__pool_push(&rt->pool, t);
        return;
    }
    case TR__MSG_REPLY:   recv_reply(src, &r); return;
    default: break;
    }
    /* the rest carry a list of ids */
    uint32_t n = tr__rbuf_u32(&r);
    if (r.bad || (uint64_t)n * 8 != (uint64_t)(r.end - r.p)) {
        tr__warn("dropped a malformed message (type %d) from rank %d", type, src);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = tr__rbuf_u64(&r);
        switch (type) {
        case TR__MSG_FREE:
            if (tr__store_remove(&rt->store, id, src) != 0)
                tr__debug("free from rank %d of object %016" PRIx64 " not held here", src, id);
            break;
        case TR__MSG_UNPIN:
            pthread_mutex_lock(&rt->lock);
            rpin_count_locked(src, id, -1);
            pthread_mutex_unlock(&rt->lock);
            if (tr__store_runpin(&rt->store, id) != 0)
                tr__warn("dropped an unpin from rank %d of object %016" PRIx64 " not pinned here", src, id);
            break;
        case TR__MSG_UNBORROW:
            pthread_mutex_lock(&rt->lock);
            recv_unborrow(src, id);
            pthread_mutex_unlock(&rt->lock);
            break;
        case TR__MSG_DROP_LOC: {
            pthread_mutex_lock(&rt->lock);
            tr__obj_t *o = owned(id);
            if (o) drop_loc_locked(o, src);
            pthread_mutex_unlock(&rt->lock);
            break;
        }
        default:
            break;
        }
    }
}
