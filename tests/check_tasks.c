/*
 * Tasks in embedded mode: arguments (bytes, i64, f64, refs, futures),
 * returns, chains, nesting and ownership, failures and their propagation,
 * retries, resources and tr_cancel().
 *
 * Task functions run in this process, so counters are plain atomics, and
 * "slow" tasks wait on a gate the test opens (no timing anywhere).
 */
#define _GNU_SOURCE /* strcasestr */
#include <string.h>

#include "suites.h"
#include "tr_test.h"

#define FAIL_MSG "disk quota exceeded on volume 7"

static atomic_int tk_runs;      /* runs of tk_counted */
static atomic_int tk_attempts;  /* runs of tk_retry */
static atomic_int tk_active;    /* tk_busy running now */
static atomic_int tk_max_active;
static tr_task_h tk_stashed;    /* a task handle kept after its task returned */

/* ------------------------------------------------------------ functions */

/* Returns each argument as the return of the same index. */
static tr_status_t tk_echo(tr_task_h t)
{
    int n = tr_task_num_args(t);
    for (int i = 0; i < n; i++) {
        const void *p;
        size_t size;
        tr_status_t st = tr_task_arg(t, i, &p, &size);
        if (st == TR_OK) {
            st = tr_task_return(t, i, p, size);
        }
        if (st != TR_OK) {
            return st;
        }
    }
    return TR_OK;
}
TR_REMOTE(tk_echo)

/* Waits for the gate, then returns argument 0 unchanged. */
static tr_status_t tk_gated_echo(tr_task_h t)
{
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "gate never opened");
        return TR_ERR_TASK_FAILED;
    }
    const void *p;
    size_t size;
    tr_status_t st = tr_task_arg(t, 0, &p, &size);
    return st != TR_OK ? st : tr_task_return(t, 0, p, size);
}
TR_REMOTE(tk_gated_echo)

/* Hash of all arguments (tt_fnv_arg over each, in order), as an i64. */
static tr_status_t tk_cksum(tr_task_h t)
{
    uint64_t h = TT_FNV_INIT;
    int n = tr_task_num_args(t);
    for (int i = 0; i < n; i++) {
        const void *p;
        size_t size;
        tr_status_t st = tr_task_arg(t, i, &p, &size);
        if (st != TR_OK) {
            return st;
        }
        h = tt_fnv_arg(h, p, size);
    }
    return tr_task_return_i64(t, 0, (int64_t)h);
}
TR_REMOTE(tk_cksum)

/* Args: any number of i64 then f64 (by kind order given by arg 0 = count of i64s).
 * Returns [0] the i64 sum, [1] the f64 sum. */
static tr_status_t tk_sum(tr_task_h t)
{
    int64_t ni, si = 0;
    double sf = 0;
    tr_status_t st = tr_task_arg_i64(t, 0, &ni);
    int n = tr_task_num_args(t);
    for (int i = 1; st == TR_OK && i < n; i++) {
        if (i <= ni) {
            int64_t v;
            st = tr_task_arg_i64(t, i, &v);
            si += v;
        } else {
            double v;
            st = tr_task_arg_f64(t, i, &v);
            sf += v;
        }
    }
    if (st == TR_OK) {
        st = tr_task_return_i64(t, 0, si);
    }
    if (st == TR_OK) {
        st = tr_task_return_f64(t, 1, sf);
    }
    return st;
}
TR_REMOTE(tk_sum)

/*
 * Checks the accessors from inside a task.  Arguments: "abc" (3 bytes),
 * i64 77, f64 2.5, an empty bytes argument.  One return.  Returns a bit
 * mask of the checks that failed (0 = all passed).
 */
static tr_status_t tk_accessors(tr_task_h t)
{
    int64_t bad = 0, i64 = 0;
    double f64 = 0;
    const void *p = NULL;
    size_t size = 99;

    if (tr_task_num_args(t) != 4) bad |= 1 << 0;
    if (tr_task_arg_i64(t, 0, &i64) != TR_ERR_TYPE) bad |= 1 << 1;
    if (tr_task_arg_f64(t, 0, &f64) != TR_ERR_TYPE) bad |= 1 << 2;
    if (tr_task_arg_i64(t, 1, &i64) != TR_OK || i64 != 77) bad |= 1 << 3;
    if (tr_task_arg_f64(t, 2, &f64) != TR_OK || f64 != 2.5) bad |= 1 << 4;
    if (tr_task_arg(t, 3, &p, &size) != TR_OK || size != 0) bad |= 1 << 5;
    if (tr_task_arg(t, 4, &p, &size) != TR_ERR_INVALID_ARG) bad |= 1 << 6;
    if (tr_task_arg(t, -1, &p, &size) != TR_ERR_INVALID_ARG) bad |= 1 << 7;
    if (tr_task_arg(t, 0, &p, &size) != TR_OK || size != 3 || memcmp(p, "abc", 3) != 0)
        bad |= 1 << 8;
    if (tr_task_arg(t, 1, &p, &size) != TR_OK || size != sizeof(int64_t)) bad |= 1 << 9;
    if (tr_task_return_i64(t, 1, 5) != TR_ERR_INVALID_ARG) bad |= 1 << 10;
    if (tr_task_return(t, -1, "x", 1) != TR_ERR_INVALID_ARG) bad |= 1 << 11;
    if (tr_task_attempt(t) != 0) bad |= 1 << 12;
    if (tr_task_rank(t) != 0) bad |= 1 << 13;
    if (!tr_is_driver()) bad |= 1 << 14;
    if (tr_task_arg_i64(NULL, 1, &i64) != TR_ERR_INVALID_ARG) bad |= 1 << 15;
    if (tr_task_num_args(NULL) != -1) bad |= 1 << 16;
    return tr_task_return_i64(t, 0, bad);
}
TR_REMOTE(tk_accessors)

static tr_status_t tk_stash(tr_task_h t)
{
    tk_stashed = t;
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(tk_stash)

/* i64 argument + 1 (by value or by ref). */
static tr_status_t tk_inc(tr_task_h t)
{
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, v + 1);
}
TR_REMOTE(tk_inc)

static tr_status_t tk_add(tr_task_h t)
{
    int64_t a, b;
    tr_status_t st = tr_task_arg_i64(t, 0, &a);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &b);
    }
    return st != TR_OK ? st : tr_task_return_i64(t, 0, a + b);
}
TR_REMOTE(tk_add)

/* Args: i64 n (returns to set), i64 skip (index to leave unset, or -1).
 * Return i = i * i + 1. */
static tr_status_t tk_multi(tr_task_h t)
{
    int64_t n, skip;
    tr_status_t st = tr_task_arg_i64(t, 0, &n);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &skip);
    }
    for (int64_t i = 0; st == TR_OK && i < n; i++) {
        if (i != skip) {
            st = tr_task_return_i64(t, (int)i, i * i + 1);
        }
    }
    return st;
}
TR_REMOTE(tk_multi)

/* Waits for the gate; returns its i64 argument, or 1. */
static tr_status_t tk_gated(tr_task_h t)
{
    int64_t v = 1;
    if (tr_task_num_args(t) > 0 && tr_task_arg_i64(t, 0, &v) != TR_OK) {
        return TR_ERR_INVALID_ARG;
    }
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "gate never opened");
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(tk_gated)

/* Counts its runs; returns the number of arguments. */
static tr_status_t tk_counted(tr_task_h t)
{
    atomic_fetch_add(&tk_runs, 1);
    return tr_task_return_i64(t, 0, tr_task_num_args(t));
}
TR_REMOTE(tk_counted)

static tr_status_t tk_fail(tr_task_h t)
{
    tr_task_fail(t, "%s", FAIL_MSG);
    return TR_ERR_TASK_FAILED;
}
TR_REMOTE(tk_fail)

/* Fails with a plain status and no message. */
static tr_status_t tk_fail_plain(tr_task_h t)
{
    (void)t;
    return TR_ERR_INVALID_ARG;
}
TR_REMOTE(tk_fail_plain)

/* Asks for a retry on attempts 0 and 1; succeeds on attempt 2 returning it. */
static tr_status_t tk_retry(tr_task_h t)
{
    atomic_fetch_add(&tk_attempts, 1);
    int attempt = tr_task_attempt(t);
    if (attempt < 2) {
        tr_task_fail(t, "transient failure on attempt %d", attempt);
        return TR_ERR_TASK_RETRY;
    }
    return tr_task_return_i64(t, 0, attempt);
}
TR_REMOTE(tk_retry)

/* Records how many run at once. */
static tr_status_t tk_busy(tr_task_h t)
{
    int now = atomic_fetch_add(&tk_active, 1) + 1;
    int max = atomic_load(&tk_max_active);
    while (now > max && !atomic_compare_exchange_weak(&tk_max_active, &max, now)) {
    }
    tt_msleep(5);
    atomic_fetch_sub(&tk_active, 1);
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(tk_busy)

/*
 * Nested submission and ownership: submits tk_inc on 0..9 (by value), puts
 * a 200 KB value and echoes it through a child by ref, and returns
 * sum(1..10) if every check passed, or a negative code.
 */
static tr_status_t tk_outer(tr_task_h t)
{
    enum { N = 10 };
    tr_ref_h kids[N];
    tr_status_t st = TR_OK;
    int submitted = 0;
    for (; submitted < N && st == TR_OK; submitted++) {
        tr_arg_t a = TR_ARG_I64(submitted);
        st = tr_task_submit(tk_inc, &a, 1, NULL, &kids[submitted]);
    }
    if (st != TR_OK) {
        tr_task_fail(t, "nested submit failed: %s", tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    int64_t sum = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = 0;
        if (tr_get_i64(kids[i], TR_TIMEOUT_INFINITE, &v) != TR_OK) {
            sum = -1000;
        }
        sum += v;
        tr_ref_release(kids[i]);
    }

    size_t n = 200000;
    unsigned char *data = malloc(n);
    if (data == NULL) {
        return TR_ERR_NO_MEMORY;
    }
    tt_fill(data, n, 31337);
    tr_ref_h mine, echoed;
    st = tr_put(data, n, &mine);
    free(data);
    if (st != TR_OK) {
        return st;
    }
    tr_arg_t a = TR_ARG_REF(mine);
    st = tr_task_submit(tk_echo, &a, 1, NULL, &echoed);
    tr_ref_release(mine); /* the pending child keeps it alive */
    if (st != TR_OK) {
        return st;
    }
    tr_buf_h buf;
    st = tr_get(echoed, TR_TIMEOUT_INFINITE, &buf);
    if (st == TR_OK) {
        if (tr_buf_size(buf) != n || tt_check_pattern(tr_buf_data(buf), n, 31337) != n) {
            sum = -2000;
        }
        tr_buf_release(buf);
    } else {
        sum = -3000;
    }
    tr_ref_release(echoed);
    return tr_task_return_i64(t, 0, sum);
}
TR_REMOTE(tk_outer)

/* Depth-first nesting: depth d returns d + child(d - 1). */
static tr_status_t tk_deep(tr_task_h t)
{
    int64_t d;
    tr_status_t st = tr_task_arg_i64(t, 0, &d);
    if (st != TR_OK || d == 0) {
        return st != TR_OK ? st : tr_task_return_i64(t, 0, 0);
    }
    tr_arg_t a = TR_ARG_I64(d - 1);
    tr_ref_h child;
    int64_t v;
    if ((st = tr_task_submit(tk_deep, &a, 1, NULL, &child)) != TR_OK) {
        return st;
    }
    st = tr_get_i64(child, TR_TIMEOUT_INFINITE, &v);
    tr_ref_release(child);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, d + v);
}
TR_REMOTE(tk_deep)

/* ------------------------------------------------------------ helpers */

static void init_executors(int n)
{
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = n };
    tt_ok(tr_init(&p));
}

/* Submit @fn with params @p; expect @expect from the submit. */
static void expect_submit(tr_remote_fn_t fn, const tr_arg_t *args, int nargs,
                          const tr_task_params_t *p, tr_status_t expect)
{
    tr_ref_h refs[TR_MAX_RETURNS + 1];
    refs[0] = TR_REF_NULL;
    tt_assert_status(tr_task_submit(fn, args, nargs, p, refs), expect);
    if (expect == TR_OK) {
        int n = p && (p->field_mask & TR_TASK_FIELD_NUM_RETURNS) ? p->num_returns : 1;
        tt_release_all(refs, n);
    } else {
        ck_assert_ptr_eq(refs[0], TR_REF_NULL);
    }
}

/* --------------------------------------------------------------- tests */

START_TEST(test_scalar_args)
{
    tt_ok(tr_init(NULL));
    /* i64 count first, then the i64s (ordered so the sum never overflows), then f64s */
    tr_arg_t args[] = { TR_ARG_I64(3), TR_ARG_I64(INT64_MAX), TR_ARG_I64(INT64_MIN),
                        TR_ARG_I64(-7), TR_ARG_F64(0.5), TR_ARG_F64(-1.25),
                        TR_ARG_F64(1024.0), TR_ARG_F64(0.25) };
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    tr_ref_h r[2];
    tt_ok(tr_task_submit(tk_sum, args, 8, &p, r));
    ck_assert_int_eq(tt_get_i64(r[0]), -8); /* MAX + MIN - 7 */
    double f = 0;
    tt_ok(tr_get_f64(r[1], TR_TIMEOUT_INFINITE, &f));
    ck_assert(f == 1023.5);
    tt_release_all(r, 2);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_arg_accessors)
{
    tt_ok(tr_init(NULL));
    char empty[1] = { 'z' };
    tr_arg_t args[] = { TR_ARG_BYTES("abc", 3), TR_ARG_I64(77), TR_ARG_F64(2.5),
                        TR_ARG_BYTES(empty, 0) };
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_accessors, args, 4, NULL, &r));
    int64_t bad = tt_get_i64(r);
    ck_assert_msg(bad == 0, "accessor checks failed inside the task: mask 0x%llx",
                  (unsigned long long)bad);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_handle_outside_task)
{
    tt_ok(tr_init(NULL));
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_stash, NULL, 0, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 1);
    tt_ok(tr_ref_release(r));
    /* the task has returned: its handle is not the running task of this thread */
    ck_assert_int_eq(tr_task_num_args(tk_stashed), -1);
    const void *p;
    size_t n;
    int64_t v;
    tt_assert_status(tr_task_arg(tk_stashed, 0, &p, &n), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_arg_i64(tk_stashed, 0, &v), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_return_i64(tk_stashed, 0, 1), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_fail(tk_stashed, "x"), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_return(NULL, 0, "x", 1), TR_ERR_INVALID_ARG);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_bytes_exact)
{
    static const size_t sizes[] = { 0, 1, 7, 4096, 65535, 65536, 65537, 300000 };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    tt_ok(tr_init(NULL));
    unsigned char *bufs[N];
    tr_arg_t args[N];
    uint64_t h = TT_FNV_INIT;
    for (int i = 0; i < N; i++) {
        bufs[i] = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(bufs[i]);
        tt_fill(bufs[i], sizes[i], 50 + i);
        args[i] = TR_ARG_BYTES(bufs[i], sizes[i]);
        h = tt_fnv_arg(h, bufs[i], sizes[i]);
    }
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = N };
    tr_ref_h r[N], ck;
    tt_ok(tr_task_submit(tk_echo, args, N, &p, r));
    tt_ok(tr_task_submit(tk_cksum, args, N, NULL, &ck));
    for (int i = 0; i < N; i++) {
        tr_buf_h b;
        tt_ok(tr_get(r[i], TR_TIMEOUT_INFINITE, &b));
        ck_assert_uint_eq(tr_buf_size(b), sizes[i]);
        ck_assert_msg(tt_check_pattern(tr_buf_data(b), sizes[i], 50 + i) == sizes[i],
                      "argument %d (%zu bytes) came back different", i, sizes[i]);
        tt_ok(tr_buf_release(b));
    }
    ck_assert(tt_get_i64(ck) == (int64_t)h);
    tt_release_all(r, N);
    tt_ok(tr_ref_release(ck));
    for (int i = 0; i < N; i++) {
        free(bufs[i]);
    }
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_bytes_copied_at_submit)
{
    init_executors(2);
    tt_gate_close();
    size_t n = 100000;
    unsigned char *src = malloc(n);
    ck_assert_ptr_nonnull(src);
    tt_fill(src, n, 8);
    tr_arg_t arg = TR_ARG_BYTES(src, n);
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_gated_echo, &arg, 1, NULL, &r));
    memset(src, 0, n); /* the task has not run yet: it must see the old bytes */
    free(src);
    tt_gate_open();
    tr_buf_h b;
    tt_ok(tr_get(r, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), n);
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(b), n, 8), n);
    tt_ok(tr_buf_release(b));
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_ref_args)
{
    static const size_t sizes[] = { 0, 1, 65536, 65537, 1 << 20 };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    tt_ok(tr_init(NULL));
    tr_ref_h puts[N];
    tr_arg_t args[2 * N];
    uint64_t h = TT_FNV_INIT;
    for (int i = 0; i < N; i++) {
        unsigned char *b = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(b);
        tt_fill(b, sizes[i], 70 + i);
        tt_ok(tr_put(b, sizes[i], &puts[i]));
        free(b);
    }
    /* interleave by-ref and by-value arguments */
    unsigned char small[5][33];
    for (int i = 0; i < N; i++) {
        tt_fill(small[i], 33, 90 + i);
        args[2 * i] = TR_ARG_REF(puts[i]);
        args[2 * i + 1] = TR_ARG_BYTES(small[i], 33);
    }
    for (int i = 0; i < N; i++) {
        unsigned char *b = malloc(sizes[i] + 1);
        tt_fill(b, sizes[i], 70 + i);
        h = tt_fnv_arg(h, b, sizes[i]);
        h = tt_fnv_arg(h, small[i], 33);
        free(b);
    }
    tr_ref_h ck, echo[2 * N];
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 * N };
    tt_ok(tr_task_submit(tk_cksum, args, 2 * N, NULL, &ck));
    tt_ok(tr_task_submit(tk_echo, args, 2 * N, &p, echo));
    /* the caller's handles can go: pending tasks keep their arguments alive */
    tt_release_all(puts, N);
    ck_assert(tt_get_i64(ck) == (int64_t)h);
    for (int i = 0; i < N; i++) {
        tr_buf_h b;
        tt_ok(tr_get(echo[2 * i], TR_TIMEOUT_INFINITE, &b));
        ck_assert_uint_eq(tr_buf_size(b), sizes[i]);
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(b), sizes[i], 70 + i), sizes[i]);
        tt_ok(tr_buf_release(b));
    }
    tt_ok(tr_ref_release(ck));
    tt_release_all(echo, 2 * N);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_future_args)
{
    tt_ok(tr_init(NULL));
    tr_arg_t a1[] = { TR_ARG_I64(1), TR_ARG_I64(2) };
    tr_ref_h a, b, c, d;
    tt_ok(tr_task_submit(tk_add, a1, 2, NULL, &a));
    tr_arg_t a2[] = { TR_ARG_REF(a), TR_ARG_I64(10) };
    tt_ok(tr_task_submit(tk_add, a2, 2, NULL, &b));
    tr_arg_t a3[] = { TR_ARG_REF(a), TR_ARG_REF(b) };
    tt_ok(tr_task_submit(tk_add, a3, 2, NULL, &c));
    tr_arg_t a4[] = { TR_ARG_REF(c), TR_ARG_REF(c) }; /* the same future twice */
    tt_ok(tr_task_submit(tk_add, a4, 2, NULL, &d));
    ck_assert_int_eq(tt_get_i64(d), 32);
    ck_assert_int_eq(tt_get_i64(c), 16);
    ck_assert_int_eq(tt_get_i64(b), 13);
    ck_assert_int_eq(tt_get_i64(a), 3);
    tr_ref_h all[] = { a, b, c, d };
    tt_release_all(all, 4);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_num_returns)
{
    tt_ok(tr_init(NULL));
    /* three returns */
    tr_arg_t a3[] = { TR_ARG_I64(3), TR_ARG_I64(-1) };
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 3 };
    tr_ref_h r[TR_MAX_RETURNS + 1];
    tt_ok(tr_task_submit(tk_multi, a3, 2, &p, r));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tt_get_i64(r[i]), i * i + 1);
    }
    tt_release_all(r, 3);

    /* TR_MAX_RETURNS returns, one left unset: an empty value */
    tr_arg_t am[] = { TR_ARG_I64(TR_MAX_RETURNS), TR_ARG_I64(17) };
    p.num_returns = TR_MAX_RETURNS;
    tt_ok(tr_task_submit(tk_multi, am, 2, &p, r));
    for (int i = 0; i < TR_MAX_RETURNS; i++) {
        if (i == 17) {
            tr_buf_h b;
            tt_ok(tr_get(r[i], TR_TIMEOUT_INFINITE, &b));
            ck_assert_uint_eq(tr_buf_size(b), 0);
            tt_ok(tr_buf_release(b));
        } else {
            ck_assert_int_eq(tt_get_i64(r[i]), i * i + 1);
        }
    }
    /* all handles are distinct */
    for (int i = 1; i < TR_MAX_RETURNS; i++) {
        ck_assert_ptr_ne(r[i], r[i - 1]);
    }
    tt_release_all(r, TR_MAX_RETURNS);

    p.num_returns = TR_MAX_RETURNS + 1;
    expect_submit(tk_multi, am, 2, &p, TR_ERR_INVALID_ARG);
    p.num_returns = 0;
    expect_submit(tk_multi, am, 2, &p, TR_ERR_INVALID_ARG);
    p.num_returns = -1;
    expect_submit(tk_multi, am, 2, &p, TR_ERR_INVALID_ARG);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_submit_invalid)
{
    tt_ok(tr_init(NULL));
    tr_arg_t arg = TR_ARG_I64(1);
    tr_ref_h r = TR_REF_NULL;
    tt_assert_status(tr_task_submit(tk_inc, &arg, 1, NULL, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_submit(tk_inc, NULL, 1, NULL, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_task_submit(tk_inc, &arg, -1, NULL, &r), TR_ERR_INVALID_ARG);
    tr_arg_t badkind = { .kind = (tr_arg_kind_t)99 };
    tt_assert_status(tr_task_submit(tk_inc, &badkind, 1, NULL, &r), TR_ERR_INVALID_ARG);
    tr_arg_t nullbytes = TR_ARG_BYTES(NULL, 5);
    tt_assert_status(tr_task_submit(tk_inc, &nullbytes, 1, NULL, &r), TR_ERR_INVALID_ARG);
    tr_arg_t nullref = TR_ARG_REF(TR_REF_NULL);
    tt_assert_status2(tr_task_submit(tk_inc, &nullref, 1, NULL, &r), TR_ERR_INVALID_ARG,
                      TR_ERR_REF_RELEASED);
    ck_assert_ptr_eq(r, TR_REF_NULL);

    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_CPUS, .num_cpus = -1 };
    expect_submit(tk_inc, &arg, 1, &p, TR_ERR_INVALID_ARG);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_MAX_RETRIES, .max_retries = -2 };
    expect_submit(tk_inc, &arg, 1, &p, TR_ERR_INVALID_ARG);
    static const char *const malformed[] = { "=1", "licence=abc", "licence=-1" };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RESOURCES,
                                .resources = malformed[i] };
        expect_submit(tk_inc, &arg, 1, &p, TR_ERR_INVALID_ARG);
    }

    /* unset fields are not read */
    p = (tr_task_params_t){ .field_mask = 0, .num_returns = -5, .num_cpus = -3,
                            .resources = "=", .max_retries = -9 };
    tt_ok(tr_task_submit(tk_inc, &arg, 1, &p, &r));
    ck_assert_int_eq(tt_get_i64(r), 2);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_chain_100)
{
    tt_ok(tr_init(NULL));
    tr_ref_h prev;
    tt_ok(tr_put_i64(0, &prev));
    for (int i = 0; i < 100; i++) {
        tr_arg_t a = TR_ARG_REF(prev);
        tr_ref_h next;
        tt_ok(tr_task_submit(tk_inc, &a, 1, NULL, &next));
        tt_ok(tr_ref_release(prev)); /* only the pending task holds it now */
        prev = next;
    }
    ck_assert_int_eq(tt_get_i64(prev), 100);
    tt_ok(tr_ref_release(prev));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_nested_ownership)
{
    tt_ok(tr_init(NULL));
    enum { N = 4 };
    tr_ref_h r[N];
    for (int i = 0; i < N; i++) {
        tt_ok(tr_task_submit(tk_outer, NULL, 0, NULL, &r[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(r[i]), 55);
    }
    tt_release_all(r, N);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_nested_deep)
{
    init_executors(2);
    tr_arg_t a = TR_ARG_I64(40);
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_deep, &a, 1, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 40 * 41 / 2);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_fail_message)
{
    tt_ok(tr_init(NULL));
    tr_ref_h r, ok;
    tt_ok(tr_task_submit(tk_fail, NULL, 0, NULL, &r));
    tt_ok(tr_put_i64(1, &ok));

    tr_buf_h buf = (tr_buf_h)0x1;
    tt_assert_status(tr_get(r, TR_TIMEOUT_INFINITE, &buf), TR_ERR_TASK_FAILED);
    ck_assert_ptr_eq(buf, (tr_buf_h)0x1);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", tr_last_error());
    tt_assert_contains(msg, FAIL_MSG);
    ck_assert_msg(tt_mentions_rank(msg, 0), "'%s' does not name rank 0", msg);
    tt_assert_contains(msg, "tk_fail"); /* the default task name is the function's */

    /* every get fails the same way */
    int64_t v = 5;
    tt_assert_status(tr_get_i64(r, 0, &v), TR_ERR_TASK_FAILED);
    ck_assert_int_eq(v, 5);
    tt_assert_contains(tr_last_error(), FAIL_MSG);
    char dst[8];
    size_t n;
    tt_assert_status(tr_get_copy(r, 0, dst, sizeof(dst), &n), TR_ERR_TASK_FAILED);

    tr_status_t st = TR_OK;
    int rank = -7;
    char emsg[256] = "";
    tt_ok(tr_ref_error(r, &st, &rank, emsg, sizeof(emsg)));
    ck_assert_int_eq(st, TR_ERR_TASK_FAILED);
    ck_assert_int_eq(rank, 0);
    tt_assert_contains(emsg, FAIL_MSG);

    /* a short buffer: truncated, still a string */
    char shortmsg[8];
    memset(shortmsg, 'x', sizeof(shortmsg));
    tt_ok(tr_ref_error(r, &st, &rank, shortmsg, sizeof(shortmsg)));
    ck_assert_ptr_nonnull(memchr(shortmsg, '\0', sizeof(shortmsg)));

    /* not failed: TR_OK and status TR_OK */
    st = TR_ERR_SYSTEM;
    tt_ok(tr_ref_error(ok, &st, &rank, emsg, sizeof(emsg)));
    ck_assert_int_eq(st, TR_OK);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_ref_release(ok));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_fail_custom_name)
{
    tt_ok(tr_init(NULL));
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NAME, .name = "reticulate_splines" };
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_fail, NULL, 0, &p, &r));
    tr_buf_h b;
    tt_assert_status(tr_get(r, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
    tt_assert_contains(tr_last_error(), "reticulate_splines");
    tt_assert_contains(tr_last_error(), FAIL_MSG);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_fail_plain_status)
{
    tt_ok(tr_init(NULL));
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_fail_plain, NULL, 0, NULL, &r));
    tr_buf_h b;
    tt_assert_status(tr_get(r, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
    ck_assert_msg(tt_mentions_rank(tr_last_error(), 0), "'%s' does not name rank 0",
                  tr_last_error());
    tr_status_t st = TR_OK;
    int rank = -7;
    char msg[256];
    tt_ok(tr_ref_error(r, &st, &rank, msg, sizeof(msg)));
    ck_assert_int_ne(st, TR_OK);
    ck_assert_int_eq(rank, 0);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_fail_propagates)
{
    tt_ok(tr_init(NULL));
    atomic_store(&tk_runs, 0);
    tr_ref_h f, d1, d2, side;
    tt_ok(tr_task_submit(tk_fail, NULL, 0, NULL, &f));
    tr_arg_t a1 = TR_ARG_REF(f);
    tt_ok(tr_task_submit(tk_counted, &a1, 1, NULL, &d1));
    tr_ref_h ok;
    tt_ok(tr_put_i64(3, &ok));
    tr_arg_t a2[] = { TR_ARG_REF(ok), TR_ARG_REF(d1) };
    tt_ok(tr_task_submit(tk_counted, a2, 2, NULL, &d2));
    tr_arg_t a3 = TR_ARG_REF(ok);
    tt_ok(tr_task_submit(tk_counted, &a3, 1, NULL, &side));

    tr_buf_h b;
    tt_assert_status(tr_get(d2, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
    tt_assert_contains(tr_last_error(), FAIL_MSG); /* the root cause travels along */
    tt_assert_status(tr_get(d1, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
    tr_status_t st;
    int rank;
    char msg[256];
    tt_ok(tr_ref_error(d2, &st, &rank, msg, sizeof(msg)));
    ck_assert_int_eq(st, TR_ERR_TASK_FAILED);

    ck_assert_int_eq(tt_get_i64(side), 1); /* an unrelated task still runs */
    ck_assert_msg(atomic_load(&tk_runs) == 1, "dependants of a failed task ran (%d runs)",
                  atomic_load(&tk_runs) - 1);
    tr_ref_h all[] = { f, d1, d2, side, ok };
    tt_release_all(all, 5);
    tt_ok(tr_finalize());
}
END_TEST

static void run_retry(int set_max, int max_retries, int expect_ok, int expect_attempts)
{
    tt_ok(tr_init(NULL));
    atomic_store(&tk_attempts, 0);
    tr_task_params_t p = { .field_mask = set_max ? TR_TASK_FIELD_MAX_RETRIES : 0,
                           .max_retries = max_retries };
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_retry, NULL, 0, &p, &r));
    if (expect_ok) {
        ck_assert_int_eq(tt_get_i64(r), 2);
    } else {
        tr_buf_h b;
        tt_assert_status(tr_get(r, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
        char msg[64];
        snprintf(msg, sizeof(msg), "transient failure on attempt %d", expect_attempts - 1);
        tt_assert_contains(tr_last_error(), msg);
    }
    ck_assert_int_eq(atomic_load(&tk_attempts), expect_attempts);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}

START_TEST(test_retry_succeeds) { run_retry(1, 2, 1, 3); }
END_TEST
START_TEST(test_retry_exhausted) { run_retry(1, 1, 0, 2); }
END_TEST
START_TEST(test_retry_forever) { run_retry(1, -1, 1, 3); }
END_TEST
START_TEST(test_retry_default_three) { run_retry(0, 0, 1, 3); }   /* max_retries defaults to 3 */
END_TEST

START_TEST(test_num_cpus)
{
    init_executors(2);
    tr_arg_t a = TR_ARG_I64(1);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_CPUS, .num_cpus = 3 };
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    ck_assert_msg(strcasestr(tr_last_error(), "cpu") != NULL,
                  "'%s' does not name the cpu resource", tr_last_error());
    p.num_cpus = 1000000;
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    static const double fits[] = { 2, 1.5, 0.5, 0 };
    for (size_t i = 0; i < sizeof(fits) / sizeof(fits[0]); i++) {
        p.num_cpus = fits[i];
        tr_ref_h r;
        tt_ok(tr_task_submit(tk_inc, &a, 1, &p, &r));
        ck_assert_int_eq(tt_get_i64(r), 2);
        tt_ok(tr_ref_release(r));
    }
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_num_cpus_limits_concurrency)
{
    init_executors(2);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_CPUS, .num_cpus = 2 };
    enum { N = 6 };
    tr_ref_h r[N];
    for (int i = 0; i < N; i++) {
        tt_ok(tr_task_submit(tk_busy, NULL, 0, &p, &r[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(r[i]), 1);
    }
    ck_assert_msg(atomic_load(&tk_max_active) == 1,
                  "%d tasks needing 2 of 2 cpus ran at once", atomic_load(&tk_max_active));
    tt_release_all(r, N);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_unknown_resource)
{
    tt_ok(tr_init(NULL));
    tr_arg_t a = TR_ARG_I64(1);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "unobtainium=1" };
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "unobtainium");
    p.resources = "licence=1";
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "licence");
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_env_resources)
{
    ck_assert_int_eq(setenv("TASKRAY_RESOURCES", "licence=1", 1), 0);
    init_executors(2);
    tr_arg_t a = TR_ARG_I64(41);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "licence=1" };
    tr_ref_h r;
    tt_ok(tr_task_submit(tk_inc, &a, 1, &p, &r));
    ck_assert_int_eq(tt_get_i64(r), 42);
    tt_ok(tr_ref_release(r));
    p.resources = "licence=0.5";
    tt_ok(tr_task_submit(tk_inc, &a, 1, &p, &r));
    ck_assert_int_eq(tt_get_i64(r), 42);
    tt_ok(tr_ref_release(r));

    p.resources = "licence=2";
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "licence");
    p.resources = "licence=1,ssd=1";
    expect_submit(tk_inc, &a, 1, &p, TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "ssd");

    /* one licence: tasks that each need it never run at the same time */
    p.resources = "licence=1";
    enum { N = 6 };
    tr_ref_h rs[N];
    for (int i = 0; i < N; i++) {
        tt_ok(tr_task_submit(tk_busy, NULL, 0, &p, &rs[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(rs[i]), 1);
    }
    ck_assert_msg(atomic_load(&tk_max_active) == 1,
                  "%d tasks holding the only licence ran at once", atomic_load(&tk_max_active));
    tt_release_all(rs, N);
    tt_ok(tr_finalize());
    unsetenv("TASKRAY_RESOURCES");
}
END_TEST

START_TEST(test_cancel_waiting_for_dependency)
{
    init_executors(2);
    tt_gate_close();
    atomic_store(&tk_runs, 0);
    tr_ref_h g, d;
    tt_ok(tr_task_submit(tk_gated, NULL, 0, NULL, &g));
    tr_arg_t a = TR_ARG_REF(g);
    tt_ok(tr_task_submit(tk_counted, &a, 1, NULL, &d));
    tt_ok(tr_cancel(d));
    tt_gate_open();

    tr_buf_h b;
    tt_assert_status(tr_get(d, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_CANCELLED);
    tr_status_t st;
    int rank;
    char msg[128];
    tt_ok(tr_ref_error(d, &st, &rank, msg, sizeof(msg)));
    ck_assert_int_eq(st, TR_ERR_TASK_CANCELLED);
    ck_assert_int_eq(tt_get_i64(g), 1);
    ck_assert_int_eq(atomic_load(&tk_runs), 0);
    tt_ok(tr_ref_release(g));
    tt_ok(tr_ref_release(d));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_cancel_queued)
{
    init_executors(1);
    tt_gate_close();
    atomic_store(&tk_runs, 0);
    tr_ref_h g, q;
    tt_ok(tr_task_submit(tk_gated, NULL, 0, NULL, &g));
    ck_assert_int_eq(tt_gate_wait_entered(1), 0); /* g holds the only executor */
    tt_ok(tr_task_submit(tk_counted, NULL, 0, NULL, &q));
    tt_ok(tr_cancel(q));
    tt_gate_open();
    tr_buf_h b;
    tt_assert_status(tr_get(q, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_CANCELLED);
    ck_assert_int_eq(tt_get_i64(g), 1);
    ck_assert_int_eq(atomic_load(&tk_runs), 0);
    tt_ok(tr_ref_release(g));
    tt_ok(tr_ref_release(q));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_cancel_running_and_finished)
{
    init_executors(2);
    tt_gate_close();
    tr_arg_t a = TR_ARG_I64(9);
    tr_ref_h g;
    tt_ok(tr_task_submit(tk_gated, &a, 1, NULL, &g));
    ck_assert_int_eq(tt_gate_wait_entered(1), 0);
    tt_assert_status(tr_cancel(g), TR_ERR_TASK_STARTED);
    tt_gate_open();
    ck_assert_int_eq(tt_get_i64(g), 9);
    tt_assert_status(tr_cancel(g), TR_ERR_TASK_STARTED);
    tt_ok(tr_ref_release(g));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_cancel_invalid)
{
    tt_ok(tr_init(NULL));
    tr_ref_h p, r;
    tt_ok(tr_put_i64(1, &p));
    tt_assert_status(tr_cancel(p), TR_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_get_i64(p), 1); /* untouched */
    tt_assert_status2(tr_cancel(TR_REF_NULL), TR_ERR_INVALID_ARG, TR_ERR_REF_RELEASED);
    tt_ok(tr_task_submit(tk_counted, NULL, 0, NULL, &r));
    tt_ok(tr_ref_release(r));
    tt_assert_status(tr_cancel(r), TR_ERR_REF_RELEASED);
    tt_ok(tr_ref_release(p));
    tt_ok(tr_finalize());
}
END_TEST

Suite *tr_suite_tasks(void)
{
    Suite *s = suite_create("tasks");
    TCase *args = tcase_create("args");
    tcase_set_timeout(args, TT_TIMEOUT_S);
    tcase_add_test(args, test_scalar_args);
    tcase_add_test(args, test_arg_accessors);
    tcase_add_test(args, test_handle_outside_task);
    tcase_add_test(args, test_bytes_exact);
    tcase_add_test(args, test_bytes_copied_at_submit);
    tcase_add_test(args, test_ref_args);
    tcase_add_test(args, test_future_args);
    tcase_add_test(args, test_num_returns);
    tcase_add_test(args, test_submit_invalid);
    suite_add_tcase(s, args);

    TCase *graph = tcase_create("graph");
    tcase_set_timeout(graph, TT_TIMEOUT_S);
    tcase_add_test(graph, test_chain_100);
    tcase_add_test(graph, test_nested_ownership);
    tcase_add_test(graph, test_nested_deep);
    suite_add_tcase(s, graph);

    TCase *fail = tcase_create("failures");
    tcase_set_timeout(fail, TT_TIMEOUT_S);
    tcase_add_test(fail, test_fail_message);
    tcase_add_test(fail, test_fail_custom_name);
    tcase_add_test(fail, test_fail_plain_status);
    tcase_add_test(fail, test_fail_propagates);
    tcase_add_test(fail, test_retry_succeeds);
    tcase_add_test(fail, test_retry_exhausted);
    tcase_add_test(fail, test_retry_forever);
    tcase_add_test(fail, test_retry_default_three);
    suite_add_tcase(s, fail);

    TCase *res = tcase_create("resources");
    tcase_set_timeout(res, TT_TIMEOUT_S);
    tcase_add_test(res, test_num_cpus);
    tcase_add_test(res, test_num_cpus_limits_concurrency);
    tcase_add_test(res, test_unknown_resource);
    tcase_add_test(res, test_env_resources);
    suite_add_tcase(s, res);

    TCase *cancel = tcase_create("cancel");
    tcase_set_timeout(cancel, TT_TIMEOUT_S);
    tcase_add_test(cancel, test_cancel_waiting_for_dependency);
    tcase_add_test(cancel, test_cancel_queued);
    tcase_add_test(cancel, test_cancel_running_and_finished);
    tcase_add_test(cancel, test_cancel_invalid);
    suite_add_tcase(s, cancel);
    return s;
}
