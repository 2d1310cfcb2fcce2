#include "comm/wire.h"
#include "base/base.h"

#include <stdlib.h>

void tr__wbuf_init(tr__wbuf_t *w, size_t hint)
{
    w->cap = sizeof(tr__wire_hdr_t) + (hint ? hint : 64);
    w->buf = malloc(w->cap);
    w->len = sizeof(tr__wire_hdr_t);
    w->oom = (w->buf == NULL);
}

void tr__wbuf_put(tr__wbuf_t *w, const void *p, size_t n)
{
    if (w->oom) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap * 2;
        while (cap < w->len + n) cap *= 2;
        char *b = realloc(w->buf, cap);
        if (b == NULL) { w->oom = true; return; }
        w->buf = b; w->cap = cap;
    }
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void *tr__wbuf_finish(tr__wbuf_t *w, tr__msg_type_t type, uint32_t src, uint64_t job, size_t *len_p)
{
    if (w->oom || w->len > UINT32_MAX) { free(w->buf); w->buf = NULL; return NULL; }
    tr__wire_hdr_t h = { TR__WIRE_MAGIC, TR__WIRE_VERSION, (uint16_t)type, src, (uint32_t)w->len, job };
    memcpy(w->buf, &h, sizeof(h));
    *len_p = w->len;
    void *m = w->buf;
    w->buf = NULL;
    return m;
}

/* ------------------------------------------------------ receive checks */

static const char *const drop_names[TR__DROP_NREASONS] = {
    [TR__DROP_TRUNCATED] = "truncated", [TR__DROP_OVERSIZED] = "oversized",
    [TR__DROP_MAGIC] = "bad magic",     [TR__DROP_VERSION] = "wrong version",
    [TR__DROP_JOB] = "other job",       [TR__DROP_TYPE] = "unknown type",
    [TR__DROP_SOURCE] = "bad source",   [TR__DROP_BUNDLE] = "bad bundle part",
    [TR__DROP_NOMEM] = "out of memory",
};

const char *tr__drop_name(tr__drop_t reason)
{
    return (unsigned)reason < TR__DROP_NREASONS ? drop_names[reason] : "?";
}

int tr__wire_rx_init(tr__wire_rx_t *rx, uint64_t job, int nranks, size_t max_len)
{
    memset(rx, 0, sizeof(*rx));
    rx->job = job;
    rx->nranks = nranks;
    rx->max_len = max_len;
    for (int i = 0; i < TR__DROP_NREASONS; i++) atomic_init(&rx->dropped[i], 0);
    rx->warned = calloc((size_t)nranks + 1, sizeof(*rx->warned));
    return rx->warned ? 0 : -1;
}

void tr__wire_rx_destroy(tr__wire_rx_t *rx)
{
    free(rx->warned);
    rx->warned = NULL;
}

void tr__wire_rx_drop(tr__wire_rx_t *rx, tr__drop_t reason, int64_t src, size_t len, const char *detail)
{
    atomic_fetch_add_explicit(&rx->dropped[reason], 1, memory_order_relaxed);
    size_t who = (src >= 0 && src < rx->nranks) ? (size_t)src : (size_t)rx->nranks;
    uint16_t bit = (uint16_t)(1u << reason);
    if (rx->warned == NULL || (rx->warned[who] & bit)) return;
    rx->warned[who] |= bit;
    if (who < (size_t)rx->nranks)
        tr__warn("dropped a %zu-byte message claiming to come from rank %zu: %s (%s); later ones "
                 "from it for this reason are only counted", len, who, tr__drop_name(reason), detail);
    else
        tr__warn("dropped a %zu-byte message from an unknown sender: %s (%s); later ones for this "
                 "reason are only counted", len, tr__drop_name(reason), detail);
}

/* The reason @msg is not a valid message of this job, or -1; @detail says more. */
static int check(const tr__wire_rx_t *rx, const void *msg, size_t len, tr__wire_hdr_t *h,
                 const char **detail)
{
    if (len < sizeof(*h)) { *detail = "shorter than a header"; return TR__DROP_TRUNCATED; }
    memcpy(h, msg, sizeof(*h));
    if (h->magic != TR__WIRE_MAGIC) { *detail = "not a taskray message"; return TR__DROP_MAGIC; }
    if (h->version != TR__WIRE_VERSION) { *detail = "unsupported wire protocol version"; return TR__DROP_VERSION; }
    if (h->job != rx->job) { *detail = "its job field is not this job's"; return TR__DROP_JOB; }
    if (h->length > len) { *detail = "shorter than its length field says"; return TR__DROP_TRUNCATED; }
    if (len > rx->max_len) { *detail = "longer than TASKRAY_MAX_MESSAGE_BYTES"; return TR__DROP_OVERSIZED; }
    if (h->length < len) { *detail = "longer than its length field says"; return TR__DROP_OVERSIZED; }
    if (h->type == 0 || h->type >= TR__MSG_MAX) { *detail = "no such message type"; return TR__DROP_TYPE; }
    if ((int64_t)h->src >= rx->nranks) { *detail = "source rank out of range"; return TR__DROP_SOURCE; }
    return -1;
}

int tr__wire_rx_check(tr__wire_rx_t *rx, const void *msg, size_t len, tr__wire_hdr_t *h_p)
{
    tr__wire_hdr_t h;
    const char *detail = "";
    int why = check(rx, msg, len, &h, &detail);
    if (why < 0) { *h_p = h; return 0; }
    int64_t src = (len >= sizeof(h) && why != TR__DROP_JOB && why != TR__DROP_MAGIC) ? (int64_t)h.src : -1;
    tr__wire_rx_drop(rx, (tr__drop_t)why, src, len, detail);
    return -1;
}

int tr__wire_rx_bundle(tr__wire_rx_t *rx, const void *msg, size_t len, const tr__wire_hdr_t *h,
                       void (*fn)(void *arg, const void *part, size_t len), void *arg)
{
    const char *p = (const char *)msg + sizeof(*h), *end = (const char *)msg + len;
    const char *detail = "";
    int n = 0;
    while (p < end) {
        tr__wire_hdr_t sub;
        size_t left = (size_t)(end - p), plen = left;
        if (left >= sizeof(sub)) {
            memcpy(&sub, p, sizeof(sub));
            plen = sub.length < sizeof(sub) || sub.length > left ? left : sub.length;
        }
        int why = check(rx, p, plen, &sub, &detail);
        if (why >= 0) {
            detail = tr__drop_name((tr__drop_t)why);
            goto bad;
        }
        if (sub.type == TR__MSG_BUNDLE) { detail = "a bundle inside a bundle"; goto bad; }
        if (sub.src != h->src) { detail = "a part from another rank"; goto bad; }
        fn(arg, p, plen);
        p += plen;
        n++;
    }
    return n;
bad:
    tr__wire_rx_drop(rx, TR__DROP_BUNDLE, (int64_t)h->src, len, detail);
    return n;
}

uint64_t tr__wire_rx_total(const tr__wire_rx_t *rx)
{
    uint64_t n = 0;
    for (int i = 0; i < TR__DROP_NREASONS; i++)
        n += atomic_load_explicit(&((tr__wire_rx_t *)rx)->dropped[i], memory_order_relaxed);
    return n;
}
