/*
 * Transport: UCX active messages and RMA, driven by the rank's event-loop
 * thread.  Only the loop thread touches the UCX worker; other threads hand
 * it operations through a queue and wake it with ucp_worker_signal().
 */
#ifndef TR_COMM_H
#define TR_COMM_H

#include <taskray.h>
#include "comm/bootstrap.h"
#include "comm/wire.h"

typedef struct tr__comm tr__comm_t;

typedef struct tr__comm_cb {
    /* a validated message; @msg is valid only during the call (loop thread) */
    void (*recv)(void *arg, const void *msg, size_t len);
    /* a peer's endpoint failed, or it missed its heartbeats (loop thread);
     * @why says how it was noticed */
    void (*peer_failed)(void *arg, int rank, const char *why);
    /* this rank has heard no one for long: its receive queue is blocked
     * (loop thread) */
    void (*deaf)(void *arg, const char *why);
    void *arg;
} tr__comm_cb_t;

typedef void (*tr__comm_done_fn)(void *arg, tr_status_t status);

/* @spin_ns: how long the idle loop spins before it sleeps (TASKRAY_SPIN_US).
 * @hb_ms: heartbeat period (TASKRAY_HEARTBEAT_MS, 0: none); a predecessor
 * silent for @hb_timeout_ms is reported through peer_failed.  Received
 * messages longer than @max_msg bytes are dropped (TASKRAY_MAX_MESSAGE_BYTES). */
tr_status_t tr__comm_create(tr__boot_t *boot, void *arena_base, size_t arena_size, uint64_t spin_ns,
                            uint64_t hb_ms, uint64_t hb_timeout_ms, size_t max_msg,
                            const tr__comm_cb_t *cb, tr__comm_t **comm_p);
/* Queue a message (malloc'd; the transport frees it) to rank @dst; to this
 * rank itself it is received by its own loop, in order with the others. */
void        tr__comm_send(tr__comm_t *c, int dst, void *msg, size_t len);
/* Read @len bytes at offset @off of rank @holder's arena into @dst; @done
 * runs on the loop thread. */
void        tr__comm_get(tr__comm_t *c, int holder, uint64_t off, void *dst, size_t len,
                         tr__comm_done_fn done, void *arg);
size_t      tr__comm_arena_size(const tr__comm_t *c, int rank);
/* Wait until every queued operation has completed remotely.  Not from the loop thread. */
tr_status_t tr__comm_flush(tr__comm_t *c);
/* From now on a peer's endpoint closing is expected (no warning). */
void        tr__comm_closing(tr__comm_t *c);
/* Stop and join the loop thread, then close endpoints and free everything. */
void        tr__comm_destroy(tr__comm_t *c);
/* @rank died: its messages are dropped from now on, sends to it are
 * discarded and reads from it fail (any thread; idempotent). */
void        tr__comm_peer_dead(tr__comm_t *c, int rank);
/* Counters for the finalize summary and the drop-and-count checks. */
uint64_t    tr__comm_dropped(const tr__comm_t *c);
/* The same, by reason (tr__drop_t in comm/wire.h). */
void        tr__comm_drop_counts(const tr__comm_t *c, uint64_t counts[TR__DROP_NREASONS]);

#endif
