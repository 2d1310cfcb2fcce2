/*
 * mpi_actors: multi-rank tests of actors (TR_MODE_DRIVER): actors placed on
 * remote ranks (TR_ACTOR_FIELD_RANK), 10,000 ordered calls from one caller,
 * several callers on different ranks each keeping its own order, named
 * lookup from another rank, tr_actor_kill() from a rank that does not own
 * the actor, collection of an actor whose handle a task on another rank
 * borrowed, 1 MiB arguments and returns, and an actor created inside a task.
 * tests/run_mpi_actors.sh runs it with 3 and 4 ranks on one node and with 3
 * ranks that are each a node (tests/per_rank_node.sh).
 *
 * Usage: mpi_actors [TEST...]: the named tests in that order; no name runs
 * them all.  Every test needs at least 3 ranks.
 *
 * Every rank calls tr_init(); rank 0 (the driver) runs the libcheck suite in
 * CK_NOFORK mode, the other ranks serve from tr_finalize().  Tasks are
 * placed like in mpi_objects: each rank has "to_rank<R>=64" and pin(R) asks
 * for one unit.  Destructor runs are counted per rank (ma_fini) and read by
 * a task pinned to that rank.
 */
#include <inttypes.h>
#include <unistd.h>

#include "tr_test.h"

#define MIB (1024u * 1024u)
#define PIN_SLOTS 64
#define WAIT_MS 60000     /* a bounded tr_get: a hang fails the test */
#define POLL_MS 20000     /* bounded polls of asynchronous outcomes */
#define MAX_CALLERS 64

static int g_rank = 0;
static int g_size = 1;
static char g_pin[256][24];

static atomic_int ma_fini;                   /* destructors run on this rank */
static tr_actor_h g_kept = TR_ACTOR_NULL;    /* a borrowed handle kept past its task */

/* --------------------------------------------------------------- helpers */

static tr_task_params_t pin(int rank)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = g_pin[rank] };
    return p;
}

static tr_actor_params_t on_rank(int rank)
{
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_RANK, .rank = rank };
    return p;
}

static int64_t get_i64(tr_ref_h r)
{
    int64_t v = 0;
    tt_ok(tr_get_i64(r, WAIT_MS, &v));
    return v;
}

/* Submit @fn pinned to @rank with @args; return its i64 result. */
static int64_t run_on(int rank, tr_remote_fn_t fn, const tr_arg_t *args, int nargs)
{
    tr_task_params_t p = pin(rank);
    tr_ref_h r;
    tt_ok(tr_task_submit(fn, args, nargs, &p, &r));
    int64_t v = get_i64(r);
    tt_ok(tr_ref_release(r));
    return v;
}

static int64_t call_i64(tr_actor_h a, const char *method, const tr_arg_t *args, int nargs)
{
    tr_ref_h r;
    tt_ok(tr_actor_call(a, method, args, nargs, NULL, &r));
    int64_t v = get_i64(r);
    tt_ok(tr_ref_release(r));
    return v;
}

/* In task functions: fail with a message. */
#define TASK_CHECK(t, cond, ...)                                                         \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            tr_task_fail((t), __VA_ARGS__);                                              \
            return TR_ERR_TASK_FAILED;                                                   \
        }                                                                                \
    } while (0)

/* --------------------------------------------------------------- Counter */

typedef struct {
    int64_t value;
} counter_t;

static tr_status_t counter_init(tr_task_h t, void **state_p)
{
    counter_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return TR_ERR_NO_MEMORY;
    }
    if (tr_task_num_args(t) > 0 && tr_task_arg_i64(t, 0, &c->value) != TR_OK) {
        free(c);
        tr_task_fail(t, "bad constructor argument");
        return TR_ERR_TASK_FAILED;
    }
    *state_p = c;
    return TR_OK;
}

static void counter_fini(void *state)
{
    free(state);
    atomic_fetch_add(&ma_fini, 1);
}

static tr_status_t counter_incr(tr_task_h t, void *state)
{
    return tr_task_return_i64(t, 0, ++((counter_t *)state)->value);
}

static tr_status_t counter_get(tr_task_h t, void *state)
{
    return tr_task_return_i64(t, 0, ((counter_t *)state)->value);
}

static tr_status_t counter_where(tr_task_h t, void *state)
{
    (void)state;
    return tr_task_return_i64(t, 0, tr_task_rank(t));
}

static const tr_actor_method_t counter_methods[] = {
    { "incr", counter_incr }, { "get", counter_get }, { "where", counter_where }
};

/* ------------------------------------------------------------------- Seq */

/* Records, per caller, whether its calls arrived as 0, 1, 2, ... */
typedef struct {
    int64_t next[MAX_CALLERS];
    int64_t bad;      /* calls out of order */
    char first_bad[128];
} seq_t;

static tr_status_t seq_init(tr_task_h t, void **state_p)
{
    (void)t;
    seq_t *s = calloc(1, sizeof(*s));
    *state_p = s;
    return s ? TR_OK : TR_ERR_NO_MEMORY;
}

/* Args: i64 caller, i64 i. */
static tr_status_t seq_rec(tr_task_h t, void *state)
{
    seq_t *s = state;
    int64_t caller, i;
    if (tr_task_arg_i64(t, 0, &caller) != TR_OK || tr_task_arg_i64(t, 1, &i) != TR_OK || caller < 0 ||
        caller >= MAX_CALLERS) {
        tr_task_fail(t, "bad arguments");
        return TR_ERR_TASK_FAILED;
    }
    if (i != s->next[caller] && s->bad++ == 0) {
        snprintf(s->first_bad, sizeof(s->first_bad), "caller %lld: call %lld arrived when %lld was due",
                 (long long)caller, (long long)i, (long long)s->next[caller]);
    }
    s->next[caller] = i + 1;
    return tr_task_return_i64(t, 0, i);
}

/* Args: i64 ncallers, i64 n: every caller made its n calls, in order. */
static tr_status_t seq_check(tr_task_h t, void *state)
{
    seq_t *s = state;
    int64_t nc, n;
    if (tr_task_arg_i64(t, 0, &nc) != TR_OK || tr_task_arg_i64(t, 1, &n) != TR_OK || nc > MAX_CALLERS) {
        tr_task_fail(t, "bad arguments");
        return TR_ERR_TASK_FAILED;
    }
    TASK_CHECK(t, s->bad == 0, "%lld calls out of order; first: %s", (long long)s->bad, s->first_bad);
    for (int64_t c = 0; c < nc; c++) {
        TASK_CHECK(t, s->next[c] == n, "caller %lld: %lld calls seen, expected %lld", (long long)c,
                   (long long)s->next[c], (long long)n);
    }
    return tr_task_return_i64(t, 0, 1);
}

static const tr_actor_method_t seq_methods[] = { { "rec", seq_rec }, { "check", seq_check } };

/* ------------------------------------------------------------------ Blob */

static tr_status_t blob_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}

/* Arg 0 bytes (any size), arg 1 i64 seed: 1 when arg 0 is tt_fill(seed). */
static tr_status_t blob_check(tr_task_h t, void *state)
{
    (void)state;
    const void *p;
    size_t n;
    int64_t seed;
    tr_status_t st = tr_task_arg(t, 0, &p, &n);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st != TR_OK) {
        return st;
    }
    TASK_CHECK(t, n == MIB, "argument of %zu bytes", n);
    size_t bad = tt_check_pattern(p, n, (uint64_t)seed);
    TASK_CHECK(t, bad == n, "argument differs at byte %zu", bad);
    return tr_task_return_i64(t, 0, 1);
}

/* Args i64 size, i64 seed: returns tt_fill(seed), built in place. */
static tr_status_t blob_make(tr_task_h t, void *state)
{
    (void)state;
    int64_t size, seed;
    void *p;
    tr_status_t st = tr_task_arg_i64(t, 0, &size);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st == TR_OK) {
        st = tr_task_return_alloc(t, 0, (size_t)size, &p);
    }
    if (st == TR_OK) {
        tt_fill(p, (size_t)size, (uint64_t)seed);
    }
    return st;
}

static const tr_actor_method_t blob_methods[] = { { "check", blob_check }, { "make", blob_make } };

static void __attribute__((constructor)) ma_register_classes(void)
{
    const tr_actor_class_t classes[] = {
        { .name = "Counter", .init = counter_init, .fini = counter_fini, .methods = counter_methods, .num_methods = 3 },
        { .name = "Seq", .init = seq_init, .fini = counter_fini, .methods = seq_methods, .num_methods = 2 },
        { .name = "Blob", .init = blob_init, .fini = counter_fini, .methods = blob_methods, .num_methods = 2 },
    };
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        if (tr_actor_class_register(&classes[i]) != TR_OK) {
            fprintf(stderr, "mpi_actors: registering class %s failed\n", classes[i].name);
            abort();
        }
    }
}

/* ------------------------------------------------------------ functions */

/* This rank's destructor count. */
static tr_status_t ma_fini_count(tr_task_h t) { return tr_task_return_i64(t, 0, atomic_load(&ma_fini)); }
TR_REMOTE(ma_fini_count)

/* Arg 0 actor (Seq), arg 1 i64 caller, arg 2 i64 n: n "rec" calls made
 * without waiting, then every result checked.  Returns n. */
static tr_status_t ma_caller(tr_task_h t)
{
    tr_actor_h a;
    int64_t caller, n;
    tr_status_t st = tr_task_arg_actor(t, 0, &a);
    TASK_CHECK(t, st == TR_OK, "tr_task_arg_actor: %s", tr_status_string(st));
    if (tr_task_arg_i64(t, 1, &caller) != TR_OK || tr_task_arg_i64(t, 2, &n) != TR_OK) {
        tr_actor_release(a);
        tr_task_fail(t, "bad arguments");
        return TR_ERR_TASK_FAILED;
    }
    tr_ref_h *r = calloc((size_t)n, sizeof(*r));
    int64_t made = 0, good = 0;
    for (; r && made < n; made++) {
        tr_arg_t args[2] = { TR_ARG_I64(caller), TR_ARG_I64(made) };
        if ((st = tr_actor_call(a, "rec", args, 2, NULL, &r[made])) != TR_OK) {
            break;
        }
    }
    for (int64_t i = 0; i < made; i++) {
        int64_t v = -1;
        if (tr_get_i64(r[i], WAIT_MS, &v) == TR_OK && v == i) {
            good++;
        }
        tr_ref_release(r[i]);
    }
    free(r);
    tr_actor_release(a);
    TASK_CHECK(t, good == n, "caller %lld on rank %d: %lld of %lld calls returned their index (%s)",
               (long long)caller, tr_task_rank(t), (long long)good, (long long)n, tr_status_string(st));
    return tr_task_return_i64(t, 0, n);
}
TR_REMOTE(ma_caller)

/* Arg 0 string name, arg 1 i64 n: looks the actor up by name, makes n incr
 * calls, returns the last value.  An unknown name must give ACTOR_NOT_FOUND. */
static tr_status_t ma_lookup(tr_task_h t)
{
    const void *p;
    size_t len;
    int64_t n;
    tr_actor_h a, none;
    tr_status_t st = tr_task_arg(t, 0, &p, &len);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &n);
    }
    if (st != TR_OK) {
        return st;
    }
    st = tr_actor_get_by_name("no-such-actor-anywhere", &none);
    TASK_CHECK(t, st == TR_ERR_ACTOR_NOT_FOUND, "unknown name: %s", tr_status_string(st));
    st = tr_actor_get_by_name(p, &a);
    TASK_CHECK(t, st == TR_OK, "tr_actor_get_by_name(%s) on rank %d: %s: %s", (const char *)p, tr_task_rank(t),
               tr_status_string(st), tr_last_error());
    int64_t v = 0, prev = -1;
    for (int64_t i = 0; i < n && st == TR_OK; i++) {
        tr_ref_h r;
        if ((st = tr_actor_call(a, "incr", NULL, 0, NULL, &r)) == TR_OK) {
            st = tr_get_i64(r, WAIT_MS, &v);
            tr_ref_release(r);
        }
        if (st == TR_OK && prev >= 0 && v <= prev) {
            st = TR_ERR_TASK_FAILED;
        }
        prev = v;
    }
    tr_actor_release(a);
    TASK_CHECK(t, st == TR_OK, "calls through the name: %s", tr_status_string(st));
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ma_lookup)

/* Arg 0 actor: kills it.  Returns tr_actor_kill's status. */
static tr_status_t ma_kill(tr_task_h t)
{
    tr_actor_h a;
    tr_status_t st = tr_task_arg_actor(t, 0, &a);
    TASK_CHECK(t, st == TR_OK, "tr_task_arg_actor: %s", tr_status_string(st));
    st = tr_actor_kill(a);
    tr_actor_release(a);
    return tr_task_return_i64(t, 0, st);
}
TR_REMOTE(ma_kill)

/* Arg 0 actor (Counter): keeps the handle in g_kept and makes one incr
 * call.  Returns its value. */
static tr_status_t ma_keep(tr_task_h t)
{
    TASK_CHECK(t, g_kept == TR_ACTOR_NULL, "a kept handle is already held on rank %d", tr_task_rank(t));
    tr_status_t st = tr_task_arg_actor(t, 0, &g_kept);
    TASK_CHECK(t, st == TR_OK, "tr_task_arg_actor: %s", tr_status_string(st));
    tr_ref_h r;
    int64_t v = 0;
    if ((st = tr_actor_call(g_kept, "incr", NULL, 0, NULL, &r)) == TR_OK) {
        st = tr_get_i64(r, WAIT_MS, &v);
        tr_ref_release(r);
    }
    TASK_CHECK(t, st == TR_OK, "incr: %s: %s", tr_status_string(st), tr_last_error());
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ma_keep)

/* One incr call through g_kept, then releases it.  Returns the value. */
static tr_status_t ma_drop_kept(tr_task_h t)
{
    TASK_CHECK(t, g_kept != TR_ACTOR_NULL, "no kept handle on rank %d", tr_task_rank(t));
    tr_ref_h r;
    int64_t v = 0;
    tr_status_t st = tr_actor_call(g_kept, "incr", NULL, 0, NULL, &r);
    if (st == TR_OK) {
        st = tr_get_i64(r, WAIT_MS, &v);
        tr_ref_release(r);
    }
    tr_actor_release(g_kept);
    g_kept = TR_ACTOR_NULL;
    TASK_CHECK(t, st == TR_OK, "incr through the kept handle: %s: %s", tr_status_string(st), tr_last_error());
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ma_drop_kept)

/* Arg 0 actor (Counter), arg 1 i64 n: n incr calls, in order.  Returns the last. */
static tr_status_t ma_incr_n(tr_task_h t)
{
    tr_actor_h a;
    int64_t n, v = 0, prev = -1;
    tr_status_t st = tr_task_arg_actor(t, 0, &a);
    TASK_CHECK(t, st == TR_OK, "tr_task_arg_actor: %s", tr_status_string(st));
    if ((st = tr_task_arg_i64(t, 1, &n)) != TR_OK) {
        tr_actor_release(a);
        return st;
    }
    for (int64_t i = 0; i < n && st == TR_OK; i++) {
        tr_ref_h r;
        if ((st = tr_actor_call(a, "incr", NULL, 0, NULL, &r)) == TR_OK) {
            st = tr_get_i64(r, WAIT_MS, &v);
            tr_ref_release(r);
        }
        if (st == TR_OK && prev >= 0 && v != prev + 1) {
            st = TR_ERR_TASK_FAILED;
        }
        prev = v;
    }
    tr_actor_release(a);
    TASK_CHECK(t, st == TR_OK, "incr calls on rank %d: %s", tr_task_rank(t), tr_status_string(st));
    return tr_task_return_i64(t, 0, v);
}
TR_REMOTE(ma_incr_n)

/* Arg 0 i64 actor rank, arg 1 i64 helper rank: creates a Counter (start
 * 100) on the actor rank, makes 50 calls, lets a task on the helper rank
 * make 50 more through a borrowed handle, checks the value, releases.
 * Returns the rank the actor reported. */
static tr_status_t ma_nested_owner(tr_task_h t)
{
    int64_t arank, hrank;
    if (tr_task_arg_i64(t, 0, &arank) != TR_OK || tr_task_arg_i64(t, 1, &hrank) != TR_OK) {
        return TR_ERR_INVALID_ARG;
    }
    tr_actor_params_t p = on_rank((int)arank);
    tr_arg_t start = TR_ARG_I64(100);
    tr_actor_h a;
    tr_status_t st = tr_actor_create("Counter", &start, 1, &p, &a);
    TASK_CHECK(t, st == TR_OK, "tr_actor_create in a task: %s: %s", tr_status_string(st), tr_last_error());
    int64_t v = 0, where = -1;
    tr_ref_h r;
    for (int i = 0; i < 50 && st == TR_OK; i++) {
        if ((st = tr_actor_call(a, "incr", NULL, 0, NULL, &r)) == TR_OK) {
            st = tr_get_i64(r, WAIT_MS, &v);
            tr_ref_release(r);
        }
        if (st == TR_OK && v != 101 + i) {
            st = TR_ERR_TASK_FAILED;
        }
    }
    if (st == TR_OK) {
        tr_task_params_t hp = pin((int)hrank);
        tr_arg_t args[2] = { TR_ARG_ACTOR(a), TR_ARG_I64(50) };
        if ((st = tr_task_submit(ma_incr_n, args, 2, &hp, &r)) == TR_OK) {
            st = tr_get_i64(r, WAIT_MS, &v);
            tr_ref_release(r);
        }
        if (st == TR_OK && v != 200) {
            st = TR_ERR_TASK_FAILED;
        }
    }
    if (st == TR_OK && (st = tr_actor_call(a, "where", NULL, 0, NULL, &r)) == TR_OK) {
        st = tr_get_i64(r, WAIT_MS, &where);
        tr_ref_release(r);
    }
    tr_actor_release(a);
    TASK_CHECK(t, st == TR_OK, "nested actor: %s (last value %lld): %s", tr_status_string(st), (long long)v,
               tr_last_error());
    return tr_task_return_i64(t, 0, where);
}
TR_REMOTE(ma_nested_owner)

/* ------------------------------------------------------- test helpers */

static int64_t fini_on(int rank)
{
    return run_on(rank, ma_fini_count, NULL, 0);
}

/* Poll rank @rank's destructor count until it reaches @n (bounded). */
static int64_t wait_fini(int rank, int64_t n)
{
    int64_t v = fini_on(rank);
    for (int w = 0; w < POLL_MS / 10 && v < n; w++) {
        tt_msleep(10);
        v = fini_on(rank);
    }
    return v;
}

/* Release the last handle of an actor on @rank and wait until it is
 * destroyed there, so that the next test reads a settled count. */
static void release_wait(tr_actor_h a, int rank)
{
    int64_t f0 = fini_on(rank);
    tt_ok(tr_actor_release(a));
    ck_assert_int_eq(wait_fini(rank, f0 + 1), f0 + 1);
}

/* ------------------------------------------------------------------ tests */

START_TEST(test_remote_placement)
{
    for (int r = 0; r < g_size; r++) {
        tr_actor_params_t p = on_rank(r);
        tr_actor_h a;
        tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
        ck_assert_int_eq(call_i64(a, "where", NULL, 0), r);
        ck_assert_int_eq(call_i64(a, "incr", NULL, 0), 1);
        release_wait(a, r);
    }
    tr_actor_params_t p = on_rank(g_size);
    tr_actor_h a;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &a), TR_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_10k_in_order)
{
    enum { N = 10000 };
    int rank = g_size - 1;
    int64_t f0 = fini_on(rank);
    tr_actor_params_t p = on_rank(rank);
    tr_actor_h a;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    tr_ref_h *r = malloc(N * sizeof(*r));
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < N; i++) {
        tt_ok(tr_actor_call(a, "incr", NULL, 0, NULL, &r[i]));
    }
    for (int i = 0; i < N; i++) {
        int64_t v = get_i64(r[i]);
        ck_assert_msg(v == i + 1, "call %d returned %lld", i, (long long)v);
        tt_ok(tr_ref_release(r[i]));
    }
    free(r);
    tt_ok(tr_actor_release(a));
    ck_assert_int_eq(wait_fini(rank, f0 + 1), f0 + 1);
}
END_TEST

START_TEST(test_many_callers)
{
    enum { N = 1000 };
    int arank = 1;
    int ncallers = g_size + 1; /* a task on every rank, and the driver itself */
    tr_actor_params_t p = on_rank(arank);
    tr_actor_h a;
    tt_ok(tr_actor_create("Seq", NULL, 0, &p, &a));
    tr_ref_h tasks[256];
    for (int c = 0; c < g_size; c++) {
        tr_task_params_t tp = pin(c);
        tr_arg_t args[3] = { TR_ARG_ACTOR(a), TR_ARG_I64(c), TR_ARG_I64(N) };
        tt_ok(tr_task_submit(ma_caller, args, 3, &tp, &tasks[c]));
    }
    tr_ref_h *mine = malloc(N * sizeof(*mine));
    ck_assert_ptr_nonnull(mine);
    for (int i = 0; i < N; i++) {
        tr_arg_t args[2] = { TR_ARG_I64(g_size), TR_ARG_I64(i) };
        tt_ok(tr_actor_call(a, "rec", args, 2, NULL, &mine[i]));
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(get_i64(mine[i]), i);
        tt_ok(tr_ref_release(mine[i]));
    }
    free(mine);
    for (int c = 0; c < g_size; c++) {
        ck_assert_int_eq(get_i64(tasks[c]), N);
        tt_ok(tr_ref_release(tasks[c]));
    }
    tr_arg_t args[2] = { TR_ARG_I64(ncallers), TR_ARG_I64(N) };
    ck_assert_int_eq(call_i64(a, "check", args, 2), 1);
    release_wait(a, arank);
}
END_TEST

START_TEST(test_named_remote)
{
    const char *name = "mpi-named-counter";
    int arank = 1;
    tr_actor_params_t p = on_rank(arank);
    p.field_mask |= TR_ACTOR_FIELD_NAME;
    p.name = name;
    tr_actor_h a, b;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    ck_assert_int_eq(call_i64(a, "incr", NULL, 0), 1);
    /* lookups from every other rank, one after the other */
    int64_t expect = 1;
    for (int r = 0; r < g_size; r++) {
        tr_arg_t args[2] = { TR_ARG_STR(name), TR_ARG_I64(10) };
        expect += 10;
        ck_assert_int_eq(run_on(r, ma_lookup, args, 2), expect);
    }
    /* the name is taken job-wide */
    p.rank = 2;
    tt_assert_status(tr_actor_create("Counter", NULL, 0, &p, &b), TR_ERR_EXISTS);
    tt_ok(tr_actor_get_by_name(name, &b));
    ck_assert_int_eq(call_i64(b, "incr", NULL, 0), expect + 1);
    tt_ok(tr_actor_release(b));
    tt_ok(tr_actor_kill(a));
    tt_ok(tr_actor_release(a));
    /* free again once destroyed */
    tr_status_t st = TR_ERR_EXISTS;
    for (int w = 0; w < POLL_MS / 10 && st == TR_ERR_EXISTS; w++) {
        st = tr_actor_create("Counter", NULL, 0, &p, &b);
        if (st == TR_ERR_EXISTS) {
            tt_msleep(10);
        }
    }
    tt_ok(st);
    ck_assert_int_eq(call_i64(b, "where", NULL, 0), 2);
    release_wait(b, 2);
}
END_TEST

START_TEST(test_kill_from_other_rank)
{
    int arank = 1, killer = 2;
    int64_t f0 = fini_on(arank);
    tr_actor_params_t p = on_rank(arank);
    tr_actor_h a;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    ck_assert_int_eq(call_i64(a, "incr", NULL, 0), 1);
    tr_arg_t arg = TR_ARG_ACTOR(a);
    ck_assert_int_eq(run_on(killer, ma_kill, &arg, 1), TR_OK);
    ck_assert_int_eq(wait_fini(arank, f0 + 1), f0 + 1);
    tr_ref_h r;
    tt_ok(tr_actor_call(a, "incr", NULL, 0, NULL, &r));
    tr_buf_h b;
    tt_assert_status(tr_get(r, WAIT_MS, &b), TR_ERR_ACTOR_DIED);
    tt_ok(tr_ref_release(r));
    tt_ok(tr_actor_release(a));
    tt_msleep(50);
    ck_assert_int_eq(fini_on(arank), f0 + 1); /* once */
}
END_TEST

START_TEST(test_gc_borrowed)
{
    int arank = 2, borrower = 1;
    int64_t f0 = fini_on(arank);
    tr_actor_params_t p = on_rank(arank);
    tr_actor_h a;
    tt_ok(tr_actor_create("Counter", NULL, 0, &p, &a));
    tr_arg_t arg = TR_ARG_ACTOR(a);
    ck_assert_int_eq(run_on(borrower, ma_keep, &arg, 1), 1);
    tt_ok(tr_actor_release(a)); /* the borrower on rank 1 still holds it */
    tt_msleep(300);
    ck_assert_int_eq(fini_on(arank), f0);
    ck_assert_int_eq(run_on(borrower, ma_drop_kept, NULL, 0), 2);
    ck_assert_int_eq(wait_fini(arank, f0 + 1), f0 + 1);
}
END_TEST

START_TEST(test_big_args_returns)
{
    enum { K = 4 };
    int arank = g_size - 1;
    tr_actor_params_t p = on_rank(arank);
    tr_actor_h a;
    tt_ok(tr_actor_create("Blob", NULL, 0, &p, &a));
    unsigned char *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    tr_ref_h r[3 * K], puts[K];
    for (int i = 0; i < K; i++) {
        tt_fill(buf, MIB, 500 + (uint64_t)i);
        tr_arg_t args[2] = { TR_ARG_BYTES(buf, MIB), TR_ARG_I64(500 + i) };
        tt_ok(tr_actor_call(a, "check", args, 2, NULL, &r[i]));
        tt_fill(buf, MIB, 600 + (uint64_t)i);
        tt_ok(tr_put(buf, MIB, &puts[i]));
        tr_arg_t args2[2] = { TR_ARG_REF(puts[i]), TR_ARG_I64(600 + i) };
        tt_ok(tr_actor_call(a, "check", args2, 2, NULL, &r[K + i]));
        tr_arg_t args3[2] = { TR_ARG_I64(MIB), TR_ARG_I64(700 + i) };
        tt_ok(tr_actor_call(a, "make", args3, 2, NULL, &r[2 * K + i]));
    }
    free(buf);
    for (int i = 0; i < 2 * K; i++) {
        ck_assert_int_eq(get_i64(r[i]), 1);
        tt_ok(tr_ref_release(r[i]));
    }
    for (int i = 0; i < K; i++) {
        const void *d;
        size_t n;
        tr_buf_h b;
        tt_ok(tr_get_buffer(r[2 * K + i], WAIT_MS, &d, &n, &b));
        ck_assert_uint_eq(n, MIB);
        ck_assert_uint_eq(tt_check_pattern(d, n, 700 + (uint64_t)i), n);
        tt_ok(tr_buf_release(b));
        tt_ok(tr_ref_release(r[2 * K + i]));
        tt_ok(tr_ref_release(puts[i]));
    }
    release_wait(a, arank);
}
END_TEST

START_TEST(test_nested_owner)
{
    int owner = 1, arank = 2, helper = g_size - 1 == 2 ? 0 : 3;
    int64_t f0 = fini_on(arank);
    tr_arg_t args[2] = { TR_ARG_I64(arank), TR_ARG_I64(helper) };
    ck_assert_int_eq(run_on(owner, ma_nested_owner, args, 2), arank);
    ck_assert_int_eq(wait_fini(arank, f0 + 1), f0 + 1);
}
END_TEST

/* ------------------------------------------------------------------ main */

typedef struct {
    const char *name;
    const TTest *test;
} ma_case_t;

int main(int argc, char **argv)
{
    if (tt_launcher_shape("mpi_actors", &g_rank, &g_size) != 0) {
        return 1;
    }
    tt_pin_setup("to_rank", g_rank, g_size, PIN_SLOTS, g_pin);

    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_ARGC_ARGV |
                                          TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = 4, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_rank() != g_rank || tr_size() != g_size) {
        fprintf(stderr, "rank %d of %d: tr_rank() = %d, tr_size() = %d\n", g_rank, g_size, tr_rank(), tr_size());
        tr_finalize();
        return 1;
    }
    if (g_rank != 0) {
        st = tr_finalize();
        if (g_kept != TR_ACTOR_NULL) {
            fprintf(stderr, "rank %d: a kept actor handle was never released\n", g_rank);
        }
        if (st != TR_OK) {
            fprintf(stderr, "rank %d: tr_finalize: %s\n", g_rank, tr_status_string(st));
            return 1;
        }
        return 0;
    }

    const ma_case_t cases[] = {
        { "placement", test_remote_placement },   { "order10k", test_10k_in_order },
        { "callers", test_many_callers },         { "named", test_named_remote },
        { "kill", test_kill_from_other_rank },    { "gc_borrowed", test_gc_borrowed },
        { "big", test_big_args_returns },         { "nested", test_nested_owner },
    };
    const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
    int failed = 0;
    if (g_size < 3) {
        fprintf(stderr, "mpi_actors: needs at least 3 ranks (got %d)\n", g_size);
        failed++;
    }
    Suite *s = suite_create("mpi_actors");
    int nsel = 0;
    int nwant = argc > 1 ? argc - 1 : ncases;
    for (int i = 0; i < nwant; i++) {
        for (int k = 0; k < ncases; k++) {
            if (argc > 1 ? strcmp(cases[k].name, argv[i + 1]) != 0 : k != i) {
                continue;
            }
            TCase *tc = tcase_create(cases[k].name);
            tcase_add_test(tc, cases[k].test);
            suite_add_tcase(s, tc);
            nsel++;
        }
    }
    if (argc > 1 && nsel != argc - 1) {
        fprintf(stderr, "mpi_actors: unknown test name among the arguments\n");
        failed++;
    }
    SRunner *sr = srunner_create(s);
    if (failed == 0) {
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
    }
    srunner_free(sr);
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "rank 0: tr_finalize: %s\n", tr_status_string(st));
        failed++;
    }
    printf("mpi_actors: %d rank(s), %d test(s), %s\n", g_size, nsel, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
