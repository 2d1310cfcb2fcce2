/*
 * mpi_tasks: multi-rank integration test, TR_MODE_DRIVER.  Run it under
 * mpirun with any number of ranks (tests/run_mpi_tasks.sh), or without a
 * launcher (one rank).
 *
 * Every rank calls tr_init() once; rank 0 (the driver) runs the libcheck
 * suite in CK_NOFORK mode (no fork inside an MPI rank) and the other ranks
 * serve tasks from tr_finalize().  Rank 0 computes the exit status from the
 * suite; the other ranks exit non-zero only when their own checks fail, and
 * mpirun then fails too.
 *
 * Placement: before tr_init() each rank adds the custom resource
 * "tt_rank<R>=1" (R from the launcher's environment) to TASKRAY_RESOURCES,
 * so a test can pin a task to a rank by asking for that resource.
 * Unpinned tasks are placed by the scheduler.
 *
 * Environment read by the tests:
 *   TASKRAY_INLINE_MAX             values above it travel by reference; the
 *                                  large-value tests use sizes above it
 *   TASKRAY_EXPECT_NODES_DISTINCT  1: every rank is its own node
 *                                  (tests/per_rank_node.sh); 0: all ranks
 *                                  share one node; unset: not checked
 */
#include <unistd.h>

#include "tr_test.h"

#define FAIL_PREFIX "kaboom-"

static int g_rank = 0; /* from the launcher, checked against tr_rank() */
static int g_size = 1;
static size_t g_inline_max = 64 * 1024;
static char g_pin[256][24]; /* "tt_rank<R>=1" */
static atomic_int g_counted_runs; /* runs of mt_counted in this process */

/* --------------------------------------------------------------- helpers */

/* Task options that pin a task to @rank (through its tt_rank<R> resource). */
static tr_task_params_t pin(int rank, int num_returns)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_NUM_RETURNS,
                           .resources = g_pin[rank],
                           .num_returns = num_returns };
    return p;
}

static tr_task_params_t returns(int num_returns)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = num_returns };
    return p;
}

/* A rank other than 0 and @not (when there is one), else 0 or @not. */
static int third_rank(int not)
{
    for (int r = 1; r < g_size; r++) {
        if (r != not) {
            return r;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ functions */

/* Arg i64 i: returns [0] = 3 i + 1, [1] = the rank. */
static tr_status_t mt_whoami(tr_task_h t)
{
    int64_t i;
    tr_status_t st = tr_task_arg_i64(t, 0, &i);
    if (st != TR_OK) {
        return st;
    }
    tt_msleep(2); /* long enough for queues to build, so the work spreads */
    st = tr_task_return_i64(t, 0, 3 * i + 1);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(mt_whoami)

/* Returns [0] = tt_fnv_arg over all arguments, [1] = the rank. */
static tr_status_t mt_cksum(tr_task_h t)
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
    tr_status_t st = tr_task_return_i64(t, 0, (int64_t)h);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(mt_cksum)

/* Returns each argument as the return of the same index, then the rank. */
static tr_status_t mt_echo(tr_task_h t)
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
    return tr_task_return_i64(t, n, tr_task_rank(t));
}
TR_REMOTE(mt_echo)

/* Args i64 size, i64 seed: returns [0] = tt_fill(seed) built in place, [1] = the rank. */
static tr_status_t mt_produce(tr_task_h t)
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
    return tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(mt_produce)

/* Args: value, i64 seed, i64 size.  Returns [0] = 1 when the value is
 * tt_fill(seed) of that size (else 0), [1] = the rank. */
static tr_status_t mt_verify(tr_task_h t)
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
    st = tr_task_return_i64(t, 0, ok);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(mt_verify)

/*
 * Nested submission from wherever it runs.  Arg: i64 number of children.
 * Submits that many mt_whoami (unpinned), then puts a 300000-byte value
 * of its own and has it verified by a task pinned to rank 0.  Returns
 * [0] the sum of the children's values, [1] its rank, [2] 1 when the
 * verification passed, [3] how many children ran on another rank.
 */
static tr_status_t mt_parent(tr_task_h t)
{
    int64_t n;
    tr_status_t st = tr_task_arg_i64(t, 0, &n);
    if (st != TR_OK || n < 1 || n > 64) {
        return TR_ERR_INVALID_ARG;
    }
    tr_ref_h kids[64][2];
    tr_task_params_t two = returns(2);
    for (int64_t i = 0; i < n; i++) {
        tr_arg_t a = TR_ARG_I64(i);
        if ((st = tr_task_submit(mt_whoami, &a, 1, &two, kids[i])) != TR_OK) {
            tr_task_fail(t, "nested submit %d failed: %s", (int)i, tr_status_string(st));
            return TR_ERR_TASK_FAILED;
        }
    }
    int64_t sum = 0, elsewhere = 0, me = tr_task_rank(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = 0, r = -1;
        if (tr_get_i64(kids[i][0], TR_TIMEOUT_INFINITE, &v) != TR_OK ||
            tr_get_i64(kids[i][1], TR_TIMEOUT_INFINITE, &r) != TR_OK) {
            tr_task_fail(t, "nested get %d failed: %s", (int)i, tr_last_error());
            return TR_ERR_TASK_FAILED;
        }
        sum += v;
        elsewhere += r != me;
        tr_ref_release(kids[i][0]);
        tr_ref_release(kids[i][1]);
    }

    size_t size = 300000;
    unsigned char *data = malloc(size);
    if (data == NULL) {
        return TR_ERR_NO_MEMORY;
    }
    tt_fill(data, size, 4711);
    tr_ref_h mine, res[2];
    st = tr_put(data, size, &mine);
    free(data);
    if (st != TR_OK) {
        return st;
    }
    tr_arg_t va[3] = { TR_ARG_REF(mine), TR_ARG_I64(4711), TR_ARG_I64((int64_t)size) };
    tr_task_params_t p0 = pin(0, 2);
    st = tr_task_submit(mt_verify, va, 3, &p0, res);
    tr_ref_release(mine);
    if (st != TR_OK) {
        return st;
    }
    int64_t ok = 0;
    st = tr_get_i64(res[0], TR_TIMEOUT_INFINITE, &ok);
    tr_ref_release(res[0]);
    tr_ref_release(res[1]);
    if (st != TR_OK) {
        tr_task_fail(t, "verification task failed: %s", tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_return_i64(t, 0, sum)) == TR_OK &&
        (st = tr_task_return_i64(t, 1, me)) == TR_OK &&
        (st = tr_task_return_i64(t, 2, ok)) == TR_OK) {
        st = tr_task_return_i64(t, 3, elsewhere);
    }
    return st;
}
TR_REMOTE(mt_parent)

/* Fails with FAIL_PREFIX<rank> (no "rank" word: the library adds that). */
static tr_status_t mt_fail(tr_task_h t)
{
    tr_task_fail(t, FAIL_PREFIX "%d", tr_task_rank(t));
    return TR_ERR_TASK_FAILED;
}
TR_REMOTE(mt_fail)

/* Counts its runs in the process it runs in (pin it to rank 0). */
static tr_status_t mt_counted(tr_task_h t)
{
    atomic_fetch_add(&g_counted_runs, 1);
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(mt_counted)

/* Waits for the driver's gate: pin it to rank 0.  Returns 42. */
static tr_status_t mt_gate(tr_task_h t)
{
    if (tr_task_rank(t) != 0) {
        tr_task_fail(t, "mt_gate must run on rank 0");
        return TR_ERR_TASK_FAILED;
    }
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "gate never opened");
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, 42);
}
TR_REMOTE(mt_gate)

/* Returns its i64 argument plus 1000 * (rank + 1). */
static tr_status_t mt_ident(tr_task_h t)
{
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, v + 1000 * (tr_task_rank(t) + 1));
}
TR_REMOTE(mt_ident)

static tr_status_t mt_fib(tr_task_h t)
{
    int64_t n;
    tr_status_t st = tr_task_arg_i64(t, 0, &n);
    if (st != TR_OK) {
        return st;
    }
    if (n < 2) {
        return tr_task_return_i64(t, 0, n);
    }
    tr_arg_t a1 = TR_ARG_I64(n - 1), a2 = TR_ARG_I64(n - 2);
    tr_ref_h r1, r2;
    if ((st = tr_task_submit(mt_fib, &a1, 1, NULL, &r1)) != TR_OK) {
        return st;
    }
    if ((st = tr_task_submit(mt_fib, &a2, 1, NULL, &r2)) != TR_OK) {
        tr_ref_release(r1);
        return st;
    }
    int64_t v1 = 0, v2 = 0;
    st = tr_get_i64(r1, TR_TIMEOUT_INFINITE, &v1);
    if (st == TR_OK) {
        st = tr_get_i64(r2, TR_TIMEOUT_INFINITE, &v2);
    }
    tr_ref_release(r1);
    tr_ref_release(r2);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, v1 + v2);
}
TR_REMOTE(mt_fib)

/* ----------------------------------------------------------------- tests */

START_TEST(test_job_shape)
{
    ck_assert_int_eq(tr_rank(), 0);
    ck_assert_int_eq(tr_size(), g_size);
    ck_assert(tr_is_driver());
    ck_assert_int_eq(tr_node_of(g_size), -1);
    ck_assert_int_eq(tr_node_of(-1), -1);
    for (int r = 0; r < g_size; r++) {
        ck_assert_int_ge(tr_node_of(r), 0);
    }
    const char *distinct = getenv("TASKRAY_EXPECT_NODES_DISTINCT");
    if (distinct != NULL && strcmp(distinct, "1") == 0) {
        for (int r = 0; r < g_size; r++) {
            for (int q = 0; q < r; q++) {
                ck_assert_msg(tr_node_of(r) != tr_node_of(q),
                              "ranks %d and %d share node %d despite TASKRAY_NODE_ID", q, r,
                              tr_node_of(r));
            }
        }
    } else if (distinct != NULL && strcmp(distinct, "0") == 0) {
        for (int r = 1; r < g_size; r++) {
            ck_assert_int_eq(tr_node_of(r), tr_node_of(0));
        }
    }
}
END_TEST

START_TEST(test_pinning_works)
{
    /* every rank runs what is pinned to it: the other tests rely on it */
    tr_arg_t a = TR_ARG_I64(5);
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 2);
        tr_ref_h res[2];
        tt_ok(tr_task_submit(mt_whoami, &a, 1, &p, res));
        ck_assert_int_eq(tt_get_i64(res[0]), 16);
        ck_assert_int_eq(tt_get_i64(res[1]), r);
        tt_release_all(res, 2);
    }
}
END_TEST

START_TEST(test_spread_200)
{
    enum { N = 200 };
    static tr_ref_h res[N][2];
    tr_task_params_t p = returns(2);
    for (int i = 0; i < N; i++) {
        tr_arg_t a = TR_ARG_I64(i);
        tt_ok(tr_task_submit(mt_whoami, &a, 1, &p, res[i]));
    }
    int ran_on[256] = { 0 };
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(res[i][0]), 3 * i + 1);
        int64_t r = tt_get_i64(res[i][1]);
        ck_assert_msg(r >= 0 && r < g_size, "task %d ran on rank %lld of %d", i, (long long)r,
                      g_size);
        ran_on[r]++;
        tt_release_all(res[i], 2);
    }
    int ranks_used = 0;
    for (int r = 0; r < g_size; r++) {
        ranks_used += ran_on[r] > 0;
    }
    if (g_size > 1) {
        ck_assert_msg(ranks_used > 1, "all %d tasks ran on one rank of %d", N, g_size);
    }
}
END_TEST

START_TEST(test_args_by_value_checksum)
{
    size_t sizes[] = { 0, 1, 100, g_inline_max - 1, g_inline_max, g_inline_max + 1, 200000 };
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    unsigned char *bufs[NS];
    tr_arg_t args[NS + 2];
    uint64_t h = TT_FNV_INIT;
    for (int i = 0; i < NS; i++) {
        bufs[i] = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(bufs[i]);
        tt_fill(bufs[i], sizes[i], 300 + i);
        args[i] = TR_ARG_BYTES(bufs[i], sizes[i]);
        h = tt_fnv_arg(h, bufs[i], sizes[i]);
    }
    int64_t i64 = -0x123456789abcll;
    double f64 = -2.75;
    args[NS] = TR_ARG_I64(i64);
    args[NS + 1] = TR_ARG_F64(f64);
    h = tt_fnv_arg(h, &i64, sizeof(i64));
    h = tt_fnv_arg(h, &f64, sizeof(f64));

    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 2);
        tr_ref_h res[2];
        tt_ok(tr_task_submit(mt_cksum, args, NS + 2, &p, res));
        ck_assert_msg(tt_get_i64(res[0]) == (int64_t)h, "checksum differs on rank %d", r);
        ck_assert_int_eq(tt_get_i64(res[1]), r);
        tt_release_all(res, 2);

        /* and echoed back byte-exact */
        tr_task_params_t pe = pin(r, NS + 1);
        tr_ref_h echo[NS + 1];
        tt_ok(tr_task_submit(mt_echo, args, NS, &pe, echo));
        for (int i = 0; i < NS; i++) {
            tr_buf_h b;
            tt_ok(tr_get(echo[i], TR_TIMEOUT_INFINITE, &b));
            ck_assert_uint_eq(tr_buf_size(b), sizes[i]);
            ck_assert_msg(tt_check_pattern(tr_buf_data(b), sizes[i], 300 + i) == sizes[i],
                          "argument %d (%zu bytes) echoed by rank %d differs", i, sizes[i], r);
            tt_ok(tr_buf_release(b));
        }
        ck_assert_int_eq(tt_get_i64(echo[NS]), r);
        tt_release_all(echo, NS + 1);
    }
    for (int i = 0; i < NS; i++) {
        free(bufs[i]);
    }
}
END_TEST

START_TEST(test_args_by_ref_checksum)
{
    size_t sizes[] = { 0, 1, 100, g_inline_max, g_inline_max + 1, 1 << 20 };
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    tr_ref_h puts[NS];
    tr_arg_t args[NS];
    uint64_t h = TT_FNV_INIT;
    for (int i = 0; i < NS; i++) {
        unsigned char *b = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(b);
        tt_fill(b, sizes[i], 500 + i);
        tt_ok(tr_put(b, sizes[i], &puts[i]));
        h = tt_fnv_arg(h, b, sizes[i]);
        free(b);
        args[i] = TR_ARG_REF(puts[i]);
    }
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 2);
        tr_ref_h res[2];
        tt_ok(tr_task_submit(mt_cksum, args, NS, &p, res));
        ck_assert_msg(tt_get_i64(res[0]) == (int64_t)h, "checksum of refs differs on rank %d",
                      r);
        ck_assert_int_eq(tt_get_i64(res[1]), r);
        tt_release_all(res, 2);
    }
    /* the same refs to every rank at once, the driver's handles released early */
    tr_ref_h res[256][2];
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 2);
        tt_ok(tr_task_submit(mt_cksum, args, NS, &p, res[r]));
    }
    tt_release_all(puts, NS);
    for (int r = 0; r < g_size; r++) {
        ck_assert(tt_get_i64(res[r][0]) == (int64_t)h);
        tt_release_all(res[r], 2);
    }
}
END_TEST

START_TEST(test_large_values_across_ranks)
{
    size_t sizes[] = { g_inline_max + 1, (1 << 20) + 3, 8 << 20 };
    int producer = g_size - 1;
    int consumer = third_rank(producer);
    for (int i = 0; i < 3; i++) {
        size_t n = sizes[i];
        uint64_t seed = 700 + i;
        tr_arg_t pa[2] = { TR_ARG_I64((int64_t)n), TR_ARG_I64((int64_t)seed) };
        tr_task_params_t pp = pin(producer, 2);
        tr_ref_h made[2];
        tt_ok(tr_task_submit(mt_produce, pa, 2, &pp, made));

        /* read by a task on a third rank */
        tr_arg_t va[3] = { TR_ARG_REF(made[0]), TR_ARG_I64((int64_t)seed),
                           TR_ARG_I64((int64_t)n) };
        tr_task_params_t pv = pin(consumer, 2);
        tr_ref_h ok[2];
        tt_ok(tr_task_submit(mt_verify, va, 3, &pv, ok));

        /* read by the driver */
        tr_buf_h b;
        tt_ok(tr_get(made[0], TR_TIMEOUT_INFINITE, &b));
        ck_assert_uint_eq(tr_buf_size(b), n);
        ck_assert_msg(tt_check_pattern(tr_buf_data(b), n, seed) == n,
                      "%zu bytes made on rank %d differ at byte %zu on the driver", n, producer,
                      tt_check_pattern(tr_buf_data(b), n, seed));
        tt_ok(tr_buf_release(b));
        ck_assert_int_eq(tt_get_i64(made[1]), producer);

        ck_assert_msg(tt_get_i64(ok[0]) == 1, "%zu bytes made on rank %d differ on rank %d", n,
                      producer, consumer);
        ck_assert_int_eq(tt_get_i64(ok[1]), consumer);

        /* a copy into a caller buffer, too */
        unsigned char *dst = malloc(n);
        ck_assert_ptr_nonnull(dst);
        size_t got = 0;
        tt_ok(tr_get_copy(made[0], TR_TIMEOUT_INFINITE, dst, n, &got));
        ck_assert_uint_eq(got, n);
        ck_assert_uint_eq(tt_check_pattern(dst, n, seed), n);
        free(dst);
        tt_release_all(made, 2);
        tt_release_all(ok, 2);
    }
}
END_TEST

START_TEST(test_large_value_chain)
{
    /* made on the last rank, echoed by a third rank, read by the driver */
    size_t n = 3 * g_inline_max + 17;
    int producer = g_size - 1;
    int middle = third_rank(producer);
    tr_arg_t pa[2] = { TR_ARG_I64((int64_t)n), TR_ARG_I64(99) };
    tr_task_params_t pp = pin(producer, 2), pm = pin(middle, 2);
    tr_ref_h made[2], echo[2];
    tt_ok(tr_task_submit(mt_produce, pa, 2, &pp, made));
    tr_arg_t ea = TR_ARG_REF(made[0]);
    tt_ok(tr_task_submit(mt_echo, &ea, 1, &pm, echo));
    tt_release_all(made, 2); /* the pending echo keeps the value alive */
    tr_buf_h b;
    tt_ok(tr_get(echo[0], TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), n);
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(b), n, 99), n);
    tt_ok(tr_buf_release(b));
    ck_assert_int_eq(tt_get_i64(echo[1]), middle);
    tt_release_all(echo, 2);
}
END_TEST

START_TEST(test_nested_from_worker)
{
    int where = g_size - 1;
    tr_arg_t a = TR_ARG_I64(24);
    tr_task_params_t p = pin(where, 4);
    tr_ref_h res[4];
    tt_ok(tr_task_submit(mt_parent, &a, 1, &p, res));
    int64_t expect = 0;
    for (int i = 0; i < 24; i++) {
        expect += 3 * i + 1;
    }
    ck_assert_int_eq(tt_get_i64(res[0]), expect);
    ck_assert_int_eq(tt_get_i64(res[1]), where);
    ck_assert_msg(tt_get_i64(res[2]) == 1,
                  "a value put by a task on rank %d arrived corrupted on rank 0", where);
    tt_release_all(res, 4);

    /* several parents at once, unpinned */
    enum { NP = 6 };
    tr_ref_h many[NP][4];
    tr_task_params_t p4 = returns(4);
    tr_arg_t a8 = TR_ARG_I64(8);
    for (int i = 0; i < NP; i++) {
        tt_ok(tr_task_submit(mt_parent, &a8, 1, &p4, many[i]));
    }
    for (int i = 0; i < NP; i++) {
        ck_assert_int_eq(tt_get_i64(many[i][0]), 3 * 28 + 8);
        ck_assert_int_eq(tt_get_i64(many[i][2]), 1);
        tt_release_all(many[i], 4);
    }
}
END_TEST

START_TEST(test_failure_names_rank)
{
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = pin(r, 1);
        tr_ref_h f;
        tt_ok(tr_task_submit(mt_fail, NULL, 0, &p, &f));
        tr_buf_h b;
        tt_assert_status(tr_get(f, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
        char msg[512], expect[32];
        snprintf(msg, sizeof(msg), "%s", tr_last_error());
        snprintf(expect, sizeof(expect), FAIL_PREFIX "%d", r);
        tt_assert_contains(msg, expect);
        ck_assert_msg(tt_mentions_rank(msg, r), "'%s' does not name rank %d", msg, r);

        tr_status_t st;
        int rank = -7;
        char emsg[256];
        tt_ok(tr_ref_error(f, &st, &rank, emsg, sizeof(emsg)));
        ck_assert_int_eq(st, TR_ERR_TASK_FAILED);
        ck_assert_int_eq(rank, r);
        tt_assert_contains(emsg, expect);

        /* a dependant (pinned to the driver's rank, where it would be counted) never runs */
        atomic_store(&g_counted_runs, 0);
        tr_arg_t da = TR_ARG_REF(f);
        tr_task_params_t p0 = pin(0, 1);
        tr_ref_h d;
        tt_ok(tr_task_submit(mt_counted, &da, 1, &p0, &d));
        tt_assert_status(tr_get(d, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_FAILED);
        tt_assert_contains(tr_last_error(), expect);
        ck_assert_int_eq(atomic_load(&g_counted_runs), 0);
        tt_ok(tr_ref_release(d));
        tt_ok(tr_ref_release(f));
    }
}
END_TEST

START_TEST(test_wait_across_ranks)
{
    tt_gate_close();
    tr_task_params_t p0 = pin(0, 1);
    tr_ref_h gate;
    tt_ok(tr_task_submit(mt_gate, NULL, 0, &p0, &gate));

    /* even: puts (ready); odd: tasks on every rank that need the gate's value */
    enum { N = 10 };
    tr_ref_h refs[N];
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            tt_ok(tr_put_i64(i, &refs[i]));
        } else {
            tr_arg_t a = TR_ARG_REF(gate);
            tr_task_params_t p = pin((i / 2) % g_size, 1);
            tt_ok(tr_task_submit(mt_ident, &a, 1, &p, &refs[i]));
        }
    }
    size_t idx[N], nready = 0;
    tt_ok(tr_wait(refs, N, N / 2, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, N / 2);
    for (size_t j = 0; j < nready; j++) {
        ck_assert_uint_eq(idx[j], 2 * j);
    }
    tt_ok(tr_wait(refs, N, N, 50, idx, &nready));
    ck_assert_uint_eq(nready, N / 2);
    tt_assert_status(tr_wait(refs, N, N + 1, 0, idx, &nready), TR_ERR_INVALID_ARG);

    tt_gate_open();
    tt_ok(tr_wait(refs, N, N, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(idx[i], (size_t)i);
        if (i % 2 == 1) {
            ck_assert_int_eq(tt_get_i64(refs[i]), 42 + 1000 * ((i / 2) % g_size + 1));
        }
    }
    tt_release_all(refs, N);
    tt_ok(tr_ref_release(gate));
}
END_TEST

START_TEST(test_cancel_across_ranks)
{
    tt_gate_close();
    tr_task_params_t p0 = pin(0, 1);
    tr_ref_h gate;
    tt_ok(tr_task_submit(mt_gate, NULL, 0, &p0, &gate));

    /* waiting on the gate, on the last rank: cancelled before it can start */
    tr_arg_t a = TR_ARG_REF(gate);
    tr_task_params_t pl = pin(g_size - 1, 1);
    tr_ref_h victim, keep;
    tt_ok(tr_task_submit(mt_ident, &a, 1, &pl, &victim));
    tt_ok(tr_task_submit(mt_ident, &a, 1, &pl, &keep));
    tt_ok(tr_cancel(victim));
    tt_gate_open();

    tr_buf_h b;
    tt_assert_status(tr_get(victim, TR_TIMEOUT_INFINITE, &b), TR_ERR_TASK_CANCELLED);
    ck_assert_int_eq(tt_get_i64(keep), 42 + 1000 * g_size);
    tt_assert_status(tr_cancel(keep), TR_ERR_TASK_STARTED);
    ck_assert_int_eq(tt_get_i64(gate), 42);

    tr_ref_h put;
    tt_ok(tr_put_i64(1, &put));
    tt_assert_status(tr_cancel(put), TR_ERR_INVALID_ARG);
    tr_ref_h all[] = { gate, victim, keep, put };
    tt_release_all(all, 4);
}
END_TEST

START_TEST(test_fib15)
{
    tr_arg_t a = TR_ARG_I64(15);
    tr_ref_h r;
    tt_ok(tr_task_submit(mt_fib, &a, 1, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 610);
    tt_ok(tr_ref_release(r));
}
END_TEST

static Suite *mpi_tasks_suite(void)
{
    Suite *s = suite_create("mpi_tasks");
    TCase *tc = tcase_create("driver");
    tcase_add_test(tc, test_job_shape);
    tcase_add_test(tc, test_pinning_works);
    tcase_add_test(tc, test_spread_200);
    tcase_add_test(tc, test_args_by_value_checksum);
    tcase_add_test(tc, test_args_by_ref_checksum);
    tcase_add_test(tc, test_large_values_across_ranks);
    tcase_add_test(tc, test_large_value_chain);
    tcase_add_test(tc, test_nested_from_worker);
    tcase_add_test(tc, test_failure_names_rank);
    tcase_add_test(tc, test_wait_across_ranks);
    tcase_add_test(tc, test_cancel_across_ranks);
    tcase_add_test(tc, test_fib15);
    suite_add_tcase(s, tc);
    return s;
}

/* ------------------------------------------------------------------ main */

/* Checks a serving rank can make before it serves; returns failures. */
static int serving_rank_checks(void)
{
    int bad = 0;
    if (tr_is_driver()) {
        fprintf(stderr, "rank %d: tr_is_driver() is true on a serving rank\n", g_rank);
        bad++;
    }
    tr_arg_t a = TR_ARG_I64(1);
    tr_ref_h r;
    tr_status_t st = tr_task_submit(mt_ident, &a, 1, NULL, &r);
    if (st != TR_ERR_WRONG_MODE) {
        fprintf(stderr, "rank %d: submit from a serving rank returned %s, expected %s\n",
                g_rank, tr_status_string(st), tr_status_string(TR_ERR_WRONG_MODE));
        bad++;
    }
    return bad;
}

int main(int argc, char **argv)
{
    static const char *const inline_vars[] = { "TASKRAY_INLINE_MAX", NULL };
    if (tt_launcher_shape("mpi_tasks", &g_rank, &g_size) != 0) {
        return 1;
    }
    int im = tt_env_int(inline_vars, 64 * 1024);
    g_inline_max = im > 0 ? (size_t)im : 64 * 1024;
    /* this rank's own resource, added to whatever the environment gives */
    tt_pin_setup("tt_rank", g_rank, g_size, 1, g_pin);

    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_ARGC_ARGV,
                            .mode = TR_MODE_DRIVER, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st),
                tr_last_error());
        return 1;
    }
    if (tr_rank() != g_rank || tr_size() != g_size) {
        fprintf(stderr, "rank %d of %d: tr_rank() = %d, tr_size() = %d\n", g_rank, g_size,
                tr_rank(), tr_size());
        tr_finalize();
        return 1;
    }

    if (g_rank != 0) {
        int bad = serving_rank_checks();
        st = tr_finalize();
        if (st != TR_OK) {
            fprintf(stderr, "rank %d: tr_finalize: %s\n", g_rank, tr_status_string(st));
            bad++;
        }
        return bad ? 1 : 0;
    }

    SRunner *sr = srunner_create(mpi_tasks_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    tt_gate_open(); /* a failed test may have left gated tasks behind */
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "rank 0: tr_finalize: %s\n", tr_status_string(st));
        failed++;
    }
    printf("mpi_tasks: %d rank(s), %s\n", g_size, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
