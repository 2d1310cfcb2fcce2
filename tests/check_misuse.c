/*
 * Bad input, catalogued: every public function of taskray.h called with
 * NULLs, released handles, handles of the wrong kind, out-of-range options,
 * huge sizes and from the wrong context, each expecting the status that the
 * header and the man pages document.  doc/errors.md is this file as a table,
 * in the same order: run
 *
 *     TASKRAY_MISUSE_CATALOGUE=1 CK_RUN_SUITE=misuse tests/check_taskray
 *
 * to print the rows (function, input, status, tr_last_error()) to stdout.
 *
 * A check that fails does not stop its test: the mismatches are counted
 * (and printed), and each test fails at its end if there was any.  Checks
 * inside task functions record their mismatches the same way.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>

#include "suites.h"
#include "tr_test.h"

/* ------------------------------------------------------------ checking */

static int mu_catalogue;                 /* print the rows */
static atomic_int mu_nfail;
static char mu_first[1024];
static pthread_mutex_t mu_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *mu_name(long long st)
{
    switch (st) {
    case TR_OK: return "TR_OK";
    case TR_ERR_INVALID_ARG: return "TR_ERR_INVALID_ARG";
    case TR_ERR_NOT_INITIALIZED: return "TR_ERR_NOT_INITIALIZED";
    case TR_ERR_ALREADY_INIT: return "TR_ERR_ALREADY_INIT";
    case TR_ERR_WRONG_MODE: return "TR_ERR_WRONG_MODE";
    case TR_ERR_UNKNOWN_FUNCTION: return "TR_ERR_UNKNOWN_FUNCTION";
    case TR_ERR_EXISTS: return "TR_ERR_EXISTS";
    case TR_ERR_NO_MEMORY: return "TR_ERR_NO_MEMORY";
    case TR_ERR_TIMEOUT: return "TR_ERR_TIMEOUT";
    case TR_ERR_REF_RELEASED: return "TR_ERR_REF_RELEASED";
    case TR_ERR_BUFFER_TOO_SMALL: return "TR_ERR_BUFFER_TOO_SMALL";
    case TR_ERR_TYPE: return "TR_ERR_TYPE";
    case TR_ERR_UNSCHEDULABLE: return "TR_ERR_UNSCHEDULABLE";
    case TR_ERR_TASK_CANCELLED: return "TR_ERR_TASK_CANCELLED";
    case TR_ERR_TASK_STARTED: return "TR_ERR_TASK_STARTED";
    case TR_ERR_OUT_OF_MEMORY: return "TR_ERR_OUT_OF_MEMORY";
    case TR_ERR_OBJECT_TOO_LARGE: return "TR_ERR_OBJECT_TOO_LARGE";
    case TR_ERR_ACTOR_DIED: return "TR_ERR_ACTOR_DIED";
    case TR_ERR_ACTOR_NOT_FOUND: return "TR_ERR_ACTOR_NOT_FOUND";
    case TR_ERR_UNKNOWN_METHOD: return "TR_ERR_UNKNOWN_METHOD";
    default: return NULL;
    }
}

/* The catalogue shows tr_last_error() only when the call set it: with a
 * runtime, a known message is put there first (most calls leave it as it
 * was).  Without one, no call sets it. */
#define MU_SENTINEL_REPLICAS 3
static void mu_sentinel(char *before, size_t len)
{
    if (mu_catalogue && tr_rank() >= 0) {
        tr_ref_h r;
        (void)tr_put_replicated("s", 1, MU_SENTINEL_REPLICAS, &r);   /* a one-rank job: fails, with a message */
    }
    snprintf(before, len, "%s", tr_last_error());
}

static void mu_record_s(const char *gn, const char *wn, const char *fn, const char *input, const char *before,
                        int line)
{
    const char *le = tr_last_error();
    int same = strcmp(gn, wn) == 0;
    if (mu_catalogue) {
        pthread_mutex_lock(&mu_lock);
        printf("| `%s` | %s | %s | %s |\n", fn, input, gn, strcmp(le, before) != 0 && *le ? le : "");
        fflush(stdout);
        pthread_mutex_unlock(&mu_lock);
    }
    if (same) return;
    pthread_mutex_lock(&mu_lock);
    fprintf(stderr, "check_misuse.c:%d: %s (%s): got %s, expected %s; tr_last_error: '%s'\n", line, fn, input,
            gn, wn, le);
    if (atomic_fetch_add(&mu_nfail, 1) == 0)
        snprintf(mu_first, sizeof(mu_first), "line %d: %s (%s): got %s, expected %s; tr_last_error: '%s'", line,
                 fn, input, gn, wn, le);
    pthread_mutex_unlock(&mu_lock);
}

static void mu_record(int is_status, long long got, long long want, const char *fn, const char *input,
                      const char *before, int line)
{
    char gs[32], ws[32];
    const char *gn = is_status ? mu_name(got) : NULL, *wn = is_status ? mu_name(want) : NULL;
    if (gn == NULL) { snprintf(gs, sizeof(gs), "%lld", got); gn = gs; }
    if (wn == NULL) { snprintf(ws, sizeof(ws), "%lld", want); wn = ws; }
    mu_record_s(gn, wn, fn, input, before, line);
}

/* @expr returns a tr_status_t: expect @want. */
#define MU(expr, want, fn, input)                                                       \
    do {                                                                                \
        char mu_b_[512];                                                                \
        mu_sentinel(mu_b_, sizeof(mu_b_));                                              \
        long long mu_g_ = (long long)(expr);                                            \
        mu_record(1, mu_g_, (long long)(want), fn, input, mu_b_, __LINE__);             \
    } while (0)

/* @expr returns a number (or a pointer compared with NULL by the caller). */
#define MU_INT(expr, want, fn, input)                                                   \
    do {                                                                                \
        char mu_b_[512];                                                                \
        mu_sentinel(mu_b_, sizeof(mu_b_));                                              \
        long long mu_g_ = (long long)(expr);                                            \
        mu_record(0, mu_g_, (long long)(want), fn, input, mu_b_, __LINE__);             \
    } while (0)

/* @expr returns a string (shown in quotes), or a pointer: "NULL" when it is one. */
#define MU_STR(expr, want, fn, input)                                                   \
    do {                                                                                \
        char mu_b_[512], mu_g_[128], mu_w_[128];                                        \
        mu_sentinel(mu_b_, sizeof(mu_b_));                                              \
        const char *mu_s_ = (expr);                                                     \
        snprintf(mu_g_, sizeof(mu_g_), "\"%s\"", mu_s_ ? mu_s_ : "(null)");             \
        snprintf(mu_w_, sizeof(mu_w_), "\"%s\"", (want));                               \
        mu_record_s(mu_g_, mu_w_, fn, input, mu_b_, __LINE__);                          \
    } while (0)
#define MU_NULL(expr, fn, input)                                                        \
    do {                                                                                \
        char mu_b_[512];                                                                \
        mu_sentinel(mu_b_, sizeof(mu_b_));                                              \
        const void *mu_p_ = (expr);                                                     \
        mu_record_s(mu_p_ ? "non-NULL" : "NULL", "NULL", fn, input, mu_b_, __LINE__);   \
    } while (0)

static void mu_begin(const char *title)
{
    const char *e = getenv("TASKRAY_MISUSE_CATALOGUE");
    mu_catalogue = e != NULL && *e != '\0' && *e != '0';
    atomic_store(&mu_nfail, 0);
    mu_first[0] = '\0';
    if (mu_catalogue) printf("\n### %s\n\n| function | bad input or context | status | tr_last_error() |\n|---|---|---|---|\n", title);
}

#define MU_END() ck_assert_msg(atomic_load(&mu_nfail) == 0, "%d mismatches; first: %s", atomic_load(&mu_nfail), mu_first)

/* -------------------------------------------------------- remote code */

static tr_status_t mu_task_one(tr_task_h t) { return tr_task_return_i64(t, 0, 1); }
TR_REMOTE(mu_task_one)

static tr_status_t mu_never_registered(tr_task_h t) { (void)t; return TR_OK; }

/* The handle of a task that ran and returned (for "not the running task"). */
static tr_task_h mu_stale_task;
static tr_status_t mu_task_keep_handle(tr_task_h t)
{
    mu_stale_task = t;
    return tr_task_return_i64(t, 0, 1);
}
TR_REMOTE(mu_task_keep_handle)

/* Refs of the running task's own results, stored by the driver; the task
 * waits (gate) until they are there. */
static tr_ref_h mu_self_refs[2];

/* Inside a task: arguments (0: bytes, 1: i64, 2: borrowed ref), returns, the
 * task-only and actor-only calls, and what a task may not do. */
static tr_status_t mu_task_inside(tr_task_h t)
{
    const void *d;
    size_t n;
    int64_t i64;
    double f64;
    tr_ref_h r;
    tr_actor_h a;
    void *p;
    char small[8] = { 0 };
    int ids[4];

    MU_INT(tr_task_num_args(TR_TASK_NULL), -1, "tr_task_num_args", "TR_TASK_NULL, inside a task");
    MU_INT(tr_task_num_args(t), 3, "tr_task_num_args", "the running task (3 arguments): not an error");
    MU(tr_task_arg(t, -1, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "i = -1");
    MU(tr_task_arg(t, 3, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "i = nargs");
    MU(tr_task_arg(t, INT_MAX, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "i = INT_MAX");
    MU(tr_task_arg(t, 0, NULL, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "data_p NULL");
    MU(tr_task_arg(t, 0, &d, NULL), TR_OK, "tr_task_arg", "size_p NULL (allowed)");
    MU(tr_task_arg(t, 2, &d, &n), TR_ERR_TYPE, "tr_task_arg", "argument passed with TR_ARG_BORROW");
    MU(tr_task_arg(mu_stale_task, 0, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "the handle of another (finished) task");
    MU(tr_task_arg_i64(t, 0, &i64), TR_ERR_TYPE, "tr_task_arg_i64", "a 3-byte argument");
    MU(tr_task_arg_i64(t, 1, NULL), TR_ERR_INVALID_ARG, "tr_task_arg_i64", "value_p NULL");
    MU(tr_task_arg_i64(t, 2, &i64), TR_ERR_TYPE, "tr_task_arg_i64", "a borrowed argument");
    MU(tr_task_arg_i64(t, 9, &i64), TR_ERR_INVALID_ARG, "tr_task_arg_i64", "i out of range");
    MU(tr_task_arg_f64(t, 0, &f64), TR_ERR_TYPE, "tr_task_arg_f64", "a 3-byte argument");
    MU(tr_task_arg_f64(t, 1, NULL), TR_ERR_INVALID_ARG, "tr_task_arg_f64", "value_p NULL");
    MU(tr_task_arg_f64(mu_stale_task, 1, &f64), TR_ERR_INVALID_ARG, "tr_task_arg_f64", "another task's handle");
    MU(tr_task_arg_ref(t, 0, &r), TR_ERR_TYPE, "tr_task_arg_ref", "argument passed by value");
    MU(tr_task_arg_ref(t, 2, NULL), TR_ERR_INVALID_ARG, "tr_task_arg_ref", "ref_p NULL");
    MU(tr_task_arg_ref(t, -1, &r), TR_ERR_INVALID_ARG, "tr_task_arg_ref", "i = -1");
    MU(tr_task_arg_ref(mu_stale_task, 2, &r), TR_ERR_INVALID_ARG, "tr_task_arg_ref", "another task's handle");
    MU(tr_task_arg_actor(t, 1, &a), TR_ERR_TYPE, "tr_task_arg_actor", "argument passed by value");
    MU(tr_task_arg_actor(t, 2, &a), TR_ERR_INVALID_ARG, "tr_task_arg_actor", "a borrowed ref that is not an actor's");
    MU(tr_task_arg_actor(t, 2, NULL), TR_ERR_INVALID_ARG, "tr_task_arg_actor", "actor_p NULL");

    MU(tr_task_return(t, 2, small, 1), TR_ERR_INVALID_ARG, "tr_task_return", "i = num_returns (2)");
    MU(tr_task_return(t, -1, small, 1), TR_ERR_INVALID_ARG, "tr_task_return", "i = -1");
    MU(tr_task_return(t, 0, NULL, 1), TR_ERR_INVALID_ARG, "tr_task_return", "data NULL, size 1");
    MU(tr_task_return(t, 0, small, SIZE_MAX), TR_ERR_OBJECT_TOO_LARGE, "tr_task_return", "size SIZE_MAX");
    MU(tr_task_return(t, 0, small, SIZE_MAX / 2), TR_ERR_OBJECT_TOO_LARGE, "tr_task_return", "size SIZE_MAX/2");
    MU(tr_task_return(mu_stale_task, 0, small, 1), TR_ERR_INVALID_ARG, "tr_task_return", "another task's handle");
    MU(tr_task_return_i64(t, 5, 1), TR_ERR_INVALID_ARG, "tr_task_return_i64", "i out of range");
    MU(tr_task_return_f64(TR_TASK_NULL, 0, 1.0), TR_ERR_INVALID_ARG, "tr_task_return_f64", "TR_TASK_NULL");
    MU(tr_task_return_refs(t, 0, small, 1, NULL, 1), TR_ERR_INVALID_ARG, "tr_task_return_refs", "refs NULL, nrefs 1");
    MU(tr_task_return_refs(t, 0, small, 1, &mu_self_refs[0], SIZE_MAX), TR_ERR_INVALID_ARG, "tr_task_return_refs",
       "nrefs SIZE_MAX");
    tr_ref_h dead = (tr_ref_h)(uintptr_t)0x7777;
    MU(tr_task_return_refs(t, 0, small, 1, &dead, 1), TR_ERR_REF_RELEASED, "tr_task_return_refs", "a forged ref in refs");
    MU(tr_task_return_alloc(t, 0, 8, NULL), TR_ERR_INVALID_ARG, "tr_task_return_alloc", "data_p NULL");
    MU(tr_task_return_alloc(t, 0, SIZE_MAX, &p), TR_ERR_OBJECT_TOO_LARGE, "tr_task_return_alloc", "size SIZE_MAX");
    MU(tr_task_return_alloc(t, 64, 8, &p), TR_ERR_INVALID_ARG, "tr_task_return_alloc", "i = TR_MAX_RETURNS");
    const char *volatile nofmt = NULL;
    MU(tr_task_fail(t, nofmt), TR_ERR_INVALID_ARG, "tr_task_fail", "fmt NULL");
    MU(tr_task_fail(mu_stale_task, "x"), TR_ERR_INVALID_ARG, "tr_task_fail", "another task's handle");
    MU_INT(tr_task_rank(mu_stale_task), -1, "tr_task_rank", "another task's handle");
    MU_INT(tr_task_attempt(TR_TASK_NULL), -1, "tr_task_attempt", "TR_TASK_NULL");
    MU_INT(tr_task_gpus(t, NULL, 1), -1, "tr_task_gpus", "ids NULL, max 1");
    MU_INT(tr_task_gpus(t, ids, -1), -1, "tr_task_gpus", "max -1");
    MU_INT(tr_task_gpus(t, NULL, 0), 0, "tr_task_gpus", "ids NULL, max 0 (count): not an error");

    /* actor-only calls in a plain task */
    MU(tr_actor_self(t, &a), TR_ERR_INVALID_ARG, "tr_actor_self", "in a task that is not an actor method");
    MU(tr_actor_checkpoint(t), TR_ERR_INVALID_ARG, "tr_actor_checkpoint", "in a task that is not an actor method");
    MU_INT(tr_actor_was_restarted(t), -1, "tr_actor_was_restarted", "in a task that is not an actor method");

    /* what a task may not do */
    MU(tr_finalize(), TR_ERR_WRONG_MODE, "tr_finalize", "from inside a task");
    MU(tr_init(NULL), TR_ERR_ALREADY_INIT, "tr_init", "from inside a task");
    MU(tr_function_register("mu_late", mu_never_registered), TR_ERR_WRONG_MODE, "tr_function_register",
       "from inside a task (after tr_init)");

    /* waiting for its own results: nobody else can produce them */
    if (tt_gate_wait() != 0) return TR_ERR_TASK_FAILED;
    tr_buf_h b;
    size_t idx[2], nready;
    MU(tr_get(mu_self_refs[0], TR_TIMEOUT_INFINITE, &b), TR_ERR_WRONG_MODE, "tr_get",
       "inside a task, on its own result (would deadlock)");
    MU(tr_get(mu_self_refs[1], 50, &b), TR_ERR_WRONG_MODE, "tr_get", "inside a task, its own second result, with a timeout");
    MU(tr_get_i64(mu_self_refs[0], TR_TIMEOUT_INFINITE, &i64), TR_ERR_WRONG_MODE, "tr_get_i64",
       "inside a task, on its own result");
    MU(tr_get_copy(mu_self_refs[0], TR_TIMEOUT_INFINITE, small, sizeof(small), &n), TR_ERR_WRONG_MODE, "tr_get_copy",
       "inside a task, on its own result");
    MU(tr_get_buffer(mu_self_refs[0], TR_TIMEOUT_INFINITE, &d, &n, &b), TR_ERR_WRONG_MODE, "tr_get_buffer",
       "inside a task, on its own result");
    tr_buf_h bs[2];
    MU(tr_get_many(mu_self_refs, 2, TR_TIMEOUT_INFINITE, bs), TR_ERR_WRONG_MODE, "tr_get_many",
       "inside a task, on its own results");
    MU(tr_wait(mu_self_refs, 2, 1, TR_TIMEOUT_INFINITE, idx, &nready), TR_ERR_WRONG_MODE, "tr_wait",
       "inside a task, k of its own results");
    MU(tr_wait(mu_self_refs, 2, 0, TR_TIMEOUT_INFINITE, idx, &nready), TR_OK, "tr_wait",
       "inside a task, k = 0 of its own results: not an error");
    return tr_task_return(t, 0, "ok", 3);
}
TR_REMOTE(mu_task_inside)

/* ---------------------------------------------------------------- actors */

static tr_ref_h mu_self_call_ref;   /* an actor call's own result, for the method */

static atomic_int mu_ctor_checked;   /* the first constructor checks, once */

static tr_status_t mu_actor_init(tr_task_h t, void **state_p)
{
    *state_p = NULL;
    if (atomic_load(&mu_ctor_checked) == 0) {
        MU(tr_actor_checkpoint(t), TR_ERR_INVALID_ARG, "tr_actor_checkpoint", "in the constructor (not a method)");
        MU_INT(tr_actor_was_restarted(t), 0, "tr_actor_was_restarted", "in the first constructor: not an error");
        atomic_store(&mu_ctor_checked, 1);
    }
    return TR_OK;
}

static tr_status_t mu_actor_check(tr_task_h t, void *state)
{
    (void)state;
    tr_actor_h a;
    tr_buf_h b;
    MU(tr_actor_self(t, NULL), TR_ERR_INVALID_ARG, "tr_actor_self", "actor_p NULL, in a method");
    MU(tr_actor_self(mu_stale_task, &a), TR_ERR_INVALID_ARG, "tr_actor_self", "another task's handle, in a method");
    MU(tr_actor_checkpoint(t), TR_ERR_INVALID_ARG, "tr_actor_checkpoint", "class without save/restore");
    MU(tr_actor_checkpoint(TR_TASK_NULL), TR_ERR_INVALID_ARG, "tr_actor_checkpoint", "TR_TASK_NULL, in a method");
    MU_INT(tr_actor_was_restarted(TR_TASK_NULL), -1, "tr_actor_was_restarted", "TR_TASK_NULL, in a method");
    if (tt_gate_wait() != 0) return TR_ERR_TASK_FAILED;
    MU(tr_get(mu_self_call_ref, TR_TIMEOUT_INFINITE, &b), TR_ERR_WRONG_MODE, "tr_get",
       "in an actor method, on the call's own result (would deadlock)");
    return tr_task_return_i64(t, 0, 1);
}

static void __attribute__((constructor)) mu_register_class(void)
{
    static const tr_actor_method_t methods[] = { { "check", mu_actor_check } };
    const tr_actor_class_t c = { .name = "MuActor", .init = mu_actor_init, .methods = methods, .num_methods = 1 };
    tr_actor_class_register(&c);
}

/* ------------------------------------------------ every call, no runtime */

/* Every function that needs the runtime, when there is none (before
 * tr_init(), or after tr_finalize()).  @h is a ref handle from the runtime
 * that was, or TR_REF_NULL. */
static void mu_all_down(tr_ref_h h, tr_buf_h bh, tr_pg_h pgh, const char *when)
{
    char in[128];
    tr_ref_h r;
    tr_buf_h b;
    tr_actor_h a;
    tr_object_h o;
    tr_pg_h pg;
    void *p;
    const void *d;
    size_t n, idx[1];
    int64_t i64;
    double f64;
    tr_status_t st;
    tr_arg_t arg = TR_ARG_I64(1);
    tr_bundle_t bundle = { .num_cpus = 1 };
    tr_rank_info_t info;
    tr_config_item_t items[2];
    tr_object_store_stats_t ss;
    tr_failure_stats_t fs;
#define W(s) (snprintf(in, sizeof(in), "%s, %s", s, when), in)
    MU(tr_finalize(), TR_ERR_NOT_INITIALIZED, "tr_finalize", W("no runtime"));
    MU_INT(tr_rank(), -1, "tr_rank", W("no runtime"));
    MU_INT(tr_size(), 0, "tr_size", W("no runtime"));
    MU_INT(tr_is_driver(), 0, "tr_is_driver", W("no runtime"));
    MU_INT(tr_node_of(0), -1, "tr_node_of", W("rank 0, no runtime"));
    MU(tr_task_submit(mu_task_one, &arg, 1, NULL, &r), TR_ERR_NOT_INITIALIZED, "tr_task_submit", W("valid call"));
    MU(tr_cancel(h), TR_ERR_NOT_INITIALIZED, "tr_cancel", W("a ref"));
    MU_INT(tr_task_num_args(TR_TASK_NULL), -1, "tr_task_num_args", W("TR_TASK_NULL"));
    MU(tr_task_arg(TR_TASK_NULL, 0, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", W("TR_TASK_NULL"));
    MU(tr_task_return(TR_TASK_NULL, 0, "x", 1), TR_ERR_INVALID_ARG, "tr_task_return", W("TR_TASK_NULL"));
    MU(tr_put("x", 1, &r), TR_ERR_NOT_INITIALIZED, "tr_put", W("valid call"));
    MU(tr_put_i64(1, &r), TR_ERR_NOT_INITIALIZED, "tr_put_i64", W("valid call"));
    MU(tr_put_f64(1.0, &r), TR_ERR_NOT_INITIALIZED, "tr_put_f64", W("valid call"));
    MU(tr_put_replicated("x", 1, 0, &r), TR_ERR_NOT_INITIALIZED, "tr_put_replicated", W("valid call"));
    MU(tr_put_refs("x", 1, NULL, 0, &r), TR_ERR_NOT_INITIALIZED, "tr_put_refs", W("valid call"));
    MU(tr_object_create(8, &p, &o), TR_ERR_NOT_INITIALIZED, "tr_object_create", W("valid call"));
    MU(tr_object_seal(TR_OBJECT_NULL, &r), TR_ERR_NOT_INITIALIZED, "tr_object_seal", W("any object"));
    MU(tr_object_abort(TR_OBJECT_NULL), TR_ERR_NOT_INITIALIZED, "tr_object_abort", W("any object"));
    MU(tr_get(h, 0, &b), TR_ERR_NOT_INITIALIZED, "tr_get", W("a ref"));
    MU(tr_get_many(&h, 1, 0, &b), TR_ERR_NOT_INITIALIZED, "tr_get_many", W("a ref"));
    MU(tr_get_copy(h, 0, &i64, 8, &n), TR_ERR_NOT_INITIALIZED, "tr_get_copy", W("a ref"));
    MU(tr_get_i64(h, 0, &i64), TR_ERR_NOT_INITIALIZED, "tr_get_i64", W("a ref"));
    MU(tr_get_f64(h, 0, &f64), TR_ERR_NOT_INITIALIZED, "tr_get_f64", W("a ref"));
    MU(tr_get_buffer(h, 0, &d, &n, &b), TR_ERR_NOT_INITIALIZED, "tr_get_buffer", W("a ref"));
    MU_NULL(tr_buf_data(bh), "tr_buf_data", W("a view"));
    MU_INT(tr_buf_size(bh), 0, "tr_buf_size", W("a view"));
    MU_INT(tr_buf_num_refs(bh), 0, "tr_buf_num_refs", W("a view"));
    MU(tr_buf_refs(bh, &r, 1), TR_ERR_NOT_INITIALIZED, "tr_buf_refs", W("a view"));
    MU(tr_buf_release(bh), TR_ERR_INVALID_ARG, "tr_buf_release", W("a view (no view is valid then)"));
    MU(tr_wait(&h, 1, 1, 0, idx, &n), TR_ERR_NOT_INITIALIZED, "tr_wait", W("a ref"));
    MU(tr_ref_release(h), TR_ERR_NOT_INITIALIZED, "tr_ref_release", W("a ref"));
    MU(tr_ref_dup(h, &r), TR_ERR_NOT_INITIALIZED, "tr_ref_dup", W("a ref"));
    MU(tr_ref_error(h, &st, NULL, NULL, 0), TR_ERR_NOT_INITIALIZED, "tr_ref_error", W("a ref"));
    MU(tr_actor_create("MuActor", NULL, 0, NULL, &a), TR_ERR_NOT_INITIALIZED, "tr_actor_create", W("valid call"));
    MU(tr_actor_call((tr_actor_h)h, "check", NULL, 0, NULL, &r), TR_ERR_NOT_INITIALIZED, "tr_actor_call", W("a handle"));
    MU(tr_actor_kill((tr_actor_h)h), TR_ERR_NOT_INITIALIZED, "tr_actor_kill", W("a handle"));
    MU(tr_actor_release((tr_actor_h)h), TR_ERR_NOT_INITIALIZED, "tr_actor_release", W("a handle"));
    MU(tr_actor_dup((tr_actor_h)h, &a), TR_ERR_NOT_INITIALIZED, "tr_actor_dup", W("a handle"));
    MU(tr_actor_ref((tr_actor_h)h, &r), TR_ERR_NOT_INITIALIZED, "tr_actor_ref", W("a handle"));
    MU(tr_actor_from_ref(h, &a), TR_ERR_NOT_INITIALIZED, "tr_actor_from_ref", W("a ref"));
    MU(tr_task_arg_actor(TR_TASK_NULL, 0, &a), TR_ERR_INVALID_ARG, "tr_task_arg_actor", W("TR_TASK_NULL"));
    MU(tr_actor_get_by_name("x", &a), TR_ERR_NOT_INITIALIZED, "tr_actor_get_by_name", W("valid call"));
    MU(tr_actor_self(TR_TASK_NULL, &a), TR_ERR_NOT_INITIALIZED, "tr_actor_self", W("TR_TASK_NULL"));
    MU(tr_actor_checkpoint(TR_TASK_NULL), TR_ERR_NOT_INITIALIZED, "tr_actor_checkpoint", W("TR_TASK_NULL"));
    MU_INT(tr_actor_was_restarted(TR_TASK_NULL), -1, "tr_actor_was_restarted", W("TR_TASK_NULL"));
    MU(tr_placement_group_create(&bundle, 1, TR_PG_PACK, &pg), TR_ERR_NOT_INITIALIZED, "tr_placement_group_create",
       W("valid call"));
    MU(tr_placement_group_wait(pgh, 0), TR_ERR_NOT_INITIALIZED, "tr_placement_group_wait", W("a group"));
    MU_INT(tr_placement_group_bundle_rank(pgh, 0), -1, "tr_placement_group_bundle_rank", W("a group"));
    MU(tr_placement_group_remove(pgh), TR_ERR_NOT_INITIALIZED, "tr_placement_group_remove", W("a group"));
    MU(tr_rank_info(0, &info), TR_ERR_NOT_INITIALIZED, "tr_rank_info", W("rank 0"));
    MU_INT(tr_config_list(items, 2), -1, "tr_config_list", W("valid call"));
    MU(tr_object_store_stats(&ss), TR_ERR_NOT_INITIALIZED, "tr_object_store_stats", W("valid call"));
    MU_INT(tr_rank_alive(0), -1, "tr_rank_alive", W("rank 0"));
    MU(tr_failure_stats(&fs), TR_ERR_NOT_INITIALIZED, "tr_failure_stats", W("valid call"));
#undef W
}

START_TEST(test_before_init)
{
    mu_begin("No runtime: before tr_init()");
    /* the four that never need the runtime */
    MU_STR(tr_status_string((tr_status_t)12345), "unknown status", "tr_status_string", "status 12345 (not a status)");
    MU_STR(tr_status_string((tr_status_t)INT_MIN), "unknown status", "tr_status_string", "status INT_MIN");
    MU_STR(tr_last_error(), "", "tr_last_error", "no error yet");
    MU_STR(tr_version(), TR_VERSION_STRING, "tr_version", "any time (never NULL)");
    MU_INT(tr_api_version(), TR_API_VERSION, "tr_api_version", "any time");
    mu_all_down(TR_REF_NULL, TR_BUF_NULL, TR_PG_NULL, "before tr_init");
    MU_END();
}
END_TEST

START_TEST(test_register)
{
    mu_begin("Registration (before tr_init())");
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    static const tr_actor_method_t nofn[] = { { "m", NULL } };
    static const tr_actor_method_t noname[] = { { NULL, mu_actor_check } };
    static const tr_actor_method_t twice[] = { { "m", mu_actor_check }, { "m", mu_actor_check } };
    tr_actor_class_t c;

    MU(tr_function_register(NULL, mu_never_registered), TR_ERR_INVALID_ARG, "tr_function_register", "name NULL");
    MU(tr_function_register("", mu_never_registered), TR_ERR_INVALID_ARG, "tr_function_register", "name \"\"");
    MU(tr_function_register(longname, mu_never_registered), TR_ERR_INVALID_ARG, "tr_function_register",
       "name of 299 characters (> 255)");
    MU(tr_function_register("mu_x", NULL), TR_ERR_INVALID_ARG, "tr_function_register", "fn NULL");
    MU(tr_function_register("mu_task_one", mu_never_registered), TR_ERR_EXISTS, "tr_function_register",
       "a name already registered");
    MU(tr_function_register("mu_other_name", mu_task_one), TR_ERR_EXISTS, "tr_function_register",
       "a function already registered under another name");
    MU(tr_actor_class_register(NULL), TR_ERR_INVALID_ARG, "tr_actor_class_register", "cls NULL");
    c = (tr_actor_class_t){ .name = NULL, .init = mu_actor_init };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "name NULL");
    c = (tr_actor_class_t){ .name = longname, .init = mu_actor_init };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "name > 255 characters");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = NULL };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "init NULL");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .num_methods = -1 };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "num_methods -1");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .num_methods = 2 };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "methods NULL, num_methods 2");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .methods = nofn, .num_methods = 1 };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "a method without a function");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .methods = noname, .num_methods = 1 };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "a method without a name");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .save = (tr_actor_save_fn)NULL,
                            .restore = (tr_actor_restore_fn)(void (*)(void))mu_task_one };
    MU(tr_actor_class_register(&c), TR_ERR_INVALID_ARG, "tr_actor_class_register", "restore without save");
    c = (tr_actor_class_t){ .name = "MuFresh", .init = mu_actor_init, .methods = twice, .num_methods = 2 };
    MU(tr_actor_class_register(&c), TR_ERR_EXISTS, "tr_actor_class_register", "two methods of one name");
    c = (tr_actor_class_t){ .name = "MuActor", .init = mu_actor_init };
    MU(tr_actor_class_register(&c), TR_ERR_EXISTS, "tr_actor_class_register", "a class name already registered");
    MU_END();
}
END_TEST

START_TEST(test_lifecycle)
{
    mu_begin("tr_init() and tr_finalize()");
    tr_init_params_t p = { 0 };
    p.field_mask = TR_INIT_FIELD_MODE;
    p.mode = (tr_mode_t)7;
    MU(tr_init(&p), TR_ERR_INVALID_ARG, "tr_init", "mode 7 (unknown)");
    p.mode = (tr_mode_t)-1;
    MU(tr_init(&p), TR_ERR_INVALID_ARG, "tr_init", "mode -1");
    p.field_mask = TR_INIT_FIELD_NUM_EXECUTORS;
    p.num_executors = 0;
    MU(tr_init(&p), TR_ERR_INVALID_ARG, "tr_init", "num_executors 0");
    p.num_executors = 4097;
    MU(tr_init(&p), TR_ERR_INVALID_ARG, "tr_init", "num_executors 4097 (> 4096)");
    p.num_executors = INT_MIN;
    MU(tr_init(&p), TR_ERR_INVALID_ARG, "tr_init", "num_executors INT_MIN");
    p.field_mask = (uint64_t)1 << 40;   /* unknown bits are ignored: the ABI can grow */
    p.num_executors = 0;
    MU(tr_init(&p), TR_OK, "tr_init", "an unknown field_mask bit (ignored: not an error)");
    MU(tr_init(NULL), TR_ERR_ALREADY_INIT, "tr_init", "called twice");
    MU(tr_function_register("mu_late", mu_never_registered), TR_ERR_WRONG_MODE, "tr_function_register",
       "after tr_init");
    tr_actor_class_t c = { .name = "MuLate", .init = mu_actor_init };
    MU(tr_actor_class_register(&c), TR_ERR_WRONG_MODE, "tr_actor_class_register", "after tr_init");

    /* handles that outlive the runtime */
    tr_ref_h r;
    tr_buf_h b;
    tr_pg_h pg;
    tr_bundle_t bundle = { .num_cpus = 1 };
    tt_ok(tr_put_i64(1, &r));
    tt_ok(tr_get(r, 0, &b));
    tt_ok(tr_placement_group_create(&bundle, 1, TR_PG_PACK, &pg));
    MU(tr_finalize(), TR_OK, "tr_finalize", "with a ref, a view and a group still held (released): not an error");
    MU(tr_finalize(), TR_ERR_NOT_INITIALIZED, "tr_finalize", "called twice");
    mu_all_down(r, b, pg, "after tr_finalize");
    MU_END();
}
END_TEST

/* ------------------------------------------------------ with a runtime */

START_TEST(test_tasks)
{
    mu_begin("Tasks: tr_task_submit(), tr_cancel(), task-side calls from the driver");
    tt_ok(tr_init(NULL));
    tr_ref_h r[TR_MAX_RETURNS + 1], ok, rel, put;
    tr_arg_t arg = TR_ARG_I64(1), bad;
    tr_task_params_t p;
    static char big[16];
    const void *d;
    size_t n;
    int64_t i64;
    tt_ok(tr_task_submit(mu_task_keep_handle, &arg, 1, NULL, &ok));
    (void)tt_get_i64(ok);
    tt_ok(tr_ref_release(ok));
    tt_ok(tr_put_i64(5, &put));
    tt_ok(tr_put_i64(6, &rel));
    tt_ok(tr_ref_release(rel));

    MU(tr_task_submit(NULL, &arg, 1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "fn NULL");
    MU(tr_task_submit(mu_task_one, &arg, 1, NULL, NULL), TR_ERR_INVALID_ARG, "tr_task_submit", "refs_p NULL");
    MU(tr_task_submit(mu_task_one, NULL, 1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "args NULL, nargs 1");
    MU(tr_task_submit(mu_task_one, &arg, -1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "nargs -1");
    MU(tr_task_submit(mu_task_one, &arg, 65536, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "nargs 65536");
    MU(tr_task_submit(mu_task_one, &arg, INT_MAX, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "nargs INT_MAX");
    MU(tr_task_submit(mu_never_registered, &arg, 1, NULL, r), TR_ERR_UNKNOWN_FUNCTION, "tr_task_submit",
       "fn never registered");
    bad = (tr_arg_t){ .kind = (tr_arg_kind_t)99 };
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "an argument of kind 99");
    bad = (tr_arg_t){ .kind = (tr_arg_kind_t)0 };
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "an argument of kind 0");
    bad = TR_ARG_BYTES(NULL, 4);
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_INVALID_ARG, "tr_task_submit", "TR_ARG_BYTES(NULL, 4)");
    bad = TR_ARG_BYTES(big, SIZE_MAX);
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_OBJECT_TOO_LARGE, "tr_task_submit",
       "TR_ARG_BYTES(p, SIZE_MAX)");
    bad = TR_ARG_BYTES(big, SIZE_MAX / 2);
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_OBJECT_TOO_LARGE, "tr_task_submit",
       "TR_ARG_BYTES(p, SIZE_MAX/2)");
    bad = TR_ARG_REF(rel);
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_REF_RELEASED, "tr_task_submit", "TR_ARG_REF(released ref)");
    bad = TR_ARG_BORROW(TR_REF_NULL);
    MU(tr_task_submit(mu_task_one, &bad, 1, NULL, r), TR_ERR_REF_RELEASED, "tr_task_submit", "TR_ARG_BORROW(TR_REF_NULL)");

#define P(mask) ((void)memset(&p, 0, sizeof(p)), p.field_mask = (mask))
    P(TR_TASK_FIELD_NUM_RETURNS);
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_returns 0");
    P(TR_TASK_FIELD_NUM_RETURNS), p.num_returns = TR_MAX_RETURNS + 1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_returns 65 (TR_MAX_RETURNS+1)");
    P(TR_TASK_FIELD_NUM_RETURNS), p.num_returns = -1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_returns -1");
    P(TR_TASK_FIELD_MAX_RETRIES), p.max_retries = -2;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "max_retries -2");
    P(TR_TASK_FIELD_MAX_RETRIES), p.max_retries = INT_MIN;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "max_retries INT_MIN");
    P(TR_TASK_FIELD_NUM_CPUS), p.num_cpus = NAN;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_cpus NaN");
    P(TR_TASK_FIELD_NUM_CPUS), p.num_cpus = INFINITY;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_cpus +inf");
    P(TR_TASK_FIELD_NUM_CPUS), p.num_cpus = -1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_cpus -1");
    P(TR_TASK_FIELD_NUM_CPUS), p.num_cpus = 1e9;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_cpus 1e9 (> 1e6)");
    P(TR_TASK_FIELD_NUM_CPUS), p.num_cpus = 1000;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_UNSCHEDULABLE, "tr_task_submit",
       "num_cpus 1000 (more than any rank has)");
    P(TR_TASK_FIELD_NUM_GPUS), p.num_gpus = NAN;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_gpus NaN");
    P(TR_TASK_FIELD_NUM_GPUS), p.num_gpus = -0.5;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_gpus -0.5");
    P(TR_TASK_FIELD_NUM_GPUS), p.num_gpus = INFINITY;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_gpus +inf");
    P(TR_TASK_FIELD_NUM_GPUS), p.num_gpus = 1.5;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "num_gpus 1.5 (not whole above 1)");
    P(TR_TASK_FIELD_MEMORY), p.memory = UINT64_MAX;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "memory UINT64_MAX");
    P(TR_TASK_FIELD_RESOURCES), p.resources = "licence";
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "resources \"licence\" (no amount)");
    P(TR_TASK_FIELD_RESOURCES), p.resources = "ssd=-1";
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "resources \"ssd=-1\"");
    P(TR_TASK_FIELD_RESOURCES), p.resources = "ssd=nan";
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "resources \"ssd=nan\"");
    P(TR_TASK_FIELD_RESOURCES), p.resources = "ssd=1";
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_UNSCHEDULABLE, "tr_task_submit",
       "resources \"ssd=1\" (no rank has it)");
    P(TR_TASK_FIELD_STRATEGY), p.strategy = (tr_strategy_t)2;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "strategy 2 (unknown)");
    P(TR_TASK_FIELD_STRATEGY), p.strategy = (tr_strategy_t)-1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "strategy -1");
    P(TR_TASK_FIELD_RANK), p.rank = 1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "rank 1 (= tr_size())");
    P(TR_TASK_FIELD_RANK), p.rank = -1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "rank -1");
    P(TR_TASK_FIELD_RANK), p.rank = 1, p.soft = 1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "rank 1, soft");
    P(TR_TASK_FIELD_NODE), p.node = 1;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "node 1 (one node)");
    P(TR_TASK_FIELD_NODE), p.node = INT_MIN;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "node INT_MIN");
    P(TR_TASK_FIELD_NAME), p.name = NULL;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_OK, "tr_task_submit", "name NULL (the default): not an error");
    tt_ok(tr_ref_release(r[0]));
    {
        static char longname[300];
        memset(longname, 'n', sizeof(longname) - 1);
        P(TR_TASK_FIELD_NAME), p.name = longname;
        MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "name > 255 characters");
    }
    P(TR_TASK_FIELD_PLACEMENT_GROUP), p.placement_group = TR_PG_NULL;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "placement_group TR_PG_NULL");
    P(TR_TASK_FIELD_PLACEMENT_GROUP), p.placement_group = (tr_pg_h)put;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_REF_RELEASED, "tr_task_submit",
       "placement_group: a ref handle (wrong kind)");
    P(TR_TASK_FIELD_PLACEMENT_GROUP), p.placement_group = (tr_pg_h)put, p.bundle_index = -2;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "bundle_index -2");
    P(TR_TASK_FIELD_PLACEMENT_GROUP), p.placement_group = (tr_pg_h)put, p.bundle_index = TR_PG_MAX_BUNDLES;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "bundle_index 1024");
    P(TR_TASK_FIELD_PLACEMENT_GROUP | TR_TASK_FIELD_RANK), p.placement_group = (tr_pg_h)put;
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_ERR_INVALID_ARG, "tr_task_submit", "placement group and rank");
    P((uint64_t)1 << 50);
    MU(tr_task_submit(mu_task_one, &arg, 1, &p, r), TR_OK, "tr_task_submit", "an unknown field_mask bit (ignored: not an error)");
    tt_ok(tr_ref_release(r[0]));
#undef P

    /* tr_cancel */
    tt_ok(tr_task_submit(mu_task_one, &arg, 1, NULL, &ok));
    (void)tt_get_i64(ok);
    MU(tr_cancel(TR_REF_NULL), TR_ERR_REF_RELEASED, "tr_cancel", "TR_REF_NULL");
    MU(tr_cancel(rel), TR_ERR_REF_RELEASED, "tr_cancel", "a released ref");
    MU(tr_cancel(put), TR_ERR_INVALID_ARG, "tr_cancel", "a ref made by tr_put");
    MU(tr_cancel(ok), TR_ERR_TASK_STARTED, "tr_cancel", "a task that finished");

    /* task-side calls from the driver thread */
    MU_INT(tr_task_num_args(TR_TASK_NULL), -1, "tr_task_num_args", "TR_TASK_NULL, from the driver");
    MU(tr_task_arg(TR_TASK_NULL, 0, &d, &n), TR_ERR_INVALID_ARG, "tr_task_arg", "TR_TASK_NULL, from the driver");
    MU(tr_task_arg_i64(mu_stale_task, 0, &i64), TR_ERR_INVALID_ARG, "tr_task_arg_i64", "a task handle, from the driver");
    MU(tr_task_return_i64(TR_TASK_NULL, 0, 1), TR_ERR_INVALID_ARG, "tr_task_return_i64", "TR_TASK_NULL, from the driver");
    MU(tr_task_fail(TR_TASK_NULL, "x"), TR_ERR_INVALID_ARG, "tr_task_fail", "TR_TASK_NULL, from the driver");
    MU_INT(tr_task_rank(TR_TASK_NULL), -1, "tr_task_rank", "TR_TASK_NULL, from the driver");
    MU_INT(tr_task_gpus(TR_TASK_NULL, NULL, 0), -1, "tr_task_gpus", "TR_TASK_NULL, from the driver");
    tt_ok(tr_ref_release(ok));
    tt_ok(tr_ref_release(put));
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

START_TEST(test_inside_task)
{
    mu_begin("Inside a task function");
    tt_ok(tr_init(NULL));
    tr_ref_h r, rs[2], val;
    tr_arg_t a1 = TR_ARG_I64(1);
    tt_ok(tr_task_submit(mu_task_keep_handle, &a1, 1, NULL, &r));
    (void)tt_get_i64(r);
    tt_ok(tr_ref_release(r));

    tt_ok(tr_put_i64(7, &val));
    tr_arg_t args[3] = { TR_ARG_BYTES("ab", 3), TR_ARG_I64(3), TR_ARG_BORROW(val) };
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    tt_gate_close();
    tt_ok(tr_task_submit(mu_task_inside, args, 3, &p, rs));
    mu_self_refs[0] = rs[0];
    mu_self_refs[1] = rs[1];
    tt_gate_open();
    char out[8];
    size_t n;
    tt_ok(tr_get_copy(rs[0], TR_TIMEOUT_INFINITE, out, sizeof(out), &n));
    ck_assert_str_eq(out, "ok");
    tt_release_all(rs, 2);
    tt_ok(tr_ref_release(val));
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

START_TEST(test_objects)
{
    mu_begin("Objects and futures");
    tt_ok(tr_init(NULL));
    tr_ref_h r, r2, rel, refs[2], out[2];
    tr_buf_h b, relb, bs[2];
    tr_object_h o;
    tr_pg_h pg;
    tr_bundle_t bundle = { .num_cpus = 1 };
    void *p;
    const void *d;
    size_t n, idx[2];
    int64_t i64;
    double f64;
    tr_status_t st;
    int rank;
    char small[4], msg[16];
    static char src[16];
    tt_ok(tr_put_i64(1, &r));
    tt_ok(tr_put("abc", 3, &r2));
    tt_ok(tr_put_i64(2, &rel));
    tt_ok(tr_ref_release(rel));
    tt_ok(tr_get(r, 0, &relb));
    tt_ok(tr_buf_release(relb));
    tt_ok(tr_placement_group_create(&bundle, 1, TR_PG_PACK, &pg));
    tt_ok(tr_get(r, 0, &b));
    refs[0] = r;
    refs[1] = r2;

    MU(tr_put("x", 1, NULL), TR_ERR_INVALID_ARG, "tr_put", "ref_p NULL");
    MU(tr_put(NULL, 1, &r), TR_ERR_INVALID_ARG, "tr_put", "data NULL, size 1");
    MU(tr_put(NULL, SIZE_MAX, &r), TR_ERR_INVALID_ARG, "tr_put", "data NULL, size SIZE_MAX");
    MU(tr_put(src, SIZE_MAX, &out[0]), TR_ERR_OBJECT_TOO_LARGE, "tr_put", "size SIZE_MAX");
    MU(tr_put(src, SIZE_MAX / 2, &out[0]), TR_ERR_OBJECT_TOO_LARGE, "tr_put", "size SIZE_MAX/2");
    MU(tr_put_i64(1, NULL), TR_ERR_INVALID_ARG, "tr_put_i64", "ref_p NULL");
    MU(tr_put_f64(1.0, NULL), TR_ERR_INVALID_ARG, "tr_put_f64", "ref_p NULL");
    MU(tr_put_replicated("x", 1, -1, &out[0]), TR_ERR_INVALID_ARG, "tr_put_replicated", "replicas -1");
    MU(tr_put_replicated("x", 1, 4, &out[0]), TR_ERR_INVALID_ARG, "tr_put_replicated", "replicas 4 (> 3)");
    MU(tr_put_replicated("x", 1, 1, &out[0]), TR_ERR_INVALID_ARG, "tr_put_replicated", "replicas 1 in a one-rank job");
    MU(tr_put_replicated(NULL, 1, 0, &out[0]), TR_ERR_INVALID_ARG, "tr_put_replicated", "data NULL, size 1");
    MU(tr_put_replicated(src, SIZE_MAX, 0, &out[0]), TR_ERR_OBJECT_TOO_LARGE, "tr_put_replicated", "size SIZE_MAX");
    MU(tr_put_refs("x", 1, NULL, 1, &out[0]), TR_ERR_INVALID_ARG, "tr_put_refs", "refs NULL, nrefs 1");
    MU(tr_put_refs("x", 1, refs, SIZE_MAX, &out[0]), TR_ERR_INVALID_ARG, "tr_put_refs", "nrefs SIZE_MAX");
    MU(tr_put_refs("x", 1, &rel, 1, &out[0]), TR_ERR_REF_RELEASED, "tr_put_refs", "a released ref in refs");
    MU(tr_put_refs("x", 1, (tr_ref_h *)&b, 1, &out[0]), TR_ERR_REF_RELEASED, "tr_put_refs", "a view handle in refs");
    MU(tr_put_refs(src, SIZE_MAX / 2, refs, 1, &out[0]), TR_ERR_OBJECT_TOO_LARGE, "tr_put_refs", "size SIZE_MAX/2");
    MU(tr_put_refs("x", 1, refs, 1, NULL), TR_ERR_INVALID_ARG, "tr_put_refs", "ref_p NULL");

    MU(tr_object_create(8, NULL, &o), TR_ERR_INVALID_ARG, "tr_object_create", "data_p NULL");
    MU(tr_object_create(8, &p, NULL), TR_ERR_INVALID_ARG, "tr_object_create", "obj_p NULL");
    MU(tr_object_create(SIZE_MAX, &p, &o), TR_ERR_OBJECT_TOO_LARGE, "tr_object_create", "size SIZE_MAX");
    MU(tr_object_create(SIZE_MAX - 8, &p, &o), TR_ERR_OBJECT_TOO_LARGE, "tr_object_create", "size SIZE_MAX-8");
    MU(tr_object_create(SIZE_MAX / 2, &p, &o), TR_ERR_OBJECT_TOO_LARGE, "tr_object_create", "size SIZE_MAX/2");
    MU(tr_object_seal(TR_OBJECT_NULL, &out[0]), TR_ERR_INVALID_ARG, "tr_object_seal", "TR_OBJECT_NULL");
    MU(tr_object_seal((tr_object_h)r, &out[0]), TR_ERR_INVALID_ARG, "tr_object_seal", "a ref handle (wrong kind)");
    tt_ok(tr_object_create(8, &p, &o));
    MU(tr_object_seal(o, NULL), TR_ERR_INVALID_ARG, "tr_object_seal", "ref_p NULL (the object stays unsealed)");
    MU(tr_object_seal(o, &out[0]), TR_OK, "tr_object_seal", "after the failed seal: not an error");
    tt_ok(tr_ref_release(out[0]));
    MU(tr_object_seal(o, &out[0]), TR_ERR_INVALID_ARG, "tr_object_seal", "sealed twice");
    MU(tr_object_abort(o), TR_ERR_INVALID_ARG, "tr_object_abort", "a sealed object");
    MU(tr_object_abort(TR_OBJECT_NULL), TR_ERR_INVALID_ARG, "tr_object_abort", "TR_OBJECT_NULL");
    MU(tr_object_abort((tr_object_h)b), TR_ERR_INVALID_ARG, "tr_object_abort", "a view handle (wrong kind)");
    tt_ok(tr_object_create(8, &p, &o));
    tt_ok(tr_object_abort(o));
    MU(tr_object_abort(o), TR_ERR_INVALID_ARG, "tr_object_abort", "aborted twice");

    MU(tr_get(r, 0, NULL), TR_ERR_INVALID_ARG, "tr_get", "buf_p NULL");
    MU(tr_get(TR_REF_NULL, 0, &relb), TR_ERR_REF_RELEASED, "tr_get", "TR_REF_NULL");
    MU(tr_get(rel, 0, &relb), TR_ERR_REF_RELEASED, "tr_get", "a released ref");
    MU(tr_get((tr_ref_h)b, 0, &relb), TR_ERR_REF_RELEASED, "tr_get", "a view handle (wrong kind)");
    MU(tr_get((tr_ref_h)pg, 0, &relb), TR_ERR_REF_RELEASED, "tr_get", "a placement group (wrong kind)");
    MU(tr_get((tr_ref_h)(uintptr_t)0xdeadbeef, 0, &relb), TR_ERR_REF_RELEASED, "tr_get", "a forged handle");
    MU(tr_get(r, INT64_MIN, &relb), TR_OK, "tr_get", "timeout INT64_MIN on a ready ref (any negative: forever)");
    tt_ok(tr_buf_release(relb));
    MU(tr_get_many(NULL, 1, 0, bs), TR_ERR_INVALID_ARG, "tr_get_many", "refs NULL, n 1");
    MU(tr_get_many(refs, 1, 0, NULL), TR_ERR_INVALID_ARG, "tr_get_many", "bufs_p NULL, n 1");
    MU(tr_get_many(NULL, 0, 0, NULL), TR_OK, "tr_get_many", "n 0, NULLs: not an error");
    MU(tr_get_many(refs, SIZE_MAX, 0, bs), TR_ERR_INVALID_ARG, "tr_get_many", "n SIZE_MAX");
    MU(tr_get_many(refs, SIZE_MAX / 8 + 2, 0, bs), TR_ERR_INVALID_ARG, "tr_get_many", "n SIZE_MAX/8+2 (n * 8 wraps)");
    {
        tr_ref_h two[2] = { r, rel };
        MU(tr_get_many(two, 2, 0, bs), TR_ERR_REF_RELEASED, "tr_get_many", "a released ref among the refs");
    }
    MU(tr_get_copy(r, 0, NULL, 8, &n), TR_ERR_INVALID_ARG, "tr_get_copy", "dst NULL, capacity 8");
    MU(tr_get_copy(r, 0, small, sizeof(small), &n), TR_ERR_BUFFER_TOO_SMALL, "tr_get_copy", "capacity 4 for 8 bytes");
    MU_INT(n, 8, "tr_get_copy", "then *size_p holds the size needed");
    MU(tr_get_copy(rel, 0, small, sizeof(small), &n), TR_ERR_REF_RELEASED, "tr_get_copy", "a released ref");
    MU(tr_get_i64(r, 0, NULL), TR_ERR_INVALID_ARG, "tr_get_i64", "value_p NULL");
    MU(tr_get_i64(r2, 0, &i64), TR_ERR_TYPE, "tr_get_i64", "a 3-byte value");
    MU(tr_get_f64(r2, 0, &f64), TR_ERR_TYPE, "tr_get_f64", "a 3-byte value");
    MU(tr_get_f64((tr_ref_h)b, 0, &f64), TR_ERR_REF_RELEASED, "tr_get_f64", "a view handle (wrong kind)");
    MU(tr_get_buffer(r, 0, NULL, &n, &relb), TR_ERR_INVALID_ARG, "tr_get_buffer", "data_p NULL");
    MU(tr_get_buffer(r, 0, &d, NULL, &relb), TR_ERR_INVALID_ARG, "tr_get_buffer", "size_p NULL");
    MU(tr_get_buffer(r, 0, &d, &n, NULL), TR_ERR_INVALID_ARG, "tr_get_buffer", "buf_p NULL");
    MU(tr_get_buffer(rel, 0, &d, &n, &relb), TR_ERR_REF_RELEASED, "tr_get_buffer", "a released ref");

    MU_NULL(tr_buf_data(TR_BUF_NULL), "tr_buf_data", "TR_BUF_NULL");
    MU_NULL(tr_buf_data((tr_buf_h)r), "tr_buf_data", "a ref handle (wrong kind)");
    MU_INT(tr_buf_size(relb), 0, "tr_buf_size", "a released view");
    MU_INT(tr_buf_size((tr_buf_h)r), 0, "tr_buf_size", "a ref handle");
    MU_INT(tr_buf_num_refs(relb), 0, "tr_buf_num_refs", "a released view");
    MU(tr_buf_refs(b, out, 1), TR_ERR_INVALID_ARG, "tr_buf_refs", "n 1 > tr_buf_num_refs() 0");
    MU(tr_buf_refs(b, NULL, 1), TR_ERR_INVALID_ARG, "tr_buf_refs", "refs_p NULL, n 1");
    MU(tr_buf_refs(b, out, SIZE_MAX), TR_ERR_INVALID_ARG, "tr_buf_refs", "n SIZE_MAX");
    MU(tr_buf_refs(relb, out, 0), TR_ERR_INVALID_ARG, "tr_buf_refs", "a released view");
    MU(tr_buf_refs((tr_buf_h)r, out, 0), TR_ERR_INVALID_ARG, "tr_buf_refs", "a ref handle (wrong kind)");
    MU(tr_buf_release(TR_BUF_NULL), TR_ERR_INVALID_ARG, "tr_buf_release", "TR_BUF_NULL");
    MU(tr_buf_release(relb), TR_ERR_INVALID_ARG, "tr_buf_release", "released twice");
    MU(tr_buf_release((tr_buf_h)r), TR_ERR_INVALID_ARG, "tr_buf_release", "a ref handle (wrong kind; the ref stays)");
    MU(tr_buf_release((tr_buf_h)pg), TR_ERR_INVALID_ARG, "tr_buf_release", "a placement group (wrong kind)");

    MU(tr_wait(NULL, 1, 1, 0, idx, &n), TR_ERR_INVALID_ARG, "tr_wait", "refs NULL, n 1");
    MU(tr_wait(refs, 1, 2, 0, idx, &n), TR_ERR_INVALID_ARG, "tr_wait", "k 2 > n 1");
    MU(tr_wait(refs, 1, 1, 0, NULL, &n), TR_ERR_INVALID_ARG, "tr_wait", "ready_idx_p NULL");
    MU(tr_wait(refs, 1, 1, 0, idx, NULL), TR_ERR_INVALID_ARG, "tr_wait", "num_ready_p NULL");
    MU(tr_wait(refs, SIZE_MAX / 8 + 2, 1, 0, idx, &n), TR_ERR_INVALID_ARG, "tr_wait", "n SIZE_MAX/8+2 (n * 8 wraps)");
    MU(tr_wait(&rel, 1, 1, 0, idx, &n), TR_ERR_REF_RELEASED, "tr_wait", "a released ref");
    MU(tr_wait((tr_ref_h *)&b, 1, 1, 0, idx, &n), TR_ERR_REF_RELEASED, "tr_wait", "a view handle (wrong kind)");

    MU(tr_ref_release(TR_REF_NULL), TR_ERR_REF_RELEASED, "tr_ref_release", "TR_REF_NULL");
    MU(tr_ref_release(rel), TR_ERR_REF_RELEASED, "tr_ref_release", "released twice");
    MU(tr_ref_release((tr_ref_h)b), TR_ERR_REF_RELEASED, "tr_ref_release", "a view handle (wrong kind; the view stays)");
    MU(tr_ref_release((tr_ref_h)pg), TR_ERR_REF_RELEASED, "tr_ref_release", "a placement group (wrong kind)");
    MU(tr_ref_dup(r, NULL), TR_ERR_INVALID_ARG, "tr_ref_dup", "ref_p NULL");
    MU(tr_ref_dup(rel, &out[0]), TR_ERR_REF_RELEASED, "tr_ref_dup", "a released ref");
    MU(tr_ref_dup((tr_ref_h)b, &out[0]), TR_ERR_REF_RELEASED, "tr_ref_dup", "a view handle (wrong kind)");
    MU(tr_ref_error(r, NULL, &rank, msg, sizeof(msg)), TR_ERR_INVALID_ARG, "tr_ref_error", "status_p NULL");
    MU(tr_ref_error(r, &st, &rank, NULL, 8), TR_ERR_INVALID_ARG, "tr_ref_error", "msg NULL, msg_len 8");
    MU(tr_ref_error(rel, &st, &rank, msg, sizeof(msg)), TR_ERR_REF_RELEASED, "tr_ref_error", "a released ref");
    MU(tr_ref_error(r, &st, NULL, NULL, 0), TR_OK, "tr_ref_error", "a ready object, rank_p and msg NULL: not an error");

    /* the handles passed with the wrong kind above are intact */
    tt_ok(tr_buf_release(b));
    tt_ok(tr_placement_group_remove(pg));
    tt_ok(tr_ref_release(r));
    tt_ok(tr_ref_release(r2));
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

START_TEST(test_actors)
{
    mu_begin("Actors");
    tt_ok(tr_init(NULL));
    tr_actor_h a, a2, rel;
    tr_ref_h r, put, call;
    tr_actor_params_t p;
    tr_arg_t arg = TR_ARG_I64(1), bad;
    static char big[16];
    tr_task_params_t tp;
    tt_ok(tr_put_i64(1, &put));
    tt_ok(tr_actor_create("MuActor", NULL, 0, NULL, &a));
    for (int i = 0; i < TT_GATE_LIMIT_MS && atomic_load(&mu_ctor_checked) == 0; i++) tt_msleep(1);
    tt_ok(tr_actor_create("MuActor", NULL, 0, NULL, &rel));
    tt_ok(tr_actor_release(rel));

    MU(tr_actor_create(NULL, NULL, 0, NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "class_name NULL");
    MU(tr_actor_create("MuActor", NULL, 0, NULL, NULL), TR_ERR_INVALID_ARG, "tr_actor_create", "actor_p NULL");
    MU(tr_actor_create("MuActor", NULL, 1, NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "args NULL, nargs 1");
    MU(tr_actor_create("MuActor", &arg, -1, NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "nargs -1");
    MU(tr_actor_create("MuActor", &arg, 65536, NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "nargs 65536");
    MU(tr_actor_create("NoSuchClass", NULL, 0, NULL, &a2), TR_ERR_UNKNOWN_FUNCTION, "tr_actor_create", "an unknown class");
    bad = TR_ARG_BYTES(big, SIZE_MAX);
    MU(tr_actor_create("MuActor", &bad, 1, NULL, &a2), TR_ERR_NO_MEMORY, "tr_actor_create",
       "TR_ARG_BYTES(p, SIZE_MAX) (constructor arguments are copied to the heap)");
    bad = TR_ARG_BYTES(big, SIZE_MAX / 2);
    MU(tr_actor_create("MuActor", &bad, 1, NULL, &a2), TR_ERR_NO_MEMORY, "tr_actor_create", "TR_ARG_BYTES(p, SIZE_MAX/2)");
    bad = TR_ARG_REF((tr_ref_h)rel);
    MU(tr_actor_create("MuActor", &bad, 1, NULL, &a2), TR_ERR_REF_RELEASED, "tr_actor_create", "TR_ARG_REF(released)");
    bad = (tr_arg_t){ .kind = (tr_arg_kind_t)42 };
    MU(tr_actor_create("MuActor", &bad, 1, NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "an argument of kind 42");
#define P(mask) ((void)memset(&p, 0, sizeof(p)), p.field_mask = (mask))
    P(TR_ACTOR_FIELD_NUM_CPUS), p.num_cpus = NAN;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_cpus NaN");
    P(TR_ACTOR_FIELD_NUM_CPUS), p.num_cpus = INFINITY;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_cpus +inf");
    P(TR_ACTOR_FIELD_NUM_CPUS), p.num_cpus = -1;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_cpus -1");
    P(TR_ACTOR_FIELD_NUM_CPUS), p.num_cpus = 1000;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_UNSCHEDULABLE, "tr_actor_create", "num_cpus 1000");
    P(TR_ACTOR_FIELD_NUM_GPUS), p.num_gpus = NAN;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_gpus NaN");
    P(TR_ACTOR_FIELD_NUM_GPUS), p.num_gpus = -1;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_gpus -1");
    P(TR_ACTOR_FIELD_NUM_GPUS), p.num_gpus = INFINITY;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "num_gpus +inf");
    P(TR_ACTOR_FIELD_MEMORY), p.memory = UINT64_MAX;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "memory UINT64_MAX");
    P(TR_ACTOR_FIELD_MAX_CONCURRENCY), p.max_concurrency = 0;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "max_concurrency 0");
    P(TR_ACTOR_FIELD_MAX_CONCURRENCY), p.max_concurrency = 1025;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "max_concurrency 1025");
    P(TR_ACTOR_FIELD_MAX_RESTARTS), p.max_restarts = -2;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "max_restarts -2");
    P(TR_ACTOR_FIELD_MAX_TASK_RETRIES), p.max_task_retries = -2;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "max_task_retries -2");
    P(TR_ACTOR_FIELD_NAME), p.name = "";
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "name \"\"");
    P(TR_ACTOR_FIELD_RANK), p.rank = 1;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "rank 1 (= tr_size())");
    P(TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_SOFT), p.rank = -5, p.soft = 1;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "rank -5, soft");
    P(TR_ACTOR_FIELD_NODE), p.node = 3;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "node 3 (one node)");
    P(TR_ACTOR_FIELD_RESOURCES), p.resources = "=1";
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "resources \"=1\"");
    P(TR_ACTOR_FIELD_PLACEMENT_GROUP), p.placement_group = (tr_pg_h)put;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_REF_RELEASED, "tr_actor_create",
       "placement_group: a ref handle (wrong kind)");
    P(TR_ACTOR_FIELD_PLACEMENT_GROUP), p.placement_group = TR_PG_NULL, p.bundle_index = -2;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "bundle_index -2");
    P(TR_ACTOR_FIELD_PLACEMENT_GROUP | TR_ACTOR_FIELD_RANK), p.placement_group = TR_PG_NULL;
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_ERR_INVALID_ARG, "tr_actor_create", "placement group and rank");
    P((uint64_t)1 << 40);
    MU(tr_actor_create("MuActor", NULL, 0, &p, &a2), TR_OK, "tr_actor_create", "an unknown field_mask bit (ignored: not an error)");
    tt_ok(tr_actor_release(a2));
    P(TR_ACTOR_FIELD_NAME), p.name = "mu_named";
    tt_ok(tr_actor_create("MuActor", NULL, 0, &p, &a2));
    MU(tr_actor_create("MuActor", NULL, 0, &p, &rel), TR_ERR_EXISTS, "tr_actor_create", "a name taken by a live actor");
    tt_ok(tr_actor_kill(a2));
    tt_ok(tr_actor_release(a2));
#undef P

    MU(tr_actor_call(a, NULL, NULL, 0, NULL, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "method NULL");
    MU(tr_actor_call(a, "", NULL, 0, NULL, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "method \"\"");
    MU(tr_actor_call(a, "check", NULL, 0, NULL, NULL), TR_ERR_INVALID_ARG, "tr_actor_call", "refs_p NULL");
    MU(tr_actor_call(a, "check", NULL, 1, NULL, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "args NULL, nargs 1");
    MU(tr_actor_call(a, "check", &arg, 65536, NULL, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "nargs 65536");
    MU(tr_actor_call(rel, "check", NULL, 0, NULL, &r), TR_ERR_REF_RELEASED, "tr_actor_call", "a released actor");
    MU(tr_actor_call(TR_ACTOR_NULL, "check", NULL, 0, NULL, &r), TR_ERR_REF_RELEASED, "tr_actor_call", "TR_ACTOR_NULL");
    MU(tr_actor_call((tr_actor_h)put, "check", NULL, 0, NULL, &r), TR_ERR_INVALID_ARG, "tr_actor_call",
       "a ready ref that is not an actor's");
    memset(&tp, 0, sizeof(tp));
    tp.field_mask = TR_TASK_FIELD_NUM_CPUS;
    MU(tr_actor_call(a, "check", NULL, 0, &tp, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "params with num_cpus");
    tp.field_mask = TR_TASK_FIELD_NUM_RETURNS;
    tp.num_returns = 0;
    MU(tr_actor_call(a, "check", NULL, 0, &tp, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "num_returns 0");
    tp.num_returns = TR_MAX_RETURNS + 1;
    MU(tr_actor_call(a, "check", NULL, 0, &tp, &r), TR_ERR_INVALID_ARG, "tr_actor_call", "num_returns 65");
    MU(tr_actor_call(a, "nosuch", NULL, 0, NULL, &r), TR_OK, "tr_actor_call", "an unknown method (the call is made)");
    {
        int64_t v;
        MU(tr_get_i64(r, TR_TIMEOUT_INFINITE, &v), TR_ERR_UNKNOWN_METHOD, "tr_get_i64", "... its result");
        tt_ok(tr_ref_release(r));
    }

    MU(tr_actor_kill(TR_ACTOR_NULL), TR_ERR_REF_RELEASED, "tr_actor_kill", "TR_ACTOR_NULL");
    MU(tr_actor_kill(rel), TR_ERR_REF_RELEASED, "tr_actor_kill", "a released actor");
    MU(tr_actor_kill((tr_actor_h)put), TR_ERR_INVALID_ARG, "tr_actor_kill", "a ref that is not an actor's");
    MU(tr_actor_release(rel), TR_ERR_REF_RELEASED, "tr_actor_release", "released twice");
    MU(tr_actor_release(TR_ACTOR_NULL), TR_ERR_REF_RELEASED, "tr_actor_release", "TR_ACTOR_NULL");
    MU(tr_actor_dup(a, NULL), TR_ERR_INVALID_ARG, "tr_actor_dup", "actor_p NULL");
    MU(tr_actor_dup(rel, &a2), TR_ERR_REF_RELEASED, "tr_actor_dup", "a released actor");
    MU(tr_actor_ref(a, NULL), TR_ERR_INVALID_ARG, "tr_actor_ref", "ref_p NULL");
    MU(tr_actor_ref(rel, &r), TR_ERR_REF_RELEASED, "tr_actor_ref", "a released actor");
    MU(tr_actor_ref((tr_actor_h)put, &r), TR_OK, "tr_actor_ref", "a ref that is not an actor's (not checked)");
    tt_ok(tr_ref_release(r));
    MU(tr_actor_dup((tr_actor_h)put, &a2), TR_OK, "tr_actor_dup", "a ref that is not an actor's (not checked)");
    MU(tr_actor_release(a2), TR_OK, "tr_actor_release", "... that dup (a plain ref: not checked)");
    MU(tr_actor_from_ref(put, NULL), TR_ERR_INVALID_ARG, "tr_actor_from_ref", "actor_p NULL");
    MU(tr_actor_from_ref(put, &a2), TR_ERR_INVALID_ARG, "tr_actor_from_ref", "a ref that is not an actor's");
    MU(tr_actor_from_ref((tr_ref_h)rel, &a2), TR_ERR_REF_RELEASED, "tr_actor_from_ref", "a released ref");
    MU(tr_actor_get_by_name(NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_get_by_name", "name NULL");
    MU(tr_actor_get_by_name("", &a2), TR_ERR_INVALID_ARG, "tr_actor_get_by_name", "name \"\"");
    MU(tr_actor_get_by_name("mu_x", NULL), TR_ERR_INVALID_ARG, "tr_actor_get_by_name", "actor_p NULL");
    MU(tr_actor_get_by_name("mu_nobody", &a2), TR_ERR_ACTOR_NOT_FOUND, "tr_actor_get_by_name", "no such name");
    MU(tr_actor_get_by_name("mu_named", &a2), TR_ERR_ACTOR_NOT_FOUND, "tr_actor_get_by_name", "the name of a killed actor");
    MU(tr_actor_self(TR_TASK_NULL, &a2), TR_ERR_INVALID_ARG, "tr_actor_self", "from the driver");
    MU(tr_actor_checkpoint(TR_TASK_NULL), TR_ERR_INVALID_ARG, "tr_actor_checkpoint", "from the driver");
    MU_INT(tr_actor_was_restarted(TR_TASK_NULL), -1, "tr_actor_was_restarted", "from the driver");
    MU(tr_cancel((tr_ref_h)a), TR_ERR_INVALID_ARG, "tr_cancel", "an actor handle");

    /* inside a method, waiting for the call's own result */
    tt_gate_close();
    tt_ok(tr_actor_call(a, "check", NULL, 0, NULL, &call));
    mu_self_call_ref = call;
    tt_gate_open();
    (void)tt_get_i64(call);
    tt_ok(tr_ref_release(call));
    tt_ok(tr_actor_release(a));
    tt_ok(tr_ref_release(put));
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

START_TEST(test_placement_groups)
{
    mu_begin("Placement groups");
    tt_ok(tr_init(NULL));
    tr_bundle_t b[2] = { { .num_cpus = 1 }, { .num_cpus = 1 } }, one;
    tr_pg_h pg, rel;
    tr_ref_h put;
    tt_ok(tr_put_i64(1, &put));
    tt_ok(tr_placement_group_create(b, 1, TR_PG_PACK, &rel));
    tt_ok(tr_placement_group_remove(rel));

    MU(tr_placement_group_create(NULL, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "bundles NULL");
    MU(tr_placement_group_create(b, 1, TR_PG_PACK, NULL), TR_ERR_INVALID_ARG, "tr_placement_group_create", "pg_p NULL");
    MU(tr_placement_group_create(b, 0, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "nbundles 0");
    MU(tr_placement_group_create(b, TR_PG_MAX_BUNDLES + 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG,
       "tr_placement_group_create", "nbundles 1025");
    MU(tr_placement_group_create(b, 1, (tr_pg_strategy_t)4, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "strategy 4");
    MU(tr_placement_group_create(b, 1, (tr_pg_strategy_t)-1, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "strategy -1");
    one = (tr_bundle_t){ .num_cpus = NAN };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "num_cpus NaN");
    one = (tr_bundle_t){ .num_cpus = INFINITY };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "num_cpus +inf");
    one = (tr_bundle_t){ .num_cpus = -1 };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "num_cpus -1");
    one = (tr_bundle_t){ .num_cpus = 1, .num_gpus = NAN };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "num_gpus NaN");
    one = (tr_bundle_t){ .num_cpus = 1, .num_gpus = -1 };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create", "num_gpus -1");
    one = (tr_bundle_t){ .num_cpus = 1, .memory = UINT64_MAX };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create",
       "memory UINT64_MAX");
    one = (tr_bundle_t){ .num_cpus = 1, .resources = "ssd" };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create",
       "resources \"ssd\" (no amount)");
    one = (tr_bundle_t){ .num_cpus = 0 };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG, "tr_placement_group_create",
       "a bundle that reserves nothing");
    one = (tr_bundle_t){ .num_cpus = 1000 };
    MU(tr_placement_group_create(&one, 1, TR_PG_PACK, &pg), TR_ERR_UNSCHEDULABLE, "tr_placement_group_create",
       "num_cpus 1000");
    MU(tr_placement_group_create(b, 2, TR_PG_STRICT_SPREAD, &pg), TR_ERR_UNSCHEDULABLE, "tr_placement_group_create",
       "STRICT_SPREAD of 2 bundles on one node");

    MU(tr_placement_group_wait(TR_PG_NULL, 0), TR_ERR_REF_RELEASED, "tr_placement_group_wait", "TR_PG_NULL");
    MU(tr_placement_group_wait(rel, 0), TR_ERR_REF_RELEASED, "tr_placement_group_wait", "a removed group");
    MU(tr_placement_group_wait((tr_pg_h)put, 0), TR_ERR_REF_RELEASED, "tr_placement_group_wait", "a ref handle (wrong kind)");
    MU_INT(tr_placement_group_bundle_rank(rel, 0), -1, "tr_placement_group_bundle_rank", "a removed group");
    MU_INT(tr_placement_group_bundle_rank((tr_pg_h)put, 0), -1, "tr_placement_group_bundle_rank", "a ref handle");
    tt_ok(tr_placement_group_create(b, 1, TR_PG_PACK, &pg));
    MU_INT(tr_placement_group_bundle_rank(pg, 1), -1, "tr_placement_group_bundle_rank", "i = nbundles");
    MU_INT(tr_placement_group_bundle_rank(pg, -1), -1, "tr_placement_group_bundle_rank", "i = -1");
    {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_PLACEMENT_GROUP, .placement_group = pg, .bundle_index = 1 };
        tr_arg_t arg = TR_ARG_I64(1);
        tr_ref_h r;
        MU(tr_task_submit(mu_task_one, &arg, 1, &p, &r), TR_ERR_INVALID_ARG, "tr_task_submit",
           "bundle_index 1 of a one-bundle group");
        p.placement_group = rel;
        p.bundle_index = -1;
        MU(tr_task_submit(mu_task_one, &arg, 1, &p, &r), TR_ERR_REF_RELEASED, "tr_task_submit", "a removed group");
        p.placement_group = pg;
        p.field_mask |= TR_TASK_FIELD_NUM_CPUS;
        p.num_cpus = 2;
        MU(tr_task_submit(mu_task_one, &arg, 1, &p, &r), TR_ERR_UNSCHEDULABLE, "tr_task_submit",
           "num_cpus 2 in a bundle of 1");
    }
    MU(tr_placement_group_remove(TR_PG_NULL), TR_ERR_REF_RELEASED, "tr_placement_group_remove", "TR_PG_NULL");
    MU(tr_placement_group_remove(rel), TR_ERR_REF_RELEASED, "tr_placement_group_remove", "removed twice");
    MU(tr_placement_group_remove((tr_pg_h)put), TR_ERR_REF_RELEASED, "tr_placement_group_remove",
       "a ref handle (wrong kind; the ref stays)");
    tt_ok(tr_placement_group_remove(pg));
    tt_ok(tr_ref_release(put));
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

START_TEST(test_info)
{
    mu_begin("Job, configuration, statistics");
    tt_ok(tr_init(NULL));
    tr_rank_info_t info;
    tr_config_item_t items[1];
    MU_INT(tr_node_of(-1), -1, "tr_node_of", "rank -1");
    MU_INT(tr_node_of(1), -1, "tr_node_of", "rank 1 (= tr_size())");
    MU_INT(tr_node_of(INT_MAX), -1, "tr_node_of", "rank INT_MAX");
    MU(tr_rank_info(0, NULL), TR_ERR_INVALID_ARG, "tr_rank_info", "info_p NULL");
    MU(tr_rank_info(-1, &info), TR_ERR_INVALID_ARG, "tr_rank_info", "rank -1");
    MU(tr_rank_info(1, &info), TR_ERR_INVALID_ARG, "tr_rank_info", "rank 1 (= tr_size())");
    MU_INT(tr_config_list(NULL, 1), -1, "tr_config_list", "items NULL, max 1");
    MU_INT(tr_config_list(items, -1), -1, "tr_config_list", "max -1");
    MU_INT(tr_config_list(NULL, 0) > 0, 1, "tr_config_list", "items NULL, max 0 (counts): not an error");
    MU(tr_object_store_stats(NULL), TR_ERR_INVALID_ARG, "tr_object_store_stats", "stats_p NULL");
    MU_INT(tr_rank_alive(-1), -1, "tr_rank_alive", "rank -1");
    MU_INT(tr_rank_alive(1), -1, "tr_rank_alive", "rank 1 (= tr_size())");
    MU(tr_failure_stats(NULL), TR_ERR_INVALID_ARG, "tr_failure_stats", "stats_p NULL");
    tt_ok(tr_finalize());
    MU_END();
}
END_TEST

Suite *tr_suite_misuse(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_before_init);
    tcase_add_test(tc, test_register);
    tcase_add_test(tc, test_lifecycle);
    tcase_add_test(tc, test_tasks);
    tcase_add_test(tc, test_inside_task);
    tcase_add_test(tc, test_objects);
    tcase_add_test(tc, test_actors);
    tcase_add_test(tc, test_placement_groups);
    tcase_add_test(tc, test_info);
    suite_add_tcase(s, tc);
    return s;
}
