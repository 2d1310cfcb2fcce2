/* The single-process (embedded mode) suites bundled into check_taskray. */
#ifndef TR_TEST_SUITES_H
#define TR_TEST_SUITES_H

#include <check.h>

Suite *tr_suite_status(void);
Suite *tr_suite_registry(void);
Suite *tr_suite_lifecycle(void);
Suite *tr_suite_futures(void);
Suite *tr_suite_tasks(void);
Suite *tr_suite_objects(void);
Suite *tr_suite_actors(void);
Suite *tr_suite_misuse(void);

#endif
