/*
 * Work stealing between ranks.
 *
 * Thief: a small thread per rank (the stealer) wakes when an executor finds
 * no work or a task blocks; once the pool has been idle for 200 us (no
 * runnable queued task, an executor slot free: a stream of small tasks from
 * their owners does not make it steal) it asks one victim at a time (STEAL with
 * its free resources and node): ranks of its own node first, then the
 * others, from a start that rotates every sweep, dead ranks skipped.  After
 * a fruitless sweep it asks one victim per back-off step (200 us doubling to
 * 50 ms); after about a second of nothing, or at once when no rank of a
 * whole sweep had any work (the answers say), it parks until this rank has
 * run a task again, so an idle job costs next to no CPU.  A victim remembers
 * the ranks it sent away empty-handed and, when more tasks queue up than it
 * has free executors, tells them once (a STOLEN hint): work that piles up on
 * one rank later is still found, with no polling.
 *
 * Victim (loop thread, on STEAL): gives away its oldest queued task (the
 * biggest subtree of nested work) when more runnable tasks are queued than
 * executors are free, and only a plain task that is not pinned (no_steal),
 * fits the thief's free resources and, for a thief on another node, whose
 * stored arguments total at most TASKRAY_STEAL_MAX_BYTES.  The task travels
 * in a TASK body with its true owner (STOLEN); the owner learns the new
 * executing rank directly (the victim is the owner) or by MOVED.  A task
 * stolen once stays where it landed (no chains of MOVED to order).
 */
#include "core/core.h"
#include "comm/wire.h"

#include <inttypes.h>
#include <time.h>

#define BACKOFF_MIN_NS    (200ull * 1000)
#define BACKOFF_MAX_NS    (50ull * 1000 * 1000)
#define PARK_AFTER_NS     (1000ull * 1000 * 1000)
#define ANSWER_WAIT_NS    (200ull * 1000 * 1000)   /* a victim that does not answer: next one */
#define BUSY_RECHECK_NS   (50ull * 1000 * 1000)
#define IDLE_FIRST_NS     (200ull * 1000)           /* idle this long before the first ask */

typedef struct tr__stealer {
    pthread_t        thread;
    _Atomic int      started;
    int              enabled;
    uint64_t         idle_first_ns;   /* TASKRAY_STEAL_IDLE_US */
    uint64_t         backoff_max_ns;  /* TASKRAY_STEAL_BACKOFF_MAX_US */
    pthread_mutex_t  mu;
    pthread_cond_t   cv;               /* CLOCK_MONOTONIC */
    int              stop;
    int              kicked;           /* an executor went idle, or a task blocked */
    int              victim;           /* the rank asked now, or -1 */
    int              answer;           /* -1 none yet, 0 nothing, 1 a task */
    int              victim_idle;      /* the last "nothing" came from a rank with no work at all */
    int              hint;             /* a rank that told us it has work now, or -1 */
    _Atomic uint8_t *hungry;           /* victim: ranks sent away empty-handed, not told since */
    _Atomic int      nhungry;
    int             *near, *far;       /* other ranks of this node, and of other nodes */
    int              nnear, nfar;
    uint64_t         max_bytes;        /* TASKRAY_STEAL_MAX_BYTES */
    _Atomic uint64_t stolen, given;
} tr__stealer_t;

static tr__stealer_t S = { .victim = -1, .hint = -1 };
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

/* The lock and condition live for the process: an executor may kick while
 * the stealer stops. */
static void sync_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&S.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&S.mu, NULL);
}

void tr__steal_counts(uint64_t *stolen_p, uint64_t *given_p)
{
    *stolen_p = atomic_load(&S.stolen);
    *given_p = atomic_load(&S.given);
}

void tr__steal_kick(void)
{
    if (!atomic_load_explicit(&S.started, memory_order_acquire)) return;
    pthread_mutex_lock(&S.mu);
    S.kicked = 1;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
}

/* Wait on S.cv (S.mu held) until @until (monotonic ns). */
static void wait_until(uint64_t until)
{
    struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };
    pthread_cond_timedwait(&S.cv, &S.mu, &ts);
}

/* The @j-th victim of sweep @sweep: near ranks first, each list from a
 * rotating start; -1 when that one is dead. */
static int victim_at(int sweep, int j)
{
    int r = j < S.nnear ? S.near[(sweep + j) % S.nnear] : S.far[(sweep + j - S.nnear) % S.nfar];
    return tr__rank_is_dead(r) ? -1 : r;
}

static void send_steal(int victim, const tr__req_t *cap)
{
    tr__rt_t *rt = tr__rt;
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 16 + (size_t)cap->nres * (TR__RES_NAME_LEN + 8));
    tr__wbuf_u32(&w, (uint32_t)rt->boot.node_of[rt->rank]);
    tr__encode_req(&w, cap);
    void *m = tr__wbuf_finish(&w, TR__MSG_STEAL, (uint32_t)rt->rank, rt->boot.job_id, &len);
    if (m) tr__comm_send(rt->comm, victim, m, len);
}

/* Ask @victim and wait for its answer (S.mu held); 1 when it sent a task,
 * 0 when it has work it keeps, -1 when it has none at all (or no answer). */
static int ask(int victim, const tr__req_t *cap)
{
    S.victim = victim;
    S.answer = -1;
    S.victim_idle = 1;
    pthread_mutex_unlock(&S.mu);
    send_steal(victim, cap);
    pthread_mutex_lock(&S.mu);
    uint64_t deadline = tr__now_ns() + ANSWER_WAIT_NS;
    while (S.answer < 0 && !S.stop && !tr__rank_is_dead(victim)) {
        uint64_t now = tr__now_ns(), step = now + 10ull * 1000 * 1000;
        if (now >= deadline) break;
        wait_until(step < deadline ? step : deadline);
    }
    int got = S.answer == 1 ? 1 : S.victim_idle ? -1 : 0;
    S.victim = -1;
    return got;
}

static void *steal_main(void *arg)
{
    (void)arg;
    tr__rt_t *rt = tr__rt;
    uint64_t backoff = BACKOFF_MIN_NS, quiet_since = 0, ran_at_park = 0, idle_since = 0;
    int parked = 0, sweep = rt->rank, tried = 0, nvictims = S.nnear + S.nfar;
    int busy_seen = 0;   /* a victim of this sweep had work (running or queued) */
    int prefer = -1;     /* the victim that gave us work last: asked first */
    pthread_mutex_lock(&S.mu);
    while (!S.stop) {
        S.kicked = 0;
        pthread_mutex_unlock(&S.mu);
        tr__req_t cap;
        int idle = tr__pool_idle(&rt->pool, &cap);
        pthread_mutex_lock(&S.mu);
        if (parked && atomic_load_explicit(&rt->tasks_run, memory_order_relaxed) != ran_at_park) {
            parked = 0; backoff = BACKOFF_MIN_NS; quiet_since = 0; tried = 0;
        }
        if (!idle) {   /* an executor going idle kicks us */
            idle_since = 0;
            if (!S.kicked && !S.stop) wait_until(tr__now_ns() + BUSY_RECHECK_NS);
            continue;
        }
        if (idle_since == 0 && prefer < 0) {   /* idle a moment first: a stream of small tasks refills it */
            idle_since = tr__now_ns();
            uint64_t until = idle_since + S.idle_first_ns;
            while (!S.stop && tr__now_ns() < until) wait_until(until);
            continue;
        }
        if (S.hint >= 0) {   /* a victim that refused us has work now: ask it first */
            int v = S.hint;
            S.hint = -1;
            parked = 0; backoff = BACKOFF_MIN_NS; quiet_since = 0; busy_seen = 0;
            prefer = !tr__rank_is_dead(v) && ask(v, &cap) == 1 ? v : -1;
            continue;
        }
        if (parked) {   /* an executor going idle after a task, or a hint, wakes us */
            if (!S.kicked && !S.stop) pthread_cond_wait(&S.cv, &S.mu);
            continue;
        }
        if (prefer >= 0) {   /* the last victim that had work, again at once */
            int v = prefer;
            prefer = !tr__rank_is_dead(v) && ask(v, &cap) == 1 ? v : -1;
            continue;
        }
        int v = victim_at(sweep, tried);
        int got = v >= 0 ? ask(v, &cap) : -1;
        if (got == 1) {   /* work: keep this victim first */
            backoff = BACKOFF_MIN_NS; quiet_since = 0; tried = 0; busy_seen = 0;
            prefer = v;
            continue;
        }
        busy_seen |= got == 0;
        int swept = 0;
        if (++tried >= nvictims) { tried = 0; sweep++; swept = 1; }
        uint64_t now = tr__now_ns();
        if (quiet_since == 0) {
            if (!swept) continue;   /* the first sweep asks everyone at once */
            quiet_since = now;
        }
        /* after a fruitless sweep: one victim per backoff step; park after
         * a second, or at once when no rank of a whole sweep had any work */
        if (swept && !busy_seen) quiet_since = now - PARK_AFTER_NS;
        if (swept) busy_seen = 0;
        if (now - quiet_since >= PARK_AFTER_NS) {
            parked = 1;
            ran_at_park = atomic_load_explicit(&rt->tasks_run, memory_order_relaxed);
            tr__debug("work stealing: nothing to steal; asking again when this rank has run a task or a rank has work");
            continue;
        }
        uint64_t until = now + backoff;
        while (!S.stop && tr__now_ns() < until) wait_until(until);
        backoff = backoff * 2 < S.backoff_max_ns ? backoff * 2 : S.backoff_max_ns;
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

tr_status_t tr__steal_start(void)
{
    tr__rt_t *rt = tr__rt;
    /* stealing moves work to idle cores: a rank that shares its cores with
     * other ranks (more ranks than cores) has none to offer, and its asks
     * only take CPU from the ranks that work (64 ranks on 2 cores: 7 times
     * fewer tasks per second with stealing on) */
    S.enabled = (int)tr__env_i64("TASKRAY_STEAL", rt->topo.exclusive ? 1 : 0, 0, 1);
    if (!S.enabled && getenv("TASKRAY_STEAL") == NULL)
        tr__debug("work stealing off: this rank shares its cores with other ranks (TASKRAY_STEAL=1 forces it)");
    S.idle_first_ns = (uint64_t)tr__env_i64("TASKRAY_STEAL_IDLE_US", (long long)(IDLE_FIRST_NS / 1000), 0, 1000000) * 1000;
    S.backoff_max_ns = (uint64_t)tr__env_i64("TASKRAY_STEAL_BACKOFF_MAX_US", (long long)(BACKOFF_MAX_NS / 1000),
                                             (long long)(BACKOFF_MIN_NS / 1000), 10000000) * 1000;
    S.max_bytes = (uint64_t)tr__env_i64("TASKRAY_STEAL_MAX_BYTES", 1ll << 20, 0, 1ll << 50);
    atomic_store(&S.stolen, 0);
    atomic_store(&S.given, 0);
    S.victim = -1;
    S.hint = -1;
    S.stop = 0;
    atomic_store(&S.nhungry, 0);
    if (!S.enabled || rt->size < 2) return TR_OK;
    tr__steal_free();
    if ((S.hungry = calloc((size_t)rt->size, sizeof(*S.hungry))) == NULL) goto err_mem;
    S.near = malloc(sizeof(int) * (size_t)rt->size);
    S.far = malloc(sizeof(int) * (size_t)rt->size);
    if (S.near == NULL || S.far == NULL) goto err_mem;
    S.nnear = S.nfar = 0;
    for (int i = 1; i < rt->size; i++) {
        int r = (rt->rank + i) % rt->size;
        if (tr__same_node(r, rt->rank)) S.near[S.nnear++] = r;
        else S.far[S.nfar++] = r;
    }
    pthread_once(&sync_once, sync_init);
    if (pthread_create(&S.thread, NULL, steal_main, NULL) != 0) {
        tr__warn("cannot start the work-stealing thread: %m; this rank will not steal");
        goto err_thread;
    }
    atomic_store_explicit(&S.started, 1, memory_order_release);
    return TR_OK;
err_mem:
    tr__warn("out of memory starting work stealing; this rank will not steal");
err_thread:
    free(S.near); free(S.far); free((void *)S.hungry);
    S.near = S.far = NULL;
    S.hungry = NULL;
    return TR_OK;   /* stealing is an optimization: run without it */
}

void tr__steal_stop(void)
{
    if (!atomic_load(&S.started)) return;
    pthread_mutex_lock(&S.mu);
    S.stop = 1;
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(S.thread, NULL);
    atomic_store(&S.started, 0);
    free(S.near); free(S.far);
    S.near = S.far = NULL;
}

void tr__steal_free(void)
{
    free((void *)S.hungry);   /* the loop (STEAL) and pushers read it until the transport is gone */
    S.hungry = NULL;
}

/* ------------------------------------------------------------ victim */

typedef struct steal_want {
    const tr__req_t *cap;    /* the thief's free resources */
    int              far;    /* the thief is on another node */
} steal_want_t;

static int stealable(const struct tr_task *t, void *arg)
{
    const steal_want_t *w = arg;
    const char *why;
    if (t->actor_op != TR__AOP_NONE || t->no_steal || t->fn == NULL || t->fetch_status != TR_OK) return 0;
    if (!tr__req_fits(w->cap, &t->req, &why)) return 0;
    if (!w->far) return 1;
    uint64_t bytes = 0;   /* big inputs stay near their copies */
    for (int i = 0; i < t->nargs; i++) if (t->args[i].kind == TR__VAL_REF) bytes += t->args[i].size;
    return bytes <= S.max_bytes;
}

/* No task for @thief; @idle: this rank has no work at all (neither queued
 * nor running), so the thief may stop asking sooner. */
static void send_none(int thief, int idle)
{
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 2);
    tr__wbuf_u8(&w, 0);
    tr__wbuf_u8(&w, (uint8_t)(idle != 0));
    void *m = tr__wbuf_finish(&w, TR__MSG_STOLEN, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m) tr__comm_send(tr__rt->comm, thief, m, len);
}

/* Our own task moves to @thief: its spec follows (rt->lock held).  0 when
 * the spec no longer waits for this run (the task stays here). */
static int move_own_locked(const struct tr_task *t, int thief)
{
    tr__rt_t *rt = tr__rt;
    tr__spec_t *s = tr__hmap_get(&rt->specs, t->id);
    if (s == NULL || s->actor || s->state != TR__SPEC_QUEUED || s->attempt != t->attempt ||
        s->target != rt->rank || tr__rank_is_dead(thief)) return 0;
    if (rt->sched.load[rt->rank] > 0) rt->sched.load[rt->rank]--;
    rt->sched.load[thief]++;
    s->target = thief;
    return 1;
}

static void send_moved(const struct tr_task *t, int thief)
{
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 16);
    tr__wbuf_u64(&w, t->id);
    tr__wbuf_u32(&w, (uint32_t)t->attempt);
    tr__wbuf_u32(&w, (uint32_t)thief);
    void *m = tr__wbuf_finish(&w, TR__MSG_MOVED, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m) tr__comm_send(tr__rt->comm, t->owner, m, len);
    else tr__error("out of memory telling rank %d that its task moved to rank %d", t->owner, thief);
}

static void give(struct tr_task *t, int thief)
{
    tr__rt_t *rt = tr__rt;
    tr__wbuf_t w;
    size_t len, hint = 64 + (size_t)t->nargs * 32;
    for (int i = 0; i < t->nargs; i++) if (t->args[i].kind == TR__VAL_INLINE) hint += t->args[i].size;
    tr__wbuf_init(&w, hint);
    tr__wbuf_u8(&w, 1);
    tr__wbuf_u32(&w, (uint32_t)t->owner);
    tr__task_encode(&w, t);
    void *m = tr__wbuf_finish(&w, TR__MSG_STOLEN, (uint32_t)rt->rank, rt->boot.job_id, &len);
    int moved = m != NULL;
    if (moved && t->owner == rt->rank) {
        pthread_mutex_lock(&rt->lock);
        moved = move_own_locked(t, thief);
        pthread_mutex_unlock(&rt->lock);
    }
    if (!moved) {   /* keep it: run it here */
        free(m);
        tr__pool_push(&rt->pool, t);
        send_none(thief, 0);
        return;
    }
    /* MOVED first: to a thief that owns the task it arrives before STOLEN */
    if (t->owner != rt->rank) send_moved(t, thief);
    tr__comm_send(rt->comm, thief, m, len);
    atomic_fetch_add_explicit(&S.given, 1, memory_order_relaxed);
    tr__debug("work stealing: gave task %016" PRIx64 " (owner %d) to rank %d", t->id, t->owner, thief);
    tr__task_free(t);
}

static void recv_steal(const tr__wire_hdr_t *h, tr__rbuf_t *r)
{
    tr__rt_t *rt = tr__rt;
    int thief = (int)h->src;
    uint32_t node = tr__rbuf_u32(r);
    tr__req_t cap;
    tr__decode_req(r, &cap);
    if (r->bad || thief == rt->rank) {
        tr__warn("dropped a malformed steal request from rank %d", thief);
        return;
    }
    if ((int)node != rt->boot.node_of[thief])
        tr__debug("rank %d asks for work as node %u; this rank knows it as node %d", thief, node, rt->boot.node_of[thief]);
    struct tr_task *t = NULL;
    /* started (acquire): S.hungry and S.max_bytes are set; not with TASKRAY_STEAL=0 */
    if (atomic_load_explicit(&S.started, memory_order_acquire) && atomic_load(&tr__state) == 1) {
        steal_want_t w = { &cap, !tr__same_node(thief, rt->rank) };
        t = tr__pool_steal(&rt->pool, stealable, &w);
    }
    if (t == NULL) {
        if (atomic_load_explicit(&S.started, memory_order_acquire) && !atomic_exchange(&S.hungry[thief], 1))
            atomic_fetch_add(&S.nhungry, 1);
        send_none(thief, tr__pool_busy(&rt->pool) == 0);
    }
    else give(t, thief);
}

/* More tasks queued here than executors free (tr__pool_push, any thread,
 * no lock held): tell the ranks we sent away empty-handed, once each. */
void tr__steal_surplus(void)
{
    tr__rt_t *rt = tr__rt;
    if (!atomic_load_explicit(&S.started, memory_order_acquire) ||
        atomic_load_explicit(&S.nhungry, memory_order_relaxed) == 0) return;
    for (int r = 0; r < rt->size; r++) {
        if (!atomic_load_explicit(&S.hungry[r], memory_order_relaxed) || !atomic_exchange(&S.hungry[r], 0)) continue;
        atomic_fetch_sub(&S.nhungry, 1);
        if (tr__rank_is_dead(r)) continue;
        tr__wbuf_t w;
        size_t len;
        tr__wbuf_init(&w, 1);
        tr__wbuf_u8(&w, 2);   /* no task, but ask me again */
        void *m = tr__wbuf_finish(&w, TR__MSG_STOLEN, (uint32_t)rt->rank, rt->boot.job_id, &len);
        if (m) tr__comm_send(rt->comm, r, m, len);
    }
}

/* ------------------------------------------------------------- thief */

static void answered(int victim, int got, int idle)
{
    if (!atomic_load(&S.started)) return;
    pthread_mutex_lock(&S.mu);
    if (S.victim == victim) {
        S.answer = got;
        S.victim_idle = idle;
        pthread_cond_signal(&S.cv);
    }
    pthread_mutex_unlock(&S.mu);
}

static void recv_stolen(const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    uint8_t has = tr__rbuf_u8(&r);
    if (r.bad || has > 2) { tr__warn("dropped a malformed stolen-task message from rank %u", h.src); return; }
    if (has == 2) {   /* a hint: it has work now */
        if (!atomic_load(&S.started) || (int)h.src == rt->rank) return;
        pthread_mutex_lock(&S.mu);
        S.hint = (int)h.src;
        S.kicked = 1;
        pthread_cond_signal(&S.cv);
        pthread_mutex_unlock(&S.mu);
        return;
    }
    if (has == 0) {
        uint8_t idle = tr__rbuf_u8(&r);
        if (r.bad || idle > 1) { tr__warn("dropped a malformed stolen-task message from rank %u", h.src); return; }
        answered((int)h.src, 0, idle);
        return;
    }
    void *copy = malloc(len);
    if (copy == NULL) { tr__error("out of memory receiving a stolen task from rank %u; dropped", h.src); answered((int)h.src, 0, 0); return; }
    memcpy(copy, msg, len);
    tr__wire_open(copy, len, &h, &r);
    tr__rbuf_u8(&r);
    uint32_t owner = tr__rbuf_u32(&r);
    uint64_t id = 0;
    uint32_t attempt = 0;
    const char *why = "the stolen-task message was malformed";
    struct tr_task *t = NULL;
    if (!r.bad && owner < (uint32_t)rt->size) t = tr__task_decode(&r, copy, len, (int)owner, &id, &attempt, &why);
    if (t == NULL) {
        free(copy);
        answered((int)h.src, 0, 0);
        if (why == NULL) { tr__error("out of memory receiving a stolen task; dropped"); return; }
        tr__warn("refused a malformed stolen-task message from rank %u", h.src);
        if (owner < (uint32_t)rt->size) tr__task_reply_failed((int)owner, id, attempt, why);
        return;
    }
    if (r.bad) {
        tr__warn("malformed arguments in a stolen-task message from rank %u", h.src);
        tr__task_failmsg(t, "the stolen-task message was malformed");
        t->fetch_status = TR_ERR_PROTOCOL;
    }
    t->no_steal = 1;   /* stolen once: it stays here */
    atomic_fetch_add_explicit(&S.stolen, 1, memory_order_relaxed);
    tr__debug("work stealing: got task %016" PRIx64 " (owner %d) from rank %u", t->id, t->owner, h.src);
    tr__pool_push(&rt->pool, t);
    answered((int)h.src, 1, 0);
}

/* ------------------------------------------------------------- owner */

static void send_cancel(int dst, uint64_t id)
{
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 8);
    tr__wbuf_u64(&w, id);
    void *m = tr__wbuf_finish(&w, TR__MSG_CANCEL, (uint32_t)tr__rt->rank, tr__rt->boot.job_id, &len);
    if (m) tr__comm_send(tr__rt->comm, dst, m, len);
}

static void recv_moved(const tr__wire_hdr_t *h, tr__rbuf_t *r)
{
    tr__rt_t *rt = tr__rt;
    uint64_t id = tr__rbuf_u64(r);
    uint32_t attempt = tr__rbuf_u32(r), thief = tr__rbuf_u32(r);
    if (r->bad || thief >= (uint32_t)rt->size) {
        tr__warn("dropped a malformed task-moved message from rank %u", h->src);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    tr__spec_t *s = tr__hmap_get(&rt->specs, id);
    if (s == NULL || s->actor || s->state != TR__SPEC_QUEUED || s->attempt != (int)attempt || s->target != (int)h->src) {
        /* done already (the thief's result came first), or written off */
        tr__debug("task %016" PRIx64 " moved from rank %u to rank %u: no longer queued there here", id, h->src, thief);
    } else {
        if (rt->sched.load[s->target] > 0) rt->sched.load[s->target]--;
        s->target = (int)thief;
        if (tr__rank_is_dead((int)thief)) {
            tr__spec_lost_locked(s, (int)thief);   /* as if it died running it */
        } else {
            rt->sched.load[thief]++;
            if (s->cancel_sent) send_cancel((int)thief, id);   /* the cancel went to the victim */
        }
    }
    pthread_mutex_unlock(&rt->lock);
}

void tr__steal_recv(int type, const void *msg, size_t len)
{
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    switch (type) {
    case TR__MSG_STEAL:  recv_steal(&h, &r); break;
    case TR__MSG_STOLEN: recv_stolen(msg, len); break;
    case TR__MSG_MOVED:  recv_moved(&h, &r); break;
    default: break;
    }
}
