/*
 * Remote function registration: tr_function_register() and TR_REMOTE().
 * Each test runs in its own forked process, so functions registered by one
 * test are not seen by the next.
 */
#include "suites.h"
#include "tr_test.h"

/* Registered at load time. */
static tr_status_t rg_remote(tr_task_h t)
{
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(t, 0, v * 2 + 1);
}
TR_REMOTE(rg_remote)

/* Registered by hand in the tests. */
static tr_status_t rg_manual(tr_task_h t) { return tr_task_return_i64(t, 0, 4242); }
static tr_status_t rg_manual2(tr_task_h t) { return tr_task_return_i64(t, 0, 1717); }
static tr_status_t rg_never(tr_task_h t) { return tr_task_return_i64(t, 0, -1); }
static tr_status_t rg_late(tr_task_h t) { return tr_task_return_i64(t, 0, -2); }

START_TEST(test_register_null)
{
    tt_assert_status(tr_function_register(NULL, rg_manual), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_function_register("rg_null_fn", NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_function_register(NULL, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_function_register("", rg_manual), TR_ERR_INVALID_ARG);
    /* none of the failed calls registered anything */
    tt_ok(tr_function_register("rg_null_fn", rg_manual));
}
END_TEST

START_TEST(test_register_duplicate_name)
{
    tt_ok(tr_function_register("rg_dup", rg_manual));
    tt_assert_status(tr_function_register("rg_dup", rg_manual2), TR_ERR_EXISTS);
    /* same name, same function: still a duplicate */
    tt_assert_status(tr_function_register("rg_dup", rg_manual), TR_ERR_EXISTS);
    /* the name of a TR_REMOTE function is taken too */
    tt_assert_status(tr_function_register("rg_remote", rg_manual2), TR_ERR_EXISTS);
}
END_TEST

START_TEST(test_register_duplicate_function)
{
    /* the function under another name */
    tt_ok(tr_function_register("rg_fn_first_name", rg_manual));
    tt_assert_status(tr_function_register("rg_fn_second_name", rg_manual), TR_ERR_EXISTS);
    tt_assert_status(tr_function_register("rg_remote_alias", rg_remote), TR_ERR_EXISTS);
}
END_TEST

START_TEST(test_register_after_init)
{
    tt_ok(tr_init(NULL));
    tt_assert_status(tr_function_register("rg_late", rg_late), TR_ERR_WRONG_MODE);
    /* and it was not registered: submitting it is refused */
    tr_ref_h ref = TR_REF_NULL;
    tt_assert_status(tr_task_submit(rg_late, NULL, 0, NULL, &ref), TR_ERR_UNKNOWN_FUNCTION);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_tr_remote_works)
{
    tt_ok(tr_init(NULL));
    tr_arg_t arg = TR_ARG_I64(20);
    tr_ref_h ref;
    tt_ok(tr_task_submit(rg_remote, &arg, 1, NULL, &ref));
    ck_assert_int_eq(tt_get_i64(ref), 41);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_manual_register_then_submit)
{
    tt_ok(tr_function_register("rg_manual_name", rg_manual));
    tt_ok(tr_function_register("rg_manual2_name", rg_manual2));
    tt_ok(tr_init(NULL));
    tr_ref_h a, b;
    tt_ok(tr_task_submit(rg_manual, NULL, 0, NULL, &a));
    tt_ok(tr_task_submit(rg_manual2, NULL, 0, NULL, &b));
    ck_assert_int_eq(tt_get_i64(a), 4242);
    ck_assert_int_eq(tt_get_i64(b), 1717);
    tt_ok(tr_ref_release(a));
    tt_ok(tr_ref_release(b));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_submit_unregistered)
{
    tt_ok(tr_init(NULL));
    tr_ref_h ref = TR_REF_NULL;
    tt_assert_status(tr_task_submit(rg_never, NULL, 0, NULL, &ref), TR_ERR_UNKNOWN_FUNCTION);
    ck_assert_ptr_eq(ref, TR_REF_NULL);
    tt_assert_status(tr_task_submit(NULL, NULL, 0, NULL, &ref), TR_ERR_INVALID_ARG);
    tt_ok(tr_finalize());
}
END_TEST

Suite *tr_suite_registry(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_register_null);
    tcase_add_test(tc, test_register_duplicate_name);
    tcase_add_test(tc, test_register_duplicate_function);
    tcase_add_test(tc, test_register_after_init);
    tcase_add_test(tc, test_tr_remote_works);
    tcase_add_test(tc, test_manual_register_then_submit);
    tcase_add_test(tc, test_submit_unregistered);
    suite_add_tcase(s, tc);
    return s;
}
