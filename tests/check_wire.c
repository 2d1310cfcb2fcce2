/*
 * check_wire: the receive checks every message passes (lib/comm/wire.c,
 * tr__wire_rx_check and tr__wire_rx_bundle, which lib/comm/ucx.c calls for
 * each active message).  Crafted byte buffers must be dropped and counted by
 * reason, and a valid message must pass.  The library's internal symbols are
 * hidden, so this program compiles wire.c and the base files it needs itself
 * (tests/Makefile.am).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "comm/wire.h"

#define JOB    UINT64_C(0x5eC2e7000000abcd)
#define NRANKS 4
#define CAP    4096

static tr__wire_rx_t rx;

static void setup(void) { ck_assert_int_eq(tr__wire_rx_init(&rx, JOB, NRANKS, CAP), 0); }
static void teardown(void) { tr__wire_rx_destroy(&rx); }

/* A message built by the real writer: @type from @src of job @job with
 * @payload bytes of payload (0x5a).  Caller frees. */
static char *msg(tr__msg_type_t type, uint32_t src, uint64_t job, size_t payload, size_t *len_p)
{
    tr__wbuf_t w;
    tr__wbuf_init(&w, payload);
    for (size_t i = 0; i < payload; i++) tr__wbuf_u8(&w, 0x5a);
    char *m = tr__wbuf_finish(&w, type, src, job, len_p);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void set_hdr(char *m, tr__wire_hdr_t h) { memcpy(m, &h, sizeof(h)); }
static tr__wire_hdr_t get_hdr(const char *m)
{
    tr__wire_hdr_t h;
    memcpy(&h, m, sizeof(h));
    return h;
}

static uint64_t count(tr__drop_t r) { return atomic_load(&rx.dropped[r]); }

/* @m (@len bytes) must be dropped for @reason, and nothing else counted. */
static void expect_drop(const void *m, size_t len, tr__drop_t reason)
{
    tr__wire_hdr_t h = { 0 };
    uint64_t before = count(reason), total = tr__wire_rx_total(&rx);
    ck_assert_int_eq(tr__wire_rx_check(&rx, m, len, &h), -1);
    ck_assert_msg(count(reason) == before + 1, "not counted as %s", tr__drop_name(reason));
    ck_assert_uint_eq(tr__wire_rx_total(&rx), total + 1);
}

START_TEST(valid_passes)
{
    size_t len;
    char *m = msg(TR__MSG_TASK, 2, JOB, 100, &len);
    tr__wire_hdr_t h;
    ck_assert_int_eq(tr__wire_rx_check(&rx, m, len, &h), 0);
    ck_assert_uint_eq(h.type, TR__MSG_TASK);
    ck_assert_uint_eq(h.src, 2);
    ck_assert_uint_eq(h.length, len);
    ck_assert_uint_eq(tr__wire_rx_total(&rx), 0);
    free(m);
}
END_TEST

START_TEST(truncated)
{
    size_t len;
    char *m = msg(TR__MSG_RESULT, 1, JOB, 64, &len);
    expect_drop(m, 0, TR__DROP_TRUNCATED);
    expect_drop(m, sizeof(tr__wire_hdr_t) - 1, TR__DROP_TRUNCATED);   /* shorter than a header */
    expect_drop(m, len - 1, TR__DROP_TRUNCATED);                      /* shorter than declared */
    expect_drop(m, sizeof(tr__wire_hdr_t), TR__DROP_TRUNCATED);
    ck_assert_uint_eq(count(TR__DROP_TRUNCATED), 4);
    free(m);
}
END_TEST

START_TEST(oversized)
{
    size_t len;
    char *m = msg(TR__MSG_TASK, 1, JOB, CAP, &len);   /* over the cap, length field honest */
    expect_drop(m, len, TR__DROP_OVERSIZED);
    free(m);
    m = msg(TR__MSG_TASK, 1, JOB, 200, &len);
    tr__wire_hdr_t h = get_hdr(m);
    h.length -= 16;                                     /* trailing bytes beyond its length */
    set_hdr(m, h);
    expect_drop(m, len, TR__DROP_OVERSIZED);
    h.length = UINT32_MAX;                              /* declares more than arrived */
    set_hdr(m, h);
    expect_drop(m, len, TR__DROP_TRUNCATED);
    free(m);
}
END_TEST

START_TEST(bad_header_fields)
{
    size_t len;
    char *m = msg(TR__MSG_STATE, 3, JOB, 32, &len);
    tr__wire_hdr_t good = get_hdr(m), h;
    h = good; h.magic ^= 1; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_MAGIC);
    h = good; h.version = TR__WIRE_VERSION + 1; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_VERSION);
    h = good; h.job = JOB ^ 0x100; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_JOB);
    h = good; h.type = 0; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_TYPE);
    h = good; h.type = TR__MSG_MAX; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_TYPE);
    h = good; h.src = NRANKS; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_SOURCE);
    h = good; h.src = UINT32_MAX; set_hdr(m, h);
    expect_drop(m, len, TR__DROP_SOURCE);
    set_hdr(m, good);
    ck_assert_int_eq(tr__wire_rx_check(&rx, m, len, &h), 0);
    free(m);
}
END_TEST

/* A message of another job that is also wrong in other ways counts as
 * another job's: it is never taken for a broken peer of this one. */
START_TEST(other_job_first)
{
    size_t len;
    char *m = msg(TR__MSG_TASK, 7, JOB + 1, 16, &len);   /* rank 7 of a job of 8 ranks */
    expect_drop(m, len, TR__DROP_JOB);
    ck_assert_uint_eq(count(TR__DROP_SOURCE), 0);
    free(m);
}
END_TEST

/* ------------------------------------------------------------ bundles */

typedef struct { int n; size_t bytes; } sink_t;

static void sink(void *arg, const void *part, size_t len)
{
    sink_t *s = arg;
    tr__wire_hdr_t h = get_hdr(part);
    ck_assert_uint_eq(h.length, len);
    ck_assert_uint_eq(h.job, JOB);
    s->n++;
    s->bytes += len;
}

/* A bundle from @src of the given parts (each @n bytes at @parts[i]). */
static char *bundle(uint32_t src, char **parts, const size_t *n, int count_, size_t *len_p)
{
    tr__wbuf_t w;
    tr__wbuf_init(&w, 0);
    for (int i = 0; i < count_; i++) tr__wbuf_put(&w, parts[i], n[i]);
    char *b = tr__wbuf_finish(&w, TR__MSG_BUNDLE, src, JOB, len_p);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Deliver bundle @b from rank 1 as ucx.c does: @expect_parts parts pass,
 * and a bad part counts once as TR__DROP_BUNDLE when @bad. */
static void run_bundle(char *b, size_t len, int expect_parts, int bad)
{
    tr__wire_hdr_t h;
    sink_t s = { 0, 0 };
    uint64_t before = count(TR__DROP_BUNDLE);
    ck_assert_int_eq(tr__wire_rx_check(&rx, b, len, &h), 0);
    ck_assert_uint_eq(h.type, TR__MSG_BUNDLE);
    ck_assert_int_eq(tr__wire_rx_bundle(&rx, b, len, &h, sink, &s), expect_parts);
    ck_assert_int_eq(s.n, expect_parts);
    ck_assert_uint_eq(count(TR__DROP_BUNDLE), before + (bad ? 1 : 0));
}

START_TEST(bundle_parts)
{
    size_t n[3], len;
    char *p[3];
    p[0] = msg(TR__MSG_TASK, 1, JOB, 40, &n[0]);
    p[1] = msg(TR__MSG_RESULT, 1, JOB, 8, &n[1]);
    p[2] = msg(TR__MSG_FREE, 1, JOB, 0, &n[2]);
    char *b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 3, 0);                     /* all good */
    free(b);

    tr__wire_hdr_t h = get_hdr(p[1]), keep = h;
    h.job = JOB ^ 1; set_hdr(p[1], h);            /* a part of another job */
    b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 1, 1);
    free(b);
    h = keep; h.src = 2; set_hdr(p[1], h);        /* a part from another rank */
    b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 1, 1);
    free(b);
    h = keep; h.type = TR__MSG_BUNDLE; set_hdr(p[1], h);   /* a bundle inside */
    b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 1, 1);
    free(b);
    h = keep; h.length = 4000; set_hdr(p[1], h);  /* a part that overruns the bundle */
    b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 1, 1);
    free(b);
    h = keep; h.length = 4; set_hdr(p[1], h);     /* shorter than a header */
    b = bundle(1, p, n, 3, &len);
    run_bundle(b, len, 1, 1);
    free(b);
    set_hdr(p[1], keep);
    b = bundle(1, p, n, 2, &len);                 /* cut in the middle of the last part */
    expect_drop(b, len - 3, TR__DROP_TRUNCATED);  /* the bundle itself is cut: truncated */
    free(b);
    b = bundle(1, p, n, 3, &len);                 /* 5 stray bytes after the last part */
    char *b2 = malloc(len + 5);
    memcpy(b2, b, len);
    memset(b2 + len, 0, 5);
    h = get_hdr(b2); h.length = (uint32_t)(len + 5); set_hdr(b2, h);
    run_bundle(b2, len + 5, 3, 1);
    free(b2);
    free(b);
    ck_assert_uint_eq(count(TR__DROP_BUNDLE), 6);
    for (int i = 0; i < 3; i++) free(p[i]);
}
END_TEST

/* Many drops of one reason from one peer: all counted, logged once. */
START_TEST(warn_once)
{
    size_t len;
    char *m = msg(TR__MSG_TASK, 2, JOB, 8, &len);
    for (int i = 0; i < 1000; i++) expect_drop(m, len - 1, TR__DROP_TRUNCATED);
    ck_assert_uint_eq(count(TR__DROP_TRUNCATED), 1000);
    ck_assert_uint_eq(rx.warned[2], 1u << TR__DROP_TRUNCATED);
    ck_assert_uint_eq(rx.warned[1], 0);
    tr__wire_hdr_t h = get_hdr(m);
    h.job = 1; set_hdr(m, h);                      /* unknown sender */
    expect_drop(m, len, TR__DROP_JOB);
    ck_assert_uint_eq(rx.warned[NRANKS], 1u << TR__DROP_JOB);
    free(m);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("rx");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_passes);
    tcase_add_test(tc, truncated);
    tcase_add_test(tc, oversized);
    tcase_add_test(tc, bad_header_fields);
    tcase_add_test(tc, other_job_first);
    tcase_add_test(tc, bundle_parts);
    tcase_add_test(tc, warn_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tr__log_level = -1;   /* the drops warn on purpose; TASKRAY_LOG_LEVEL shows them */
    if (getenv("TASKRAY_LOG_LEVEL") != NULL) tr__log_init();
    SRunner *sr = srunner_create(wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
