/*
 * Wire format of taskray messages.  Every message starts with a fixed
 * header; payloads are read through a bounds-checked cursor so that a
 * truncated or forged message from a peer is rejected, never trusted.
 * Integers are little-endian host order (all ranks of a job share an ABI;
 * tr_init() refuses mismatched binaries).
 */
#ifndef TR_WIRE_H
#define TR_WIRE_H

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

/* Validate a received message's header.  Returns 0, or -1 with a reason. */
int tr__wire_check(const void *msg, size_t len, uint64_t job, int nranks, const char **why_p);

#endif
