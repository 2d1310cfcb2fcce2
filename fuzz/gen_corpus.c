/*
 * Writes the seed corpus of the fuzz targets: `gen_corpus DIR` fills
 * DIR/fuzz_wire, DIR/fuzz_args and DIR/fuzz_spill with valid inputs made by
 * the library's own encoders (and a few edge cases).  The committed corpus
 * under fuzz/corpus/ came from it (fuzz/README.md); built by fuzz/fuzz.mk.
 */
#include "fuzz_rt.h"
#include "fuzz_spill.h"

#include <errno.h>
#include <sys/stat.h>

static char root[4096];

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); exit(1); }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) { perror(path); exit(1); }
}

/* @w's message as it goes on the wire; the caller frees it. */
static char *finish(tr__wbuf_t *w, int type, uint32_t src, size_t *len_p)
{
    char *m = tr__wbuf_finish(w, (tr__msg_type_t)type, src, FUZZ_JOB, len_p);
    if (m == NULL) abort();
    return m;
}

static struct tr_task *sample_task(int with_pg)
{
    static const char small[] = "hello, task";
    struct tr_task *t = tr__task_new(UINT64_C(0x1111222233334444), tr__fn_by_id(fuzz_fn_id()), 1, 0, 2, 4);
    if (t == NULL) abort();
    t->gen = 1;
    t->req.cpus = 1.5;
    t->req.nres = 1;
    snprintf(t->req.res[0].name, TR__RES_NAME_LEN, "GPU");
    t->req.res[0].amount = 1;
    if (with_pg) { t->req.pg = 0x77; t->req.bundle = 2; t->no_steal = 1; }
    t->args[0] = (tr__xarg_t){ .kind = TR__VAL_INLINE, .data = small, .size = sizeof(small) };
    t->args[1] = (tr__xarg_t){ .kind = TR__VAL_INLINE, .data = "", .size = 0 };
    t->args[2] = (tr__xarg_t){ .kind = TR__VAL_REF, .owner = 2, .id = 0xabc, .size = 1 << 20, .hint = 3 };
    t->args[3] = (tr__xarg_t){ .kind = TR__VAL_BORROW, .owner = 3, .id = 0xdef };
    return t;
}

static char *task_msg(int with_pg, size_t *len_p)
{
    struct tr_task *t = sample_task(with_pg);
    tr__wbuf_t w;
    tr__wbuf_init(&w, 128);
    tr__task_encode(&w, t);
    t->args[0].data = t->args[1].data = NULL;
    tr__task_free(t);
    return finish(&w, TR__MSG_TASK, 1, len_p);
}

static char *result_msg(int ok, size_t *len_p)
{
    tr__wbuf_t w;
    const char *msg = ok ? "" : "it returned an error";
    tr__wbuf_init(&w, 64);
    tr__wbuf_u64(&w, UINT64_C(0x1111222233334444));
    tr__wbuf_u32(&w, 0);
    tr__wbuf_u8(&w, ok ? 0 : 1);
    tr__wbuf_u32(&w, (uint32_t)strlen(msg));
    tr__wbuf_put(&w, msg, strlen(msg));
    tr__wbuf_u16(&w, ok ? 2 : 0);
    if (ok) {
        tr__wbuf_u8(&w, TR__VAL_INLINE);   /* a small value containing one ref */
        tr__wbuf_u64(&w, 5);
        tr__wbuf_put(&w, "value", 5);
        tr__wbuf_u32(&w, 1);
        tr__wbuf_u32(&w, 2);
        tr__wbuf_u64(&w, 0x5151);
        tr__wbuf_u8(&w, TR__VAL_REF);      /* a large one, stored on the executor */
        tr__wbuf_u64(&w, 1 << 22);
        tr__wbuf_u32(&w, 0);
    }
    return finish(&w, TR__MSG_RESULT, 1, len_p);
}

static void wire(void)
{
    size_t len, l2, l3;
    tr__wbuf_t w;
    char *m, *a, *b;
    tr__req_t req = { .cpus = 2, .nres = 1, .res = { { "memory", 1e9 } } };

    put("fuzz_wire", "task", m = task_msg(0, &len), len); free(m);
    put("fuzz_wire", "task-pg", m = task_msg(1, &len), len); free(m);
    put("fuzz_wire", "result-ok", m = result_msg(1, &len), len); free(m);
    put("fuzz_wire", "result-fail", m = result_msg(0, &len), len); free(m);

    tr__wbuf_init(&w, 8);
    tr__wbuf_u64(&w, 0x1234);
    put("fuzz_wire", "cancel", m = finish(&w, TR__MSG_CANCEL, 1, &len), len); free(m);

    tr__wbuf_init(&w, 64);
    tr__wbuf_u32(&w, 0);
    tr__encode_req(&w, &req);
    put("fuzz_wire", "steal", m = finish(&w, TR__MSG_STEAL, 2, &len), len); free(m);

    tr__wbuf_init(&w, 2);
    tr__wbuf_u8(&w, 0);
    tr__wbuf_u8(&w, 1);
    put("fuzz_wire", "stolen-none", m = finish(&w, TR__MSG_STOLEN, 2, &len), len); free(m);

    struct tr_task *t = sample_task(0);
    tr__wbuf_init(&w, 128);
    tr__wbuf_u8(&w, 1);
    tr__wbuf_u32(&w, 1);
    tr__task_encode(&w, t);
    t->args[0].data = t->args[1].data = NULL;
    tr__task_free(t);
    put("fuzz_wire", "stolen-task", m = finish(&w, TR__MSG_STOLEN, 2, &len), len); free(m);

    tr__wbuf_init(&w, 16);
    tr__wbuf_u64(&w, 0x1234);
    tr__wbuf_u32(&w, 0);
    tr__wbuf_u32(&w, 3);
    put("fuzz_wire", "moved", m = finish(&w, TR__MSG_MOVED, 2, &len), len); free(m);

    tr__wbuf_init(&w, 64);
    tr__wbuf_u8(&w, 1);   /* PG_RESERVE */
    tr__wbuf_u64(&w, 0x77);
    tr__wbuf_u32(&w, 1);
    tr__encode_req(&w, &req);
    put("fuzz_wire", "pg-reserve", m = finish(&w, TR__MSG_PG, 0, &len), len); free(m);

    /* a bundle: TASK, RESULT, CANCEL from rank 1 */
    a = task_msg(0, &l2);
    b = result_msg(1, &l3);
    tr__wbuf_init(&w, l2 + l3 + 64);
    tr__wbuf_put(&w, a + 0, l2);
    tr__wbuf_put(&w, b, l3);
    m = finish(&w, TR__MSG_BUNDLE, 1, &len);
    put("fuzz_wire", "bundle", m, len);
    /* edge cases: a bundle whose last part overruns it; a truncated task */
    tr__wire_hdr_t h;
    memcpy(&h, m + sizeof(h) + l2, sizeof(h));
    h.length += 9;
    memcpy(m + sizeof(h) + l2, &h, sizeof(h));
    put("fuzz_wire", "edge-bundle-overrun", m, len);
    free(m); free(b);
    memcpy(&h, a, sizeof(h));
    h.length = (uint32_t)(l2 - 7);
    memcpy(a, &h, sizeof(h));
    put("fuzz_wire", "edge-task-truncated", a, l2 - 7);
    free(a);

    tr__wbuf_init(&w, 0);
    put("fuzz_wire", "edge-heartbeat", m = finish(&w, TR__MSG_HEARTBEAT, 3, &len), len); free(m);
}

static void args(void)
{
    size_t len;
    char *m = task_msg(1, &len), *body = m + sizeof(tr__wire_hdr_t) - 1;
    body[0] = 1;   /* mode: a peer's body */
    put("fuzz_args", "body-task-pg", body, len - sizeof(tr__wire_hdr_t) + 1);
    free(m);
    m = task_msg(0, &len);
    body = m + sizeof(tr__wire_hdr_t) - 1;
    body[0] = 1;
    put("fuzz_args", "body-task", body, len - sizeof(tr__wire_hdr_t) + 1);
    free(m);
    /* mode 0: bytes that drive a task (see round_trip in fuzz_args.c) */
    static const uint8_t drive1[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 2, 3, 1, 8, 0, 1, 9, 4, 0, 0, 0, 0,
                                      0, 5, 'a', 'b', 'c', 'd', 'e', 1, 2, 9, 9, 9, 9, 9, 9, 9, 9, 0, 1, 0, 0, 0,
                                      0, 0, 0, 0, 3, 2, 1, 7, 7, 7, 7, 7, 7, 7, 7 };
    static const uint8_t drive2[] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 7, 3, 63, 16, 0,
                                      0xff, 0xff, 16, 1, 0xff, 0xff, 0xff, 0xff, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 3 };
    put("fuzz_args", "drive-mixed", drive1, sizeof(drive1));
    put("fuzz_args", "drive-many", drive2, sizeof(drive2));
    static const uint8_t edge[] = { 1, 0 };
    put("fuzz_args", "edge-body-short", edge, sizeof(edge));
}

static void spill_one(const char *name, int enc, size_t size, int hdr_size)
{
    char path[4200];
    unsigned char *data = malloc(size + 1);
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)(i * 31 + 7);
    tr__spill_t *s = &fuzz_spill[enc];
    if (tr__spill_write(s, FUZZ_SPILL_OBJ, data, size) != TR_OK) abort();
    tr__spill_path(s, FUZZ_SPILL_OBJ, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(size + TR__SPILL_HDR_SIZE + 1);
    buf[0] = (unsigned char)((enc ? FUZZ_SPILL_ENC : 0) | (hdr_size ? FUZZ_SPILL_HDR_SIZE : 0));
    size_t n = fread(buf + 1, 1, size + TR__SPILL_HDR_SIZE, f);
    fclose(f);
    if (n != size + TR__SPILL_HDR_SIZE) abort();
    put("fuzz_spill", name, buf, n + 1);
    if (strcmp(name, "plain-100") == 0) {   /* edge cases: one data bit flipped; cut short */
        buf[1 + TR__SPILL_HDR_SIZE + 10] ^= 1;
        put("fuzz_spill", "edge-plain-flipped", buf, n + 1);
        buf[0] |= FUZZ_SPILL_HDR_SIZE;
        put("fuzz_spill", "edge-plain-cut", buf, n + 1 - 40);
    }
    tr__spill_remove(s, FUZZ_SPILL_OBJ);
    free(buf);
    free(data);
}

static void spill(void)
{
    fuzz_spill_init();
    spill_one("plain-0", 0, 0, 0);
    spill_one("plain-1", 0, 1, 1);
    spill_one("plain-100", 0, 100, 0);
    spill_one("plain-3000", 0, 3000, 1);
    spill_one("enc-0", 1, 0, 0);
    spill_one("enc-100", 1, 100, 1);
    spill_one("enc-2000", 1, 2000, 0);
    static const uint8_t edge[] = { 2, 'T', 'R', 'S', 'P', 'I', 'L', 'L', '1' };
    put("fuzz_spill", "edge-magic-only", edge, sizeof(edge));
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: gen_corpus DIR\n"); return 2; }
    snprintf(root, sizeof(root), "%s", argv[1]);
    if (mkdir(root, 0755) != 0 && errno != EEXIST) { perror(root); return 1; }
    fuzz_rt_init();
    wire();
    args();
    spill();
    return 0;
}
