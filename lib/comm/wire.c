#include "comm/wire.h"

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

int tr__wire_check(const void *msg, size_t len, uint64_t job, int nranks, const char **why_p)
{
    tr__wire_hdr_t h;
    if (len < sizeof(h)) { *why_p = "shorter than a header"; return -1; }
    memcpy(&h, msg, sizeof(h));
    if (h.magic != TR__WIRE_MAGIC) { *why_p = "bad magic"; return -1; }
    if (h.version != TR__WIRE_VERSION) { *why_p = "unsupported protocol version"; return -1; }
    if (h.type == 0 || h.type >= TR__MSG_MAX) { *why_p = "unknown message type"; return -1; }
    if (h.length != len) { *why_p = "length field does not match the received size"; return -1; }
    if (h.job != job) { *why_p = "message from another job"; return -1; }
    if ((int64_t)h.src >= nranks) { *why_p = "source rank out of range"; return -1; }
    return 0;
}

int tr__wire_split(const void *msg, size_t len, uint64_t job, int nranks,
                   void (*part)(void *arg, const void *p, size_t n), void *arg, const char **why_p)
{
    tr__wire_hdr_t h;
    memcpy(&h, msg, sizeof(h));
    const char *p = (const char *)msg + sizeof(h), *end = (const char *)msg + len;
    while (p < end) {
        tr__wire_hdr_t sub;
        if ((size_t)(end - p) < sizeof(sub)) { *why_p = "truncated"; return -1; }
        memcpy(&sub, p, sizeof(sub));
        if (sub.length < sizeof(sub) || sub.length > (size_t)(end - p)) { *why_p = "a part overruns it"; return -1; }
        if (sub.type == TR__MSG_BUNDLE || sub.src != h.src) { *why_p = "a part is a bundle or from another rank"; return -1; }
        if (tr__wire_check(p, sub.length, job, nranks, why_p) != 0) return -1;
        part(arg, p, sub.length);
        p += sub.length;
    }
    return 0;
}
