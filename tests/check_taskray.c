/*
 * check_taskray: runs every single-process suite.  The program is started
 * without a launcher, so each tr_init() makes a one-rank job (embedded
 * mode).  libcheck forks one child per test (the default), so every test
 * starts from a fresh process: its own tr_init()/tr_finalize(), setenv() and
 * counters do not leak into the next test.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(tr_suite_status());
    srunner_add_suite(sr, tr_suite_registry());
    srunner_add_suite(sr, tr_suite_lifecycle());
    srunner_add_suite(sr, tr_suite_futures());
    srunner_add_suite(sr, tr_suite_tasks());
    srunner_add_suite(sr, tr_suite_objects());
    srunner_add_suite(sr, tr_suite_actors());
    srunner_add_suite(sr, tr_suite_misuse());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
