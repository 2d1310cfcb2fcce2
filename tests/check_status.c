/*
 * Status codes, error strings and version queries.  None of these need
 * tr_init(): they must work before it.
 */
#include <ctype.h>

#include "suites.h"
#include "tr_test.h"

static const tr_status_t all_status[] = {
    TR_OK,
    TR_ERR_INVALID_ARG, TR_ERR_NOT_INITIALIZED, TR_ERR_ALREADY_INIT, TR_ERR_WRONG_MODE,
    TR_ERR_UNKNOWN_FUNCTION, TR_ERR_EXISTS, TR_ERR_NO_MEMORY, TR_ERR_TIMEOUT,
    TR_ERR_REF_RELEASED, TR_ERR_BUFFER_TOO_SMALL, TR_ERR_TYPE, TR_ERR_UNSCHEDULABLE,
    TR_ERR_SHUTDOWN,
    TR_ERR_TASK_FAILED, TR_ERR_TASK_CANCELLED, TR_ERR_TASK_RETRY, TR_ERR_TASK_STARTED,
    TR_ERR_DEPENDENCY,
    TR_ERR_OUT_OF_MEMORY, TR_ERR_OBJECT_LOST, TR_ERR_OBJECT_CORRUPT, TR_ERR_OBJECT_TOO_LARGE,
    TR_ERR_ACTOR_DIED,
    TR_ERR_MISMATCH, TR_ERR_BOOTSTRAP, TR_ERR_TRANSPORT, TR_ERR_WORKER_DIED,
    TR_ERR_PROTOCOL, TR_ERR_SYSTEM, TR_ERR_TOPOLOGY,
};
#define NUM_STATUS (sizeof(all_status) / sizeof(all_status[0]))

/* Values that are not statuses: positive, gaps in the ranges, far out. */
static const int unknown_status[] = { 1, 7, -14, -19, -25, -39, -44, -59, -61, -79, -87,
                                      -99, -100, 12345, -12345, INT32_MAX, INT32_MIN };
#define NUM_UNKNOWN (sizeof(unknown_status) / sizeof(unknown_status[0]))

START_TEST(test_ok_is_zero_errors_negative)
{
    ck_assert_int_eq(TR_OK, 0);
    for (size_t i = 1; i < NUM_STATUS; i++) {
        ck_assert_msg((int)all_status[i] < 0, "status %d is not negative", (int)all_status[i]);
    }
}
END_TEST

START_TEST(test_scopes)
{
    /* usage -1..-19, task -20..-39, object -40..-59, actor -60..-79, rank -80..-99 */
    ck_assert(TR_ERR_INVALID_ARG <= -1 && TR_ERR_SHUTDOWN >= -19);
    ck_assert(TR_ERR_TASK_FAILED <= -20 && TR_ERR_DEPENDENCY >= -39);
    ck_assert(TR_ERR_OUT_OF_MEMORY <= -40 && TR_ERR_OBJECT_TOO_LARGE >= -59);
    ck_assert(TR_ERR_ACTOR_DIED <= -60 && TR_ERR_ACTOR_DIED >= -79);
    ck_assert(TR_ERR_MISMATCH <= -80 && TR_ERR_TOPOLOGY >= -99);
}
END_TEST

START_TEST(test_strings_distinct_nonempty)
{
    for (size_t i = 0; i < NUM_STATUS; i++) {
        const char *s = tr_status_string(all_status[i]);
        ck_assert_msg(s != NULL, "tr_status_string(%d) is NULL", (int)all_status[i]);
        ck_assert_msg(s[0] != '\0', "tr_status_string(%d) is empty", (int)all_status[i]);
        ck_assert_msg(!isupper((unsigned char)s[0]),
                      "tr_status_string(%d) = '%s' does not start lowercase", (int)all_status[i], s);
        for (size_t j = 0; j < i; j++) {
            ck_assert_msg(strcmp(s, tr_status_string(all_status[j])) != 0,
                          "statuses %d and %d share the string '%s'", (int)all_status[i],
                          (int)all_status[j], s);
        }
    }
}
END_TEST

START_TEST(test_strings_stable)
{
    /* "static": the same pointer (or at least the same text) every time. */
    for (size_t i = 0; i < NUM_STATUS; i++) {
        const char *a = tr_status_string(all_status[i]);
        const char *b = tr_status_string(all_status[i]);
        ck_assert_str_eq(a, b);
    }
}
END_TEST

START_TEST(test_unknown_fallback)
{
    for (size_t i = 0; i < NUM_UNKNOWN; i++) {
        tr_status_t st = (tr_status_t)unknown_status[i];
        const char *s = tr_status_string(st);
        ck_assert_msg(s != NULL, "tr_status_string(%d) is NULL", unknown_status[i]);
        ck_assert_msg(s[0] != '\0', "tr_status_string(%d) is empty", unknown_status[i]);
        for (size_t j = 0; j < NUM_STATUS; j++) {
            ck_assert_msg(strcmp(s, tr_status_string(all_status[j])) != 0,
                          "unknown status %d reads as known status %d ('%s')", unknown_status[i],
                          (int)all_status[j], s);
        }
    }
}
END_TEST

START_TEST(test_version)
{
    ck_assert_ptr_nonnull(tr_version());
    ck_assert_str_eq(tr_version(), TR_VERSION_STRING);
    ck_assert_uint_eq(tr_api_version(), TR_API_VERSION);

    char expect[64];
    snprintf(expect, sizeof(expect), "%d.%d.%d", TR_VERSION_MAJOR, TR_VERSION_MINOR,
             TR_VERSION_PATCH);
    ck_assert_str_eq(TR_VERSION_STRING, expect);
    ck_assert_int_eq(TR_VERSION_HEX,
                     (TR_VERSION_MAJOR << 16) | (TR_VERSION_MINOR << 8) | TR_VERSION_PATCH);
}
END_TEST

START_TEST(test_last_error_empty_at_start)
{
    const char *e = tr_last_error();
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e, "");
}
END_TEST

START_TEST(test_last_error_thread_local_message)
{
    /* A failing call may leave a message; tr_last_error() never returns NULL. */
    tr_ref_h ref = TR_REF_NULL;
    tt_assert_status(tr_put("x", 1, &ref), TR_ERR_NOT_INITIALIZED);
    ck_assert_ptr_nonnull(tr_last_error());
    ck_assert_ptr_eq(ref, TR_REF_NULL); /* outputs are written only on success */
}
END_TEST

Suite *tr_suite_status(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_ok_is_zero_errors_negative);
    tcase_add_test(tc, test_scopes);
    tcase_add_test(tc, test_strings_distinct_nonempty);
    tcase_add_test(tc, test_strings_stable);
    tcase_add_test(tc, test_unknown_fallback);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_last_error_empty_at_start);
    tcase_add_test(tc, test_last_error_thread_local_message);
    suite_add_tcase(s, tc);
    return s;
}
