/*
 * chaos_app: one iteration of tests/chaos.  Rank 0 (the driver) runs a
 * mixed workload drawn from a seed while one or two random worker ranks
 * kill themselves (SIGKILL) at random moments drawn from the same seed, and
 * checks every result against what it computes itself.
 *
 * Usage: chaos_app SEED [--kill-ms T] [--no-kill] [--rounds R]
 *   --kill-ms T  each victim dies 0..T ms (drawn) after the start (default 450)
 *   --no-kill    nobody dies (the failure-free baseline of the same workload)
 *   --rounds R   rounds before the deaths are awaited (default 10)
 *
 * The workload runs in rounds; each round submits, all at once, and then
 * reads in a random order:
 *   - flat tasks (sq), each sleeping a few ms;
 *   - task trees: a parent submits children (which may submit their own)
 *     and sums their values;
 *   - large objects: block(seed, size) made by one task, passed by ref to
 *     inc (every byte + 1) and to digest (FNV-1a of the bytes), the block's
 *     own ref released; the inc result is kept to the end;
 *   - chains block -> inc -> inc ... on the "grp" ranks (the victims and one
 *     survivor) whose intermediate refs are released at once: after a death
 *     the kept end is rebuilt from lineage;
 *   - spawners on the grp ranks that return refs to children they own
 *     (tr_task_return_refs): after their rank dies the children follow a
 *     new owner;
 *   - calls to two actors (max_restarts -1, max_task_retries -1, a
 *     checkpoint after each call, idempotent by sequence number: a retried
 *     call returns the sum as it was after its own sequence number).
 * When the rounds are done, the driver waits until every victim is seen
 * dead, checks every kept object again byte by byte (objects whose copies
 * died with their rank are rebuilt), runs one more round on the survivors,
 * checks where the actors live, and sums the ranks' spills.
 *
 * Victims die from a task pinned to them (resource "pin<R>", max_retries 0)
 * that starts a thread sleeping the drawn delay, then raise(SIGKILL).
 * Rank 0 is never a victim.  Every rank draws the same plan from SEED
 * before tr_init() (victims, their delays, the grp ranks).
 *
 * Output (stdout of rank 0): one verdict line,
 *   chaos: seed S: ok (...)            exit 0
 *   chaos: seed S: FAIL: <what>        exit 1
 * preceded by "chaos: seed S: plan ..." and followed by nothing else.  The
 * launcher's exit status is not used (Open MPI with --enable-recovery
 * exits 0 whatever happens): tests/chaos reads the verdict line.
 */
#define _POSIX_C_SOURCE 200809L
#include <taskray.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define WAIT_MS 40000    /* every get: a hang becomes a FAIL line, not a silent kill */
#define MAX_RANKS 64
#define MAX_ROUNDS 16
#define HIST 512         /* actor calls remembered (sums after each sequence number) */
#define NUM_ACTORS 2

static int g_rank, g_size;
static uint64_t g_seed;
static char g_pin[MAX_RANKS][24];

/* ------------------------------------------------------------- the plan */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int64_t rnd(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(splitmix64(s) % (uint64_t)(hi - lo + 1));
}

typedef struct plan {
    int nvict;
    int victim[2];
    int delay_ms[2];
    int grp[MAX_RANKS];   /* 1: the rank has the "grp" resource */
} plan_t;

static plan_t g_plan;

static void draw_plan(uint64_t *s, int kill_ms, int kill)
{
    memset(&g_plan, 0, sizeof(g_plan));
    g_plan.nvict = kill ? (int)rnd(s, 1, 2) : 0;
    if (g_size - 1 < 3 && g_plan.nvict > 1) g_plan.nvict = 1;
    for (int v = 0; v < g_plan.nvict; v++) {
        int r;
        do r = (int)rnd(s, 1, g_size - 1);
        while (v == 1 && r == g_plan.victim[0]);
        g_plan.victim[v] = r;
        g_plan.delay_ms[v] = (int)rnd(s, 0, kill_ms);
        g_plan.grp[r] = 1;
    }
    /* one survivor (not the driver) shares the victims' "grp" work */
    int surv;
    do surv = (int)rnd(s, 1, g_size - 1);
    while (g_plan.grp[surv] && g_plan.nvict > 0);
    g_plan.grp[surv] = 1;
}

/* ------------------------------------------------------------ helpers */

static void sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int env_int(const char *a, const char *b, const char *c, int dflt)
{
    const char *v = getenv(a);
    if (v == NULL || *v == '\0') v = getenv(b);
    if (v == NULL || *v == '\0') v = getenv(c);
    return v && *v ? atoi(v) : dflt;
}

/* The block pattern: 8 bytes per splitmix64 step of (seed, word index). */
static void fill(unsigned char *p, size_t n, uint64_t seed, int add)
{
    for (size_t w = 0; w * 8 < n; w++) {
        uint64_t s = seed * 0x2545F4914F6CDD1Dull + w;
        uint64_t x = splitmix64(&s);
        for (size_t b = 0; b < 8 && w * 8 + b < n; b++)
            p[w * 8 + b] = (unsigned char)((x >> (8 * b)) + (unsigned)add);
    }
}

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------- the verdict */

static char g_fail[1024];

static int fail(const char *fmt, ...) TR_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    if (g_fail[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_fail, sizeof(g_fail), fmt, ap);
        va_end(ap);
    }
    return 1;
}

#define OK(call)                                                                     \
    do {                                                                             \
        tr_status_t st_ = (call);                                                    \
        if (st_ != TR_OK)                                                            \
            return fail("line %d: %s: %s (%s)", __LINE__, #call, tr_status_string(st_), \
                        tr_last_error());                                            \
    } while (0)

/* ------------------------------------------------------------ functions */

static void *die_thread(void *arg)
{
    sleep_ms((int64_t)(intptr_t)arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "chaos: rank %d kills itself (SIGKILL) at %.3f\n", g_rank,
            (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    raise(SIGKILL);
    return NULL;
}

/* die(ms): SIGKILL this rank after ms, from a thread of its own. */
static tr_status_t fn_die(tr_task_h t)
{
    int64_t ms = 0;
    tr_task_arg_i64(t, 0, &ms);
    pthread_t th;
    if (pthread_create(&th, NULL, die_thread, (void *)(intptr_t)ms) != 0) die_thread(NULL);
    pthread_detach(th);
    return tr_task_return_i64(t, 0, 1);
}

static int64_t sq_value(int64_t i) { return i * i + 7 * i + 3; }

/* sq(i, ms): sq_value(i) after ms. */
static tr_status_t fn_sq(tr_task_h t)
{
    int64_t i = 0, ms = 0;
    tr_task_arg_i64(t, 0, &i);
    tr_task_arg_i64(t, 1, &ms);
    sleep_ms(ms);
    return tr_task_return_i64(t, 0, sq_value(i));
}

static int64_t leaf_value(int64_t base) { return (base * base + 7) % 1000003; }

/* tree(depth, fanout, base): a leaf (depth 0) is leaf_value(base) after
 * base % 4 ms; a node submits fanout children tree(depth-1, fanout,
 * base*fanout + j) and returns base plus their sum. */
static tr_status_t fn_tree(tr_task_h t)
{
    int64_t depth = 0, fanout = 0, base = 0;
    tr_task_arg_i64(t, 0, &depth);
    tr_task_arg_i64(t, 1, &fanout);
    tr_task_arg_i64(t, 2, &base);
    if (depth == 0) {
        sleep_ms(base % 4);
        return tr_task_return_i64(t, 0, leaf_value(base));
    }
    tr_ref_h kids[16];
    if (fanout < 1 || fanout > 16) return tr_task_fail(t, "fanout %" PRId64, fanout), TR_ERR_TASK_FAILED;
    for (int64_t j = 0; j < fanout; j++) {
        tr_arg_t a[3] = { TR_ARG_I64(depth - 1), TR_ARG_I64(fanout), TR_ARG_I64(base * fanout + j) };
        tr_status_t st = tr_task_submit(fn_tree, a, 3, NULL, &kids[j]);
        if (st != TR_OK) {
            for (int64_t k = 0; k < j; k++) tr_ref_release(kids[k]);
            tr_task_fail(t, "submit: %s", tr_status_string(st));
            return TR_ERR_TASK_FAILED;
        }
    }
    int64_t sum = base;
    tr_status_t bad = TR_OK;
    char why[256] = "";
    for (int64_t j = 0; j < fanout; j++) {
        int64_t v = 0;
        tr_status_t st = tr_get_i64(kids[j], WAIT_MS, &v);
        if (st != TR_OK && bad == TR_OK) {
            bad = st;
            snprintf(why, sizeof(why), "child %" PRId64 ": %s (%s)", j, tr_status_string(st), tr_last_error());
        }
        tr_ref_release(kids[j]);
        sum += v;
    }
    if (bad != TR_OK) {
        tr_task_fail(t, "%s", why);
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, sum);
}

static int64_t tree_value(int64_t depth, int64_t fanout, int64_t base)
{
    if (depth == 0) return leaf_value(base);
    int64_t sum = base;
    for (int64_t j = 0; j < fanout; j++) sum += tree_value(depth - 1, fanout, base * fanout + j);
    return sum;
}

/* block(seed, bytes): the pattern of seed. */
static tr_status_t fn_block(tr_task_h t)
{
    int64_t seed = 0, n = 0;
    tr_task_arg_i64(t, 0, &seed);
    tr_task_arg_i64(t, 1, &n);
    void *p;
    tr_status_t st = tr_task_return_alloc(t, 0, (size_t)n, &p);
    if (st != TR_OK) return st;
    fill(p, (size_t)n, (uint64_t)seed, 0);
    sleep_ms(seed % 5);
    return TR_OK;
}

/* inc(block): every byte + 1. */
static tr_status_t fn_inc(tr_task_h t)
{
    const unsigned char *d;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, (const void **)&d, &n);
    if (st != TR_OK) return st;
    unsigned char *p;
    st = tr_task_return_alloc(t, 0, n, (void **)&p);
    if (st != TR_OK) return st;
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)(d[k] + 1);
    return TR_OK;
}

/* digest(block): FNV-1a of its bytes. */
static tr_status_t fn_digest(tr_task_h t)
{
    const void *d;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, &d, &n);
    if (st != TR_OK) return st;
    return tr_task_return_i64(t, 0, (int64_t)fnv(d, n));
}

/* spawner(seed, n, bytes): refs to n children block(seed + j, bytes) that it
 * submitted on the grp ranks (it owns them); its own value is its seed. */
static tr_status_t fn_spawner(tr_task_h t)
{
    int64_t seed = 0, n = 0, bytes = 0;
    tr_task_arg_i64(t, 0, &seed);
    tr_task_arg_i64(t, 1, &n);
    tr_task_arg_i64(t, 2, &bytes);
    tr_ref_h kids[16];
    if (n < 1 || n > 16) return TR_ERR_INVALID_ARG;
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "grp=1" };
    for (int64_t j = 0; j < n; j++) {
        tr_arg_t a[2] = { TR_ARG_I64(seed + j), TR_ARG_I64(bytes) };
        tr_status_t st = tr_task_submit(fn_block, a, 2, &grp, &kids[j]);
        if (st != TR_OK) {
            for (int64_t k = 0; k < j; k++) tr_ref_release(kids[k]);
            return st;
        }
    }
    tr_status_t st = tr_task_return_refs(t, 0, &seed, sizeof(seed), kids, (size_t)n);
    for (int64_t j = 0; j < n; j++) tr_ref_release(kids[j]);
    return st;
}

/* stats(): this rank's spills. */
static tr_status_t fn_stats(tr_task_h t)
{
    tr_object_store_stats_t s;
    tr_status_t st = tr_object_store_stats(&s);
    if (st != TR_OK) return st;
    return tr_task_return_i64(t, 0, (int64_t)s.spills);
}

/* ------------------------------------------------------------ the actor */

typedef struct acc {
    int64_t applied;          /* the last sequence number applied */
    int64_t sum[HIST];        /* sum[s]: the sum after sequence number s */
} acc_t;

static tr_status_t acc_init(tr_task_h t, void **state_p)
{
    (void)t;
    acc_t *a = calloc(1, sizeof(*a));
    if (a == NULL) return TR_ERR_NO_MEMORY;
    *state_p = a;
    return TR_OK;
}

static void acc_fini(void *state) { free(state); }

/* add(seq, v, ms): applied once per seq, in sequence order; checkpoints
 * after each new call; returns the sum after seq. */
static tr_status_t acc_add(tr_task_h t, void *state)
{
    acc_t *a = state;
    int64_t seq = 0, v = 0, ms = 0;
    tr_task_arg_i64(t, 0, &seq);
    tr_task_arg_i64(t, 1, &v);
    tr_task_arg_i64(t, 2, &ms);
    if (seq < 1 || seq >= HIST) return tr_task_fail(t, "seq %" PRId64 " out of range", seq), TR_ERR_TASK_FAILED;
    if (seq > a->applied + 1) {
        tr_task_fail(t, "call %" PRId64 " arrived after %" PRId64 " (a call was lost)", seq, a->applied);
        return TR_ERR_TASK_FAILED;
    }
    if (seq == a->applied + 1) {
        a->sum[seq] = a->sum[seq - 1] + v;
        a->applied = seq;
        sleep_ms(ms);
        tr_status_t st = tr_actor_checkpoint(t);
        if (st != TR_OK) return st;
    }
    return tr_task_return_i64(t, 0, a->sum[seq]);
}

/* where(): rank * 10 + was_restarted */
static tr_status_t acc_where(tr_task_h t, void *state)
{
    (void)state;
    return tr_task_return_i64(t, 0, tr_rank() * 10 + tr_actor_was_restarted(t));
}

static tr_status_t acc_save(void *state, void **data_p, size_t *size_p)
{
    acc_t *c = malloc(sizeof(*c));
    if (c == NULL) return TR_ERR_NO_MEMORY;
    *c = *(acc_t *)state;
    *data_p = c;
    *size_p = sizeof(*c);
    return TR_OK;
}

static tr_status_t acc_restore(const void *data, size_t size, void **state_p)
{
    if (size != sizeof(acc_t)) return TR_ERR_INVALID_ARG;
    acc_t *a = malloc(sizeof(*a));
    if (a == NULL) return TR_ERR_NO_MEMORY;
    memcpy(a, data, sizeof(*a));
    *state_p = a;
    return TR_OK;
}

static const tr_actor_method_t acc_methods[] = { { "add", acc_add }, { "where", acc_where } };
static const tr_actor_class_t acc_class = { "ChaosAcc", acc_init, acc_fini, acc_methods, 2,
                                            acc_save, acc_restore };

/* ------------------------------------------------------- the driver */

/* What a pending result must be. */
typedef enum { E_I64, E_BLOCK, E_SPAWN } ekind_t;

typedef struct expect {
    ekind_t  kind;
    tr_ref_h ref;
    int64_t  i64;        /* E_I64: the value */
    uint64_t seed;       /* E_BLOCK: pattern seed, add, size; E_SPAWN: first child seed */
    int      add;
    size_t   size;
    int      nkids;      /* E_SPAWN: children, each size bytes */
    int      keep;       /* kept to the end (checked again after the deaths) */
    char     what[64];
} expect_t;

static expect_t *g_exp;
static int g_nexp, g_cap;

static expect_t *push(ekind_t kind, tr_ref_h ref, const char *fmt, ...) TR_PRINTF(3, 4);
static expect_t *push(ekind_t kind, tr_ref_h ref, const char *fmt, ...)
{
    if (g_nexp == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 256;
        g_exp = realloc(g_exp, (size_t)g_cap * sizeof(*g_exp));
        if (g_exp == NULL) abort();
    }
    expect_t *e = &g_exp[g_nexp++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->ref = ref;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof(e->what), fmt, ap);
    va_end(ap);
    return e;
}

static unsigned char *g_scratch;
static size_t g_scratch_size;

static int check_bytes(tr_ref_h ref, uint64_t seed, int add, size_t size, const char *what)
{
    const void *d;
    size_t n;
    tr_buf_h b;
    tr_status_t st = tr_get_buffer(ref, WAIT_MS, &d, &n, &b);
    if (st != TR_OK) return fail("%s: get: %s (%s)", what, tr_status_string(st), tr_last_error());
    if (n != size) {
        tr_buf_release(b);
        return fail("%s: %zu bytes, expected %zu", what, n, size);
    }
    if (g_scratch_size < size) {
        free(g_scratch);
        g_scratch = malloc(size);
        g_scratch_size = size;
        if (g_scratch == NULL) abort();
    }
    fill(g_scratch, size, seed, add);
    if (memcmp(d, g_scratch, size) != 0) {
        size_t k = 0;
        while (((const unsigned char *)d)[k] == g_scratch[k]) k++;
        unsigned got = ((const unsigned char *)d)[k];
        tr_buf_release(b);
        return fail("%s: byte %zu of %zu is 0x%02x, expected 0x%02x", what, k, size, got, g_scratch[k]);
    }
    tr_buf_release(b);
    return 0;
}

static int check_one(expect_t *e)
{
    if (e->kind == E_I64) {
        int64_t v = 0;
        tr_status_t st = tr_get_i64(e->ref, WAIT_MS, &v);
        if (st != TR_OK) return fail("%s: get: %s (%s)", e->what, tr_status_string(st), tr_last_error());
        if (v != e->i64) return fail("%s: %" PRId64 ", expected %" PRId64, e->what, v, e->i64);
        return 0;
    }
    if (e->kind == E_BLOCK) return check_bytes(e->ref, e->seed, e->add, e->size, e->what);
    /* E_SPAWN: the spawner's value is its seed; its refs, nkids blocks */
    tr_buf_h b;
    const void *d;
    size_t n;
    tr_status_t st = tr_get_buffer(e->ref, WAIT_MS, &d, &n, &b);
    if (st != TR_OK) return fail("%s: get: %s (%s)", e->what, tr_status_string(st), tr_last_error());
    int64_t seed = -1;
    if (n == sizeof(seed)) memcpy(&seed, d, sizeof(seed));
    size_t nrefs = tr_buf_num_refs(b);
    if (seed != (int64_t)e->seed || nrefs != (size_t)e->nkids) {
        tr_buf_release(b);
        return fail("%s: value %" PRId64 " with %zu refs, expected %" PRIu64 " with %d", e->what, seed,
                    nrefs, e->seed, e->nkids);
    }
    tr_ref_h kids[16];
    st = tr_buf_refs(b, kids, nrefs);
    tr_buf_release(b);
    if (st != TR_OK) return fail("%s: tr_buf_refs: %s (%s)", e->what, tr_status_string(st), tr_last_error());
    int rc = 0;
    for (int j = 0; j < e->nkids; j++) {
        char what[96];
        snprintf(what, sizeof(what), "%s child %d", e->what, j);
        if (rc == 0) rc = check_bytes(kids[j], e->seed + (uint64_t)j, 0, e->size, what);
        tr_ref_release(kids[j]);
    }
    return rc;
}

typedef struct actor {
    tr_actor_h h;
    int64_t seq;          /* calls made */
    int64_t sum;          /* the sum after them */
} actor_t;

static actor_t g_act[NUM_ACTORS];
static int g_ntasks;      /* results checked */

static tr_status_t submit(tr_remote_fn_t fn, const tr_arg_t *a, int n, const tr_task_params_t *p,
                          tr_ref_h *r)
{
    g_ntasks++;
    return tr_task_submit(fn, a, n, p, r);
}

/* One round: submit a random mix, then check the results in a random order. */
static int round_(uint64_t *s, int round)
{
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "grp=1" };
    int first = g_nexp;
    tr_ref_h r;

    int nflat = (int)rnd(s, 15, 50);
    for (int i = 0; i < nflat; i++) {
        int64_t x = rnd(s, 0, 1000000), ms = rnd(s, 0, 8);
        tr_arg_t a[2] = { TR_ARG_I64(x), TR_ARG_I64(ms) };
        OK(submit(fn_sq, a, 2, NULL, &r));
        push(E_I64, r, "round %d sq(%" PRId64 ")", round, x)->i64 = sq_value(x);
    }

    int ntree = (int)rnd(s, 1, 3);
    for (int i = 0; i < ntree; i++) {
        int64_t depth = rnd(s, 1, 2), fanout = rnd(s, 2, depth == 1 ? 8 : 4), base = rnd(s, 1, 1000);
        tr_arg_t a[3] = { TR_ARG_I64(depth), TR_ARG_I64(fanout), TR_ARG_I64(base) };
        OK(submit(fn_tree, a, 3, NULL, &r));
        push(E_I64, r, "round %d tree(%" PRId64 ",%" PRId64 ",%" PRId64 ")", round, depth, fanout, base)->i64 =
            tree_value(depth, fanout, base);
    }

    int nblk = (int)rnd(s, 1, 2);
    for (int i = 0; i < nblk; i++) {
        int64_t seed = rnd(s, 1, 1 << 30), size = rnd(s, 256, 1536) * (int64_t)KIB;
        tr_ref_h blk;
        tr_arg_t a[2] = { TR_ARG_I64(seed), TR_ARG_I64(size) };
        OK(submit(fn_block, a, 2, NULL, &blk));
        tr_arg_t b = TR_ARG_REF(blk);
        OK(submit(fn_inc, &b, 1, NULL, &r));
        expect_t *e = push(E_BLOCK, r, "round %d inc(block %" PRId64 ")", round, seed);
        e->seed = (uint64_t)seed, e->add = 1, e->size = (size_t)size, e->keep = 1;
        OK(submit(fn_digest, &b, 1, NULL, &r));
        unsigned char *tmp = malloc((size_t)size);
        if (tmp == NULL) return fail("out of memory");
        fill(tmp, (size_t)size, (uint64_t)seed, 0);
        push(E_I64, r, "round %d digest(block %" PRId64 ")", round, seed)->i64 = (int64_t)fnv(tmp, (size_t)size);
        free(tmp);
        OK(tr_ref_release(blk));
    }

    if (rnd(s, 0, 1)) {
        int64_t seed = rnd(s, 1, 1 << 30), size = rnd(s, 256, 1536) * (int64_t)KIB, len = rnd(s, 2, 5);
        tr_ref_h cur;
        tr_arg_t a[2] = { TR_ARG_I64(seed), TR_ARG_I64(size) };
        OK(submit(fn_block, a, 2, &grp, &cur));
        for (int64_t k = 0; k < len; k++) {
            tr_arg_t b = TR_ARG_REF(cur);
            tr_ref_h next;
            OK(submit(fn_inc, &b, 1, &grp, &next));
            OK(tr_ref_release(cur));
            cur = next;
        }
        expect_t *e = push(E_BLOCK, cur, "round %d chain(%" PRId64 ", %" PRId64 ")", round, seed, len);
        e->seed = (uint64_t)seed, e->add = (int)len, e->size = (size_t)size, e->keep = 1;
    }

    if (rnd(s, 0, 1)) {
        int64_t seed = rnd(s, 1, 1 << 30), n = rnd(s, 2, 4), size = rnd(s, 96, 1024) * (int64_t)KIB;
        tr_arg_t a[3] = { TR_ARG_I64(seed), TR_ARG_I64(n), TR_ARG_I64(size) };
        OK(submit(fn_spawner, a, 3, &grp, &r));
        expect_t *e = push(E_SPAWN, r, "round %d spawner(%" PRId64 ")", round, seed);
        e->seed = (uint64_t)seed, e->nkids = (int)n, e->size = (size_t)size, e->keep = 1;
    }

    for (int k = 0; k < NUM_ACTORS; k++) {
        int ncalls = (int)rnd(s, 3, 12);
        for (int i = 0; i < ncalls && g_act[k].seq + 1 < HIST; i++) {
            int64_t v = rnd(s, -1000, 1000), ms = rnd(s, 0, 6);
            g_act[k].seq++;
            g_act[k].sum += v;
            tr_arg_t a[3] = { TR_ARG_I64(g_act[k].seq), TR_ARG_I64(v), TR_ARG_I64(ms) };
            OK(tr_actor_call(g_act[k].h, "add", a, 3, NULL, &r));
            g_ntasks++;
            push(E_I64, r, "round %d actor %d call %" PRId64, round, k, g_act[k].seq)->i64 = g_act[k].sum;
        }
    }

    /* check in a random order (a Fisher-Yates shuffle of this round's entries) */
    int n = g_nexp - first;
    int *order = malloc((size_t)n * sizeof(*order));
    if (order == NULL) return fail("out of memory");
    for (int i = 0; i < n; i++) order[i] = first + i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rnd(s, 0, i), tmp = order[i];
        order[i] = order[j], order[j] = tmp;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        expect_t *e = &g_exp[order[i]];
        rc = check_one(e);
        if (!e->keep) {
            tr_ref_release(e->ref);
            e->ref = TR_REF_NULL;
        }
    }
    free(order);
    return rc;
}

/* The job id, as the name of this rank's shared-memory segment in
 * /proc/self/maps shows it ("/dev/shm/taskray-<16 hex>-<rank>"), so that
 * tests/chaos can look for exactly this job's leftovers; "" when not found. */
static void job_id(char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) return;
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = strstr(line, "/dev/shm/taskray-");
        if (p == NULL) continue;
        p += strlen("/dev/shm/taskray-");
        size_t n = strspn(p, "0123456789abcdef");
        if (n == 16 && p[16] == '-' && n < len) {
            memcpy(out, p, n);
            out[n] = '\0';
            break;
        }
    }
    fclose(f);
}

static int wait_dead(int victim, int ms)
{
    for (int i = 0; i < ms / 10 && tr_rank_alive(victim) == 1; i++) sleep_ms(10);
    return tr_rank_alive(victim) == 0;
}

static int spills_of_survivors(int64_t *total)
{
    *total = 0;
    for (int rk = 0; rk < g_size; rk++) {
        if (tr_rank_alive(rk) != 1) continue;
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_NUM_CPUS,
                               .resources = g_pin[rk], .num_cpus = 0 };
        tr_ref_h r;
        int64_t v = 0;
        OK(tr_task_submit(fn_stats, NULL, 0, &p, &r));
        tr_status_t st = tr_get_i64(r, WAIT_MS, &v);
        tr_ref_release(r);
        if (st != TR_OK) return fail("stats of rank %d: %s (%s)", rk, tr_status_string(st), tr_last_error());
        *total += v;
    }
    return 0;
}

static int drive(uint64_t *s, int rounds, char *summary, size_t summary_len)
{
    /* the actors: the first on a victim when there is one, the second anywhere */
    for (int k = 0; k < NUM_ACTORS; k++) {
        int where = (k == 0 && g_plan.nvict > 0) ? g_plan.victim[0] : (int)rnd(s, 1, g_size - 1);
        tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_MAX_RESTARTS |
                                              TR_ACTOR_FIELD_MAX_TASK_RETRIES,
                                .rank = where, .max_restarts = -1, .max_task_retries = -1 };
        OK(tr_actor_create("ChaosAcc", NULL, 0, &p, &g_act[k].h));
    }

    /* the kills: submitted at once, each fires after its delay */
    tr_ref_h die[2] = { TR_REF_NULL, TR_REF_NULL };
    for (int v = 0; v < g_plan.nvict; v++) {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_MAX_RETRIES |
                                             TR_TASK_FIELD_NUM_CPUS,
                               .resources = g_pin[g_plan.victim[v]], .max_retries = 0, .num_cpus = 0 };
        tr_arg_t a = TR_ARG_I64(g_plan.delay_ms[v]);
        OK(tr_task_submit(fn_die, &a, 1, &p, &die[v]));
    }

    double t0 = now_s();
    for (int rd = 0; rd < rounds; rd++)
        if (round_(s, rd)) return 1;
    double t_rounds = now_s() - t0;

    for (int v = 0; v < g_plan.nvict; v++) {
        int64_t one = 0;
        tr_status_t st = tr_get_i64(die[v], WAIT_MS, &one);
        if (st != TR_OK && st != TR_ERR_WORKER_DIED)
            return fail("the kill task of rank %d: %s (%s)", g_plan.victim[v], tr_status_string(st), tr_last_error());
        tr_ref_release(die[v]);
        if (!wait_dead(g_plan.victim[v], 20000))
            return fail("rank %d was not seen dead 20 s after its kill (delay %d ms)", g_plan.victim[v],
                        g_plan.delay_ms[v]);
    }
    for (int rk = 1; rk < g_size; rk++) {
        int victim = 0;
        for (int v = 0; v < g_plan.nvict; v++) victim |= g_plan.victim[v] == rk;
        if (!victim && tr_rank_alive(rk) != 1) return fail("rank %d, never killed, is said dead", rk);
    }

    /* everything kept, again: copies that died with their rank are rebuilt */
    for (int i = 0; i < g_nexp; i++) {
        expect_t *e = &g_exp[i];
        if (!e->keep) continue;
        char what[64];
        snprintf(what, sizeof(what), "%s", e->what);
        snprintf(e->what, sizeof(e->what), "after the deaths: %.40s", what);
        if (check_one(e)) return 1;
    }
    /* one more round on the survivors */
    if (round_(s, rounds)) return 1;

    for (int k = 0; k < NUM_ACTORS; k++) {
        tr_ref_h r;
        int64_t where = -1;
        OK(tr_actor_call(g_act[k].h, "where", NULL, 0, NULL, &r));
        tr_status_t st = tr_get_i64(r, WAIT_MS, &where);
        tr_ref_release(r);
        if (st != TR_OK) return fail("actor %d where: %s (%s)", k, tr_status_string(st), tr_last_error());
        if (tr_rank_alive((int)(where / 10)) != 1) return fail("actor %d says it lives on dead rank %" PRId64, k, where / 10);
    }

    tr_failure_stats_t fs;
    OK(tr_failure_stats(&fs));
    if (fs.ranks_died != (uint64_t)g_plan.nvict)
        return fail("tr_failure_stats: %" PRIu64 " deaths, %d kills", fs.ranks_died, g_plan.nvict);
    int64_t spills = 0;
    if (spills_of_survivors(&spills)) return 1;
    snprintf(summary, summary_len,
             "%d results, rounds %.2f s, %" PRIu64 " tasks retried, %" PRIu64 " objects rebuilt, %" PRIu64
             " actors restarted, %" PRIu64 " calls retried, %" PRId64 " spills on survivors",
             g_ntasks, t_rounds, fs.tasks_retried, fs.objects_rebuilt, fs.actors_restarted, fs.calls_retried,
             spills);
    return 0;
}

int main(int argc, char **argv)
{
    g_rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", 0);
    g_size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", 1);
    int kill_ms = 450, kill = 1, rounds = 10;
    if (argc < 2) {
        fprintf(stderr, "usage: chaos_app SEED [--kill-ms T] [--no-kill] [--rounds R]\n");
        return 2;
    }
    g_seed = strtoull(argv[1], NULL, 0);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--kill-ms") == 0 && i + 1 < argc) kill_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-kill") == 0) kill = 0;
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "chaos_app: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (g_size < 3 || g_size > MAX_RANKS || rounds < 1 || rounds > MAX_ROUNDS || kill_ms < 0) {
        if (g_rank == 0) printf("chaos: seed %" PRIu64 ": FAIL: bad job shape (%d ranks; 3 to %d) or options\n", g_seed, g_size, MAX_RANKS);
        return 2;
    }

    uint64_t s = g_seed;
    draw_plan(&s, kill_ms, kill);
    char res[256];
    snprintf(res, sizeof(res), "pin%d=4%s", g_rank, g_plan.grp[g_rank] ? ",grp=8" : "");
    setenv("TASKRAY_RESOURCES", res, 1);
    for (int r = 0; r < g_size; r++) snprintf(g_pin[r], sizeof(g_pin[r]), "pin%d=1", r);

    tr_function_register("die", fn_die);
    tr_function_register("sq", fn_sq);
    tr_function_register("tree", fn_tree);
    tr_function_register("block", fn_block);
    tr_function_register("inc", fn_inc);
    tr_function_register("digest", fn_digest);
    tr_function_register("spawner", fn_spawner);
    tr_function_register("stats", fn_stats);
    tr_actor_class_register(&acc_class);

    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = 2 };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "chaos: rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st), tr_last_error());
        if (g_rank == 0) printf("chaos: seed %" PRIu64 ": FAIL: tr_init: %s\n", g_seed, tr_status_string(st));
        return 1;
    }
    if (g_rank != 0) {
        st = tr_finalize();
        if (st != TR_OK) {
            fprintf(stderr, "chaos: rank %d: tr_finalize: %s: %s\n", g_rank, tr_status_string(st), tr_last_error());
            return 1;
        }
        return 0;
    }

    char plan[256] = "";
    size_t off = 0;
    for (int v = 0; v < g_plan.nvict; v++)
        off += (size_t)snprintf(plan + off, sizeof(plan) - off, " %d@%dms", g_plan.victim[v], g_plan.delay_ms[v]);
    off += (size_t)snprintf(plan + off, sizeof(plan) - off, "; grp");
    for (int r = 0; r < g_size; r++)
        if (g_plan.grp[r]) off += (size_t)snprintf(plan + off, sizeof(plan) - off, " %d", r);
    char job[32];
    job_id(job, sizeof(job));
    printf("chaos: seed %" PRIu64 ": job %s\n", g_seed, job[0] ? job : "unknown");
    printf("chaos: seed %" PRIu64 ": plan: %d ranks, kill%s\n", g_seed, g_size, g_plan.nvict ? plan : " none");
    fflush(stdout);

    char summary[512] = "";
    double t0 = now_s();
    int rc = drive(&s, rounds, summary, sizeof(summary));
    for (int i = 0; i < g_nexp; i++)
        if (g_exp[i].ref != TR_REF_NULL) tr_ref_release(g_exp[i].ref);
    for (int k = 0; k < NUM_ACTORS; k++)
        if (g_act[k].h != TR_ACTOR_NULL) tr_actor_release(g_act[k].h);
    st = tr_finalize();
    if (st != TR_OK && rc == 0)
        rc = fail("tr_finalize: %s (%s)", tr_status_string(st), tr_last_error());
    double t = now_s() - t0;
    if (rc == 0) printf("chaos: seed %" PRIu64 ": ok (%.2f s; %s)\n", g_seed, t, summary);
    else printf("chaos: seed %" PRIu64 ": FAIL: %s\n", g_seed, g_fail);
    fflush(stdout);
    free(g_exp);
    free(g_scratch);
    return rc;
}
