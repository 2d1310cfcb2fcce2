/*
 * tr_init()/tr_finalize() in embedded mode (no launcher: a one-rank job
 * with executor threads): use before init, double init, re-init, modes,
 * executors, nested gets without starvation, finalize from a task.
 */
#include "suites.h"
#include "tr_test.h"

static atomic_int lc_active;     /* tasks running lc_busy now */
static atomic_int lc_max_active; /* the most seen at once */
static atomic_int lc_runs;

static tr_status_t lc_busy(tr_task_h t)
{
    int now = atomic_fetch_add(&lc_active, 1) + 1;
    int max = atomic_load(&lc_max_active);
    while (now > max && !atomic_compare_exchange_weak(&lc_max_active, &max, now)) {
    }
    tt_msleep(10);
    atomic_fetch_sub(&lc_active, 1);
    atomic_fetch_add(&lc_runs, 1);
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(lc_busy)

/* Waits until two lc_pair tasks run at the same time (or gives up). */
static atomic_int lc_pair_arrived;
static tr_status_t lc_pair(tr_task_h t)
{
    atomic_fetch_add(&lc_pair_arrived, 1);
    for (int i = 0; i < TT_GATE_LIMIT_MS; i++) {
        if (atomic_load(&lc_pair_arrived) >= 2) {
            return tr_task_return_i64(t, 0, 1);
        }
        tt_msleep(1);
    }
    tr_task_fail(t, "the other lc_pair task never ran at the same time");
    return TR_ERR_TASK_FAILED;
}
TR_REMOTE(lc_pair)

static tr_status_t lc_fib(tr_task_h t)
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
    if ((st = tr_task_submit(lc_fib, &a1, 1, NULL, &r1)) != TR_OK) {
        return st;
    }
    if ((st = tr_task_submit(lc_fib, &a2, 1, NULL, &r2)) != TR_OK) {
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
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(t, 0, v1 + v2);
}
TR_REMOTE(lc_fib)

/* Returns what tr_finalize() and tr_init() return when called from a task. */
static tr_status_t lc_finalize_inside(tr_task_h t)
{
    tr_status_t fin = tr_finalize();
    tr_status_t ini = tr_init(NULL);
    tr_status_t st = tr_task_return_i64(t, 0, fin);
    if (st == TR_OK) {
        st = tr_task_return_i64(t, 1, ini);
    }
    return st;
}
TR_REMOTE(lc_finalize_inside)

static tr_status_t lc_square(tr_task_h t)
{
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, v * v);
}
TR_REMOTE(lc_square)

static int64_t square_via_task(int64_t v)
{
    tr_arg_t arg = TR_ARG_I64(v);
    tr_ref_h ref;
    tt_ok(tr_task_submit(lc_square, &arg, 1, NULL, &ref));
    int64_t r = tt_get_i64(ref);
    tt_ok(tr_ref_release(ref));
    return r;
}

START_TEST(test_use_before_init)
{
    ck_assert_int_eq(tr_rank(), -1);
    ck_assert_int_eq(tr_size(), 0);

    tr_ref_h ref = TR_REF_NULL;
    tr_arg_t arg = TR_ARG_I64(3);
    tt_assert_status(tr_task_submit(lc_square, &arg, 1, NULL, &ref), TR_ERR_NOT_INITIALIZED);
    ck_assert_ptr_eq(ref, TR_REF_NULL);
    tt_assert_status(tr_put("abc", 3, &ref), TR_ERR_NOT_INITIALIZED);
    ck_assert_ptr_eq(ref, TR_REF_NULL);
    tt_assert_status(tr_put_i64(5, &ref), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_put_f64(5.0, &ref), TR_ERR_NOT_INITIALIZED);

    tr_buf_h buf = NULL;
    tt_assert_status(tr_get(TR_REF_NULL, 0, &buf), TR_ERR_NOT_INITIALIZED);
    ck_assert_ptr_null(buf);
    int64_t v;
    tt_assert_status(tr_get_i64(TR_REF_NULL, 0, &v), TR_ERR_NOT_INITIALIZED);

    tr_ref_h refs[1] = { TR_REF_NULL };
    size_t idx[1], nready = 77;
    tt_assert_status(tr_wait(refs, 1, 1, 0, idx, &nready), TR_ERR_NOT_INITIALIZED);
    ck_assert_uint_eq(nready, 77);

    tt_assert_status(tr_finalize(), TR_ERR_NOT_INITIALIZED);
}
END_TEST

START_TEST(test_use_after_finalize)
{
    tt_ok(tr_init(NULL));
    tt_ok(tr_finalize());
    tr_ref_h ref = TR_REF_NULL;
    tt_assert_status(tr_put("abc", 3, &ref), TR_ERR_NOT_INITIALIZED);
    tr_arg_t arg = TR_ARG_I64(3);
    tt_assert_status(tr_task_submit(lc_square, &arg, 1, NULL, &ref), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_finalize(), TR_ERR_NOT_INITIALIZED);
}
END_TEST

START_TEST(test_init_twice)
{
    tt_ok(tr_init(NULL));
    tt_assert_status(tr_init(NULL), TR_ERR_ALREADY_INIT);
    /* the runtime still works */
    ck_assert_int_eq(square_via_task(9), 81);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_reinit_embedded)
{
    for (int round = 0; round < 3; round++) {
        tr_init_params_t p = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS,
                               .num_executors = 1 + round };
        tt_ok(tr_init(&p));
        ck_assert_int_eq(tr_rank(), 0);
        ck_assert_int_eq(tr_size(), 1);
        ck_assert_int_eq(square_via_task(round + 5), (round + 5) * (round + 5));
        tr_ref_h ref;
        tt_ok(tr_put_i64(round, &ref));
        ck_assert_int_eq(tt_get_i64(ref), round);
        /* ref left held: tr_finalize() releases it */
        tt_ok(tr_finalize());
    }
}
END_TEST

/* Handles held at tr_finalize() die with the runtime: after it, and after a
 * new tr_init(), they are rejected instead of reaching freed memory. */
START_TEST(test_handles_die_at_finalize)
{
    static char big[1 << 20];
    memset(big, 7, sizeof(big));
    setenv("TASKRAY_INLINE_MAX", "1024", 1);   /* the value lives in the arena */
    tt_ok(tr_init(NULL));
    tr_ref_h ref;
    tr_buf_h view;
    tt_ok(tr_put(big, sizeof(big), &ref));
    tt_ok(tr_get(ref, TR_TIMEOUT_INFINITE, &view));
    ck_assert_int_eq(((const char *)tr_buf_data(view))[12345], 7);
    tt_ok(tr_finalize());
    tt_assert_status(tr_get(ref, 0, &view), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_buf_release(view), TR_ERR_INVALID_ARG);
    ck_assert_ptr_null(tr_buf_data(view));
    tt_ok(tr_init(NULL));
    tt_assert_status(tr_get(ref, 0, &view), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_ref_release(ref), TR_ERR_REF_RELEASED);
    tt_ok(tr_finalize());
    unsetenv("TASKRAY_INLINE_MAX");
}
END_TEST

START_TEST(test_rank_size_embedded)
{
    tt_ok(tr_init(NULL));
    ck_assert_int_eq(tr_rank(), 0);
    ck_assert_int_eq(tr_size(), 1);
    ck_assert(tr_is_driver());
    ck_assert_int_ge(tr_node_of(0), 0);
    ck_assert_int_eq(tr_node_of(1), -1);
    ck_assert_int_eq(tr_node_of(-1), -1);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_init_invalid_params)
{
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_MODE, .mode = (tr_mode_t)7 };
    tt_assert_status(tr_init(&p), TR_ERR_INVALID_ARG);
    p.mode = (tr_mode_t)-1;
    tt_assert_status(tr_init(&p), TR_ERR_INVALID_ARG);
    tr_init_params_t q = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = -1 };
    tt_assert_status(tr_init(&q), TR_ERR_INVALID_ARG);
    /* a failed tr_init() leaves nothing behind */
    ck_assert_int_eq(tr_rank(), -1);
    tt_ok(tr_init(NULL));
    ck_assert_int_eq(square_via_task(3), 9);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_mode_fields_ignored_without_mask)
{
    /* an unset field is not read: garbage in it must not matter */
    tr_init_params_t p = { .field_mask = 0, .mode = (tr_mode_t)99, .num_executors = -5 };
    tt_ok(tr_init(&p));
    ck_assert_int_eq(square_via_task(4), 16);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_spmd_mode_embedded)
{
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_MODE, .mode = TR_MODE_SPMD };
    tt_ok(tr_init(&p));
    ck_assert(tr_is_driver());
    ck_assert_int_eq(square_via_task(12), 144);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_one_executor)
{
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 1 };
    tt_ok(tr_init(&p));
    enum { N = 12 };
    tr_ref_h refs[N];
    for (int i = 0; i < N; i++) {
        tt_ok(tr_task_submit(lc_busy, NULL, 0, NULL, &refs[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(refs[i]), 1);
        tt_ok(tr_ref_release(refs[i]));
    }
    ck_assert_int_eq(atomic_load(&lc_runs), N);
    ck_assert_msg(atomic_load(&lc_max_active) == 1,
                  "%d tasks ran at once with num_executors = 1", atomic_load(&lc_max_active));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_two_executors_run_concurrently)
{
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 2 };
    tt_ok(tr_init(&p));
    tr_ref_h a, b;
    tt_ok(tr_task_submit(lc_pair, NULL, 0, NULL, &a));
    tt_ok(tr_task_submit(lc_pair, NULL, 0, NULL, &b));
    ck_assert_int_eq(tt_get_i64(a), 1);
    ck_assert_int_eq(tt_get_i64(b), 1);
    tt_ok(tr_ref_release(a));
    tt_ok(tr_ref_release(b));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_fib_one_executor_env)
{
    ck_assert_int_eq(setenv("TASKRAY_NUM_EXECUTORS", "1", 1), 0);
    tt_ok(tr_init(NULL));
    tr_arg_t arg = TR_ARG_I64(18);
    tr_ref_h ref;
    tt_ok(tr_task_submit(lc_fib, &arg, 1, NULL, &ref));
    ck_assert_int_eq(tt_get_i64(ref), 2584);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
    unsetenv("TASKRAY_NUM_EXECUTORS");
}
END_TEST

START_TEST(test_one_executor_env_limits_concurrency)
{
    ck_assert_int_eq(setenv("TASKRAY_NUM_EXECUTORS", "1", 1), 0);
    tt_ok(tr_init(NULL));
    enum { N = 6 };
    tr_ref_h refs[N];
    for (int i = 0; i < N; i++) {
        tt_ok(tr_task_submit(lc_busy, NULL, 0, NULL, &refs[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(refs[i]), 1);
        tt_ok(tr_ref_release(refs[i]));
    }
    ck_assert_int_eq(atomic_load(&lc_max_active), 1);
    tt_ok(tr_finalize());
    unsetenv("TASKRAY_NUM_EXECUTORS");
}
END_TEST

START_TEST(test_finalize_inside_task)
{
    tt_ok(tr_init(NULL));
    tr_task_params_t tp = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    tr_ref_h refs[2];
    tt_ok(tr_task_submit(lc_finalize_inside, NULL, 0, &tp, refs));
    ck_assert_int_eq(tt_get_i64(refs[0]), TR_ERR_WRONG_MODE);
    int64_t ini = tt_get_i64(refs[1]); /* tr_init() from a task: either refusal is fine */
    ck_assert_msg(ini == TR_ERR_ALREADY_INIT || ini == TR_ERR_WRONG_MODE,
                  "tr_init() inside a task returned %d (%s)", (int)ini,
                  tr_status_string((tr_status_t)ini));
    tt_ok(tr_ref_release(refs[0]));
    tt_ok(tr_ref_release(refs[1]));
    /* the runtime survived */
    ck_assert_int_eq(square_via_task(7), 49);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_finalize_waits_for_owned_tasks)
{
    tt_ok(tr_init(NULL));
    enum { N = 8 };
    for (int i = 0; i < N; i++) {
        tr_ref_h ref;
        tt_ok(tr_task_submit(lc_busy, NULL, 0, NULL, &ref));
        if (i % 2 == 0) {
            tt_ok(tr_ref_release(ref)); /* released or still held: the task runs anyway */
        }
    }
    tt_ok(tr_finalize());
    ck_assert_int_eq(atomic_load(&lc_runs), N);
}
END_TEST

Suite *tr_suite_lifecycle(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_use_before_init);
    tcase_add_test(tc, test_use_after_finalize);
    tcase_add_test(tc, test_init_twice);
    tcase_add_test(tc, test_reinit_embedded);
    tcase_add_test(tc, test_handles_die_at_finalize);
    tcase_add_test(tc, test_rank_size_embedded);
    tcase_add_test(tc, test_init_invalid_params);
    tcase_add_test(tc, test_mode_fields_ignored_without_mask);
    tcase_add_test(tc, test_spmd_mode_embedded);
    tcase_add_test(tc, test_one_executor);
    tcase_add_test(tc, test_two_executors_run_concurrently);
    tcase_add_test(tc, test_fib_one_executor_env);
    tcase_add_test(tc, test_one_executor_env_limits_concurrency);
    tcase_add_test(tc, test_finalize_inside_task);
    tcase_add_test(tc, test_finalize_waits_for_owned_tasks);
    suite_add_tcase(s, tc);
    return s;
}
