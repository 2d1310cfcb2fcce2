/*
 * Wire format of taskray messages.  Every message starts with a fixed
 * header; payloads are read through a bounds-checked cursor so that a
 * truncated or forged message from a peer is rejected, never trusted.
 * Integers are little-endian host order (all ranks of a job share an ABI;
 * tr_init() refuses mismatched binaries).
 */
#ifndef TR_WIRE_H
#define TR_WIRE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TR__WIRE_MAGIC   0x59415254u /* "TRAY" */
#define TR__WIRE_VERSION 1

typedef enum {
    TR__MSG_TASK     = 1,  /* owner -> executor: run a task */
    TR__MSG_RESULT   = 2,  /* executor -> owner: a task's outcome */
    TR__MSG_CANCEL   = 3,  /* owner -> executor: drop a task not yet started */
    TR__MSG_FREE     = 4,  /* owner -> holders: objects freed (ids) */
    TR__MSG_SHUTDOWN = 5,  /* driver -> all: finalize */
    TR__MSG_BORROW   = 6,  /* borrower -> owner: register (tag, id); REPLY, then STATE when done */
    TR__MSG_UNBORROW = 7,  /* borrower -> owner: released (ids) */
    TR__MSG_STATE    = 8,  /* owner -> borrower: the object is done (value or error) */
    TR__MSG_LOCATE   = 9,  /* reader -> owner: where is a copy for my node? (tag, id, bad holder) */
    TR__MSG_ADD_LOC  = 10, /* reader -> owner: I pulled a copy (id, ok) */
    TR__MSG_DROP_LOC = 11, /* holder -> owner: I evicted my copies (ids) */
    TR__MSG_PIN      = 12, /* reader -> holder: pin a copy, tell me where (tag, id) */
    TR__MSG_UNPIN    = 13, /* reader -> holder: done reading (ids) */
    TR__MSG_REPLY    = 14, /* answer to BORROW, LOCATE, PIN: (tag, status, holder, fetch, off, size) */
    TR__MSG_ACREATE  = 15, /* owner -> actor's rank: construct an actor */
    TR__MSG_ACALL    = 16, /* caller -> actor's rank: run a method (in sequence order) */
    TR__MSG_AKILL    = 17, /* any -> actor's rank: kill now, or destroy once drained */
    TR__MSG_NAME     = 18, /* actor names, at the name's directory rank: register, look up, drop */
    TR__MSG_BUNDLE   = 19, /* several messages back to back (lib/comm/ucx.c) */
    TR__MSG_HEARTBEAT = 20, /* rank -> its successor among live ranks (lib/comm/ucx.c) */
    TR__MSG_DEATH    = 21, /* any -> all: these ranks died (u32 count, u32 ranks) */
    TR__MSG_FIN      = 22, /* shutdown barrier (phase, deaths seen): any -> the lowest live rank, which releases all */
    TR__MSG_ARESTART = 23, /* actor owner -> callers: the actor lives elsewhere now, or died */
    TR__MSG_ACKPT    = 24, /* actor's rank -> owner: a checkpoint of its state */
    TR__MSG_REPLICATE = 25, /* owner -> replica rank: pull and keep a copy (tag, id); REPLY */
    TR__MSG_STEAL    = 26, /* idle rank -> victim: send me queued work (lib/core/steal.c) */
    TR__MSG_STOLEN   = 27, /* victim -> thief: a task to run, or none, or "I have work now" */
    TR__MSG_MOVED    = 28, /* victim -> owner: your task now runs on the thief */
    TR__MSG_PG       = 29, /* placement groups: reserve, ready, release (lib/core/pg.c) */
    TR__MSG_MAX
} tr__msg_type_t;

typedef struct tr__wire_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t src;
    uint32_t length;   /* whole message, header included */
    uint64_t job;
} tr__wire_hdr_t;

/* TASK flags (one byte after the argument count) */
enum { TR__TASK_NO_STEAL = 1 };   /* hard placement: the executor never gives it away */

/* Argument / return value encodings */
/* How a value travels: inline bytes; a stored object (owner, id, size, a
 * holder); or a ref the task borrows (owner, id). */
enum { TR__VAL_INLINE = 1, TR__VAL_REF = 2, TR__VAL_BORROW = 3 };

/* ------------------------------------------------------------- writer */
typedef struct tr__wbuf {
    char  *buf;
    size_t len, cap;
    bool   oom;
} tr__wbuf_t;

void tr__wbuf_init(tr__wbuf_t *w, size_t reserve_hint);  /* leaves room for the header */
void tr__wbuf_put(tr__wbuf_t *w, const void *p, size_t n);
static inline void tr__wbuf_u8(tr__wbuf_t *w, uint8_t v)   { tr__wbuf_put(w, &v, 1); }
static inline void tr__wbuf_u16(tr__wbuf_t *w, uint16_t v) { tr__wbuf_put(w, &v, 2); }
static inline void tr__wbuf_u32(tr__wbuf_t *w, uint32_t v) { tr__wbuf_put(w, &v, 4); }
static inline void tr__wbuf_u64(tr__wbuf_t *w, uint64_t v) { tr__wbuf_put(w, &v, 8); }
static inline void tr__wbuf_f64(tr__wbuf_t *w, double v)   { tr__wbuf_put(w, &v, 8); }
/* Fill the header; returns the message (malloc'd, caller frees) or NULL on OOM. */
void *tr__wbuf_finish(tr__wbuf_t *w, tr__msg_type_t type, uint32_t src, uint64_t job, size_t *len_p);

/* ------------------------------------------------------------- reader */
typedef struct tr__rbuf {
    const char *p, *end;
    bool        bad;   /* set on the first overrun; later reads return zeros */
} tr__rbuf_t;

static inline void tr__rbuf_init(tr__rbuf_t *r, const void *p, size_t n)
{
    r->p = (const char *)p; r->end = r->p + n; r->bad = false;
}
static inline const void *tr__rbuf_get(tr__rbuf_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) { r->bad = true; return NULL; }
    const void *q = r->p; r->p += n; return q;
}
#define TR__RBUF_SCALAR(name, type)                                         \
    static inline type tr__rbuf_##name(tr__rbuf_t *r)                       \
    {                                                                       \
        type v = 0; const void *q = tr__rbuf_get(r, sizeof(type));          \
        if (q) memcpy(&v, q, sizeof(type));                                 \
        return v;                                                           \
    }
TR__RBUF_SCALAR(u8, uint8_t)
TR__RBUF_SCALAR(u16, uint16_t)
TR__RBUF_SCALAR(u32, uint32_t)
TR__RBUF_SCALAR(u64, uint64_t)
TR__RBUF_SCALAR(f64, double)

/* Open a validated message: copy its header, point @r at its payload. */
static inline void tr__wire_open(const void *msg, size_t len, tr__wire_hdr_t *h, tr__rbuf_t *r)
{
    memcpy(h, msg, sizeof(*h));
    tr__rbuf_init(r, (const char *)msg + sizeof(*h), len - sizeof(*h));
}

/* --------------------------------------------------- receive checks
 *
 * Peers are not trusted: every received message passes tr__wire_rx_check()
 * before anything reads it, and a bundle's parts pass tr__wire_rx_bundle().
 * A message that fails is dropped and counted by reason; the first drop of
 * each reason from each peer is logged (a warning), later ones only counted.
 */
typedef enum {
    TR__DROP_TRUNCATED = 0,  /* shorter than a header, or than its length field */
    TR__DROP_OVERSIZED,      /* longer than the cap, or than its length field */
    TR__DROP_MAGIC,          /* not a taskray message */
    TR__DROP_VERSION,        /* another wire protocol version */
    TR__DROP_JOB,            /* from another job (job field is not this job's) */
    TR__DROP_TYPE,           /* unknown message type */
    TR__DROP_SOURCE,         /* source rank out of range (or not this rank's own, for a self-send) */
    TR__DROP_BUNDLE,         /* a bad part in a bundle (it and the rest are dropped) */
    TR__DROP_NOMEM,          /* this rank ran out of memory receiving it */
    TR__DROP_NREASONS
} tr__drop_t;

#define TR__WIRE_MAX_LEN_DEFAULT ((size_t)1 << 30)   /* TASKRAY_MAX_MESSAGE_BYTES */

typedef struct tr__wire_rx {
    uint64_t         job;
    int              nranks;
    size_t           max_len;
    _Atomic uint64_t dropped[TR__DROP_NREASONS];   /* read by any thread */
    uint16_t        *warned;  /* nranks + 1 (unknown source) masks of reasons logged; receiving thread */
} tr__wire_rx_t;

/* A short name of @reason for logs and the summary ("truncated", ...). */
const char *tr__drop_name(tr__drop_t reason);
/* 0, or -1 when out of memory. */
int  tr__wire_rx_init(tr__wire_rx_t *rx, uint64_t job, int nranks, size_t max_len);
void tr__wire_rx_destroy(tr__wire_rx_t *rx);
/* Count a drop of a @len-byte message claimed from rank @src (-1: unknown)
 * and log it when it is the first of its reason from that peer. */
void tr__wire_rx_drop(tr__wire_rx_t *rx, tr__drop_t reason, int64_t src, size_t len, const char *detail);
/* Check a received message: 0 and its header in *@h_p, or -1 (dropped and
 * counted; *@h_p untouched). */
int  tr__wire_rx_check(tr__wire_rx_t *rx, const void *msg, size_t len, tr__wire_hdr_t *h_p);
/* Pass each part of the checked bundle @msg (header @h) to @fn, checked
 * like a message of its own that must also come from h->src and not be a
 * bundle.  At the first bad part the rest is dropped (TR__DROP_BUNDLE).
 * Returns the number of parts passed on. */
int  tr__wire_rx_bundle(tr__wire_rx_t *rx, const void *msg, size_t len, const tr__wire_hdr_t *h,
                        void (*fn)(void *arg, const void *part, size_t len), void *arg);
uint64_t tr__wire_rx_total(const tr__wire_rx_t *rx);


#endif
