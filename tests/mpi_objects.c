/*
 * mpi_objects: multi-rank tests of the distributed object store
 * (TR_MODE_DRIVER): zero-copy reads on a node, fetches across nodes and
 * their per-node dedupe, freeing on every rank, borrowers (TR_ARG_BORROW,
 * refs inside objects), and 10,000 refs inside one object.
 * tests/run_mpi_objects.sh runs it under mpirun in three layouts:
 *
 *   one node, 4 ranks               same_node borrow_keep borrow_pending refs10k gc
 *   3 ranks, a node each            cross_node borrow_keep borrow_pending refs10k gc
 *   4 ranks, nodes {0,1} and {2,3}  dedupe borrow_keep borrow_pending refs10k gc
 *
 * Usage: mpi_objects [TEST...]: the named tests (test cases) in that order;
 * no name runs every test whose layout the job has.  A test that needs
 * another layout fails (it does not skip) when it is named.
 *
 * Every rank calls tr_init(); rank 0 (the driver) runs the libcheck suite
 * in CK_NOFORK mode, the other ranks serve tasks from tr_finalize().
 * Placement: each rank adds "to_rank<R>=64" to TASKRAY_RESOURCES before
 * tr_init(), and pin(R) asks for to_rank<R>=1: the task runs on rank R,
 * beside other tasks pinned there (a gated task on rank 0 holds one unit).  Other ranks' store
 * statistics are read by a task pinned there (tr_object_store_stats()
 * reports the store of the rank it runs on).
 */
#include <inttypes.h>
#include <unistd.h>

#include "tr_test.h"

#define MIB (1024u * 1024u)
#define SETTLE_MS 5000 /* FREE, UNPIN and UNBORROW are asynchronous */
#define PIN_SLOTS 64   /* each rank has to_rank<R>=64: pinned tasks run side by side */

static int g_rank = 0;
static int g_size = 1;
static char g_pin[256][24];                  /* "to_rank<R>=1" */
static tr_object_store_stats_t g_base[256];  /* every rank, after tr_init() */
static tr_ref_h g_kept = TR_REF_NULL;        /* a borrowed ref kept past its task (test 5) */

/* --------------------------------------------------------------- helpers */

static tr_task_params_t pin(int rank, int num_returns)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_NUM_RETURNS,
                           .resources = g_pin[rank],
                           .num_returns = num_returns };
    return p;
}

/* For task functions (on serving ranks, outside libcheck: no assertions). */
static void drop_refs(tr_ref_h *refs, int n)
{
    for (int i = 0; i < n; i++) {
        tr_ref_release(refs[i]);
    }
}

static uint64_t fnv_bytes(const void *p, size_t n) { return tt_fnv(TT_FNV_INIT, p, n); }

/* ------------------------------------------------------------ functions */

/* Returns [0] this rank's tr_object_store_stats_t, [1] the rank. */
static tr_status_t mo_stats(tr_task_h t)
{
    tr_object_store_stats_t s;
    tr_status_t st = tr_object_store_stats(&s);
    if (st == TR_OK) {
        st = tr_task_return(t, 0, &s, sizeof(s));
    }
    return st != TR_OK ? st : tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(mo_stats)

/* Args i64 size, i64 seed: returns [0] tt_fill(seed) built in place,
 * [1] its FNV-1a checksum computed here, [2] the rank. */
static tr_status_t mo_produce(tr_task_h t)
{
    int64_t size, seed;
    void *p;
    tr_status_t st = tr_task_arg_i64(t, 0, &size);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st == TR_OK) {
        st = tr_task_return_alloc(t, 0, (size_t)size, &p);
    }
    if (st != TR_OK) {
        return st;
    }
    tt_fill(p, (size_t)size, (uint64_t)seed);
    st = tr_task_return_i64(t, 1, (int64_t)fnv_bytes(p, (size_t)size));
    return st != TR_OK ? st : tr_task_return_i64(t, 2, tr_task_rank(t));
}
TR_REMOTE(mo_produce)

/* Args: value (TR_ARG_REF), i64 seed, i64 size.  Returns [0] 1 when the
 * value is tt_fill(seed) of that size (else 0), [1] this rank's store
 * statistics after the argument was read, [2] the rank. */
static tr_status_t mo_verify(tr_task_h t)
{
    const void *p;
    size_t n;
    int64_t seed, size;
    tr_status_t st = tr_task_arg(t, 0, &p, &n);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 2, &size);
    }
    if (st != TR_OK) {
        return st;
    }
    int ok = n == (size_t)size && tt_check_pattern(p, n, (uint64_t)seed) == n;
    tr_object_store_stats_t s;
    if ((st = tr_object_store_stats(&s)) != TR_OK ||
        (st = tr_task_return_i64(t, 0, ok)) != TR_OK ||
        (st = tr_task_return(t, 1, &s, sizeof(s))) != TR_OK) {
        return st;
    }
    return tr_task_return_i64(t, 2, tr_task_rank(t));
}
TR_REMOTE(mo_verify)

/*
 * Arg 0: TR_ARG_BORROW(C), C = tr_put_refs("container", {X}); arg 1 i64
 * seed, arg 2 i64 size of X.  Borrows C, reads X's ref out of it and keeps
 * it in g_kept (past the task's return).  Returns [0] 1 when all went well,
 * [1] this rank's borrowed_objects while it held C and X.
 */
static tr_status_t mo_borrow_keep(tr_task_h t)
{
    tr_ref_h c;
    tr_buf_h b;
    tr_status_t st = tr_task_arg_ref(t, 0, &c);
    if (st != TR_OK) {
        tr_task_fail(t, "tr_task_arg_ref: %s: %s", tr_status_string(st), tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_get(c, TR_TIMEOUT_INFINITE, &b)) != TR_OK) {
        tr_task_fail(t, "tr_get(C): %s: %s", tr_status_string(st), tr_last_error());
        tr_ref_release(c);
        return TR_ERR_TASK_FAILED;
    }
    int ok = tr_buf_size(b) == sizeof("container") &&
             memcmp(tr_buf_data(b), "container", sizeof("container")) == 0 &&
             tr_buf_num_refs(b) == 1;
    tr_ref_h x = TR_REF_NULL;
    if (ok && (st = tr_buf_refs(b, &x, 1)) != TR_OK) {
        tr_task_fail(t, "tr_buf_refs: %s: %s", tr_status_string(st), tr_last_error());
        tr_buf_release(b);
        tr_ref_release(c);
        return TR_ERR_TASK_FAILED;
    }
    tr_object_store_stats_t s;
    tr_object_store_stats(&s);
    tr_buf_release(b);
    tr_ref_release(c);
    if (!ok) {
        tr_task_fail(t, "the container read on rank %d is wrong (size %zu, %zu refs)", tr_task_rank(t),
                     tr_buf_size(b), tr_buf_num_refs(b));
        return TR_ERR_TASK_FAILED;
    }
    if (g_kept != TR_REF_NULL) {
        tr_ref_release(g_kept);
    }
    g_kept = x;
    st = tr_task_return_i64(t, 0, 1);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, (int64_t)s.borrowed_objects);
}
TR_REMOTE(mo_borrow_keep)

/* Args i64 seed, i64 size: reads g_kept (tt_fill(seed) of that size
 * expected), then releases it.  Returns [0] 1 when the value was right. */
static tr_status_t mo_read_kept(tr_task_h t)
{
    int64_t seed, size;
    tr_status_t st = tr_task_arg_i64(t, 0, &seed);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &size);
    }
    if (st != TR_OK) {
        return st;
    }
    if (g_kept == TR_REF_NULL) {
        tr_task_fail(t, "rank %d kept no ref", tr_task_rank(t));
        return TR_ERR_TASK_FAILED;
    }
    const void *p;
    size_t n;
    tr_buf_h b;
    if ((st = tr_get_buffer(g_kept, 10000, &p, &n, &b)) != TR_OK) {
        tr_task_fail(t, "tr_get_buffer of the kept ref: %s: %s", tr_status_string(st), tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    int ok = n == (size_t)size && tt_check_pattern(p, n, (uint64_t)seed) == n;
    tr_buf_release(b);
    tr_ref_release(g_kept);
    g_kept = TR_REF_NULL;
    return tr_task_return_i64(t, 0, ok);
}
TR_REMOTE(mo_read_kept)

/* Pinned to rank 0: waits for the gate (rank 0's), then returns
 * [0] tt_fill(seed) of size bytes (args i64 size, i64 seed), [1] 777. */
static tr_status_t mo_gated(tr_task_h t)
{
    int64_t size, seed;
    void *p;
    tr_status_t st = tr_task_arg_i64(t, 0, &size);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st != TR_OK) {
        return st;
    }
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "the gate stayed closed");
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_return_alloc(t, 0, (size_t)size, &p)) != TR_OK) {
        return st;
    }
    tt_fill(p, (size_t)size, (uint64_t)seed);
    return tr_task_return_i64(t, 1, 777);
}
TR_REMOTE(mo_gated)

/* Pinned to rank 0: opens rank 0's gate. */
static tr_status_t mo_open_gate(tr_task_h t)
{
    tt_gate_open();
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(mo_open_gate)

/*
 * Args: TR_ARG_BORROW(big), TR_ARG_BORROW(small), i64 seed, i64 size: the
 * two results of a mo_gated task that cannot finish before this task opens
 * the gate.  Borrows both, checks they are still pending, opens the gate
 * (a nested task on rank 0), then tr_get()s both: each waits for the owner's
 * STATE message.  Returns [0] 1 when both values were right, [1] 1 when
 * both were pending when borrowed.
 */
static tr_status_t mo_borrow_pending(tr_task_h t)
{
    int64_t seed, size;
    tr_ref_h r[2];
    tr_status_t st = tr_task_arg_i64(t, 2, &seed);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 3, &size);
    }
    if (st != TR_OK) {
        return st;
    }
    for (int i = 0; i < 2; i++) {
        if ((st = tr_task_arg_ref(t, i, &r[i])) != TR_OK) {
            tr_task_fail(t, "tr_task_arg_ref(%d): %s: %s", i, tr_status_string(st), tr_last_error());
            if (i) {
                tr_ref_release(r[0]);
            }
            return TR_ERR_TASK_FAILED;
        }
    }
    size_t idx[2], nready = 9;
    st = tr_wait(r, 2, 1, 0, idx, &nready);
    int64_t was_pending = st == TR_OK && nready == 0;

    tr_task_params_t p0 = pin(0, 1);
    tr_ref_h opened;
    int64_t one = 0;
    if ((st = tr_task_submit(mo_open_gate, NULL, 0, &p0, &opened)) != TR_OK) {
        tr_task_fail(t, "submitting mo_open_gate: %s: %s", tr_status_string(st), tr_last_error());
        drop_refs(r, 2);
        return TR_ERR_TASK_FAILED;
    }
    st = tr_get_i64(opened, 20000, &one);
    tr_ref_release(opened);
    if (st != TR_OK) {
        tr_task_fail(t, "waiting for mo_open_gate on rank 0: %s: %s", tr_status_string(st), tr_last_error());
        drop_refs(r, 2);
        return TR_ERR_TASK_FAILED;
    }

    const void *p;
    size_t n;
    tr_buf_h b;
    int64_t v = 0;
    if ((st = tr_get_buffer(r[0], 20000, &p, &n, &b)) != TR_OK) {
        tr_task_fail(t, "tr_get_buffer of the borrowed pending ref: %s: %s", tr_status_string(st),
                     tr_last_error());
        drop_refs(r, 2);
        return TR_ERR_TASK_FAILED;
    }
    int ok = n == (size_t)size && tt_check_pattern(p, n, (uint64_t)seed) == n;
    tr_buf_release(b);
    if ((st = tr_get_i64(r[1], 20000, &v)) != TR_OK) {
        tr_task_fail(t, "tr_get_i64 of the borrowed pending ref: %s: %s", tr_status_string(st),
                     tr_last_error());
        drop_refs(r, 2);
        return TR_ERR_TASK_FAILED;
    }
    ok = ok && v == 777;
    tr_ref_release(r[0]);
    tr_ref_release(r[1]);
    st = tr_task_return_i64(t, 0, ok);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, was_pending);
}
TR_REMOTE(mo_borrow_pending)

/* Value of the i-th small object of the refs10k test. */
static int64_t ref_value(int64_t i) { return i * 7919 + 13; }

/*
 * Arg 0: TR_ARG_BORROW(C), C contains n refs (arg 1, i64) to i64 objects of
 * values ref_value(i).  Reads them all back with tr_buf_refs() and
 * tr_get_i64().  Returns [0] how many values were right, [1] this rank's
 * borrowed_objects while it held them, [2] the rank.
 */
static tr_status_t mo_refs_read(tr_task_h t)
{
    int64_t n;
    tr_ref_h c;
    tr_buf_h b;
    tr_status_t st = tr_task_arg_i64(t, 1, &n);
    if (st != TR_OK) {
        return st;
    }
    if ((st = tr_task_arg_ref(t, 0, &c)) != TR_OK) {
        tr_task_fail(t, "tr_task_arg_ref: %s: %s", tr_status_string(st), tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_get(c, 30000, &b)) != TR_OK) {
        tr_task_fail(t, "tr_get(C): %s: %s", tr_status_string(st), tr_last_error());
        tr_ref_release(c);
        return TR_ERR_TASK_FAILED;
    }
    if (tr_buf_num_refs(b) != (size_t)n) {
        tr_task_fail(t, "C contains %zu refs on rank %d, not %" PRId64, tr_buf_num_refs(b),
                     tr_task_rank(t), n);
        tr_buf_release(b);
        tr_ref_release(c);
        return TR_ERR_TASK_FAILED;
    }
    tr_ref_h *refs = malloc(sizeof(*refs) * (size_t)n);
    if (refs == NULL) {
        tr_buf_release(b);
        tr_ref_release(c);
        return TR_ERR_NO_MEMORY;
    }
    if ((st = tr_buf_refs(b, refs, (size_t)n)) != TR_OK) {
        tr_task_fail(t, "tr_buf_refs(%" PRId64 "): %s: %s", n, tr_status_string(st), tr_last_error());
        free(refs);
        tr_buf_release(b);
        tr_ref_release(c);
        return TR_ERR_TASK_FAILED;
    }
    int64_t good = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = -1;
        if (tr_get_i64(refs[i], 30000, &v) == TR_OK && v == ref_value(i)) {
            good++;
        }
    }
    tr_object_store_stats_t s; /* while it holds C and the n refs */
    tr_object_store_stats(&s);
    for (int64_t i = 0; i < n; i++) {
        tr_ref_release(refs[i]);
    }
    free(refs);
    tr_buf_release(b);
    tr_ref_release(c);
    if ((st = tr_task_return_i64(t, 0, good)) != TR_OK ||
        (st = tr_task_return_i64(t, 1, (int64_t)s.borrowed_objects)) != TR_OK) {
        return st;
    }
    return tr_task_return_i64(t, 2, tr_task_rank(t));
}
TR_REMOTE(mo_refs_read)

/* ------------------------------------------------------ driver helpers */

/* Rank @r's store statistics (rank 0: the driver's own). */
static void rank_stats(int r, tr_object_store_stats_t *s)
{
    if (r == 0) {
        tt_ok(tr_object_store_stats(s));
        return;
    }
    tr_task_params_t p = pin(r, 2);
    tr_ref_h res[2];
    size_t n = 0;
    tt_ok(tr_task_submit(mo_stats, NULL, 0, &p, res));
    tt_ok(tr_get_copy(res[0], 30000, s, sizeof(*s), &n));
    ck_assert_uint_eq(n, sizeof(*s));
    ck_assert_int_eq(tt_get_i64(res[1]), r);
    tt_release_all(res, 2);
}

static int is_clean(int r, const tr_object_store_stats_t *s)
{
    const tr_object_store_stats_t *b = &g_base[r];
    return s->used_bytes == b->used_bytes && s->num_objects == 0 && s->pinned_bytes == 0 &&
           s->owned_objects == b->owned_objects && s->borrowed_objects == b->borrowed_objects &&
           s->spilled_objects == 0;
}

/*
 * Every rank's store is back to its state after tr_init(): the memory is
 * back, no copies, no pins, owned and borrowed objects back to the
 * baseline.  Polls up to SETTLE_MS (frees are asynchronous).
 */
static void expect_clean(const char *when)
{
    tr_object_store_stats_t s[256];
    int bad = -1;
    for (int waited = 0;; waited += 50) {
        bad = -1;
        for (int r = g_size - 1; r >= 0 && bad < 0; r--) { /* rank 0 last: after the stats tasks */
            rank_stats(r, &s[r]);
            if (!is_clean(r, &s[r])) {
                bad = r;
            }
        }
        if (bad < 0 || waited >= SETTLE_MS) {
            break;
        }
        tt_msleep(50);
    }
    if (bad >= 0) {
        const tr_object_store_stats_t *x = &s[bad], *b = &g_base[bad];
        ck_abort_msg("%s: after %d ms rank %d still has used_bytes %" PRIu64 " (baseline %" PRIu64
                     "), num_objects %" PRIu64 " (primary made %" PRIu64 ", secondary %" PRIu64
                     "), pinned_bytes %" PRIu64 ", owned_objects %" PRIu64 " (baseline %" PRIu64
                     "), borrowed_objects %" PRIu64 " (baseline %" PRIu64 "), spilled %" PRIu64,
                     when, SETTLE_MS, bad, x->used_bytes, b->used_bytes, x->num_objects, x->num_primary,
                     x->num_secondary, x->pinned_bytes, x->owned_objects, b->owned_objects,
                     x->borrowed_objects, b->borrowed_objects, x->spilled_objects);
    }
}

/* The /proc/self/maps path of the mapping that holds @p ("" if none). */
static void mapping_of(const void *p, char *path, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    char line[1024];
    path[0] = '\0';
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2) {
            continue;
        }
        if (a >= lo && a < hi) {
            snprintf(path, len, "%s", off > 0 ? line + off : "");
            path[strcspn(path, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

/* Does @path end in "-<rank>" (an arena is /dev/shm/taskray-<job>-<rank>)? */
static int arena_of_rank(const char *path, int rank)
{
    char tail[16];
    snprintf(tail, sizeof(tail), "-%d", rank);
    size_t n = strlen(path), m = strlen(tail);
    return strstr(path, "taskray-") != NULL && n > m && strcmp(path + n - m, tail) == 0;
}

/* -------------------------------------------------------------- tests */

/* The job shape each layout needs. */
static int nodes_distinct(void)
{
    for (int a = 0; a < g_size; a++) {
        for (int b = a + 1; b < g_size; b++) {
            if (tr_node_of(a) == tr_node_of(b)) {
                return 0;
            }
        }
    }
    return 1;
}

/* 1. One node: a 32 MiB result of a task on rank 1 is read by the driver
 * in place, in rank 1's arena, without a copy. */
START_TEST(test_same_node_zero_copy)
{
    ck_assert_msg(g_size >= 2 && tr_node_of(0) == tr_node_of(1), "needs ranks 0 and 1 on one node");
    const size_t size = 32 * MIB;
    const int64_t seed = 101;
    tr_object_store_stats_t before, after, r1;
    tt_ok(tr_object_store_stats(&before));

    tr_arg_t a[2] = { TR_ARG_I64((int64_t)size), TR_ARG_I64(seed) };
    tr_task_params_t p = pin(1, 3);
    tr_ref_h res[3];
    tt_ok(tr_task_submit(mo_produce, a, 2, &p, res));
    ck_assert_int_eq(tt_get_i64(res[2]), 1);
    uint64_t sum = (uint64_t)tt_get_i64(res[1]);

    const void *d1, *d2;
    size_t n1, n2;
    tr_buf_h b1, b2;
    tt_ok(tr_get_buffer(res[0], TR_TIMEOUT_INFINITE, &d1, &n1, &b1));
    ck_assert_uint_eq(n1, size);
    ck_assert_uint_eq(tt_check_pattern(d1, n1, seed), n1);
    ck_assert_msg(fnv_bytes(d1, n1) == sum, "the checksum differs from the producer's");
    tt_ok(tr_get_buffer(res[0], TR_TIMEOUT_INFINITE, &d2, &n2, &b2));
    ck_assert_ptr_eq(d1, d2);
    ck_assert_uint_eq(n2, size);

    /* the bytes are rank 1's arena, mapped here: not a copy in the driver's store */
    char path[512];
    mapping_of(d1, path, sizeof(path));
    ck_assert_msg(arena_of_rank(path, 1), "the view at %p lies in '%s', not in rank 1's arena", d1, path);
    tt_ok(tr_object_store_stats(&after));
    ck_assert_uint_eq(after.num_objects, before.num_objects);
    ck_assert_uint_eq(after.used_bytes, before.used_bytes);
    ck_assert_uint_eq(after.fetches, before.fetches);
    ck_assert_uint_eq(after.num_secondary, before.num_secondary);

    /* rank 1 holds the primary copy, pinned by the driver's views */
    rank_stats(1, &r1);
    ck_assert_uint_ge(r1.num_objects, 1);
    ck_assert_uint_ge(r1.used_bytes, size);
    ck_assert_uint_ge(r1.pinned_bytes, size);

    tt_ok(tr_buf_release(b1));
    /* still pinned through the second view: the bytes stay right */
    ck_assert_uint_eq(tt_check_pattern(d2, n2, seed), n2);
    tt_ok(tr_buf_release(b2));

    /* released: the pins go (asynchronously), then the object */
    int waited = 0;
    for (rank_stats(1, &r1); r1.pinned_bytes != 0 && waited < SETTLE_MS; waited += 50) {
        tt_msleep(50);
        rank_stats(1, &r1);
    }
    ck_assert_msg(r1.pinned_bytes == 0, "rank 1 still pins %" PRIu64 " bytes after the views were released",
                  r1.pinned_bytes);
    tt_release_all(res, 3);
    expect_clean("after the zero-copy test");
}
END_TEST

/* 2. Across nodes: the driver pulls a 64 MiB result of rank 2 once. */
START_TEST(test_cross_node_fetch)
{
    ck_assert_msg(g_size >= 3 && tr_node_of(0) != tr_node_of(2), "needs rank 2 on another node than rank 0");
    const size_t size = 64 * MIB;
    const int64_t seed = 202;
    tr_object_store_stats_t before, mid, after;
    tt_ok(tr_object_store_stats(&before));

    tr_arg_t a[2] = { TR_ARG_I64((int64_t)size), TR_ARG_I64(seed) };
    tr_task_params_t p = pin(2, 3);
    tr_ref_h res[3];
    tt_ok(tr_task_submit(mo_produce, a, 2, &p, res));
    ck_assert_int_eq(tt_get_i64(res[2]), 2);
    uint64_t sum = (uint64_t)tt_get_i64(res[1]);

    const void *d;
    size_t n;
    tr_buf_h b;
    tt_ok(tr_get_buffer(res[0], TR_TIMEOUT_INFINITE, &d, &n, &b));
    ck_assert_uint_eq(n, size);
    ck_assert_msg(fnv_bytes(d, n) == sum, "the fetched value's checksum differs from the producer's");
    ck_assert_uint_eq(tt_check_pattern(d, n, seed), n);
    char path[512];
    mapping_of(d, path, sizeof(path));
    ck_assert_msg(arena_of_rank(path, 0), "the fetched copy at %p lies in '%s', not in the driver's arena",
                  d, path);
    tt_ok(tr_buf_release(b));
    tt_ok(tr_object_store_stats(&mid));
    ck_assert_uint_eq(mid.fetches - before.fetches, 1);
    ck_assert_uint_eq(mid.fetch_bytes_total - before.fetch_bytes_total, size);
    ck_assert_uint_eq(mid.num_objects, before.num_objects + 1);
    ck_assert_uint_eq(mid.num_secondary, before.num_secondary + 1);

    /* a second get reads the local copy */
    tt_ok(tr_get_buffer(res[0], TR_TIMEOUT_INFINITE, &d, &n, &b));
    ck_assert_uint_eq(n, size);
    ck_assert_msg(fnv_bytes(d, n) == sum, "the second read's checksum differs");
    tt_ok(tr_buf_release(b));
    tt_ok(tr_object_store_stats(&after));
    ck_assert_uint_eq(after.fetches, mid.fetches);
    ck_assert_uint_eq(after.fetch_bytes_total, mid.fetch_bytes_total);

    /* freeing drops both copies: rank 2's primary and the driver's secondary */
    tt_release_all(res, 3);
    expect_clean("after the cross-node fetch");
}
END_TEST

/* 3. Two readers on one node ({2,3}) of an object of node {0,1}, at about
 * the same time: the node pulls it once.  Three rounds, the first task
 * going to rank 2, then 3, then 2. */
START_TEST(test_fetch_dedupe)
{
    ck_assert_msg(g_size == 4 && tr_node_of(0) == tr_node_of(1) && tr_node_of(2) == tr_node_of(3) &&
                      tr_node_of(0) != tr_node_of(2),
                  "needs 4 ranks on nodes {0,1} and {2,3}");
    const size_t size = 32 * MIB;
    for (int round = 0; round < 3; round++) {
        const int64_t seed = 303 + round;
        tr_object_store_stats_t base[4], s[4];
        rank_stats(2, &base[2]);
        rank_stats(3, &base[3]);

        /* made in place on the driver (node {0,1}) */
        void *w;
        tr_object_h obj;
        tr_ref_h x;
        tt_ok(tr_object_create(size, &w, &obj));
        tt_fill(w, size, (uint64_t)seed);
        tt_ok(tr_object_seal(obj, &x));

        tr_arg_t a[3] = { TR_ARG_REF(x), TR_ARG_I64(seed), TR_ARG_I64((int64_t)size) };
        tr_ref_h res[4][3];
        for (int i = 0; i < 2; i++) {
            int r = 2 + (i + round) % 2;
            tr_task_params_t p = pin(r, 3);
            tt_ok(tr_task_submit(mo_verify, a, 3, &p, res[r]));
        }
        uint64_t fetches = 0, bytes = 0;
        for (int r = 2; r < 4; r++) {
            size_t n = 0;
            ck_assert_msg(tt_get_i64(res[r][0]) == 1, "round %d: rank %d read a wrong value", round, r);
            tt_ok(tr_get_copy(res[r][1], TR_TIMEOUT_INFINITE, &s[r], sizeof(s[r]), &n));
            ck_assert_uint_eq(n, sizeof(s[r]));
            ck_assert_int_eq(tt_get_i64(res[r][2]), r);
            fetches += s[r].fetches - base[r].fetches;
            bytes += s[r].fetch_bytes_total - base[r].fetch_bytes_total;
            tt_release_all(res[r], 3);
        }
        ck_assert_msg(fetches == 1,
                      "round %d: ranks 2 and 3 fetched the object %" PRIu64 " times (%" PRIu64 " and %" PRIu64
                      "), not once",
                      round, fetches, s[2].fetches - base[2].fetches, s[3].fetches - base[3].fetches);
        ck_assert_uint_eq(bytes, size);

        /* a later reader on that node reads the node's copy */
        tr_task_params_t p = pin(3 - round % 2, 3);
        tr_ref_h again[3];
        tt_ok(tr_task_submit(mo_verify, a, 3, &p, again));
        ck_assert_int_eq(tt_get_i64(again[0]), 1);
        tt_release_all(again, 3);
        rank_stats(2, &s[2]);
        rank_stats(3, &s[3]);
        ck_assert_msg(s[2].fetches + s[3].fetches - base[2].fetches - base[3].fetches == 1,
                      "round %d: a later reader fetched again", round);

        tt_ok(tr_ref_release(x));
        expect_clean("after a dedupe round");
    }
}
END_TEST

/* 5. A ref read out of a borrowed container, kept past its task, keeps the
 * object alive after the driver released everything; its release frees it.
 * Round 0: the driver releases X and C once the task returned; round 1: at
 * once after submitting (the pending task's argument keeps C, C keeps X). */
START_TEST(test_borrow_keep)
{
    ck_assert_msg(g_size >= 2, "needs 2 ranks");
    const size_t size = 1 * MIB;
    for (int round = 0; round < 2; round++) {
        const int64_t seed = 505 + round;
        tr_object_store_stats_t before, held, after;
        tt_ok(tr_object_store_stats(&before));

        unsigned char *data = malloc(size);
        ck_assert_ptr_nonnull(data);
        tt_fill(data, size, (uint64_t)seed);
        tr_ref_h x, c;
        tt_ok(tr_put(data, size, &x));
        free(data);
        tt_ok(tr_put_refs("container", sizeof("container"), &x, 1, &c));

        tr_arg_t a[3] = { TR_ARG_BORROW(c), TR_ARG_I64(seed), TR_ARG_I64((int64_t)size) };
        tr_task_params_t p1 = pin(1, 2);
        tr_ref_h res[2];
        tt_ok(tr_task_submit(mo_borrow_keep, a, 3, &p1, res));
        if (round == 1) {
            tt_ok(tr_ref_release(x));
            tt_ok(tr_ref_release(c));
        }
        ck_assert_msg(tt_get_i64(res[0]) == 1, "round %d: mo_borrow_keep failed", round);
        ck_assert_int_eq(tt_get_i64(res[1]), (int64_t)g_base[1].borrowed_objects + 2); /* C and X */
        tt_release_all(res, 2);
        if (round == 0) {
            tt_ok(tr_ref_release(x));
            tt_ok(tr_ref_release(c));
        }

        /* C goes (once rank 1's release of it arrives); X stays, borrowed by rank 1 */
        for (int waited = 0;; waited += 50) {
            tt_ok(tr_object_store_stats(&held));
            if (held.owned_objects == before.owned_objects + 1 || waited >= SETTLE_MS) {
                break;
            }
            tt_msleep(50);
        }
        ck_assert_msg(held.owned_objects == before.owned_objects + 1,
                      "round %d: the driver owns %" PRIu64 " objects, expected %" PRIu64 " (X only)", round,
                      held.owned_objects, before.owned_objects + 1);
        ck_assert_uint_eq(held.used_bytes, before.used_bytes + size);

        tr_arg_t b[2] = { TR_ARG_I64(seed), TR_ARG_I64((int64_t)size) };
        tr_task_params_t q = pin(1, 1);
        tr_ref_h r;
        tt_ok(tr_task_submit(mo_read_kept, b, 2, &q, &r));
        ck_assert_msg(tt_get_i64(r) == 1, "round %d: the kept ref read a wrong value", round);
        tt_ok(tr_ref_release(r));

        for (int waited = 0;; waited += 50) {
            tt_ok(tr_object_store_stats(&after));
            if ((after.owned_objects == before.owned_objects && after.used_bytes == before.used_bytes) ||
                waited >= SETTLE_MS) {
                break;
            }
            tt_msleep(50);
        }
        ck_assert_uint_eq(after.owned_objects, before.owned_objects);
        ck_assert_uint_eq(after.used_bytes, before.used_bytes);
        expect_clean("after the borrow test");
    }
}
END_TEST

/* 6. TR_ARG_BORROW of the refs of a task still running: the borrower's
 * tr_get() waits for the owner's STATE message. */
START_TEST(test_borrow_pending)
{
    ck_assert_msg(g_size >= 2, "needs 2 ranks");
    const size_t size = 2 * MIB;
    const int64_t seed = 606;
    tt_gate_close();
    tr_arg_t ga[2] = { TR_ARG_I64((int64_t)size), TR_ARG_I64(seed) };
    tr_task_params_t p0 = pin(0, 2);
    tr_ref_h pend[2];
    tt_ok(tr_task_submit(mo_gated, ga, 2, &p0, pend));

    int target = g_size - 1;
    tr_arg_t a[4] = { TR_ARG_BORROW(pend[0]), TR_ARG_BORROW(pend[1]), TR_ARG_I64(seed),
                      TR_ARG_I64((int64_t)size) };
    tr_task_params_t p = pin(target, 2);
    tr_ref_h res[2];
    tt_ok(tr_task_submit(mo_borrow_pending, a, 4, &p, res));
    tr_buf_h b;
    tr_status_t st = tr_get(res[0], 30000, &b);
    if (st == TR_OK) {
        tt_ok(tr_buf_release(b));
    }
    tt_gate_open(); /* in case the task failed before opening it */
    tt_ok(st);
    ck_assert_msg(tt_get_i64(res[0]) == 1, "the borrower on rank %d read wrong values", target);
    ck_assert_msg(tt_get_i64(res[1]) == 1, "the refs were not pending when rank %d borrowed them", target);
    ck_assert_int_eq(tt_get_i64(pend[1]), 777);
    tt_release_all(res, 2);
    tt_release_all(pend, 2);
    expect_clean("after the pending-borrow test");
}
END_TEST

/* 7. 10,000 refs inside one object, read on the driver and on another rank. */
START_TEST(test_refs10k)
{
    ck_assert_msg(g_size >= 2, "needs 2 ranks");
    enum { N = 10000 };
    tr_object_store_stats_t before, s;
    tt_ok(tr_object_store_stats(&before));
    tr_ref_h *refs = malloc(sizeof(*refs) * N), *back = malloc(sizeof(*refs) * N);
    ck_assert_ptr_nonnull(refs);
    ck_assert_ptr_nonnull(back);
    for (int i = 0; i < N; i++) {
        tt_ok(tr_put_i64(ref_value(i), &refs[i]));
    }
    tr_ref_h c;
    uint32_t hdr = N;
    tt_ok(tr_put_refs(&hdr, sizeof(hdr), refs, N, &c));
    tt_release_all(refs, N); /* C keeps them alive */
    tt_ok(tr_object_store_stats(&s));
    ck_assert_uint_eq(s.owned_objects, before.owned_objects + N + 1);

    /* on the driver */
    tr_buf_h b;
    tt_ok(tr_get(c, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), sizeof(hdr));
    ck_assert_uint_eq(tr_buf_num_refs(b), N);
    tt_ok(tr_buf_refs(b, back, N));
    tt_ok(tr_buf_release(b));
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        tt_ok(tr_get_i64(back[i], 0, &v));
        ck_assert_msg(v == ref_value(i), "ref %d reads %" PRId64 ", not %" PRId64, i, v, ref_value(i));
    }
    tt_release_all(back, N);

    /* inside a task on another rank */
    int target = g_size - 1;
    tr_arg_t a[2] = { TR_ARG_BORROW(c), TR_ARG_I64(N) };
    tr_task_params_t p = pin(target, 3);
    tr_ref_h res[3];
    tt_ok(tr_task_submit(mo_refs_read, a, 2, &p, res));
    tr_status_t st = tr_get(res[0], 60000, &b);
    if (st != TR_OK) {
        ck_abort_msg("mo_refs_read on rank %d: %s: %s", target, tr_status_string(st), tr_last_error());
    }
    tt_ok(tr_buf_release(b));
    ck_assert_int_eq(tt_get_i64(res[0]), N);
    ck_assert_int_eq(tt_get_i64(res[1]), (int64_t)g_base[target].borrowed_objects + N + 1);
    ck_assert_int_eq(tt_get_i64(res[2]), target);
    tt_release_all(res, 3);

    tt_ok(tr_ref_release(c));
    free(refs);
    free(back);
    tt_ok(tr_object_store_stats(&s));
    ck_assert_uint_eq(s.owned_objects, before.owned_objects);
    expect_clean("after the 10,000-ref test");
}
END_TEST

/* 4. Objects on every rank, copies on other nodes, all released: every
 * rank's store is back to its baseline. */
/*
 * Returned refs.  mo_make_refs: puts arg 0 (i64 n) objects of values
 * ref_value(i) + rank*1000 (owned by this rank: they outlive the task
 * because the result contains them), then returns (tr_task_return_refs)
 * a container holding them plus, when arg 1 is a TR_ARG_BORROW ref, that
 * ref too (owned elsewhere).  The task releases all its own handles.
 */
static tr_status_t mo_make_refs(tr_task_h t)
{
    int64_t n;
    tr_status_t st = tr_task_arg_i64(t, 0, &n);
    if (st != TR_OK || n < 0 || n > 64) return st != TR_OK ? st : TR_ERR_INVALID_ARG;
    tr_ref_h refs[65];
    int k = 0;
    for (; k < n; k++)
        if ((st = tr_put_i64(ref_value(k) + 1000 * tr_task_rank(t), &refs[k])) != TR_OK) break;
    if (st == TR_OK && tr_task_num_args(t) > 1) {
        if ((st = tr_task_arg_ref(t, 1, &refs[k])) == TR_OK) k++;
    }
    int64_t hdr = k;
    if (st == TR_OK) st = tr_task_return_refs(t, 0, &hdr, sizeof(hdr), refs, (size_t)k);
    for (int j = 0; j < k; j++) tr_ref_release(refs[j]);
    return st;
}
TR_REMOTE(mo_make_refs)

/* Refs inside task results, owned by the executor (rank 1), by the driver,
 * and by a third rank (rank 1's object passed through a task on the last
 * rank): all read back, all freed everywhere once released. */
START_TEST(test_returned_refs)
{
    int a = 1, b = g_size - 1;
    /* 1: a task on rank 1 returns 3 refs to objects it owns */
    tr_task_params_t p = pin(a, 1);
    tr_arg_t arg = TR_ARG_I64(3);
    tr_ref_h c1;
    tt_ok(tr_task_submit(mo_make_refs, &arg, 1, &p, &c1));
    tr_buf_h v;
    tt_ok(tr_get(c1, 30000, &v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 3);
    tr_ref_h in1[3];
    tt_ok(tr_buf_refs(v, in1, 3));
    tt_ok(tr_buf_release(v));
    for (int i = 0; i < 3; i++) ck_assert_int_eq(tt_get_i64(in1[i]), ref_value(i) + 1000 * a);

    /* 2: a task on the last rank returns 1 own ref, the driver's X, and (3) rank 1's in1[0] */
    tr_ref_h x;
    tt_ok(tr_put_i64(424242, &x));
    tr_arg_t args2[2] = { TR_ARG_I64(1), TR_ARG_BORROW(x) };
    tr_arg_t args3[2] = { TR_ARG_I64(0), TR_ARG_BORROW(in1[0]) };
    tr_task_params_t pb = pin(b, 1);
    tr_ref_h c2, c3;
    tt_ok(tr_task_submit(mo_make_refs, args2, 2, &pb, &c2));
    tt_ok(tr_task_submit(mo_make_refs, args3, 2, &pb, &c3));
    tt_ok(tr_ref_release(x));          /* c2 keeps it */
    tt_release_all(in1, 3);               /* c1 and c3 keep them */
    tt_ok(tr_ref_release(c1));         /* now only c3 keeps rank 1's object 0 */

    tr_ref_h in2[2], in3[1];
    tt_ok(tr_get(c2, 30000, &v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 2);
    tt_ok(tr_buf_refs(v, in2, 2));
    tt_ok(tr_buf_release(v));
    ck_assert_int_eq(tt_get_i64(in2[0]), ref_value(0) + 1000 * b);
    ck_assert_int_eq(tt_get_i64(in2[1]), 424242);
    tt_ok(tr_get(c3, 30000, &v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 1);
    tt_ok(tr_buf_refs(v, in3, 1));
    tt_ok(tr_buf_release(v));
    ck_assert_int_eq(tt_get_i64(in3[0]), ref_value(0) + 1000 * a);

    tt_release_all(in2, 2);
    tt_release_all(in3, 1);
    tt_ok(tr_ref_release(c2));
    tt_ok(tr_ref_release(c3));
    expect_clean("after the returned-refs test");
}
END_TEST

START_TEST(test_gc_all_ranks)
{
    ck_assert_msg(g_size >= 2, "needs 2 ranks");
    const size_t size = 4 * MIB;
    enum { MAXR = 16 };
    ck_assert_int_le(g_size, MAXR);
    tr_ref_h made[MAXR][3], checks[MAXR][3];
    for (int r = 0; r < g_size; r++) {
        tr_arg_t a[2] = { TR_ARG_I64((int64_t)size), TR_ARG_I64(400 + r) };
        tr_task_params_t p = pin(r, 3);
        tt_ok(tr_task_submit(mo_produce, a, 2, &p, made[r]));
    }
    /* each is read by the next rank (another node where there is one) and the driver */
    for (int r = 0; r < g_size; r++) {
        tr_arg_t a[3] = { TR_ARG_REF(made[r][0]), TR_ARG_I64(400 + r), TR_ARG_I64((int64_t)size) };
        tr_task_params_t p = pin((r + 1) % g_size, 3);
        tt_ok(tr_task_submit(mo_verify, a, 3, &p, checks[r]));
    }
    for (int r = 0; r < g_size; r++) {
        ck_assert_msg(tt_get_i64(checks[r][0]) == 1, "rank %d read rank %d's object wrong", (r + 1) % g_size, r);
        tr_buf_h b;
        tt_ok(tr_get(made[r][0], TR_TIMEOUT_INFINITE, &b));
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(b), tr_buf_size(b), 400 + r), size);
        tt_ok(tr_buf_release(b));
        tt_release_all(checks[r], 3);
    }
    tr_object_store_stats_t s;
    rank_stats(g_size - 1, &s);
    ck_assert_uint_ge(s.used_bytes, size);
    for (int r = 0; r < g_size; r++) {
        tt_release_all(made[r], 3);
    }
    expect_clean("after releasing every rank's objects");
}
END_TEST

/* ------------------------------------------------------------------ main */

typedef struct {
    const char *name;
    const TTest *test;
    int (*fits)(void); /* the layout this test needs */
} mo_case_t;

static int fits_same_node(void) { return g_size >= 2 && tr_node_of(0) == tr_node_of(1); }
static int fits_cross_node(void) { return g_size >= 3 && nodes_distinct(); }
static int fits_dedupe(void)
{
    return g_size == 4 && tr_node_of(0) == tr_node_of(1) && tr_node_of(2) == tr_node_of(3) &&
           tr_node_of(0) != tr_node_of(2);
}
static int fits_two(void) { return g_size >= 2; }

int main(int argc, char **argv)
{
    if (tt_launcher_shape("mpi_objects", &g_rank, &g_size) != 0) {
        return 1;
    }
    tt_pin_setup("to_rank", g_rank, g_size, PIN_SLOTS, g_pin);

    /* 4 executors everywhere: a gated task on rank 0 must leave room for others */
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_ARGC_ARGV |
                                          TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = 4, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_rank() != g_rank || tr_size() != g_size) {
        fprintf(stderr, "rank %d of %d: tr_rank() = %d, tr_size() = %d\n", g_rank, g_size, tr_rank(),
                tr_size());
        tr_finalize();
        return 1;
    }
    if (g_rank != 0) {
        st = tr_finalize();
        if (g_kept != TR_REF_NULL) {
            fprintf(stderr, "rank %d: a kept ref was never released\n", g_rank);
        }
        if (st != TR_OK) {
            fprintf(stderr, "rank %d: tr_finalize: %s\n", g_rank, tr_status_string(st));
            return 1;
        }
        return 0;
    }

    const mo_case_t cases[] = {
        { "same_node", test_same_node_zero_copy, fits_same_node },
        { "cross_node", test_cross_node_fetch, fits_cross_node },
        { "dedupe", test_fetch_dedupe, fits_dedupe },
        { "borrow_keep", test_borrow_keep, fits_two },
        { "borrow_pending", test_borrow_pending, fits_two },
        { "refs10k", test_refs10k, fits_two },
        { "gc", test_gc_all_ranks, fits_two },
        { "returned_refs", test_returned_refs, fits_two },
    };
    const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
    int failed = 0;

    /* the baseline of every rank's store */
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 2);
        tr_ref_h rr[2];
        size_t n = 0;
        if (r == 0) {
            st = tr_object_store_stats(&g_base[0]);
        } else if ((st = tr_task_submit(mo_stats, NULL, 0, &p, rr)) == TR_OK) {
            st = tr_get_copy(rr[0], 30000, &g_base[r], sizeof(g_base[r]), &n);
            tr_ref_release(rr[0]);
            tr_ref_release(rr[1]);
        }
        if (st != TR_OK) {
            fprintf(stderr, "rank 0: reading rank %d's store statistics: %s: %s\n", r,
                    tr_status_string(st), tr_last_error());
            failed++;
        }
    }

    Suite *s = suite_create("mpi_objects");
    int nsel = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            int k = 0;
            while (k < ncases && strcmp(cases[k].name, argv[i]) != 0) {
                k++;
            }
            if (k == ncases) {
                fprintf(stderr, "mpi_objects: no test named '%s'\n", argv[i]);
                failed++;
                continue;
            }
            TCase *tc = tcase_create(cases[k].name);
            tcase_add_test(tc, cases[k].test);
            suite_add_tcase(s, tc);
            nsel++;
        }
    } else {
        for (int k = 0; k < ncases; k++) {
            if (cases[k].fits()) {
                TCase *tc = tcase_create(cases[k].name);
                tcase_add_test(tc, cases[k].test);
                suite_add_tcase(s, tc);
                nsel++;
            }
        }
    }
    if (nsel == 0) {
        fprintf(stderr, "mpi_objects: no test fits a job of %d rank(s) on these nodes\n", g_size);
        failed++;
    }
    SRunner *sr = srunner_create(s);
    if (failed == 0) {
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
    }
    srunner_free(sr);

    tt_gate_open(); /* a failed test may have left a gated task behind */
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "rank 0: tr_finalize: %s\n", tr_status_string(st));
        failed++;
    }
    printf("mpi_objects: %d rank(s), %d test(s), %s\n", g_size, nsel, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
