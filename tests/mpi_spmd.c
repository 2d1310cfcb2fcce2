/*
 * mpi_spmd: TR_MODE_SPMD, every rank a driver.  Each rank submits its own
 * tasks (100 plain ones, some with a ref argument it put itself, a nested
 * fib), checks its own results, and checks that some of its tasks ran on
 * other ranks.  Each rank runs the libcheck suite in CK_NOFORK mode and
 * exits non-zero when its own suite fails.
 */
#include <unistd.h>

#include "tr_test.h"

static int g_rank = 0;
static int g_size = 1;

/* Args: i64 i, i64 submitter, ref to a value tt_fill(seed = submitter) of
 * 100000 bytes.  Returns [0] = i * 7 + 1000 * submitter when the value is
 * intact (else -1), [1] = the rank. */
static tr_status_t sp_work(tr_task_h t)
{
    int64_t i, who;
    const void *p;
    size_t n;
    tr_status_t st = tr_task_arg_i64(t, 0, &i);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &who);
    }
    if (st == TR_OK) {
        st = tr_task_arg(t, 2, &p, &n);
    }
    if (st != TR_OK) {
        return st;
    }
    tt_msleep(3); /* long enough for queues to build, so the work spreads */
    int ok = n == 100000 && tt_check_pattern(p, n, (uint64_t)who) == n;
    st = tr_task_return_i64(t, 0, ok ? i * 7 + 1000 * who : -1);
    return st != TR_OK ? st : tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(sp_work)

static tr_status_t sp_fib(tr_task_h t)
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
    if ((st = tr_task_submit(sp_fib, &a1, 1, NULL, &r1)) != TR_OK) {
        return st;
    }
    if ((st = tr_task_submit(sp_fib, &a2, 1, NULL, &r2)) != TR_OK) {
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
TR_REMOTE(sp_fib)

START_TEST(test_every_rank_drives)
{
    ck_assert_int_eq(tr_rank(), g_rank);
    ck_assert_int_eq(tr_size(), g_size);
    ck_assert(tr_is_driver());
}
END_TEST

START_TEST(test_own_100_tasks)
{
    enum { N = 100 };
    unsigned char *data = malloc(100000);
    ck_assert_ptr_nonnull(data);
    tt_fill(data, 100000, (uint64_t)g_rank);
    tr_ref_h obj;
    tt_ok(tr_put(data, 100000, &obj));
    free(data);

    static tr_ref_h res[N][2];
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    for (int i = 0; i < N; i++) {
        tr_arg_t a[3] = { TR_ARG_I64(i), TR_ARG_I64(g_rank), TR_ARG_REF(obj) };
        tt_ok(tr_task_submit(sp_work, a, 3, &p, res[i]));
    }
    tt_ok(tr_ref_release(obj)); /* pending tasks keep it alive */

    int elsewhere = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = tt_get_i64(res[i][0]);
        int64_t r = tt_get_i64(res[i][1]);
        ck_assert_msg(v == i * 7 + 1000 * g_rank, "rank %d, task %d: got %lld", g_rank, i,
                      (long long)v);
        ck_assert(r >= 0 && r < g_size);
        elsewhere += r != g_rank;
        tt_ok(tr_ref_release(res[i][0]));
        tt_ok(tr_ref_release(res[i][1]));
    }
    if (g_size > 1) {
        ck_assert_msg(elsewhere > 0, "rank %d: all %d of its tasks ran on itself", g_rank, N);
    }
}
END_TEST

START_TEST(test_own_nested_fib)
{
    tr_arg_t a = TR_ARG_I64(12);
    tr_ref_h r;
    tt_ok(tr_task_submit(sp_fib, &a, 1, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 144);
    tt_ok(tr_ref_release(r));
}
END_TEST

START_TEST(test_own_put_get)
{
    size_t n = 2 << 20;
    unsigned char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    tt_fill(data, n, 1000 + (uint64_t)g_rank);
    tr_ref_h r;
    tt_ok(tr_put(data, n, &r));
    free(data);
    tr_buf_h b;
    tt_ok(tr_get(r, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), n);
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(b), n, 1000 + (uint64_t)g_rank), n);
    tt_ok(tr_buf_release(b));
    tt_ok(tr_ref_release(r));
}
END_TEST

int main(int argc, char **argv)
{
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_ARGC_ARGV,
                            .mode = TR_MODE_SPMD, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "mpi_spmd: tr_init: %s: %s\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    g_rank = tr_rank();
    g_size = tr_size();

    Suite *s = suite_create("mpi_spmd");
    TCase *tc = tcase_create("spmd");
    tcase_add_test(tc, test_every_rank_drives);
    tcase_add_test(tc, test_own_100_tasks);
    tcase_add_test(tc, test_own_nested_fib);
    tcase_add_test(tc, test_own_put_get);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "mpi_spmd rank %d: tr_finalize: %s\n", g_rank, tr_status_string(st));
        failed++;
    }
    printf("mpi_spmd rank %d of %d: %s\n", g_rank, g_size, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
