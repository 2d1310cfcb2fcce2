/*
 * fuzz_wire: a whole message as a peer would send it.  The header checks
 * (tr__wire_rx_check), a BUNDLE split into its parts (tr__wire_rx_bundle, as
 * lib/comm/ucx.c delivers them), then per part the body decoders that need
 * no running job: TASK (tr__task_decode, tr__decode_req, tr__decode_args),
 * RESULT (tr__result_check), STOLEN (a task body), STEAL and PG (a
 * resource request), MOVED and CANCEL (fixed fields).
 */
#include "fuzz_rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A TASK body from @r on: decoded into a task the way the executor does. */
static void task_body(const void *msg, size_t len, size_t off, int owner)
{
    void *copy = malloc(len ? len : 1);
    if (copy == NULL) return;
    memcpy(copy, msg, len);
    tr__rbuf_t r;
    tr__rbuf_init(&r, (char *)copy + off, len - off);
    uint64_t id;
    uint32_t attempt;
    const char *why;
    struct tr_task *t = tr__task_decode(&r, copy, len, owner, &id, &attempt, &why);
    if (t == NULL) { free(copy); return; }
    tr__task_free(t);   /* frees @copy (t->msgbuf) */
}

static void one(void *arg, const void *msg, size_t len)
{
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__req_t req;
    (void)arg;
    tr__wire_open(msg, len, &h, &r);
    switch (h.type) {
    case TR__MSG_TASK:
        task_body(msg, len, sizeof(h), (int)h.src);
        break;
    case TR__MSG_RESULT:
        (void)tr__result_check(msg, len, FUZZ_NRANKS);
        break;
    case TR__MSG_STOLEN: {   /* u8 has; has == 1: u32 owner, then a TASK body */
        uint8_t has = tr__rbuf_u8(&r);
        uint32_t owner = tr__rbuf_u32(&r);
        if (!r.bad && has == 1 && owner < FUZZ_NRANKS) task_body(msg, len, (size_t)(r.p - (const char *)msg), (int)owner);
        break;
    }
    case TR__MSG_STEAL:      /* u32 node, the thief's free resources */
        (void)tr__rbuf_u32(&r);
        tr__decode_req(&r, &req);
        break;
    case TR__MSG_PG: {       /* u8 op, u64 group, u32 bundle; RESERVE: the bundle's resources */
        uint8_t op = tr__rbuf_u8(&r);
        (void)tr__rbuf_u64(&r);
        (void)tr__rbuf_u32(&r);
        if (op == 1) tr__decode_req(&r, &req);
        break;
    }
    case TR__MSG_MOVED:      /* u64 task, u32 attempt, u32 thief */
        (void)tr__rbuf_u64(&r);
        (void)tr__rbuf_u32(&r);
        (void)tr__rbuf_u32(&r);
        break;
    case TR__MSG_CANCEL:
        (void)tr__rbuf_u64(&r);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tr__wire_rx_t rx;
    static int rx_ready;
    tr__wire_hdr_t h;
    fuzz_rt_init();
    if (!rx_ready) {   /* the receive checks of lib/comm/wire.c, as ucx.c uses them */
        if (tr__wire_rx_init(&rx, FUZZ_JOB, FUZZ_NRANKS, TR__WIRE_MAX_LEN_DEFAULT) != 0) return 0;
        rx_ready = 1;
    }
    if (tr__wire_rx_check(&rx, data, size, &h) != 0) return 0;
    if (h.type == TR__MSG_HEARTBEAT) return 0;
    if (h.type == TR__MSG_BUNDLE) (void)tr__wire_rx_bundle(&rx, data, size, &h, one, NULL);
    else one(NULL, data, size);
    return 0;
}
