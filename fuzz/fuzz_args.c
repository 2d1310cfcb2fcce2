/*
 * fuzz_args: the argument and resource encodings.
 *  - first byte even: the input drives a task (arguments inline, by ref or
 *    borrowed, a resource request); it is encoded as the owner sends it
 *    (tr__encode_req, tr__encode_args), decoded as the executor does
 *    (tr__task_decode), and every field must come back;
 *  - first byte odd: the rest is a TASK body from a peer; when it decodes,
 *    re-encoding it (tr__task_encode, as a stolen task travels) and decoding
 *    that again must give the same task.
 */
#include "fuzz_rt.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_args: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

typedef struct { const uint8_t *p; size_t n; } in_t;

static uint64_t take(in_t *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes && in->n > 0; i++, in->p++, in->n--) v |= (uint64_t)*in->p << (8 * i);
    return v;
}

static struct tr_task *decode_body(const void *body, size_t n, int *bad_p)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL) return NULL;
    memcpy(copy, body, n);
    tr__rbuf_t r;
    tr__rbuf_init(&r, copy, n);
    uint64_t id;
    uint32_t attempt;
    const char *why;
    struct tr_task *t = tr__task_decode(&r, copy, n, 1, &id, &attempt, &why);
    if (t == NULL) { free(copy); return NULL; }
    *bad_p = r.bad;
    return t;
}

static void req_same(const tr__req_t *a, const tr__req_t *b)
{
    CHECK(a->cpus == b->cpus && a->nres == b->nres && a->pg == b->pg && a->bundle == b->bundle);
    for (int i = 0; i < a->nres; i++)
        CHECK(a->res[i].amount == b->res[i].amount && strcmp(a->res[i].name, b->res[i].name) == 0);
}

static void task_same(const struct tr_task *a, const struct tr_task *b)
{
    CHECK(a->id == b->id && a->fn == b->fn && a->attempt == b->attempt && a->gen == b->gen);
    CHECK(a->nret == b->nret && a->nargs == b->nargs && a->no_steal == b->no_steal);
    req_same(&a->req, &b->req);
    for (int i = 0; i < a->nargs; i++) {
        const tr__xarg_t *x = &a->args[i], *y = &b->args[i];
        CHECK(x->kind == y->kind);
        if (x->kind == TR__VAL_INLINE) {
            CHECK(x->size == y->size && (x->size == 0 || memcmp(x->data, y->data, x->size) == 0));
            continue;
        }
        CHECK(x->owner == y->owner && x->id == y->id);
        if (x->kind == TR__VAL_REF) CHECK(x->size == y->size && x->hint == y->hint);
    }
}

/* A peer's TASK body: decode, re-encode, decode again. */
static void peer_body(const uint8_t *data, size_t size)
{
    int bad = 0, bad2 = 0;
    struct tr_task *t = decode_body(data, size, &bad);
    if (t == NULL) return;
    if (!bad) {
        tr__wbuf_t w;
        size_t len;
        tr__wbuf_init(&w, size);
        tr__task_encode(&w, t);
        char *m = tr__wbuf_finish(&w, TR__MSG_TASK, 0, FUZZ_JOB, &len);
        CHECK(m != NULL);
        struct tr_task *u = decode_body(m + sizeof(tr__wire_hdr_t), len - sizeof(tr__wire_hdr_t), &bad2);
        CHECK(u != NULL && !bad2);
        task_same(t, u);
        tr__task_free(u);
        free(m);
    }
    tr__task_free(t);
}

/* The input drives a task; the owner's encoding must decode to it. */
static void round_trip(in_t *in)
{
    tr__spec_t s;
    tr__obj_t objs[16];
    tr__fn_t fn = { fuzz_fn_id(), FUZZ_FN, fuzz_fn };
    memset(&s, 0, sizeof(s));
    memset(objs, 0, sizeof(objs));
    s.fn = &fn;
    s.id = take(in, 8);
    s.attempt = (int)(take(in, 1) & 7);
    s.gen = (int)take(in, 1);
    s.nret = 1 + (int)(take(in, 1) % TR_MAX_RETURNS);
    s.nargs = (int)(take(in, 1) % 17);
    s.no_steal = take(in, 1) & 1;
    s.req.cpus = (double)take(in, 2) / 4;
    s.req.nres = (int)(take(in, 1) % (TR__MAX_RES + 1));
    for (int i = 0; i < s.req.nres; i++) {
        snprintf(s.req.res[i].name, TR__RES_NAME_LEN, "res%u", (unsigned)take(in, 1));
        s.req.res[i].amount = (double)take(in, 4) / 8;
    }
    if (take(in, 1) & 1) { s.req.pg = take(in, 8) | 1; s.req.bundle = (int)(take(in, 2) % TR_PG_MAX_BUNDLES); }
    s.args = calloc((size_t)s.nargs + 1, sizeof(*s.args));
    if (s.args == NULL) return;
    for (int i = 0; i < s.nargs; i++) {
        unsigned kind = (unsigned)take(in, 1) % 3;
        if (kind == 0) {   /* inline: the next bytes of the input */
            size_t n = (size_t)take(in, 1);
            if (n > in->n) n = in->n;
            if ((s.args[i].blob = tr__blob_heap(n)) == NULL) goto out;
            memcpy(s.args[i].blob->data, in->p, n);
            in->p += n; in->n -= n;
            continue;
        }
        tr__obj_t *o = &objs[i];
        o->owner = (int)(take(in, 1) % FUZZ_NRANKS);
        o->id = take(in, 8);
        o->size = (size_t)take(in, 8);
        o->holder = (int)(take(in, 1) % (FUZZ_NRANKS + 1)) - 1;   /* -1: no copy known */
        s.args[i].obj = o;
        s.args[i].borrow = kind == 2;
    }
    tr__wbuf_t w;
    size_t len;
    tr__wbuf_init(&w, 64);
    tr__wbuf_u64(&w, s.id);
    tr__wbuf_u64(&w, s.fn->id);
    tr__wbuf_u32(&w, (uint32_t)s.attempt);
    tr__wbuf_u32(&w, (uint32_t)s.gen);
    tr__wbuf_u16(&w, (uint16_t)s.nret);
    tr__wbuf_u16(&w, (uint16_t)s.nargs);
    tr__wbuf_u8(&w, s.no_steal ? TR__TASK_NO_STEAL : 0);
    tr__encode_req(&w, &s.req);
    tr__encode_args(&w, &s, 1);
    char *m = tr__wbuf_finish(&w, TR__MSG_TASK, 0, FUZZ_JOB, &len);
    CHECK(m != NULL);
    int bad = 1;
    struct tr_task *t = decode_body(m + sizeof(tr__wire_hdr_t), len - sizeof(tr__wire_hdr_t), &bad);
    CHECK(t != NULL && !bad);
    CHECK(t->id == s.id && t->attempt == s.attempt && (int)t->gen == s.gen && t->nret == s.nret && t->nargs == s.nargs);
    CHECK(t->no_steal == s.no_steal);
    req_same(&t->req, &s.req);
    for (int i = 0; i < s.nargs; i++) {
        const tr__xarg_t *a = &t->args[i];
        const tr__obj_t *o = s.args[i].obj;
        if (o == NULL) {
            CHECK(a->kind == TR__VAL_INLINE && a->size == s.args[i].blob->size);
            CHECK(a->size == 0 || memcmp(a->data, s.args[i].blob->data, a->size) == 0);
        } else if (s.args[i].borrow) {
            CHECK(a->kind == TR__VAL_BORROW && a->owner == o->owner && a->id == o->id);
        } else {
            CHECK(a->kind == TR__VAL_REF && a->owner == o->owner && a->id == o->id);
            CHECK(a->size == o->size && a->hint == o->holder);
        }
    }
    tr__task_free(t);
    free(m);
out:
    for (int i = 0; i < s.nargs; i++) if (s.args[i].blob) tr__blob_unref(s.args[i].blob);
    free(s.args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rt_init();
    if (size == 0) return 0;
    if (data[0] & 1) {
        peer_body(data + 1, size - 1);
    } else {
        in_t in = { data + 1, size - 1 };
        round_trip(&in);
    }
    return 0;
}
