/*
 * Actors in embedded mode (one rank): class registration, ordered calls,
 * ref arguments that are not ready yet, max_concurrency, failing methods
 * and constructors, tr_actor_kill(), collection of the last handle, error
 * statuses, named actors, handles passed to tasks (TR_ARG_ACTOR, inside
 * objects), tr_actor_self() and destructors at tr_finalize().
 *
 * Classes are registered at load time (constructor functions), like
 * TR_REMOTE does for functions.  Each test runs in its own process
 * (libcheck fork mode), so the global counters start at zero.
 */
#include <string.h>

#include "suites.h"
#include "tr_test.h"

#define CTOR_MSG "the constructor says no"
#define METHOD_MSG "method boom"

static atomic_int ca_fini;          /* destructor runs (every class) */
static atomic_llong ca_fini_value;  /* a Counter's value when it was destroyed */
static atomic_int ca_running;       /* Conc.work running now */
static atomic_int ca_max_running;
static atomic_int ca_sleep_started; /* Counter.sleep entered */

/* Hang guard for polls (never a timing check). */
#define CA_POLL_MS 10000

/* --------------------------------------------------------------- Counter */

typedef struct {
    int64_t value;
    int64_t *log; /* values pushed, in the order the calls ran */
    size_t nlog, caplog;
} counter_t;

/* Optional arg 0: the start value. */
static tr_status_t counter_init(tr_task_h t, void **state_p)
{
    counter_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return TR_ERR_NO_MEMORY;
    }
    if (tr_task_num_args(t) > 0) {
        tr_status_t st = tr_task_arg_i64(t, 0, &c->value);
        if (st != TR_OK) {
            free(c);
            return st;
        }
    }
    *state_p = c;
    return TR_OK;
}

static void counter_fini(void *state)
{
    counter_t *c = state;
    atomic_store(&ca_fini_value, c->value);
    free(c->log);
    free(c);
    atomic_fetch_add(&ca_fini, 1);
}

/* Returns the value after adding one. */
static tr_status_t counter_incr(tr_task_h t, void *state)
{
    counter_t *c = state;
    return tr_task_return_i64(t, 0, ++c->value);
}

static tr_status_t counter_get(tr_task_h t, void *state)
{
    counter_t *c = state;
    return tr_task_return_i64(t, 0, c->value);
}

/* Arg 0 i64 (a value or a ref to one): appended to the log; returns its index. */
static tr_status_t counter_push(tr_task_h t, void *state)
{
    counter_t *c = state;
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    if (st != TR_OK) {
        return st;
    }
    if (c->nlog == c->caplog) {
        size_t cap = c->caplog ? c->caplog * 2 : 64;
        int64_t *n = realloc(c->log, cap * sizeof(*n));
        if (n == NULL) {
            return TR_ERR_NO_MEMORY;
        }
        c->log = n;
        c->caplog = cap;
    }
    c->log[c->nlog] = v;
    return tr_task_return_i64(t, 0, (int64_t)c->nlog++);
}

/* Returns the log (an array of i64). */
static tr_status_t counter_log(tr_task_h t, void *state)
{
    counter_t *c = state;
    return tr_task_return(t, 0, c->log, c->nlog * sizeof(int64_t));
}

/* Arg 0 i64: fails with METHOD_MSG and that number; the state is untouched. */
static tr_status_t counter_fail(tr_task_h t, void *state)
{
    (void)state;
    int64_t v = 0;
    tr_task_arg_i64(t, 0, &v);
    tr_task_fail(t, METHOD_MSG " %lld", (long long)v);
    return TR_ERR_TASK_FAILED;
}

/* Arg 0 i64 ms: marks ca_sleep_started, sleeps, returns the value. */
static tr_status_t counter_sleep(tr_task_h t, void *state)
{
    counter_t *c = state;
    int64_t ms = 0;
    tr_status_t st = tr_task_arg_i64(t, 0, &ms);
    if (st != TR_OK) {
        return st;
    }
    atomic_fetch_add(&ca_sleep_started, 1);
    tt_msleep((long)ms);
    return tr_task_return_i64(t, 0, c->value);
}

/* tr_actor_self(): call "incr" on itself without waiting (that would
 * deadlock with max_concurrency 1), release both.  Returns 1 when every
 * step succeeded, else the negative status of the first that did not. */
static tr_status_t counter_selfcall(tr_task_h t, void *state)
{
    (void)state;
    tr_actor_h me = TR_ACTOR_NULL;
    tr_ref_h r = TR_REF_NULL;
    tr_status_t st = tr_actor_self(t, &me);
    if (st == TR_OK) {
        st = tr_actor_call(me, "incr", NULL, 0, NULL, &r);
        if (st == TR_OK) {
            st = tr_ref_release(r);
        }
        tr_status_t st2 = tr_actor_release(me);
        if (st == TR_OK) {
            st = st2;
        }
    }
    return tr_task_return_i64(t, 0, st == TR_OK ? 1 : (int64_t)st);
}

/* The status tr_actor_checkpoint() gave, then whether this is a restart
 * (10 * restarted + ...: returns status * 10 + was_restarted). */
static tr_status_t any_ckpt(tr_task_h t, void *state)
{
    (void)state;
    tr_status_t st = tr_actor_checkpoint(t);
    return tr_task_return_i64(t, 0, (int64_t)st * 10 + tr_actor_was_restarted(t));
}

static const tr_actor_method_t counter_methods[] = {
    { "incr", counter_incr }, { "get", counter_get },     { "push", counter_push },
    { "log", counter_log },   { "fail", counter_fail },   { "sleep", counter_sleep },
    { "selfcall", counter_selfcall }, { "ckpt", any_ckpt },
};

/* ------------------------------------------------------------------ Ckpt */

static tr_status_t ckpt_save(void *state, void **data_p, size_t *size_p)
{
    (void)state;
    *data_p = malloc(1);
    if (*data_p == NULL) return TR_ERR_NO_MEMORY;
    *size_p = 1;
    return TR_OK;
}

static tr_status_t ckpt_restore(const void *data, size_t size, void **state_p)
{
    (void)data; (void)size;
    *state_p = NULL;
    return TR_OK;
}

static const tr_actor_method_t ckpt_methods[] = { { "ckpt", any_ckpt } };

/* ------------------------------------------------------------------ Conc */

static tr_status_t conc_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}

static void conc_fini(void *state)
{
    (void)state;
    atomic_fetch_add(&ca_fini, 1);
}

/* Running counter up, record the max, sleep 100 ms, down. */
static tr_status_t conc_work(tr_task_h t, void *state)
{
    (void)state;
    int now = atomic_fetch_add(&ca_running, 1) + 1;
    int seen = atomic_load(&ca_max_running);
    while (now > seen && !atomic_compare_exchange_weak(&ca_max_running, &seen, now)) {
    }
    tt_msleep(100);
    atomic_fetch_sub(&ca_running, 1);
    return tr_task_return_i64(t, 0, now);
}

static const tr_actor_method_t conc_methods[] = { { "work", conc_work } };

/* --------------------------------------------------------------- BadInit */

static tr_status_t bad_init(tr_task_h t, void **state_p)
{
    (void)state_p;
    tr_task_fail(t, CTOR_MSG);
    return TR_ERR_TASK_FAILED;
}

static void bad_fini(void *state)
{
    (void)state;
    atomic_fetch_add(&ca_fini, 1);
}

static const tr_actor_method_t bad_methods[] = { { "get", counter_get } };

/* Registered at load time: every test's process has these classes. */
static void __attribute__((constructor)) ca_register_classes(void)
{
    const tr_actor_class_t counter = { .name = "Counter", .init = counter_init, .fini = counter_fini,
                                       .methods = counter_methods,
                                       .num_methods = (int)(sizeof(counter_methods) / sizeof(counter_methods[0])) };
    const tr_actor_class_t conc = { .name = "Conc", .init = conc_init, .fini = conc_fini,
                                    .methods = conc_methods, .num_methods = 1 };
    const tr_actor_class_t bad = { .name = "BadInit", .init = bad_init, .fini = bad_fini,
                                   .methods = bad_methods, .num_methods = 1 };
    const tr_actor_class_t ckpt = { .name = "Ckpt", .init = conc_init, .methods = ckpt_methods, .num_methods = 1,
                                    .save = ckpt_save, .restore = ckpt_restore };
    if (tr_actor_class_register(&counter) != TR_OK || tr_actor_class_register(&conc) != TR_OK ||
        tr_actor_class_register(&bad) != TR_OK || tr_actor_class_register(&ckpt) != TR_OK) {
        fprintf(stderr, "check_actors: registering the test classes failed\n");
        abort();
    }
}

/* ------------------------------------------------------------ functions */

/* Arg 0 TR_ARG_ACTOR (a Counter), arg 1 i64 n: n incr calls through the
 * task's own handle, each result one more than the previous.  Returns the
 * last value, or fails with a message. */
static tr_status_t ca_task_incr(tr_task_h t)
{
    tr_actor_h a;
    int64_t n;
    tr_status_t st = tr_task_arg_actor(t, 0, &a);
    if (st != TR_OK) {
        tr_task_fail(t, "tr_task_arg_actor: %s", tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_arg_i64(t, 1, &n)) != TR_OK) {
        tr_actor_release(a);
        return st;
    }
    int64_t prev = -1, v = 0;
    for (int64_t i = 0; i < n && st == TR_OK; i++) {
        tr_ref_h r;
        if ((st = tr_actor_call(a, "incr", NULL, 0, NULL, &r)) != TR_OK) {
            break;
        }
        st = tr_get_i64(r, TR_TIMEOUT_INFINITE, &v);
        tr_ref_release(r);
        if (st == TR_OK && prev >= 0 && v != prev + 1) {
            tr_task_fail(t, "incr returned %lld after %lld", (long long)v, (long long)prev);
            st = TR_ERR_TASK_FAILED;
        }
        prev = v;
    }
    tr_actor_release(a);
    if (st != TR_OK) {
        tr_task_fail(t, "calls failed: %s", tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ca_task_incr)

/* Arg 0 TR_ARG_BORROW(C), C = tr_put_refs(..., {actor ref}): reads the
 * actor's handle out of C and makes one incr call.  Returns its value. */
static tr_status_t ca_task_from_obj(tr_task_h t)
{
    tr_ref_h c, inner = TR_REF_NULL;
    tr_buf_h buf;
    tr_actor_h a;
    int64_t v = 0;
    tr_status_t st = tr_task_arg_ref(t, 0, &c);
    if (st != TR_OK) {
        tr_task_fail(t, "tr_task_arg_ref: %s", tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_get(c, TR_TIMEOUT_INFINITE, &buf)) == TR_OK) {
        if (tr_buf_num_refs(buf) != 1) {
            st = TR_ERR_INVALID_ARG;
        } else {
            st = tr_buf_refs(buf, &inner, 1);
        }
        tr_buf_release(buf);
    }
    tr_ref_release(c);
    if (st == TR_OK) {
        st = tr_actor_from_ref(inner, &a);
        tr_ref_release(inner);
        if (st == TR_OK) {
            tr_ref_h r;
            if ((st = tr_actor_call(a, "incr", NULL, 0, NULL, &r)) == TR_OK) {
                st = tr_get_i64(r, TR_TIMEOUT_INFINITE, &v);
                tr_ref_release(r);
            }
            tr_actor_release(a);
        }
    }
    if (st != TR_OK) {
        tr_task_fail(t, "through the object: %s", tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ca_task_from_obj)

/* Sleeps 50 ms, returns arg 0. */
static tr_status_t ca_task_slow(tr_task_h t)
{
    int64_t v;
    tr_status_t st = tr_task_arg_i64(t, 0, &v);
    if (st != TR_OK) {
        return st;
    }
    tt_msleep(50);
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ca_task_slow)

/* tr_actor_self() outside a method: returns its status. */
static tr_status_t ca_task_self(tr_task_h t)
{
    tr_actor_h a;
    return tr_task_return_i64(t, 0, tr_actor_self(t, &a));
}
TR_REMOTE(ca_task_self)

/* --------------------------------------------------------------- helpers */

static tr_actor_h ca_create(const char *cls, const tr_actor_params_t *p)
{
    tr_actor_h a = TR_ACTOR_NULL;
    tt_ok(tr_actor_create(cls, NULL, 0, p, &a));
    ck_assert_ptr_nonnull(a);
    return a;
}

static tr_ref_h ca_call(tr_actor_h a, const char *method, const tr_arg_t *args, int nargs)
{
    tr_ref_h r = TR_REF_NULL;
    tt_ok(tr_actor_call(a, method, args, nargs, NULL, &r));
    return r;
}

/* Call a method with no arguments and return its i64. */
static int64_t ca_call_i64(tr_actor_h a, const char *method)
{
    tr_ref_h r = ca_call(a, method, NULL, 0);
    int64_t v = tt_get_i64(r);
    tt_ok(tr_ref_release(r));
    return v;
}

/* tr_get of @r fails with @expect and tr_last_error() contains @needle (if not NULL). */
static void ca_expect_fail(tr_ref_h r, tr_status_t expect, const char *needle)
{
    tr_buf_h b;
    tt_assert_status(tr_get(r, TR_TIMEOUT_INFINITE, &b), expect);
    if (needle != NULL) {
        tt_assert_contains(tr_last_error(), needle);
    }
}

static int ca_poll_fini(int n)
{
    for (int waited = 0; waited < CA_POLL_MS; waited++) {
        if (atomic_load(&ca_fini) >= n) {
            return 1;
        }
        tt_msleep(1);
    }
    return 0;
}

static tr_status_t ca_dummy_method(tr_task_h t, void *s)
{
    (void)t;
    (void)s;
    return TR_OK;
}

/* ----------------------------------------------------------- registration */

static tr_status_t ca_dummy_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}

START_TEST(test_class_register_errors)
{
    const tr_actor_method_t two[] = { { "m", ca_dummy_method },
                                      { "m", ca_dummy_method } };
    const tr_actor_method_t nofn[] = { { "m", NULL } };
    const tr_actor_method_t noname[] = { { NULL, ca_dummy_method } };

    tt_assert_status(tr_actor_class_register(NULL), TR_ERR_INVALID_ARG);
    tr_actor_class_t c = { .name = "Fresh", .init = NULL };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_INVALID_ARG); /* no init */
    c = (tr_actor_class_t){ .name = NULL, .init = ca_dummy_init };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_INVALID_ARG); /* no name */
    c = (tr_actor_class_t){ .name = "Fresh", .init = ca_dummy_init, .methods = nofn, .num_methods = 1 };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_INVALID_ARG);
    c = (tr_actor_class_t){ .name = "Fresh", .init = ca_dummy_init, .methods = noname, .num_methods = 1 };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_INVALID_ARG);
    c = (tr_actor_class_t){ .name = "Fresh", .init = ca_dummy_init, .num_methods = -1 };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_INVALID_ARG);
    c = (tr_actor_class_t){ .name = "Fresh", .init = ca_dummy_init, .methods = two, .num_methods = 2 };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_EXISTS); /* two methods named "m" */
    c = (tr_actor_class_t){ .name = "Counter", .init = ca_dummy_init };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_EXISTS); /* registered at load time */

    /* a valid class registers; the same name twice does not */
    c = (tr_actor_class_t){ .name = "Fresh", .init = ca_dummy_init, .methods = two, .num_methods = 1 };
    tt_ok(tr_actor_class_register(&c));
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_EXISTS);

    tt_ok(tr_init(NULL));
    c = (tr_actor_class_t){ .name = "Late", .init = ca_dummy_init };
    tt_assert_status(tr_actor_class_register(&c), TR_ERR_WRONG_MODE);
    /* the class registered before tr_init works */
    tr_actor_h a = ca_create("Fresh", NULL);
    tr_ref_h r = ca_call(a, "m", NULL, 0);
    tr_buf_h b;
    tt_ok(tr_get(r, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), 0);
    tt_ok(tr_buf_release(b));
    tt_ok(tr_ref_release(r));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_actor_api_before_init)
{
    tr_actor_h a;
    tr_ref_h r;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, NULL, &a), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_actor_get_by_name("x", &a), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_actor_call((tr_actor_h)1, "incr", NULL, 0, NULL, &r), TR_ERR_NOT_INITIALIZED);
}
END_TEST

/* ----------------------------------------------------------------- order */

START_TEST(test_counter_10k_in_order)
{
    enum { N = 10000 };
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_ref_h *r = malloc(N * sizeof(*r));
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < N; i++) {
        tt_ok(tr_actor_call(a, "incr", NULL, 0, NULL, &r[i]));
    }
    for (int i = 0; i < N; i++) {
        int64_t v = tt_get_i64(r[i]);
        ck_assert_msg(v == i + 1, "call %d returned %lld, expected %d", i, (long long)v, i + 1);
        tt_ok(tr_ref_release(r[i]));
    }
    free(r);
    ck_assert_int_eq(ca_call_i64(a, "get"), N);
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_constructor_args)
{
    tt_ok(tr_init(NULL));
    tr_arg_t arg = TR_ARG_I64(41);
    tr_actor_h a;
    tt_ok(tr_actor_create("Counter", &arg, 1, NULL, &a));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 42);
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

/* Calls whose ref argument is not ready keep their place among later calls
 * that have no pending argument. */
START_TEST(test_pending_ref_args_keep_order)
{
    enum { N = 40 };
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_ref_h calls[N], slow[N];
    int nslow = 0;
    for (int i = 0; i < N; i++) {
        tr_arg_t arg;
        if (i % 10 == 0) { /* every tenth value comes from a task that sleeps 50 ms */
            tr_arg_t targ = TR_ARG_I64(i);
            tt_ok(tr_task_submit(ca_task_slow, &targ, 1, NULL, &slow[nslow]));
            arg = TR_ARG_REF(slow[nslow++]);
        } else {
            arg = TR_ARG_I64(i);
        }
        tt_ok(tr_actor_call(a, "push", &arg, 1, NULL, &calls[i]));
    }
    for (int i = 0; i < N; i++) {
        int64_t idx = tt_get_i64(calls[i]);
        ck_assert_msg(idx == i, "push %d ran as number %lld", i, (long long)idx);
        tt_ok(tr_ref_release(calls[i]));
    }
    tr_ref_h lr = ca_call(a, "log", NULL, 0);
    tr_buf_h b;
    tt_ok(tr_get(lr, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_size(b), N * sizeof(int64_t));
    const int64_t *log = tr_buf_data(b);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(log[i] == i, "log[%d] = %lld", i, (long long)log[i]);
    }
    tt_ok(tr_buf_release(b));
    tt_ok(tr_ref_release(lr));
    for (int i = 0; i < nslow; i++) {
        tt_ok(tr_ref_release(slow[i]));
    }
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

/* ----------------------------------------------------------- concurrency */

static void ca_run_conc(int conc, int ncalls, int expect_max)
{
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 8 };
    tt_ok(tr_init(&ip));
    tr_actor_params_t p = { 0 };
    if (conc > 0) {
        p.field_mask = TR_ACTOR_FIELD_MAX_CONCURRENCY;
        p.max_concurrency = conc;
    }
    tr_actor_h a = ca_create("Conc", &p);
    tr_ref_h r[16];
    for (int i = 0; i < ncalls; i++) {
        tt_ok(tr_actor_call(a, "work", NULL, 0, NULL, &r[i]));
    }
    for (int i = 0; i < ncalls; i++) {
        int64_t now = tt_get_i64(r[i]);
        ck_assert_int_le(now, expect_max);
        tt_ok(tr_ref_release(r[i]));
    }
    ck_assert_int_eq(atomic_load(&ca_max_running), expect_max);
    ck_assert_int_eq(atomic_load(&ca_running), 0);
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}

START_TEST(test_max_concurrency_4) { ca_run_conc(4, 8, 4); }
END_TEST

START_TEST(test_default_concurrency_1) { ca_run_conc(0, 4, 1); }
END_TEST

/* ---------------------------------------------------------------- failure */

START_TEST(test_method_failure_fails_only_that_call)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_ref_h r1 = ca_call(a, "incr", NULL, 0);
    tr_arg_t arg = TR_ARG_I64(7);
    tr_ref_h rf = ca_call(a, "fail", &arg, 1);
    tr_ref_h r2 = ca_call(a, "incr", NULL, 0);
    ck_assert_int_eq(tt_get_i64(r1), 1);
    ca_expect_fail(rf, TR_ERR_TASK_FAILED, METHOD_MSG " 7");
    tr_status_t st;
    int rank = -5;
    char msg[256];
    tt_ok(tr_ref_error(rf, &st, &rank, msg, sizeof(msg)));
    ck_assert_int_eq(st, TR_ERR_TASK_FAILED);
    tt_assert_contains(msg, METHOD_MSG " 7");
    ck_assert_int_eq(tt_get_i64(r2), 2);
    ck_assert_int_eq(ca_call_i64(a, "incr"), 3);
    tt_ok(tr_ref_release(r1));
    tt_ok(tr_ref_release(rf));
    tt_ok(tr_ref_release(r2));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_constructor_failure)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("BadInit", NULL);
    tr_ref_h r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = ca_call(a, "get", NULL, 0);
    }
    for (int i = 0; i < 3; i++) {
        ca_expect_fail(r[i], TR_ERR_ACTOR_DIED, CTOR_MSG);
        tt_ok(tr_ref_release(r[i]));
    }
    /* and calls made after the failure is known */
    tr_ref_h late = ca_call(a, "get", NULL, 0);
    ca_expect_fail(late, TR_ERR_ACTOR_DIED, CTOR_MSG);
    tt_ok(tr_ref_release(late));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------------------- kill */

START_TEST(test_kill)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tr_arg_t ms = TR_ARG_I64(300);
    tr_ref_h rs = ca_call(a, "sleep", &ms, 1);
    tr_ref_h q[5];
    for (int i = 0; i < 5; i++) {
        q[i] = ca_call(a, "incr", NULL, 0);
    }
    for (int w = 0; w < CA_POLL_MS && atomic_load(&ca_sleep_started) == 0; w++) {
        tt_msleep(1);
    }
    ck_assert_int_eq(atomic_load(&ca_sleep_started), 1);
    tt_ok(tr_actor_kill(a));
    for (int i = 0; i < 5; i++) {
        ca_expect_fail(q[i], TR_ERR_ACTOR_DIED, NULL);
        tt_ok(tr_ref_release(q[i]));
    }
    /* the method that was running finishes */
    ck_assert_int_eq(tt_get_i64(rs), 1);
    tt_ok(tr_ref_release(rs));
    ck_assert_msg(ca_poll_fini(1), "the destructor of the killed actor never ran");
    ck_assert_int_eq(atomic_load(&ca_fini_value), 1);
    /* later calls fail; the handle stays valid */
    tr_ref_h late = ca_call(a, "incr", NULL, 0);
    ca_expect_fail(late, TR_ERR_ACTOR_DIED, NULL);
    tt_ok(tr_ref_release(late));
    tt_ok(tr_actor_kill(a));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
    ck_assert_int_eq(atomic_load(&ca_fini), 1); /* once only */
}
END_TEST

/* --------------------------------------------------------------------- GC */

START_TEST(test_gc_after_pending_calls)
{
    enum { N = 200 };
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_arg_t ms = TR_ARG_I64(100);
    tr_ref_h rs = ca_call(a, "sleep", &ms, 1);
    tr_ref_h r[N];
    for (int i = 0; i < N; i++) {
        r[i] = ca_call(a, "incr", NULL, 0);
    }
    tt_ok(tr_actor_release(a));
    ck_assert_int_eq(atomic_load(&ca_fini), 0); /* the sleep still runs */
    ck_assert_int_eq(tt_get_i64(rs), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tt_get_i64(r[i]), i + 1);
        tt_ok(tr_ref_release(r[i]));
    }
    tt_ok(tr_ref_release(rs));
    ck_assert_msg(ca_poll_fini(1), "releasing the last handle never destroyed the actor");
    ck_assert_int_eq(atomic_load(&ca_fini_value), N);
    tt_ok(tr_finalize());
    ck_assert_int_eq(atomic_load(&ca_fini), 1);
}
END_TEST

START_TEST(test_gc_dup_keeps_alive)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL), b;
    tt_ok(tr_actor_dup(a, &b));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tt_ok(tr_actor_release(a));
    tt_msleep(50);
    ck_assert_int_eq(atomic_load(&ca_fini), 0);
    ck_assert_int_eq(ca_call_i64(b, "incr"), 2);
    tt_ok(tr_actor_release(b));
    ck_assert_msg(ca_poll_fini(1), "the last handle's release never destroyed the actor");
    tt_ok(tr_finalize());
}
END_TEST

/* ----------------------------------------------------------------- errors */

START_TEST(test_errors)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL), b;
    tr_ref_h r;

    /* unknown method: the call is accepted, its result fails */
    r = ca_call(a, "no_such_method", NULL, 0);
    ca_expect_fail(r, TR_ERR_UNKNOWN_METHOD, NULL);
    tt_ok(tr_ref_release(r));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1); /* the actor is fine */

    /* unknown class */
    tt_assert_status(tr_actor_create("NoSuchClass", NULL, 0, NULL, &b), TR_ERR_UNKNOWN_FUNCTION);

    /* bad call arguments */
    tt_assert_status(tr_actor_call(a, NULL, NULL, 0, NULL, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_call(a, "incr", NULL, 0, NULL, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_call(a, "incr", NULL, 1, NULL, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_create(NULL, NULL, 0, NULL, &b), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_create("Counter", NULL, 0, NULL, NULL), TR_ERR_INVALID_ARG);

    /* tr_actor_from_ref on a ref that is not an actor's */
    tr_ref_h plain;
    tt_ok(tr_put_i64(5, &plain));
    tt_assert_status(tr_actor_from_ref(plain, &b), TR_ERR_INVALID_ARG);
    tr_ref_h bytes;
    char junk[sizeof(uint64_t) * 4] = { 0 };
    tt_ok(tr_put(junk, sizeof(junk), &bytes)); /* the size of an actor's value, not one */
    tt_assert_status(tr_actor_from_ref(bytes, &b), TR_ERR_INVALID_ARG);
    tt_ok(tr_ref_release(bytes));
    tt_assert_status(tr_actor_from_ref(plain, NULL), TR_ERR_INVALID_ARG);
    tt_ok(tr_ref_release(plain));

    /* tr_actor_self outside a method */
    tt_assert_status(tr_actor_self(TR_TASK_NULL, &b), TR_ERR_INVALID_ARG);
    tt_ok(tr_task_submit(ca_task_self, NULL, 0, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), TR_ERR_INVALID_ARG);
    tt_ok(tr_ref_release(r));

    /* released handle */
    tt_ok(tr_actor_dup(a, &b));
    tt_ok(tr_actor_release(a));
    tt_assert_status(tr_actor_call(a, "incr", NULL, 0, NULL, &r), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_actor_kill(a), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_actor_release(a), TR_ERR_REF_RELEASED);
    tr_actor_h c;
    tt_assert_status(tr_actor_dup(a, &c), TR_ERR_REF_RELEASED);
    tr_ref_h ar;
    tt_assert_status(tr_actor_ref(a, &ar), TR_ERR_REF_RELEASED);
    ck_assert_int_eq(ca_call_i64(b, "incr"), 2); /* the other handle still works */
    tt_ok(tr_actor_release(b));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_bad_params)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a;
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_MAX_CONCURRENCY, .max_concurrency = 0 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p.max_concurrency = 2000;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p.max_concurrency = 1024; /* the upper bound is allowed */
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tt_ok(tr_actor_release(a));
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_RANK, .rank = 1 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p.rank = -1;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p.rank = 0;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tt_ok(tr_actor_release(a));
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_RESOURCES, .resources = "unobtainium=1" };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "unobtainium");
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_NUM_CPUS, .num_cpus = 1e5 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_UNSCHEDULABLE);
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_NAME, .name = "" };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    /* an actor call takes num_returns and name only */
    a = ca_create("Counter", NULL);
    tr_task_params_t tp = { .field_mask = TR_TASK_FIELD_MAX_RETRIES, .max_retries = 3 };
    tr_ref_h r;
    tt_assert_status(tr_actor_call(a, "incr", NULL, 0, &tp, &r), TR_ERR_INVALID_ARG);
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

/* num_gpus: the "gpus" resource, held for the actor's life. */
/* Restart options and checkpoints in one rank: nowhere to restart, but the
 * arguments are checked and a checkpoint of a class with save/restore is
 * taken. */
START_TEST(test_restart_params_and_checkpoint)
{
    tt_assert_status(tr_actor_checkpoint(NULL), TR_ERR_NOT_INITIALIZED);
    ck_assert_int_eq(tr_actor_was_restarted(NULL), -1);
    tt_ok(tr_init(NULL));
    tr_actor_h a;
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_MAX_RESTARTS, .max_restarts = -2 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_MAX_TASK_RETRIES, .max_task_retries = -2 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_checkpoint(NULL), TR_ERR_INVALID_ARG);   /* not inside a method */
    ck_assert_int_eq(tr_actor_was_restarted(NULL), -1);

    /* a class without save/restore cannot checkpoint */
    p = (tr_actor_params_t){ .field_mask = TR_ACTOR_FIELD_MAX_RESTARTS | TR_ACTOR_FIELD_MAX_TASK_RETRIES,
                             .max_restarts = -1, .max_task_retries = 2 };
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    tr_ref_h r;
    tt_ok(tr_actor_call(a, "ckpt", NULL, 0, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), (int64_t)TR_ERR_INVALID_ARG * 10);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_actor_release(a));

    tt_ok(tr_actor_create("Ckpt", NULL, 0, &p, &a));
    tt_ok(tr_actor_call(a, "ckpt", NULL, 0, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 0);   /* TR_OK, first incarnation */
    tt_ok(tr_ref_release(r));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_num_gpus)
{
    setenv("TASKRAY_RESOURCES", "gpus=1", 1);
    tt_ok(tr_init(NULL));
    tr_actor_h a, b;
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_NUM_GPUS, .num_gpus = 2 };
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "gpus");
    p.num_gpus = -1;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
    p.num_gpus = 1;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tt_ok(tr_actor_release(a));
    (void)b;
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------------------ names */

START_TEST(test_named)
{
    tt_ok(tr_init(NULL));
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_NAME, .name = "the-counter" };
    tr_actor_h a = ca_create("Counter", &p), b, c;
    tt_ok(tr_actor_get_by_name("the-counter", &b));
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    ck_assert_int_eq(ca_call_i64(b, "incr"), 2);
    ck_assert_int_eq(ca_call_i64(a, "get"), 2);
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &c), TR_ERR_EXISTS);
    tt_assert_status(tr_actor_get_by_name("no-such-actor", &c), TR_ERR_ACTOR_NOT_FOUND);
    tt_assert_status(tr_actor_get_by_name(NULL, &c), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_actor_get_by_name("the-counter", NULL), TR_ERR_INVALID_ARG);
    /* the failed create did not disturb the first actor or its name */
    tt_ok(tr_actor_get_by_name("the-counter", &c));
    ck_assert_int_eq(ca_call_i64(c, "incr"), 3);
    tt_ok(tr_actor_release(c));

    tt_ok(tr_actor_kill(a));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_actor_release(b));
    ck_assert_msg(ca_poll_fini(1), "the killed named actor was never destroyed");
    /* the name is free again (dropping it may trail the destructor) */
    tr_status_t st = TR_ERR_EXISTS;
    for (int w = 0; w < CA_POLL_MS && st == TR_ERR_EXISTS; w++) {
        st = tr_actor_create("Counter", NULL, 0, &p, &c);
        if (st == TR_ERR_EXISTS) {
            tt_msleep(1);
        }
    }
    tt_ok(st);
    tt_ok(tr_actor_get_by_name("the-counter", &b));
    ck_assert_int_eq(ca_call_i64(b, "incr"), 1); /* a new actor */
    tt_ok(tr_actor_release(b));
    tt_ok(tr_actor_release(c));
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------- handles travel */

START_TEST(test_handle_to_task)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tr_arg_t args[2] = { TR_ARG_ACTOR(a), TR_ARG_I64(100) };
    tr_ref_h r;
    tt_ok(tr_task_submit(ca_task_incr, args, 2, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 101);
    tt_ok(tr_ref_release(r));
    ck_assert_int_eq(ca_call_i64(a, "get"), 101);
    tt_ok(tr_actor_release(a));
    ck_assert_msg(ca_poll_fini(1), "the actor outlived every handle");
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_handle_in_object)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_ref_h ar, c;
    tt_ok(tr_actor_ref(a, &ar));
    tt_ok(tr_put_refs("holder", 7, &ar, 1, &c));
    tt_ok(tr_ref_release(ar));
    tt_ok(tr_actor_release(a)); /* only the object holds the actor now */
    tt_msleep(20);
    ck_assert_int_eq(atomic_load(&ca_fini), 0);

    tr_arg_t arg = TR_ARG_BORROW(c);
    tr_ref_h r;
    tt_ok(tr_task_submit(ca_task_from_obj, &arg, 1, NULL, &r));
    ck_assert_int_eq(tt_get_i64(r), 1);
    tt_ok(tr_ref_release(r));

    /* and on the driver */
    tr_buf_h b;
    tr_ref_h inner;
    tr_actor_h a2;
    tt_ok(tr_get(c, TR_TIMEOUT_INFINITE, &b));
    ck_assert_uint_eq(tr_buf_num_refs(b), 1);
    tt_ok(tr_buf_refs(b, &inner, 1));
    tt_ok(tr_buf_release(b));
    tt_ok(tr_actor_from_ref(inner, &a2));
    tt_ok(tr_ref_release(inner));
    ck_assert_int_eq(ca_call_i64(a2, "incr"), 2);
    tt_ok(tr_actor_release(a2));
    ck_assert_int_eq(atomic_load(&ca_fini), 0);
    tt_ok(tr_ref_release(c)); /* the last holder */
    ck_assert_msg(ca_poll_fini(1), "the actor outlived the object that held it");
    ck_assert_int_eq(atomic_load(&ca_fini_value), 2);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_self)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    ck_assert_int_eq(ca_call_i64(a, "selfcall"), 1);
    /* the call the method made on itself runs (bounded poll) */
    int64_t v = 0;
    for (int w = 0; w < CA_POLL_MS && v == 0; w++) {
        v = ca_call_i64(a, "get");
        if (v == 0) {
            tt_msleep(1);
        }
    }
    ck_assert_int_eq(v, 1);
    tt_ok(tr_actor_release(a));
    ck_assert_msg(ca_poll_fini(1), "the actor outlived every handle (tr_actor_self's included)");
    tt_ok(tr_finalize());
}
END_TEST

/* ---------------------------------------------------------------- finalize */

START_TEST(test_destructors_at_finalize)
{
    tt_ok(tr_init(NULL));
    tr_actor_h a = ca_create("Counter", NULL);
    tr_actor_h b = ca_create("Conc", NULL);
    tr_actor_h c = ca_create("Counter", NULL);
    ck_assert_int_eq(ca_call_i64(a, "incr"), 1);
    tr_ref_h r = ca_call(b, "work", NULL, 0);
    tt_get_i64(r);
    tt_ok(tr_ref_release(r));
    ck_assert_int_eq(ca_call_i64(c, "incr"), 1);
    ck_assert_int_eq(atomic_load(&ca_fini), 0);
    (void)a;
    (void)b;
    (void)c; /* handles still held */
    tt_ok(tr_finalize());
    ck_assert_int_eq(atomic_load(&ca_fini), 3);
}
END_TEST

Suite *tr_suite_actors(void)
{
    Suite *s = suite_create("actors");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_class_register_errors);
    tcase_add_test(tc, test_actor_api_before_init);
    tcase_add_test(tc, test_counter_10k_in_order);
    tcase_add_test(tc, test_constructor_args);
    tcase_add_test(tc, test_pending_ref_args_keep_order);
    tcase_add_test(tc, test_max_concurrency_4);
    tcase_add_test(tc, test_default_concurrency_1);
    tcase_add_test(tc, test_method_failure_fails_only_that_call);
    tcase_add_test(tc, test_constructor_failure);
    tcase_add_test(tc, test_kill);
    tcase_add_test(tc, test_gc_after_pending_calls);
    tcase_add_test(tc, test_gc_dup_keeps_alive);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_num_gpus);
    tcase_add_test(tc, test_named);
    tcase_add_test(tc, test_handle_to_task);
    tcase_add_test(tc, test_handle_in_object);
    tcase_add_test(tc, test_self);
    tcase_add_test(tc, test_destructors_at_finalize);
    tcase_add_test(tc, test_restart_params_and_checkpoint);
    suite_add_tcase(s, tc);
    return s;
}
