/*
 * Objects and futures in embedded mode: tr_put/tr_get and the typed and
 * copying variants, timeouts, tr_get_many, tr_wait, handle counting
 * (release, dup), views, and values stored in the shared-memory arena.
 *
 * "Slow" tasks wait on a gate that the test opens, so every outcome is
 * decided by the test's own ordering, never by timing.
 */
#include "suites.h"
#include "tr_test.h"

/* Waits for the gate, then returns the i64 argument (or 7). */
static tr_status_t fu_gated(tr_task_h t)
{
    int64_t v = 7;
    if (tr_task_num_args(t) > 0) {
        tr_status_t st = tr_task_arg_i64(t, 0, &v);
        if (st != TR_OK) {
            return st;
        }
    }
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "gate never opened");
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(fu_gated)

static tr_status_t fu_fail(tr_task_h t)
{
    tr_task_fail(t, "fu_fail always fails");
    return TR_ERR_TASK_FAILED;
}
TR_REMOTE(fu_fail)

/* Returns argument 0 unchanged (any size). */
static tr_status_t fu_echo(tr_task_h t)
{
    const void *p;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, &p, &n);
    return st != TR_OK ? st : tr_task_return(t, 0, p, n);
}
TR_REMOTE(fu_echo)

/* Args: i64 size, i64 seed.  Returns a patterned value built in place. */
static tr_status_t fu_produce(tr_task_h t)
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
    if (st == TR_OK) {
        tt_fill(p, (size_t)size, (uint64_t)seed);
    }
    return st;
}
TR_REMOTE(fu_produce)

/* Checks argument 0 against tt_fill(seed = argument 1); returns 1 or 0. */
static tr_status_t fu_verify(tr_task_h t)
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
    int ok = (size_t)size == n && tt_check_pattern(p, n, (uint64_t)seed) == n;
    return tr_task_return_i64(t, 0, ok);
}
TR_REMOTE(fu_verify)

static void put_get_roundtrip(size_t size, uint64_t seed)
{
    unsigned char *src = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(src);
    tt_fill(src, size, seed);
    tr_ref_h ref;
    tt_ok(tr_put(src, size, &ref));
    /* the store holds a copy: changing the source afterwards changes nothing */
    memset(src, 0xA5, size);

    tr_buf_h buf;
    tt_ok(tr_get(ref, TR_TIMEOUT_INFINITE, &buf));
    ck_assert_uint_eq(tr_buf_size(buf), size);
    if (size > 0) {
        ck_assert_ptr_nonnull(tr_buf_data(buf));
    }
    ck_assert_msg(tt_check_pattern(tr_buf_data(buf), size, seed) == size,
                  "value of %zu bytes differs at byte %zu", size,
                  tt_check_pattern(tr_buf_data(buf), size, seed));
    tt_ok(tr_buf_release(buf));

    /* a second get sees the same bytes */
    unsigned char *dst = malloc(size + 16);
    ck_assert_ptr_nonnull(dst);
    size_t got = 0;
    tt_ok(tr_get_copy(ref, TR_TIMEOUT_INFINITE, dst, size + 16, &got));
    ck_assert_uint_eq(got, size);
    ck_assert_uint_eq(tt_check_pattern(dst, size, seed), size);

    tt_ok(tr_ref_release(ref));
    free(dst);
    free(src);
}

START_TEST(test_put_get_sizes)
{
    static const size_t sizes[] = { 0, 1, 2, 63, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1,
                                    1024 * 1024, 8 * 1024 * 1024 };
    tt_ok(tr_init(NULL));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        put_get_roundtrip(sizes[i], 1000 + i);
    }
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_put_null_data)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ref = TR_REF_NULL;
    tt_assert_status(tr_put(NULL, 1, &ref), TR_ERR_INVALID_ARG);
    ck_assert_ptr_eq(ref, TR_REF_NULL);
    tt_assert_status(tr_put("abc", 3, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_i64(1, NULL), TR_ERR_INVALID_ARG);
    tt_ok(tr_put(NULL, 0, &ref)); /* NULL with size 0 is an empty value */
    tr_buf_h buf;
    tt_ok(tr_get(ref, 0, &buf));
    ck_assert_uint_eq(tr_buf_size(buf), 0);
    tt_ok(tr_buf_release(buf));
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_get_copy_too_small)
{
    tt_ok(tr_init(NULL));
    char src[100];
    tt_fill(src, sizeof(src), 5);
    tr_ref_h ref;
    tt_ok(tr_put(src, sizeof(src), &ref));

    char dst[100];
    memset(dst, 0x11, sizeof(dst));
    size_t size = 0;
    tt_assert_status(tr_get_copy(ref, 0, dst, 99, &size), TR_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(size, 100);
    for (size_t i = 99; i < sizeof(dst); i++) {
        ck_assert_int_eq((unsigned char)dst[i], 0x11); /* nothing past capacity written */
    }
    size = 0;
    tt_assert_status(tr_get_copy(ref, 0, dst, 1, &size), TR_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(size, 100);

    size = 0;
    tt_ok(tr_get_copy(ref, 0, dst, sizeof(dst), &size));
    ck_assert_uint_eq(size, 100);
    ck_assert_int_eq(memcmp(src, dst, sizeof(src)), 0);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_typed_get)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ri, rf, r4, r16;
    tt_ok(tr_put_i64(-1234567890123ll, &ri));
    tt_ok(tr_put_f64(3.25e-7, &rf));
    tt_ok(tr_put("abcd", 4, &r4));
    tt_ok(tr_put("0123456789abcdef", 16, &r16));

    int64_t i = 0;
    double f = 0;
    tt_ok(tr_get_i64(ri, 0, &i));
    ck_assert(i == -1234567890123ll);
    tt_ok(tr_get_f64(rf, 0, &f));
    ck_assert(f == 3.25e-7);

    i = 99;
    f = 99.0;
    tt_assert_status(tr_get_i64(r4, 0, &i), TR_ERR_TYPE);
    tt_assert_status(tr_get_f64(r4, 0, &f), TR_ERR_TYPE);
    tt_assert_status(tr_get_i64(r16, 0, &i), TR_ERR_TYPE);
    tt_assert_status(tr_get_f64(r16, 0, &f), TR_ERR_TYPE);
    ck_assert(i == 99 && f == 99.0); /* not written on error */

    /* an 8-byte value is readable by either helper */
    double via_f;
    tt_ok(tr_get_f64(ri, 0, &via_f));
    int64_t raw = -1234567890123ll;
    double expect;
    memcpy(&expect, &raw, sizeof(expect));
    ck_assert(memcmp(&via_f, &expect, sizeof(double)) == 0);

    tr_ref_h refs[] = { ri, rf, r4, r16 };
    for (size_t k = 0; k < 4; k++) {
        tt_ok(tr_ref_release(refs[k]));
    }
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_get_timeout_then_success)
{
    tt_ok(tr_init(NULL));
    tt_gate_close();
    tr_arg_t arg = TR_ARG_I64(55);
    tr_ref_h ref;
    tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &ref));

    tr_buf_h buf = (tr_buf_h)0x1;
    tt_assert_status(tr_get(ref, 10, &buf), TR_ERR_TIMEOUT);
    ck_assert_ptr_eq(buf, (tr_buf_h)0x1);
    tt_assert_status(tr_get(ref, 0, &buf), TR_ERR_TIMEOUT);
    int64_t v = -1;
    tt_assert_status(tr_get_i64(ref, 10, &v), TR_ERR_TIMEOUT);
    ck_assert_int_eq(v, -1);
    char dst[8];
    size_t size = 0;
    tt_assert_status(tr_get_copy(ref, 10, dst, sizeof(dst), &size), TR_ERR_TIMEOUT);

    tt_gate_open();
    tt_ok(tr_get_i64(ref, TR_TIMEOUT_INFINITE, &v));
    ck_assert_int_eq(v, 55);
    /* once ready, a zero timeout suffices */
    tt_ok(tr_get_i64(ref, 0, &v));
    ck_assert_int_eq(v, 55);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_get_invalid)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ref;
    tt_ok(tr_put_i64(1, &ref));
    tt_assert_status(tr_get(ref, 0, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_get_i64(ref, 0, NULL), TR_ERR_INVALID_ARG);
    tr_buf_h buf;
    tt_assert_status2(tr_get(TR_REF_NULL, 0, &buf), TR_ERR_INVALID_ARG, TR_ERR_REF_RELEASED);
    /* a forged handle is detected, not dereferenced */
    tt_assert_status2(tr_get((tr_ref_h)(uintptr_t)0xdeadbeef0badull, 0, &buf),
                      TR_ERR_INVALID_ARG, TR_ERR_REF_RELEASED);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_get_many)
{
    tt_ok(tr_init(NULL));
    enum { N = 6 };
    tr_ref_h refs[N];
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            tt_ok(tr_put_i64(i * 10, &refs[i]));
        } else {
            tr_arg_t arg = TR_ARG_I64(i * 10);
            tt_gate_open();
            tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &refs[i]));
        }
    }
    tr_buf_h bufs[N];
    tt_ok(tr_get_many(refs, N, TR_TIMEOUT_INFINITE, bufs));
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(tr_buf_size(bufs[i]), 8);
        int64_t v;
        memcpy(&v, tr_buf_data(bufs[i]), 8);
        ck_assert_int_eq(v, i * 10);
        tt_ok(tr_buf_release(bufs[i]));
    }

    /* one failure: the call fails and writes no views */
    tr_ref_h bad;
    tt_ok(tr_task_submit(fu_fail, NULL, 0, NULL, &bad));
    tr_ref_h mix[3] = { refs[0], bad, refs[1] };
    tr_buf_h out[3] = { (tr_buf_h)0x1, (tr_buf_h)0x2, (tr_buf_h)0x3 };
    tt_assert_status(tr_get_many(mix, 3, TR_TIMEOUT_INFINITE, out), TR_ERR_TASK_FAILED);
    ck_assert(out[0] == (tr_buf_h)0x1 && out[1] == (tr_buf_h)0x2 && out[2] == (tr_buf_h)0x3);

    /* a timeout: no views either */
    tt_gate_close();
    tr_arg_t arg = TR_ARG_I64(1);
    tr_ref_h slow;
    tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &slow));
    tr_ref_h mix2[2] = { refs[1], slow };
    tr_buf_h out2[2] = { (tr_buf_h)0x1, (tr_buf_h)0x2 };
    tt_assert_status(tr_get_many(mix2, 2, 20, out2), TR_ERR_TIMEOUT);
    ck_assert(out2[0] == (tr_buf_h)0x1 && out2[1] == (tr_buf_h)0x2);
    tt_gate_open();
    tt_ok(tr_get_many(mix2, 2, TR_TIMEOUT_INFINITE, out2));
    tt_ok(tr_buf_release(out2[0]));
    tt_ok(tr_buf_release(out2[1]));

    tt_assert_status(tr_get_many(NULL, 2, 0, out2), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_get_many(mix2, 2, 0, NULL), TR_ERR_INVALID_ARG);

    for (int i = 0; i < N; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    tt_ok(tr_ref_release(bad));
    tt_ok(tr_ref_release(slow));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_wait_order_and_k)
{
    tt_ok(tr_init(NULL));
    tt_gate_close();
    enum { N = 8 };
    tr_ref_h refs[N];
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            tt_ok(tr_put_i64(i, &refs[i]));
        } else {
            tr_arg_t arg = TR_ARG_I64(i);
            tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &refs[i]));
        }
    }
    size_t idx[N], nready = 0;

    /* k = 4 of 8: exactly the puts, in input order */
    tt_ok(tr_wait(refs, N, N / 2, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, N / 2);
    for (size_t j = 0; j < nready; j++) {
        ck_assert_uint_eq(idx[j], 2 * j);
    }

    /* k = 2: at most k indices, in input order, all ready */
    tt_ok(tr_wait(refs, N, 2, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, 2);
    ck_assert_uint_eq(idx[0], 0);
    ck_assert_uint_eq(idx[1], 2);

    /* k = n with a timeout: fewer than k come back */
    tt_ok(tr_wait(refs, N, N, 30, idx, &nready));
    ck_assert_uint_eq(nready, N / 2);
    for (size_t j = 0; j < nready; j++) {
        ck_assert_uint_eq(idx[j], 2 * j);
    }
    tt_ok(tr_wait(refs, N, N, 0, idx, &nready));
    ck_assert_uint_eq(nready, N / 2);

    /* k > n and NULL arguments */
    nready = 99;
    tt_assert_status(tr_wait(refs, N, N + 1, 0, idx, &nready), TR_ERR_INVALID_ARG);
    ck_assert_uint_eq(nready, 99);
    tt_assert_status(tr_wait(NULL, N, 1, 0, idx, &nready), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_wait(refs, N, 1, 0, NULL, &nready), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_wait(refs, N, 1, 0, idx, NULL), TR_ERR_INVALID_ARG);

    /* open the gate: all n, in input order */
    tt_gate_open();
    tt_ok(tr_wait(refs, N, N, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, N);
    for (size_t j = 0; j < N; j++) {
        ck_assert_uint_eq(idx[j], j);
        ck_assert_int_eq(tt_get_i64(refs[j]), (int64_t)j);
    }
    for (int i = 0; i < N; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_wait_counts_failed_as_ready)
{
    /* Only one executor is held by the gate: the failing task gets the other. */
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 2 };
    tt_ok(tr_init(&ip));
    tt_gate_close();
    tr_ref_h gate, refs[3];
    tr_arg_t arg = TR_ARG_I64(1);
    tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &gate));
    tr_arg_t dep = TR_ARG_REF(gate);
    tt_ok(tr_task_submit(fu_echo, &dep, 1, NULL, &refs[0]));
    tt_ok(tr_task_submit(fu_fail, NULL, 0, NULL, &refs[1]));
    tt_ok(tr_task_submit(fu_echo, &dep, 1, NULL, &refs[2]));
    size_t idx[3], nready = 0;
    tt_ok(tr_wait(refs, 3, 1, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, 1);
    ck_assert_uint_eq(idx[0], 1);
    tt_gate_open();
    tt_ok(tr_wait(refs, 3, 3, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, 3);
    for (int i = 0; i < 3; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    tt_ok(tr_ref_release(gate));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_release_then_use)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ref, other;
    tt_ok(tr_put_i64(5, &ref));
    tt_ok(tr_put_i64(6, &other));
    tt_ok(tr_ref_release(ref));

    tr_buf_h buf;
    tt_assert_status(tr_get(ref, 0, &buf), TR_ERR_REF_RELEASED);
    int64_t v;
    tt_assert_status(tr_get_i64(ref, 0, &v), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_ref_release(ref), TR_ERR_REF_RELEASED);
    tr_ref_h dup;
    tt_assert_status(tr_ref_dup(ref, &dup), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_cancel(ref), TR_ERR_REF_RELEASED);

    tr_ref_h both[2] = { other, ref };
    size_t idx[2], nready;
    tt_assert_status(tr_wait(both, 2, 1, 0, idx, &nready), TR_ERR_REF_RELEASED);
    tr_buf_h bufs[2];
    tt_assert_status(tr_get_many(both, 2, 0, bufs), TR_ERR_REF_RELEASED);

    tr_arg_t args[2] = { TR_ARG_REF(other), TR_ARG_REF(ref) };
    tr_ref_h out = TR_REF_NULL;
    tt_assert_status(tr_task_submit(fu_echo, &args[1], 1, NULL, &out), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_task_submit(fu_echo, args, 2, NULL, &out), TR_ERR_REF_RELEASED);
    ck_assert_ptr_eq(out, TR_REF_NULL);

    /* the other handle is untouched */
    ck_assert_int_eq(tt_get_i64(other), 6);
    tt_ok(tr_ref_release(other));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_release_task_ref_before_done)
{
    tt_ok(tr_init(NULL));
    tt_gate_close();
    tr_arg_t arg = TR_ARG_I64(3);
    tr_ref_h ref;
    tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &ref));
    tt_ok(tr_ref_release(ref));
    tr_buf_h buf;
    tt_assert_status(tr_get(ref, 0, &buf), TR_ERR_REF_RELEASED);
    tt_gate_open();
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_ref_dup)
{
    tt_ok(tr_init(NULL));
    tr_ref_h a, b, c;
    char big[100000];
    tt_fill(big, sizeof(big), 77);
    tt_ok(tr_put(big, sizeof(big), &a));
    tt_ok(tr_ref_dup(a, &b));
    ck_assert_ptr_ne(a, b);
    tt_ok(tr_ref_dup(b, &c));
    tt_ok(tr_ref_release(a));

    /* b and c still read the object */
    tr_buf_h buf;
    tt_ok(tr_get(b, 0, &buf));
    ck_assert_uint_eq(tr_buf_size(buf), sizeof(big));
    ck_assert_int_eq(memcmp(tr_buf_data(buf), big, sizeof(big)), 0);
    tt_ok(tr_buf_release(buf));
    tt_ok(tr_ref_release(b));
    tt_assert_status(tr_get(b, 0, &buf), TR_ERR_REF_RELEASED);
    tt_ok(tr_get(c, 0, &buf));
    ck_assert_int_eq(memcmp(tr_buf_data(buf), big, sizeof(big)), 0);
    tt_ok(tr_buf_release(buf));
    tt_ok(tr_ref_release(c));
    tt_assert_status(tr_ref_release(c), TR_ERR_REF_RELEASED);

    tr_ref_h d;
    tt_ok(tr_put_i64(1, &d));
    tt_assert_status(tr_ref_dup(d, NULL), TR_ERR_INVALID_ARG);
    tt_ok(tr_ref_release(d));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_ref_dup_of_pending_task)
{
    tt_ok(tr_init(NULL));
    tt_gate_close();
    tr_arg_t arg = TR_ARG_I64(31);
    tr_ref_h a, b;
    tt_ok(tr_task_submit(fu_gated, &arg, 1, NULL, &a));
    tt_ok(tr_ref_dup(a, &b));
    tt_ok(tr_ref_release(a));
    tt_gate_open();
    ck_assert_int_eq(tt_get_i64(b), 31);
    tt_ok(tr_ref_release(b));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_buf_release)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ref;
    tt_ok(tr_put("hello", 6, &ref));
    tr_buf_h b1, b2;
    tt_ok(tr_get(ref, 0, &b1));
    tt_ok(tr_get(ref, 0, &b2));
    tt_ok(tr_buf_release(b1));
    tt_assert_status(tr_buf_release(b1), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_buf_release(NULL), TR_ERR_INVALID_ARG);
    /* b2 is a separate view */
    ck_assert_str_eq(tr_buf_data(b2), "hello");
    tt_ok(tr_buf_release(b2));
    ck_assert_ptr_null(tr_buf_data(NULL));
    ck_assert_uint_eq(tr_buf_size(NULL), 0);
    ck_assert_ptr_null(tr_buf_data(b2));
    ck_assert_uint_eq(tr_buf_size(b2), 0);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_view_outlives_ref)
{
    tt_ok(tr_init(NULL));
    size_t n = 2 * 1024 * 1024;
    unsigned char *src = malloc(n);
    ck_assert_ptr_nonnull(src);
    tt_fill(src, n, 4);
    tr_ref_h ref;
    tt_ok(tr_put(src, n, &ref));
    tr_buf_h buf;
    tt_ok(tr_get(ref, 0, &buf));
    tt_ok(tr_ref_release(ref));
    /* the view pins the value: still readable after the last ref is gone */
    for (int i = 0; i < 4; i++) {
        tr_ref_h churn;
        tt_ok(tr_put(src, n, &churn));
        tt_ok(tr_ref_release(churn));
    }
    ck_assert_uint_eq(tr_buf_size(buf), n);
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(buf), n, 4), n);
    tt_ok(tr_buf_release(buf));
    free(src);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_arena_large_values)
{
    ck_assert_int_eq(setenv("TASKRAY_INLINE_MAX", "1024", 1), 0);
    tt_ok(tr_init(NULL));
    static const size_t sizes[] = { 1023, 1024, 1025, 4096, 1024 * 1024 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint64_t seed = 900 + i;
        unsigned char *src = malloc(n);
        ck_assert_ptr_nonnull(src);
        tt_fill(src, n, seed);
        tr_ref_h ref;
        tt_ok(tr_put(src, n, &ref));
        memset(src, 0, n);

        tr_buf_h buf;
        tt_ok(tr_get(ref, 0, &buf));
        ck_assert_uint_eq(tr_buf_size(buf), n);
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(buf), n, seed), n);
        tt_ok(tr_buf_release(buf));

        /* through a task: as an argument, and back as a return */
        tr_arg_t vargs[3] = { TR_ARG_REF(ref), TR_ARG_I64((int64_t)seed), TR_ARG_I64((int64_t)n) };
        tr_ref_h ok, echo;
        tt_ok(tr_task_submit(fu_verify, vargs, 3, NULL, &ok));
        tt_ok(tr_task_submit(fu_echo, vargs, 1, NULL, &echo));
        ck_assert_int_eq(tt_get_i64(ok), 1);
        tt_ok(tr_get(echo, TR_TIMEOUT_INFINITE, &buf));
        ck_assert_uint_eq(tr_buf_size(buf), n);
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(buf), n, seed), n);
        tt_ok(tr_buf_release(buf));

        /* produced in place by a task, read by the driver and by another task */
        tr_arg_t pargs[2] = { TR_ARG_I64((int64_t)n), TR_ARG_I64((int64_t)seed + 1) };
        tr_ref_h made, ok2;
        tt_ok(tr_task_submit(fu_produce, pargs, 2, NULL, &made));
        tr_arg_t v2[3] = { TR_ARG_REF(made), TR_ARG_I64((int64_t)seed + 1), TR_ARG_I64((int64_t)n) };
        tt_ok(tr_task_submit(fu_verify, v2, 3, NULL, &ok2));
        tt_ok(tr_get(made, TR_TIMEOUT_INFINITE, &buf));
        ck_assert_uint_eq(tr_buf_size(buf), n);
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(buf), n, seed + 1), n);
        tt_ok(tr_buf_release(buf));
        ck_assert_int_eq(tt_get_i64(ok2), 1);

        tr_ref_h all[5] = { ref, ok, echo, made, ok2 };
        for (int k = 0; k < 5; k++) {
            tt_ok(tr_ref_release(all[k]));
        }
        free(src);
    }
    tt_ok(tr_finalize());
    unsetenv("TASKRAY_INLINE_MAX");
}
END_TEST

START_TEST(test_many_objects_freed)
{
    /* put and release far more than fits at once: released memory is reused */
    tt_ok(tr_init(NULL));
    size_t n = 4 * 1024 * 1024;
    unsigned char *src = malloc(n);
    ck_assert_ptr_nonnull(src);
    for (int i = 0; i < 256; i++) { /* 1 GiB in total */
        src[0] = (unsigned char)i;
        tr_ref_h ref;
        tt_ok(tr_put(src, n, &ref));
        tr_buf_h buf;
        tt_ok(tr_get(ref, 0, &buf));
        ck_assert_int_eq(((const unsigned char *)tr_buf_data(buf))[0], (unsigned char)i);
        tt_ok(tr_buf_release(buf));
        tt_ok(tr_ref_release(ref));
    }
    free(src);
    tt_ok(tr_finalize());
}
END_TEST

Suite *tr_suite_futures(void)
{
    Suite *s = suite_create("futures");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_put_get_sizes);
    tcase_add_test(tc, test_put_null_data);
    tcase_add_test(tc, test_get_copy_too_small);
    tcase_add_test(tc, test_typed_get);
    tcase_add_test(tc, test_get_timeout_then_success);
    tcase_add_test(tc, test_get_invalid);
    tcase_add_test(tc, test_get_many);
    tcase_add_test(tc, test_wait_order_and_k);
    tcase_add_test(tc, test_wait_counts_failed_as_ready);
    tcase_add_test(tc, test_release_then_use);
    tcase_add_test(tc, test_release_task_ref_before_done);
    tcase_add_test(tc, test_ref_dup);
    tcase_add_test(tc, test_ref_dup_of_pending_task);
    tcase_add_test(tc, test_buf_release);
    tcase_add_test(tc, test_view_outlives_ref);
    tcase_add_test(tc, test_arena_large_values);
    tcase_add_test(tc, test_many_objects_freed);
    suite_add_tcase(s, tc);
    return s;
}
