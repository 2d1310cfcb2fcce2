/*
 * UCX transport and the event loop.
 *
 * The loop thread owns the ucp_worker (UCS_THREAD_MODE_SINGLE): it drains the
 * operation queue, calls ucp_worker_progress(), spins for TASKRAY_SPIN_US
 * when idle and then sleeps in epoll on the worker's event fd, so idle ranks
 * cost no CPU.  Endpoints are created on first use with peer-failure error
 * handling.
 *
 * Failures: UCX reports a lost peer on an endpoint (keepalive, 100 ms by
 * default); as a backstop for ranks that hang, each rank sends a heartbeat
 * to its successor in the ring of live ranks and watches its predecessor.
 * Once the core declares a rank dead (tr__comm_peer_dead) its messages are
 * dropped and nothing is sent to it again.
 */
#include "comm/comm.h"
#include "comm/wire.h"
#include "base/base.h"
#include "base/completion.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <ucp/api/ucp.h>

#define TR__AM_ID 7

typedef enum { OP_SEND = 1, OP_GET, OP_FLUSH } op_type_t;

typedef struct op {
    struct op       *next;
    op_type_t        type;
    int              peer;
    void            *buf;
    size_t           len;
    uint64_t         off;
    tr__comm_done_fn done;
    void            *arg;
    tr__comm_t      *comm;
    int              force;     /* sent even to a rank declared dead */
} op_t;

typedef struct rndv {
    struct rndv *next;
    void        *desc;
    size_t       len;
} rndv_t;

typedef struct peer {
    ucp_ep_h   ep;
    int        failed;
    int        closed;       /* dead: its endpoint was closed (loop thread) */
    int        told;         /* dead: it was told so after it spoke again */
    uint64_t   arena_base;
    size_t     arena_size;
    const void *addr;        /* its worker address: points into the gathered table */
    void      *rkey_buf;     /* likewise */
    ucp_rkey_h rkey;
} peer_t;

struct tr__comm {
    tr__boot_t     *boot;
    int             rank, size;
    ucp_context_h   ctx;
    ucp_worker_h    worker;
    ucp_mem_h       memh;
    int             epfd, efd;
    peer_t         *peers;
    char           *peer_tab;  /* each rank's card (see exchange()), gathered */
    tr__comm_cb_t   cb;

    pthread_t       thread;
    int             thread_started;
    _Atomic int     stop;
    _Atomic int     closing;      /* shutdown: peers closing is expected */
    _Atomic int     sleeping;
    pthread_mutex_t qlock;
    op_t           *qhead, *qtail;
    rndv_t         *rndv_head;
    long            inflight;     /* loop thread only */
    uint64_t        spin_ns;
    tr__wire_rx_t   rx;             /* receive checks and drop counters by reason */
    _Atomic uint64_t dropped_dead;  /* messages from dead ranks, not counted as bad */
    _Atomic long    sends_pending;  /* sends posted and not yet completed */
    _Atomic uint8_t *dead;          /* per rank: declared dead by the core */
    _Atomic int     dead_new;       /* a rank was declared dead: close its endpoint */
    uint64_t        *last_heard;    /* loop thread: when a message last came from each rank */
    uint64_t        hb_ns, hb_timeout_ns, hb_next, now, prev;
    int             hb_pred, hb_succ;   /* the neighbours watched now */
    uint64_t        deaf_warned;
};

static tr_status_t ucs_err(ucs_status_t s, const char *what)
{
    tr__error("%s failed: %s", what, ucs_status_string(s));
    return TR_ERR_TRANSPORT;
}

/* ------------------------------------------------------------ endpoints */

static void ep_error_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    tr__comm_t *c = arg;
    for (int r = 0; r < c->size; r++) {
        if (c->peers[r].ep != ep) continue;
        if (!c->peers[r].failed) {
            c->peers[r].failed = 1;
            if (atomic_load(&c->closing) || atomic_load(&c->dead[r])) return;
            char why[160];
            snprintf(why, sizeof(why), "UCX reported the connection lost (%s)", ucs_status_string(status));
            if (c->cb.peer_failed) c->cb.peer_failed(c->cb.arg, r, why);
        }
        return;
    }
}

static ucp_ep_h ep_get(tr__comm_t *c, int r)
{
    peer_t *p = &c->peers[r];
    if (p->ep != NULL || (p->failed && !p->closed)) return p->ep;
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)p->addr,
        .err_mode = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler = { .cb = ep_error_cb, .arg = c },
    };
    ucs_status_t s = ucp_ep_create(c->worker, &ep, &p->ep);
    if (s != UCS_OK) {
        p->ep = NULL;
        p->failed = 1;
        if (atomic_load(&c->closing) || atomic_load(&c->dead[r])) return NULL;
        /* a peer that cannot be reached at all is as good as dead */
        char why[160];
        snprintf(why, sizeof(why), "UCX cannot connect to it (%s)", ucs_status_string(s));
        if (c->cb.peer_failed) c->cb.peer_failed(c->cb.arg, r, why);
        else tr__error("creating an endpoint to rank %d failed: %s", r, ucs_status_string(s));
        return NULL;
    }
    return p->ep;
}

static ucp_rkey_h rkey_get(tr__comm_t *c, int r, ucp_ep_h ep)
{
    peer_t *p = &c->peers[r];
    if (p->rkey) return p->rkey;
    ucs_status_t s = ucp_ep_rkey_unpack(ep, p->rkey_buf, &p->rkey);
    if (s != UCS_OK) { ucs_err(s, "ucp_ep_rkey_unpack"); p->rkey = NULL; }
    return p->rkey;
}

static void op_start(tr__comm_t *c, struct op *o);

/* Loop thread: a small message of the transport's own (a header and up to
 * 4 bytes), started at once; @force: even to a rank declared dead. */
static void send_own(tr__comm_t *c, int to, uint16_t type, const uint32_t *word, int force)
{
    size_t len = sizeof(tr__wire_hdr_t) + (word ? 4 : 0);
    char *m = malloc(len);
    op_t *o = calloc(1, sizeof(*o));
    if (m == NULL || o == NULL) { free(m); free(o); return; }
    tr__wire_hdr_t h = { TR__WIRE_MAGIC, TR__WIRE_VERSION, type, (uint32_t)c->rank, (uint32_t)len, c->boot->job_id };
    memcpy(m, &h, sizeof(h));
    if (word) memcpy(m + sizeof(h), word, 4);
    o->type = OP_SEND; o->peer = to; o->buf = m; o->len = len; o->force = force; o->comm = c;
    atomic_fetch_add(&c->sends_pending, 1);
    op_start(c, o);
}

/* A DEATH notice naming @r itself, sent even though @r is dead. */
static void tell_dead(tr__comm_t *c, int r)
{
    uint32_t who = (uint32_t)r;
    send_own(c, r, TR__MSG_DEATH, &who, 1);
}

/* Loop thread: close the endpoints of ranks declared dead.  Their pending
 * sends (a hung rank does not drain its queue) are cancelled, so that they
 * cannot hold up the transport's queues for the live ranks. */
static void close_dead(tr__comm_t *c)
{
    if (!atomic_exchange(&c->dead_new, 0)) return;
    for (int r = 0; r < c->size; r++) {
        peer_t *p = &c->peers[r];
        if (!atomic_load(&c->dead[r]) || p->closed) continue;
        p->closed = 1;
        if (p->rkey) { ucp_rkey_destroy(p->rkey); p->rkey = NULL; }
        if (p->ep == NULL) continue;
        ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = UCP_EP_CLOSE_FLAG_FORCE };
        void *req = ucp_ep_close_nbx(p->ep, &prm);
        p->ep = NULL;
        p->failed = 0;   /* a fresh endpoint may carry one notice later */
        if (req != NULL && !UCS_PTR_IS_ERR(req)) {
            while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(c->worker);
            ucp_request_free(req);
        }
    }
}

/* ------------------------------------------------------------ receiving */

static void deliver_part(void *arg, const void *part, size_t len)
{
    tr__comm_t *c = arg;
    c->cb.recv(c->cb.arg, part, len);
}

/* Every message passes the checks of tr__wire_rx_check() (a bundle's parts
 * those of tr__wire_rx_bundle()) before the core sees it: a peer of another
 * job, or one that sends garbage, is dropped and counted, never answered. */
static void deliver(tr__comm_t *c, const void *data, size_t len)
{
    tr__wire_hdr_t h;
    if (tr__wire_rx_check(&c->rx, data, len, &h) != 0) return;
    if (atomic_load(&c->dead[h.src])) {   /* gone for good: a late word is not heard */
        atomic_fetch_add(&c->dropped_dead, 1);
        if (!c->peers[h.src].told && !atomic_load(&c->closing)) {
            /* it speaks, so it only hung: it must learn that it is out */
            c->peers[h.src].told = 1;
            tell_dead(c, (int)h.src);
        }
        return;
    }
    c->last_heard[h.src] = c->now;
    if (h.type == TR__MSG_HEARTBEAT) return;
    if (h.type != TR__MSG_BUNDLE) c->cb.recv(c->cb.arg, data, len);
    else tr__wire_rx_bundle(&c->rx, data, len, &h, deliver_part, c);   /* several messages back to back */
}

static ucs_status_t am_cb(void *arg, const void *header, size_t hlen, void *data, size_t len,
                          const ucp_am_recv_param_t *param)
{
    tr__comm_t *c = arg;
    (void)header; (void)hlen;
    if (len > c->rx.max_len) {   /* before any allocation: a forged size costs nothing */
        tr__wire_rx_drop(&c->rx, TR__DROP_OVERSIZED, -1, len, "longer than TASKRAY_MAX_MESSAGE_BYTES");
        return UCS_OK;   /* UCX drops it (a rendezvous one unfetched) */
    }
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        rndv_t *r = malloc(sizeof(*r));
        if (r == NULL) { tr__error("out of memory receiving a %zu-byte message", len); return UCS_ERR_NO_MEMORY; }
        r->desc = data; r->len = len;
        r->next = c->rndv_head; c->rndv_head = r;
        return UCS_INPROGRESS;
    }
    deliver(c, data, len);
    return UCS_OK;
}

static void rndv_done(void *request, ucs_status_t status, size_t length, void *user_data)
{
    op_t *o = user_data;
    tr__comm_t *c = o->comm;
    if (status == UCS_OK) deliver(c, o->buf, length);
    else tr__warn("receiving a %zu-byte message failed: %s", o->len, ucs_status_string(status));
    c->inflight--;
    free(o->buf);
    free(o);
    if (request) ucp_request_free(request);
}

static void rndv_start(tr__comm_t *c)
{
    rndv_t *list = c->rndv_head;
    c->rndv_head = NULL;
    for (rndv_t *r = list, *n; r; r = n) {
        n = r->next;
        op_t *o = calloc(1, sizeof(*o));
        void *buf = malloc(r->len ? r->len : 1);
        if (o == NULL || buf == NULL) {
            tr__error("out of memory receiving a %zu-byte message; dropped", r->len);
            free(o); free(buf);
            ucp_am_data_release(c->worker, r->desc);
            tr__wire_rx_drop(&c->rx, TR__DROP_NOMEM, -1, r->len, "no buffer for it");
            free(r);
            continue;
        }
        o->comm = c; o->buf = buf; o->len = r->len;
        ucp_request_param_t p = {
            .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                            UCP_OP_ATTR_FLAG_NO_IMM_CMPL,
            .cb.recv_am = rndv_done, .user_data = o,
        };
        c->inflight++;
        ucs_status_ptr_t req = ucp_am_recv_data_nbx(c->worker, r->desc, buf, r->len, &p);
        if (UCS_PTR_IS_ERR(req)) rndv_done(NULL, UCS_PTR_STATUS(req), 0, o);
        free(r);
    }
}

/* ---------------------------------------------------------- operations */

static void op_done(tr__comm_t *c, op_t *o, ucs_status_t s)
{
    c->inflight--;
    if (o->type == OP_SEND) {
        if (s != UCS_OK && !c->peers[o->peer].failed && !atomic_load(&c->dead[o->peer]))
            tr__warn("send to rank %d failed: %s", o->peer, ucs_status_string(s));
        free(o->buf);
        atomic_fetch_sub(&c->sends_pending, 1);
    }
    if (o->done) o->done(o->arg, s == UCS_OK ? TR_OK : TR_ERR_TRANSPORT);
    free(o);
}

static void send_cb(void *request, ucs_status_t status, void *user_data)
{
    op_t *o = user_data;
    op_done(o->comm, o, status);
    ucp_request_free(request);
}

static void flush_cb(void *request, ucs_status_t status, void *user_data)
{
    send_cb(request, status, user_data);
}

static void op_start(tr__comm_t *c, op_t *o)
{
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = send_cb, .user_data = o,
    };
    ucs_status_ptr_t req;
    ucp_ep_h ep = NULL;
    c->inflight++;
    if (o->type != OP_FLUSH && !o->force && atomic_load(&c->dead[o->peer])) {
        op_done(c, o, UCS_ERR_CONNECTION_RESET);
        return;
    }
    if (o->type != OP_FLUSH && o->peer != c->rank && (ep = ep_get(c, o->peer)) == NULL) {
        op_done(c, o, UCS_ERR_UNREACHABLE);
        return;
    }
    if (o->type == OP_SEND && o->peer == c->rank) {   /* to itself: received here, in order */
        deliver(c, o->buf, o->len);
        op_done(c, o, UCS_OK);
        return;
    }
    switch (o->type) {
    case OP_SEND:
        /* eager only: a rendezvous message completes when its data has been
         * pulled, so a later small message could overtake it, and the
         * object protocol relies on per-peer order (a borrower's releases
         * before its task's result, a borrow's answer before the state).
         * Messages are small by design: bulk data moves by ucp_get. */
        p.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
        p.flags = UCP_AM_SEND_FLAG_EAGER;
        req = ucp_am_send_nbx(ep, TR__AM_ID, NULL, 0, o->buf, o->len, &p);
        break;
    case OP_GET: {
        ucp_rkey_h rk = rkey_get(c, o->peer, ep);
        if (rk == NULL) { op_done(c, o, UCS_ERR_INVALID_PARAM); return; }
        req = ucp_get_nbx(ep, o->buf, o->len, c->peers[o->peer].arena_base + o->off, rk, &p);
        break;
    }
    default:
        p.cb.send = flush_cb;
        req = ucp_worker_flush_nbx(c->worker, &p);
        break;
    }
    if (req == NULL) op_done(c, o, UCS_OK);
    else if (UCS_PTR_IS_ERR(req)) op_done(c, o, UCS_PTR_STATUS(req));
}

static void post(tr__comm_t *c, op_t *o)
{
    o->comm = c;
    if (o->type == OP_SEND) atomic_fetch_add(&c->sends_pending, 1);
    o->next = NULL;
    pthread_mutex_lock(&c->qlock);
    if (c->qtail) c->qtail->next = o; else c->qhead = o;
    c->qtail = o;
    pthread_mutex_unlock(&c->qlock);
    if (atomic_load(&c->sleeping)) ucp_worker_signal(c->worker);
}

#define BUNDLE_MAX  (32u << 10)   /* bytes per bundle: stays in UCX's eager path */
#define BUNDLE_PART (4u << 10)    /* messages up to this size are bundled */

/* Consecutive small sends to one peer become one active message: fewer
 * UCX operations and fewer wake-ups of the receiving loop for bursts of
 * tasks, actor calls and results.  Returns the op to start (a bundle that
 * replaced the run, or @o itself) and advances *@next_p past the run. */
static op_t *bundle(tr__comm_t *c, op_t *o, op_t **next_p)
{
    op_t *q = o->next;
    size_t total = sizeof(tr__wire_hdr_t) + o->len;
    int n = 1;
    if (o->type != OP_SEND || o->len > BUNDLE_PART || o->peer == c->rank || o->force) return o;
    for (; q && q->type == OP_SEND && !q->force && q->peer == o->peer && q->len <= BUNDLE_PART && total + q->len <= BUNDLE_MAX; q = q->next) {
        total += q->len;
        n++;
    }
    if (n < 2) return o;
    char *buf = malloc(total);
    if (buf == NULL) return o;   /* send them one by one */
    tr__wire_hdr_t h = { TR__WIRE_MAGIC, TR__WIRE_VERSION, TR__MSG_BUNDLE, (uint32_t)c->rank, (uint32_t)total, c->boot->job_id };
    memcpy(buf, &h, sizeof(h));
    size_t off = sizeof(h);
    op_t *p = o;
    for (int i = 0; i < n; i++) {
        op_t *nx = p->next;
        memcpy(buf + off, p->buf, p->len);
        off += p->len;
        free(p->buf);
        if (p != o) free(p);
        p = nx;
    }
    atomic_fetch_sub(&c->sends_pending, n - 1);   /* n sends became one */
    o->buf = buf;
    o->len = total;
    o->next = q;
    *next_p = q;
    return o;
}

static int drain(tr__comm_t *c)
{
    pthread_mutex_lock(&c->qlock);
    op_t *list = c->qhead;
    c->qhead = c->qtail = NULL;
    pthread_mutex_unlock(&c->qlock);
    int n = 0;
    for (op_t *o = list, *next; o; o = next) {
        next = o->next;
        o = bundle(c, o, &next);
        op_start(c, o);
        n++;
    }
    return n;
}

static int queue_empty(tr__comm_t *c)
{
    pthread_mutex_lock(&c->qlock);
    int e = (c->qhead == NULL);
    pthread_mutex_unlock(&c->qlock);
    return e;
}

/* ------------------------------------------------------- heartbeats */

/* The next live rank after (@dir 1) or before (@dir -1) this one; -1 alone. */
static int ring_peer(tr__comm_t *c, int dir)
{
    for (int i = 1; i < c->size; i++) {
        int r = ((c->rank + dir * i) % c->size + c->size) % c->size;
        if (!atomic_load(&c->dead[r])) return r;
    }
    return -1;
}

static void send_heartbeat(tr__comm_t *c, int to)
{
    send_own(c, to, TR__MSG_HEARTBEAT, NULL, 0);
}

/* Is neighbour @r silent for too long while the other neighbour @other is
 * heard?  Hearing no one at all says more about this rank (a shared-memory
 * queue held up by a rank that hung in the middle of writing to it) than
 * about its neighbours, which the rest of the ring watches too. */
static void watch(tr__comm_t *c, int r, int other)
{
    if (r < 0 || c->now - c->last_heard[r] <= c->hb_timeout_ns) return;
    if (other >= 0 && other != r && c->now - c->last_heard[other] > c->hb_timeout_ns / 2) {
        uint64_t quiet = c->now - (c->last_heard[r] > c->last_heard[other] ? c->last_heard[r] : c->last_heard[other]);
        if (quiet > c->hb_timeout_ns + c->hb_timeout_ns / 2 && c->cb.deaf) {
            /* half a timeout more than a hang takes to be noticed, without
             * a word from either side, while both are alive to the rest of
             * the job (their other neighbours would have written them off
             * by now): this rank's own queue is
             * blocked (UCX's shared-memory queue keeps a slot that a rank
             * killed while writing it never filled) */
            char why[200];
            snprintf(why, sizeof(why), "no message from ranks %d and %d, nor anyone, for %.0f ms", r, other,
                     (double)quiet / 1e6);
            c->cb.deaf(c->cb.arg, why);
            return;
        }
        if (c->now - c->deaf_warned > c->hb_timeout_ns) {
            c->deaf_warned = c->now;
            tr__warn("no message from ranks %d and %d for %.0f ms: not declaring either dead", r, other,
                     (double)(c->now - c->last_heard[r]) / 1e6);
        }
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "no heartbeat for %.0f ms (TASKRAY_HEARTBEAT_MS)",
             (double)(c->now - c->last_heard[r]) / 1e6);
    c->last_heard[r] = c->now;   /* report once per timeout */
    if (c->cb.peer_failed) c->cb.peer_failed(c->cb.arg, r, why);
}

static void heartbeat(tr__comm_t *c)
{
    if (c->hb_ns == 0 || c->now < c->hb_next || atomic_load(&c->stop)) return;
    c->hb_next = c->now + c->hb_ns;
    int succ = ring_peer(c, 1), pred = ring_peer(c, -1);
    /* both neighbours in the ring of live ranks hear from us, and we watch both */
    if (!atomic_load(&c->closing)) {
        if (succ >= 0) send_heartbeat(c, succ);
        if (pred >= 0 && pred != succ) send_heartbeat(c, pred);
    }
    if (c->now - c->prev > c->hb_timeout_ns / 4) {
        /* this loop was held up (a slow call, the machine): what it did not
         * hear meanwhile says nothing about the others */
        for (int r = 0; r < c->size; r++) c->last_heard[r] = c->now;
        return;
    }
    if (pred != c->hb_pred || succ != c->hb_succ) {   /* new neighbours: give them a full timeout */
        if (pred >= 0 && pred != c->hb_pred) c->last_heard[pred] = c->now;
        if (succ >= 0 && succ != c->hb_succ) c->last_heard[succ] = c->now;
        c->hb_pred = pred;
        c->hb_succ = succ;
        return;
    }
    if (atomic_load(&c->closing)) return;
    watch(c, pred, succ);
    if (succ != pred && !atomic_load(&c->dead[succ])) watch(c, succ, pred);
}

/* ------------------------------------------------------------ the loop */

static void *loop_main(void *arg)
{
    tr__comm_t *c = arg;
    uint64_t idle_since = 0, stop_since = 0;
    c->now = tr__now_ns();
    c->hb_next = c->now + c->hb_ns;
    c->hb_pred = ring_peer(c, -1);
    c->hb_succ = ring_peer(c, 1);
    for (int r = 0; r < c->size; r++) c->last_heard[r] = c->now;
    c->prev = c->now;
    for (;;) {
        /* the heartbeat check follows a progress round, so that what came
         * while this thread was busy is counted first */
        c->now = tr__now_ns();
        close_dead(c);
        int work = drain(c);
        work += (int)ucp_worker_progress(c->worker);
        heartbeat(c);
        c->prev = c->now;
        if (c->rndv_head) { rndv_start(c); work++; }
        if (work) { idle_since = 0; continue; }
        if (atomic_load(&c->stop)) {
            uint64_t now = tr__now_ns();
            if (stop_since == 0) stop_since = now;
            /* leave once sends are done; do not wait forever on a dead peer */
            if (c->inflight == 0 || now - stop_since > 2000000000ull) break;
            tr__spin_yield();
            continue;
        }
        uint64_t now = tr__now_ns();
        if (idle_since == 0) idle_since = now;
        if (now - idle_since < c->spin_ns) { tr__spin_yield(); continue; }

        atomic_store(&c->sleeping, 1);
        if (!queue_empty(c) || atomic_load(&c->stop)) { atomic_store(&c->sleeping, 0); continue; }
        ucs_status_t s = ucp_worker_arm(c->worker);
        if (s == UCS_OK) {
            struct epoll_event ev;
            int ms = 1000;
            if (c->hb_ns) {
                uint64_t t = tr__now_ns();
                ms = c->hb_next > t ? (int)((c->hb_next - t) / 1000000u) + 1 : 0;
                if (ms > 1000) ms = 1000;
            }
            int rc = epoll_wait(c->epfd, &ev, 1, ms);
            if (rc < 0 && errno != EINTR) tr__warn("epoll_wait failed: %m");
        }
        atomic_store(&c->sleeping, 0);
        idle_since = 0;
    }
    return NULL;
}

/* ---------------------------------------------------------- public part */

void tr__comm_send(tr__comm_t *c, int dst, void *msg, size_t len)
{
    op_t *o = calloc(1, sizeof(*o));
    if (o == NULL) { tr__error("out of memory queueing a message to rank %d; dropped", dst); free(msg); return; }
    o->type = OP_SEND; o->peer = dst; o->buf = msg; o->len = len;
    post(c, o);
}

void tr__comm_get(tr__comm_t *c, int holder, uint64_t off, void *dst, size_t len,
                  tr__comm_done_fn done, void *arg)
{
    op_t *o = calloc(1, sizeof(*o));
    if (o == NULL) { done(arg, TR_ERR_NO_MEMORY); return; }
    o->type = OP_GET; o->peer = holder; o->off = off; o->buf = dst; o->len = len;
    o->done = done; o->arg = arg;
    post(c, o);
}

size_t tr__comm_arena_size(const tr__comm_t *c, int rank) { return c->peers[rank].arena_size; }
uint64_t tr__comm_dropped(const tr__comm_t *c) { return tr__wire_rx_total(&c->rx); }

void tr__comm_drop_counts(const tr__comm_t *c, uint64_t counts[TR__DROP_NREASONS])
{
    for (int i = 0; i < TR__DROP_NREASONS; i++)
        counts[i] = atomic_load_explicit(&((tr__comm_t *)c)->rx.dropped[i], memory_order_relaxed);
}

void tr__comm_peer_dead(tr__comm_t *c, int rank)
{
    if (rank < 0 || rank >= c->size || rank == c->rank) return;
    atomic_store(&c->dead[rank], 1);
    atomic_store(&c->dead_new, 1);
    if (atomic_load(&c->sleeping)) ucp_worker_signal(c->worker);
}

void tr__comm_closing(tr__comm_t *c) { atomic_store(&c->closing, 1); }

/* A worker flush does not wait for sends UCX still holds pending (for
 * example on an endpoint that is still wiring up), so flush until every
 * send posted before the call has completed (bounded: a peer that stopped
 * progressing cannot hold us for ever). */
/* A flush the caller may stop waiting for: freed by the last of the two. */
typedef struct flush_wait {
    tr__completion_t c;
    _Atomic int      refs;
} flush_wait_t;

static void flush_wait_drop(flush_wait_t *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        pthread_mutex_destroy(&f->c.m);
        pthread_cond_destroy(&f->c.cv);
        free(f);
    }
}

static void flush_wait_done(void *arg, tr_status_t status)
{
    tr__completion_done(arg, status);   /* arg is the flush_wait_t, its completion first */
    flush_wait_drop(arg);
}

tr_status_t tr__comm_flush(tr__comm_t *c)
{
    tr_status_t st = TR_OK;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;   /* a peer that stopped (or died mid-send) cannot hold us for ever */
    for (;;) {
        flush_wait_t *f = calloc(1, sizeof(*f));
        op_t *o = calloc(1, sizeof(*o));
        if (f == NULL || o == NULL) { free(f); free(o); return TR_ERR_NO_MEMORY; }
        pthread_mutex_init(&f->c.m, NULL);
        pthread_cond_init(&f->c.cv, NULL);
        atomic_store(&f->refs, 2);
        o->type = OP_FLUSH; o->done = flush_wait_done; o->arg = f;
        post(c, o);
        int timed_out = 0;
        pthread_mutex_lock(&f->c.m);
        while (!f->c.done && !timed_out) timed_out = pthread_cond_timedwait(&f->c.cv, &f->c.m, &deadline) == ETIMEDOUT;
        if (f->c.done) st = f->c.status;
        pthread_mutex_unlock(&f->c.m);
        flush_wait_drop(f);
        if (atomic_load(&c->sends_pending) == 0) return st;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (timed_out || now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    tr__warn("%ld sends still pending after flushing for 5 s", (long)atomic_load(&c->sends_pending));
    return st;
}

/*
 * Transport-level defaults.  ucp_config_modify() only reaches UCT options in
 * some UCX releases (1.13 reports them as invalid), while every release reads
 * UCX_* from the environment when it opens interfaces, so set the variable
 * for this process unless the user set it.
 */
static void set_default(const char *name, const char *value)
{
    char env[128];
    snprintf(env, sizeof(env), "UCX_%s", name);
    if (setenv(env, value, 0) != 0) tr__debug("setenv(%s) failed: %m", env);
}

/* Every rank's card: its arena's base and size, its worker address and the
 * arena's packed rkey, gathered in one collective (each one costs a round
 * of the whole job, which is slow on oversubscribed nodes).  A card is
 * { u64 base, u64 size, u32 addr_len, u32 rkey_len, address, rkey }. */
#define CARD_HDR (2 * sizeof(uint64_t) + 2 * sizeof(uint32_t))

static tr_status_t exchange(tr__comm_t *c, void *arena_base, size_t arena_size)
{
    ucp_address_t *addr = NULL;
    size_t alen = 0, rkey_len = 0, *lens = NULL, *offs = NULL;
    void *rkey_buf = NULL;
    char *card = NULL;
    tr_status_t st = TR_ERR_NO_MEMORY;
    ucs_status_t s = ucp_worker_get_address(c->worker, &addr, &alen);
    if (s != UCS_OK) return ucs_err(s, "ucp_worker_get_address");
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = arena_base, .length = arena_size,
    };
    if ((s = ucp_mem_map(c->ctx, &mp, &c->memh)) != UCS_OK) { st = ucs_err(s, "ucp_mem_map of the arena"); goto out; }
    if ((s = ucp_rkey_pack(c->ctx, c->memh, &rkey_buf, &rkey_len)) != UCS_OK) { st = ucs_err(s, "ucp_rkey_pack"); goto out; }
    if ((card = malloc(CARD_HDR + alen + rkey_len)) == NULL) goto out;
    uint64_t hdr64[2] = { (uint64_t)(uintptr_t)arena_base, arena_size };
    uint32_t hdr32[2] = { (uint32_t)alen, (uint32_t)rkey_len };
    memcpy(card, hdr64, sizeof(hdr64));
    memcpy(card + sizeof(hdr64), hdr32, sizeof(hdr32));
    memcpy(card + CARD_HDR, addr, alen);
    memcpy(card + CARD_HDR + alen, rkey_buf, rkey_len);
    st = tr__boot_allgatherv(c->boot, card, CARD_HDR + alen + rkey_len, &c->peer_tab, &lens, &offs);
    if (st != TR_OK) goto out;
    for (int r = 0; r < c->size && st == TR_OK; r++) {
        char *p = c->peer_tab + offs[r];
        if (lens[r] < CARD_HDR) { st = TR_ERR_BOOTSTRAP; break; }
        memcpy(hdr64, p, sizeof(hdr64));
        memcpy(hdr32, p + sizeof(hdr64), sizeof(hdr32));
        if (CARD_HDR + (size_t)hdr32[0] + hdr32[1] != lens[r]) { st = TR_ERR_BOOTSTRAP; break; }
        c->peers[r].arena_base = hdr64[0];
        c->peers[r].arena_size = (size_t)hdr64[1];
        c->peers[r].addr = p + CARD_HDR;
        c->peers[r].rkey_buf = p + CARD_HDR + hdr32[0];
    }
    if (st != TR_OK) tr__error("the address exchange gave a malformed card");
out:
    free(card);
    free(lens);
    free(offs);
    if (rkey_buf) ucp_rkey_buffer_release(rkey_buf);
    ucp_worker_release_address(c->worker, addr);
    return st;
}

tr_status_t tr__comm_create(tr__boot_t *boot, void *arena_base, size_t arena_size, uint64_t spin_ns,
                            uint64_t hb_ms, uint64_t hb_timeout_ms, size_t max_msg,
                            const tr__comm_cb_t *cb, tr__comm_t **comm_p)
{
    tr_status_t st = TR_ERR_NO_MEMORY;
    ucs_status_t s;
    ucp_config_t *cfg = NULL;
    tr__comm_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return TR_ERR_NO_MEMORY;
    c->boot = boot; c->rank = boot->rank; c->size = boot->size; c->cb = *cb;
    c->epfd = -1;
    pthread_mutex_init(&c->qlock, NULL);
    c->spin_ns = spin_ns;
    if ((c->peers = calloc((size_t)c->size, sizeof(peer_t))) == NULL) goto err;
    if ((c->dead = calloc((size_t)c->size, sizeof(*c->dead))) == NULL) goto err;
    if ((c->last_heard = calloc((size_t)c->size, sizeof(*c->last_heard))) == NULL) goto err;
    if (tr__wire_rx_init(&c->rx, boot->job_id, c->size, max_msg) != 0) goto err;
    c->hb_ns = hb_ms * 1000000u;
    c->hb_timeout_ns = hb_timeout_ms * 1000000u;
    /* a dead peer is seen in about this long (UCX 1.13 defaults to 20 s) */
    set_default("KEEPALIVE_INTERVAL", "100ms");

    /* keep shared memory under peer-failure error handling (else UCX falls back to TCP) */
    const char *tls = getenv("UCX_TLS");
    if (tls == NULL || strncmp(tls, "^sm", 3) != 0) {   /* else UCX warns they are unused */
        set_default("POSIX_ERROR_HANDLING", "y");
        set_default("SYSV_ERROR_HANDLING", "y");
    }
    if ((s = ucp_config_read(NULL, NULL, &cfg)) != UCS_OK) { st = ucs_err(s, "ucp_config_read"); goto err; }
    ucp_params_t up = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED |
                      UCP_PARAM_FIELD_ESTIMATED_NUM_EPS,
        .features = UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0,
        .estimated_num_eps = (size_t)c->size,
    };
    s = ucp_init(&up, cfg, &c->ctx);
    ucp_config_release(cfg);
    if (s != UCS_OK) { st = ucs_err(s, "ucp_init"); goto err; }
    ucp_worker_params_t wp = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SINGLE,
    };
    if ((s = ucp_worker_create(c->ctx, &wp, &c->worker)) != UCS_OK) { st = ucs_err(s, "ucp_worker_create"); goto err; }
    ucp_am_handler_param_t ap = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id = TR__AM_ID, .cb = am_cb, .arg = c,
    };
    if ((s = ucp_worker_set_am_recv_handler(c->worker, &ap)) != UCS_OK) { st = ucs_err(s, "ucp_worker_set_am_recv_handler"); goto err; }
    if ((s = ucp_worker_get_efd(c->worker, &c->efd)) != UCS_OK) { st = ucs_err(s, "ucp_worker_get_efd"); goto err; }
    if ((c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) { tr__error("epoll_create1 failed: %m"); st = TR_ERR_SYSTEM; goto err; }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->efd };
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &ev) != 0) { tr__error("epoll_ctl failed: %m"); st = TR_ERR_SYSTEM; goto err; }

    if ((st = exchange(c, arena_base, arena_size)) != TR_OK) goto err;
    /* published before the loop starts: the first message it receives may
     * be a task whose executor answers through *comm_p at once */
    *comm_p = c;
    if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
        *comm_p = NULL;
        tr__error("cannot start the event loop thread");
        st = TR_ERR_SYSTEM;
        goto err;
    }
    c->thread_started = 1;
    return TR_OK;
err:
    tr__comm_destroy(c);
    return st;
}

static void close_eps(tr__comm_t *c)
{
    void **reqs = calloc((size_t)c->size, sizeof(void *));
    for (int r = 0; r < c->size; r++) {
        peer_t *p = &c->peers[r];
        if (p->rkey) ucp_rkey_destroy(p->rkey);
        p->rkey = NULL;
        if (p->ep == NULL) continue;
        ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = UCP_EP_CLOSE_FLAG_FORCE };
        void *req = ucp_ep_close_nbx(p->ep, &prm);
        p->ep = NULL;
        if (req && !UCS_PTR_IS_ERR(req)) {
            if (reqs) reqs[r] = req;
            else { while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(c->worker); ucp_request_free(req); }
        }
    }
    if (reqs == NULL) return;
    for (int r = 0; r < c->size; r++) {
        if (reqs[r] == NULL) continue;
        while (ucp_request_check_status(reqs[r]) == UCS_INPROGRESS) ucp_worker_progress(c->worker);
        ucp_request_free(reqs[r]);
    }
    free(reqs);
}

void tr__comm_destroy(tr__comm_t *c)
{
    if (c == NULL) return;
    atomic_store(&c->closing, 1);
    if (c->thread_started) {
        atomic_store(&c->stop, 1);
        ucp_worker_signal(c->worker);
        pthread_join(c->thread, NULL);
    }
    /* drop whatever was queued after the loop stopped */
    for (op_t *o = c->qhead, *n; o; o = n) {
        n = o->next;
        if (o->type == OP_SEND) free(o->buf);
        if (o->done) o->done(o->arg, TR_ERR_SHUTDOWN);
        free(o);
    }
    c->qhead = c->qtail = NULL;
    if (c->worker) {
        for (rndv_t *r = c->rndv_head, *n; r; r = n) { n = r->next; ucp_am_data_release(c->worker, r->desc); free(r); }
        if (c->peers) close_eps(c);
        ucp_worker_destroy(c->worker);
    }
    if (c->memh) ucp_mem_unmap(c->ctx, c->memh);
    if (c->ctx) ucp_cleanup(c->ctx);
    if (c->epfd >= 0) close(c->epfd);
    free(c->peers);
    free((void *)c->dead);
    free(c->last_heard);
    tr__wire_rx_destroy(&c->rx);
    free(c->peer_tab);
    pthread_mutex_destroy(&c->qlock);
    free(c);
}
