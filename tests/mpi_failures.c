/*
 * mpi_failures: a worker rank really dies (SIGKILL) and the job still
 * finishes with the same results as a run without the death.
 *
 * Usage: mpi_failures SCENARIO [VICTIM...]
 *
 *   idle        the victim dies while idle; then 200 tasks run
 *   midtask     the victim dies while it runs some of 400 tasks
 *   only_copy   the victim held the only copy of objects (a chain a->b->c
 *               of 4 MiB results whose intermediate refs were released):
 *               reading them rebuilds them from their lineage
 *   nested      tasks that submit children; the victim dies meanwhile
 *   owner       a task returned refs to its children (owned by its rank),
 *               then that rank dies: the task runs again, makes the same
 *               children, and the refs the driver holds follow them
 *   actor       an actor with checkpoints lives on the victim; calls are
 *               retried on its restarted incarnation
 *   transfer    the victim dies while another node pulls a 64 MiB object
 *               it made
 *   replica     objects the victim put: the one with a replica is still
 *               read after its death, the one without is TR_ERR_OBJECT_LOST
 *   two         two victims die (give two VICTIMs)
 *   hang        the victim stops (SIGSTOP): the heartbeat writes it off;
 *               woken up later, it leaves the job (status 70)
 *   driver      the driver (rank 0) dies: the job ends, not hangs
 *   boot        the victim dies before tr_init: start-up fails within the
 *               watchdog's time (TASKRAY_BOOTSTRAP_TIMEOUT), not hangs
 *
 * Every rank calls tr_init() (TR_MODE_DRIVER); rank 0 runs the scenario and
 * exits 0 when every result matches; the others serve from tr_finalize().
 * A victim kills itself from a task pinned to it ("pin<R>" resource), with
 * SIGKILL, at once or after a delay on a thread of its own.  "grp" is a
 * resource of the victim(s) and one survivor: tasks asking for it run on
 * either, so objects and actors land on the victim and can move when it is
 * gone.  tests/run_mpi_failures.sh runs each scenario through taskray-run.
 */
#define _GNU_SOURCE
#include <taskray.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024u * 1024u)
#define WAIT_MS 120000

static int g_rank, g_size;
static char g_pin[64][24];

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "mpi_failures: %s:%d: ", __FILE__, __LINE__);        \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " (%s)\n", tr_last_error());                        \
            return 1;                                                           \
        }                                                                       \
    } while (0)

#define OK(call) CHECK((call) == TR_OK, "%s failed", #call)

static int env_int(const char *a, const char *b, const char *c, int dflt)
{
    const char *v = getenv(a);
    if (v == NULL || *v == '\0') v = getenv(b);
    if (v == NULL || *v == '\0') v = getenv(c);
    return v && *v ? atoi(v) : dflt;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------- functions */

static void *die_thread(void *arg)
{
    sleep_ms((int)(intptr_t)arg);
    fprintf(stderr, "mpi_failures: rank %d kills itself (SIGKILL)\n", g_rank);
    raise(SIGKILL);
    return NULL;
}

/* die(ms): SIGKILL this rank now (ms 0) or after ms on a thread. */
static tr_status_t fn_die(tr_task_h t)
{
    int64_t ms = 0;
    tr_task_arg_i64(t, 0, &ms);
    if (ms == 0) die_thread(NULL);
    pthread_t th;
    pthread_create(&th, NULL, die_thread, (void *)(intptr_t)ms);
    pthread_detach(th);
    return tr_task_return_i64(t, 0, 1);
}

static void *stop_thread(void *arg)
{
    (void)arg;
    sleep_ms(100);
    fprintf(stderr, "mpi_failures: rank %d stops itself (SIGSTOP)\n", g_rank);
    raise(SIGSTOP);
    return NULL;
}

/* hang(): this rank's pid; 100 ms later the whole rank stops (SIGSTOP). */
static tr_status_t fn_hang(tr_task_h t)
{
    pthread_t th;
    pthread_create(&th, NULL, stop_thread, NULL);
    pthread_detach(th);
    return tr_task_return_i64(t, 0, (int64_t)getpid());
}

/* sq(i, ms): i*i after ms. */
static tr_status_t fn_sq(tr_task_h t)
{
    int64_t i = 0, ms = 0;
    tr_task_arg_i64(t, 0, &i);
    tr_task_arg_i64(t, 1, &ms);
    if (ms) sleep_ms((int)ms);
    return tr_task_return_i64(t, 0, i * i);
}

/* block(seed, mib): mib MiB of bytes (seed + k) & 0xff. */
static tr_status_t fn_block(tr_task_h t)
{
    int64_t seed = 0, mib = 0;
    tr_task_arg_i64(t, 0, &seed);
    tr_task_arg_i64(t, 1, &mib);
    size_t n = (size_t)mib * MIB;
    unsigned char *p = malloc(n);
    if (p == NULL) return TR_ERR_NO_MEMORY;
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)((uint64_t)seed + k);
    tr_status_t st = tr_task_return(t, 0, p, n);
    free(p);
    return st;
}

/* inc(block): every byte + 1. */
static tr_status_t fn_inc(tr_task_h t)
{
    const void *d;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, &d, &n);
    if (st != TR_OK) return st;
    unsigned char *p = malloc(n ? n : 1);
    if (p == NULL) return TR_ERR_NO_MEMORY;
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)(((const unsigned char *)d)[k] + 1);
    st = tr_task_return(t, 0, p, n);
    free(p);
    return st;
}

/* parent(n, ms): sum of sq(i, ms) for i < n, through n children. */
static tr_status_t fn_parent(tr_task_h t)
{
    int64_t n = 0, ms = 0, sum = 0;
    tr_task_arg_i64(t, 0, &n);
    tr_task_arg_i64(t, 1, &ms);
    tr_ref_h *kids = calloc((size_t)n, sizeof(*kids));
    if (kids == NULL) return TR_ERR_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i), TR_ARG_I64(ms) };
        tr_status_t st = tr_task_submit(fn_sq, a, 2, NULL, &kids[i]);
        if (st != TR_OK) return st;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v = 0;
        tr_status_t st = tr_get_i64(kids[i], WAIT_MS, &v);
        tr_ref_release(kids[i]);
        if (st != TR_OK) { free(kids); (void)st; return tr_task_fail(t, "child %" PRId64 ": %s", i, tr_last_error()); }
        sum += v;
    }
    free(kids);
    return tr_task_return_i64(t, 0, sum);
}

/* spawner(n): returns refs to n children block(i, 1) it submitted (it owns them). */
static tr_status_t fn_spawner(tr_task_h t)
{
    int64_t n = 0;
    tr_task_arg_i64(t, 0, &n);
    tr_ref_h kids[16];
    if (n < 1 || n > 16) return TR_ERR_INVALID_ARG;
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "grp=1" };
    for (int64_t i = 0; i < n; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i), TR_ARG_I64(1) };
        tr_status_t st = tr_task_submit(fn_block, a, 2, &grp, &kids[i]);
        if (st != TR_OK) return st;
    }
    int64_t me = tr_rank();
    tr_status_t st = tr_task_return_refs(t, 0, &me, sizeof(me), kids, (size_t)n);
    for (int64_t i = 0; i < n; i++) tr_ref_release(kids[i]);
    return st;
}

/* ------------------------------------------------------------ the actor */

typedef struct acc {
    int64_t sum, applied;
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

/* add(seq, v): applied once per seq (a retried call is not counted twice);
 * checkpoints after each call; returns the sum. */
static tr_status_t acc_add(tr_task_h t, void *state)
{
    acc_t *a = state;
    int64_t seq = 0, v = 0;
    tr_task_arg_i64(t, 0, &seq);
    tr_task_arg_i64(t, 1, &v);
    if (seq > a->applied) {
        a->sum += v;
        a->applied = seq;
        sleep_ms(5);
        tr_status_t st = tr_actor_checkpoint(t);
        if (st != TR_OK) return st;
    }
    return tr_task_return_i64(t, 0, a->sum);
}

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

/* make(seed, replicas): puts a 2 MiB block (bytes seed + k) with that many
 * replicas and returns a ref to it; the actor's rank owns it. */
static tr_status_t acc_make(tr_task_h t, void *state)
{
    (void)state;
    int64_t seed = 0, replicas = 0;
    tr_task_arg_i64(t, 0, &seed);
    tr_task_arg_i64(t, 1, &replicas);
    size_t n = 2 * MIB;
    unsigned char *p = malloc(n);
    if (p == NULL) return TR_ERR_NO_MEMORY;
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)((uint64_t)seed + k);
    tr_ref_h r;
    tr_status_t st = tr_put_replicated(p, n, (int)replicas, &r);
    free(p);
    if (st != TR_OK) return st;
    st = tr_task_return_refs(t, 0, NULL, 0, &r, 1);
    tr_ref_release(r);
    return st;
}

static const tr_actor_method_t acc_methods[] = { { "add", acc_add }, { "where", acc_where }, { "make", acc_make } };
static const tr_actor_class_t acc_class = { "Acc", acc_init, acc_fini, acc_methods, 3, acc_save, acc_restore };

/* --------------------------------------------------------------- helpers */

static tr_status_t kill_rank(int victim, int ms)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_MAX_RETRIES,
                           .resources = g_pin[victim], .max_retries = 0 };
    tr_arg_t a = TR_ARG_I64(ms);
    tr_ref_h r;
    tr_status_t st = tr_task_submit(fn_die, &a, 1, &p, &r);
    if (st != TR_OK) return st;
    int64_t v;
    st = tr_get_i64(r, WAIT_MS, &v);   /* 1 when it dies later, WORKER_DIED at once */
    tr_ref_release(r);
    return st == TR_OK || st == TR_ERR_WORKER_DIED ? TR_OK : st;
}

static int wait_dead(int victim)
{
    for (int i = 0; i < 3000 && tr_rank_alive(victim) == 1; i++) sleep_ms(10);
    return tr_rank_alive(victim) == 0;
}

static int check_block(tr_ref_h r, int64_t seed, int add, size_t n)
{
    tr_buf_h b;
    OK(tr_get(r, WAIT_MS, &b));
    const unsigned char *p = tr_buf_data(b);
    CHECK(tr_buf_size(b) == n, "a block has %zu bytes, expected %zu", tr_buf_size(b), n);
    for (size_t k = 0; k < n; k++)
        if (p[k] != (unsigned char)((uint64_t)seed + k + (uint64_t)add)) {
            tr_buf_release(b);
            CHECK(0, "byte %zu of block %" PRId64 " is %u", k, seed, p[k]);
        }
    tr_buf_release(b);
    return 0;
}

static int sum_tasks(int n, int ms)
{
    tr_ref_h *r = calloc((size_t)n, sizeof(*r));
    CHECK(r != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i), TR_ARG_I64(ms) };
        OK(tr_task_submit(fn_sq, a, 2, NULL, &r[i]));
    }
    for (int i = 0; i < n; i++) {
        int64_t v = -1;
        OK(tr_get_i64(r[i], WAIT_MS, &v));
        CHECK(v == (int64_t)i * i, "task %d gave %" PRId64, i, v);
        tr_ref_release(r[i]);
    }
    free(r);
    return 0;
}

/* ------------------------------------------------------------- scenarios */

static int sc_idle(int victim)
{
    OK(kill_rank(victim, 0));
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    return sum_tasks(200, 0);
}

static int sc_midtask(int victim)
{
    OK(kill_rank(victim, 150));
    if (sum_tasks(400, 5)) return 1;
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    return 0;
}

static int sc_only_copy(int victim)
{
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "grp=1" };
    enum { N = 6 };
    tr_ref_h a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        tr_arg_t x[2] = { TR_ARG_I64(i), TR_ARG_I64(4) };
        OK(tr_task_submit(fn_block, x, 2, &grp, &a[i]));
        tr_arg_t y = TR_ARG_REF(a[i]);
        OK(tr_task_submit(fn_inc, &y, 1, &grp, &b[i]));
        tr_arg_t z = TR_ARG_REF(b[i]);
        OK(tr_task_submit(fn_inc, &z, 1, &grp, &c[i]));
    }
    for (int i = 0; i < N; i++) if (check_block(c[i], i, 2, 4 * MIB)) return 1;
    for (int i = 0; i < N; i++) { tr_ref_release(a[i]); tr_ref_release(b[i]); }
    OK(kill_rank(victim, 0));
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    for (int i = 0; i < N; i++) if (check_block(c[i], i, 2, 4 * MIB)) return 1;
    tr_failure_stats_t fs;
    OK(tr_failure_stats(&fs));
    CHECK(fs.objects_rebuilt > 0, "no object was rebuilt (none was on rank %d?)", victim);
    printf("mpi_failures only_copy: %" PRIu64 " objects rebuilt\n", fs.objects_rebuilt);
    for (int i = 0; i < N; i++) tr_ref_release(c[i]);
    return 0;
}

static int sc_nested(int victim, int kill)
{
    enum { P = 8, K = 20 };
    tr_ref_h r[P];
    if (kill) OK(kill_rank(victim, 200));
    for (int i = 0; i < P; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(K), TR_ARG_I64(20) };
        OK(tr_task_submit(fn_parent, a, 2, NULL, &r[i]));
    }
    for (int i = 0; i < P; i++) {
        int64_t v = -1;
        OK(tr_get_i64(r[i], WAIT_MS, &v));
        CHECK(v == (int64_t)(K - 1) * K * (2 * K - 1) / 6, "parent %d gave %" PRId64, i, v);
        tr_ref_release(r[i]);
    }
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    return 0;
}

static int sc_owner(int victim)
{
    enum { N = 4 };
    /* the spawner runs on the victim: it owns the children */
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "grp=1" };
    tr_ref_h parents[2], kids[2][N];
    int on_victim = -1;
    for (int k = 0; k < 2; k++) {
        tr_arg_t a = TR_ARG_I64(N);
        OK(tr_task_submit(fn_spawner, &a, 1, &grp, &parents[k]));
        tr_buf_h b;
        OK(tr_get(parents[k], WAIT_MS, &b));
        CHECK(tr_buf_num_refs(b) == N, "the spawner returned %zu refs", tr_buf_num_refs(b));
        OK(tr_buf_refs(b, kids[k], N));
        int64_t where;
        memcpy(&where, tr_buf_data(b), sizeof(where));
        if (where == victim) on_victim = k;
        tr_buf_release(b);
        for (int i = 0; i < N; i++) if (check_block(kids[k][i], i, 0, MIB)) return 1;
    }
    CHECK(on_victim >= 0, "no spawner ran on rank %d", victim);
    OK(kill_rank(victim, 0));
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N; i++) if (check_block(kids[k][i], i, 0, MIB)) return 1;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < N; i++) tr_ref_release(kids[k][i]);
        tr_ref_release(parents[k]);
    }
    return 0;
}

static int sc_actor(int victim)
{
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_MAX_RESTARTS |
                                          TR_ACTOR_FIELD_MAX_TASK_RETRIES,
                            .rank = victim, .max_restarts = 1, .max_task_retries = -1 };
    tr_actor_h act;
    OK(tr_actor_create("Acc", NULL, 0, &p, &act));
    tr_ref_h w;
    int64_t where = -1;
    OK(tr_actor_call(act, "where", NULL, 0, NULL, &w));
    OK(tr_get_i64(w, WAIT_MS, &where));
    tr_ref_release(w);
    CHECK(where == victim * 10, "the actor runs on rank %" PRId64 "/%" PRId64, where / 10, where % 10);
    enum { N = 60 };
    tr_ref_h r[N];
    OK(kill_rank(victim, 120));
    for (int i = 0; i < N; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i + 1), TR_ARG_I64(i + 1) };
        OK(tr_actor_call(act, "add", a, 2, NULL, &r[i]));
    }
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        OK(tr_get_i64(r[i], WAIT_MS, &v));
        CHECK(v == (int64_t)(i + 1) * (i + 2) / 2, "call %d gave %" PRId64, i, v);
        tr_ref_release(r[i]);
    }
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    OK(tr_actor_call(act, "where", NULL, 0, NULL, &w));
    OK(tr_get_i64(w, WAIT_MS, &where));
    tr_ref_release(w);
    CHECK(where % 10 == 1 && where / 10 != victim, "after the restart the actor says %" PRId64, where);
    tr_failure_stats_t fs;
    OK(tr_failure_stats(&fs));
    CHECK(fs.actors_restarted == 1, "%" PRIu64 " actor restarts", fs.actors_restarted);
    printf("mpi_failures actor: restarted on rank %" PRId64 ", %" PRIu64 " calls retried\n", where / 10, fs.calls_retried);
    tr_actor_release(act);
    return 0;
}

static int sc_transfer(int victim)
{
    tr_task_params_t grp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = g_pin[victim] };
    tr_arg_t x[2] = { TR_ARG_I64(7), TR_ARG_I64(64) };
    tr_ref_h big;
    /* made on the victim; when it is gone, it is made again elsewhere */
    grp.field_mask = TR_TASK_FIELD_RESOURCES;
    grp.resources = "grp=1";
    OK(tr_task_submit(fn_block, x, 2, &grp, &big));
    tr_ref_h ready[1] = { big };
    size_t idx, nready;
    OK(tr_wait(ready, 1, 1, WAIT_MS, &idx, &nready));
    OK(kill_rank(victim, 30));
    for (int round = 0; round < 3; round++)
        if (check_block(big, 7, 0, 64 * MIB)) return 1;
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    tr_ref_release(big);
    return 0;
}

/* The victim hangs (SIGSTOP): only the heartbeat can tell.  Once it is
 * written off, the driver wakes it (SIGCONT): it must leave (status 70). */
static int sc_hang(int victim)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_MAX_RETRIES,
                           .resources = g_pin[victim], .max_retries = 0 };
    tr_ref_h r;
    int64_t pid = 0;
    OK(tr_task_submit(fn_hang, NULL, 0, &p, &r));
    OK(tr_get_i64(r, WAIT_MS, &pid));
    tr_ref_release(r);
    /* wake it once it was written off, or at the latest a little after the
     * timeout: stopped in the middle of writing into this rank's queue, it
     * would leave this rank deaf, and the notice could not arrive */
    const char *to = getenv("TASKRAY_HEARTBEAT_TIMEOUT_MS");
    int limit_ms = (to && *to ? atoi(to) : 20000) * 6 / 5;
    for (int waited = 0; waited < limit_ms && tr_rank_alive(victim) == 1; waited += 10) sleep_ms(10);
    kill((pid_t)pid, SIGCONT);
    CHECK(wait_dead(victim), "the hung rank %d was not seen dead", victim);
    char path[64], st = 0;
    snprintf(path, sizeof(path), "/proc/%" PRId64 "/stat", pid);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        if (f == NULL) { st = 'X'; break; }
        int rc = fscanf(f, "%*d %*s %c", &st);
        fclose(f);
        if (rc == 1 && (st == 'Z' || st == 'X')) break;
        sleep_ms(20);
    }
    CHECK(st == 'Z' || st == 'X', "the woken rank %d (pid %" PRId64 ") did not leave (state %c)", victim, pid, st ? st : '?');
    return sum_tasks(100, 0);   /* the others go on */
}

/* Objects put by a rank that dies: lost (no lineage), unless put with a
 * replica on another rank. */
static int sc_replica(int victim)
{
    tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_RANK, .rank = victim };
    tr_actor_h act;
    OK(tr_actor_create("Acc", NULL, 0, &p, &act));
    tr_ref_h obj[2];
    for (int k = 0; k < 2; k++) {
        tr_arg_t a[2] = { TR_ARG_I64(k + 3), TR_ARG_I64(1 - k) };   /* one replica, then none */
        tr_ref_h c;
        OK(tr_actor_call(act, "make", a, 2, NULL, &c));
        tr_buf_h b;
        OK(tr_get(c, WAIT_MS, &b));
        CHECK(tr_buf_num_refs(b) == 1, "make returned %zu refs", tr_buf_num_refs(b));
        OK(tr_buf_refs(b, &obj[k], 1));
        tr_buf_release(b);
        tr_ref_release(c);
        /* not read before the death: a reader on another node would keep a copy */
        if (k == 0 && check_block(obj[k], k + 3, 0, 2 * MIB)) return 1;
    }
    OK(kill_rank(victim, 0));
    CHECK(wait_dead(victim), "rank %d was not seen dead", victim);
    if (check_block(obj[0], 3, 0, 2 * MIB)) return 1;   /* from its replica */
    tr_buf_h b;
    tr_status_t st = tr_get(obj[1], WAIT_MS, &b);
    CHECK(st == TR_ERR_OBJECT_LOST, "a put object whose owner died gave %s, not TR_ERR_OBJECT_LOST", tr_status_string(st));
    tr_ref_release(obj[0]);
    tr_ref_release(obj[1]);
    tr_actor_release(act);
    return 0;
}

static int sc_two(int v1, int v2)
{
    OK(kill_rank(v1, 100));
    OK(kill_rank(v2, 250));
    if (sum_tasks(400, 5)) return 1;
    CHECK(wait_dead(v1) && wait_dead(v2), "ranks %d and %d were not both seen dead", v1, v2);
    return sc_nested(v1, 0) ? 1 : 0;
}

int main(int argc, char **argv)
{
    g_rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", 0);
    g_size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", 1);
    if (argc < 2 || g_size < 3 || g_size > 64) {
        fprintf(stderr, "usage: mpi_failures SCENARIO [VICTIM...] (3 to 64 ranks)\n");
        return 2;
    }
    const char *sc = argv[1];
    int v1 = argc > 2 ? atoi(argv[2]) : 2, v2 = argc > 3 ? atoi(argv[3]) : 3;
    if (v1 < 1 || v1 >= g_size || v2 < 1 || v2 >= g_size) { fprintf(stderr, "mpi_failures: bad victim\n"); return 2; }
    /* "pin<R>" on each rank; "grp" on the victims and the last rank */
    char res[256];
    int grp = g_rank == v1 || (strcmp(sc, "two") == 0 && g_rank == v2) || g_rank == g_size - 1;
    if (g_rank == g_size - 1 && g_rank == v1) grp = 1;
    snprintf(res, sizeof(res), "pin%d=4%s", g_rank, grp ? ",grp=8" : "");
    setenv("TASKRAY_RESOURCES", res, 1);
    for (int r = 0; r < g_size; r++) snprintf(g_pin[r], sizeof(g_pin[r]), "pin%d=1", r);

    if (strcmp(sc, "boot") == 0 && g_rank == v1) {
        /* dies during start-up: the others' tr_init must give up within
         * TASKRAY_BOOTSTRAP_TIMEOUT, not hang */
        fprintf(stderr, "mpi_failures: rank %d kills itself (SIGKILL) before tr_init\n", g_rank);
        raise(SIGKILL);
    }
    tr_function_register("die", fn_die);
    tr_function_register("sq", fn_sq);
    tr_function_register("hang", fn_hang);
    tr_function_register("block", fn_block);
    tr_function_register("inc", fn_inc);
    tr_function_register("parent", fn_parent);
    tr_function_register("spawner", fn_spawner);
    tr_actor_class_register(&acc_class);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = 3 };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) { fprintf(stderr, "rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st), tr_last_error()); return 1; }
    if (g_rank != 0) {
        st = tr_finalize();
        if (st != TR_OK) { fprintf(stderr, "rank %d: tr_finalize: %s: %s\n", g_rank, tr_status_string(st), tr_last_error()); return 1; }
        return 0;
    }
    int rc;
    if (strcmp(sc, "idle") == 0) rc = sc_idle(v1);
    else if (strcmp(sc, "midtask") == 0) rc = sc_midtask(v1);
    else if (strcmp(sc, "only_copy") == 0) rc = sc_only_copy(v1);
    else if (strcmp(sc, "nested") == 0) rc = sc_nested(v1, 1);
    else if (strcmp(sc, "owner") == 0) rc = sc_owner(v1);
    else if (strcmp(sc, "actor") == 0) rc = sc_actor(v1);
    else if (strcmp(sc, "transfer") == 0) rc = sc_transfer(v1);
    else if (strcmp(sc, "two") == 0) rc = sc_two(v1, v2);
    else if (strcmp(sc, "hang") == 0) rc = sc_hang(v1);
    else if (strcmp(sc, "replica") == 0) rc = sc_replica(v1);
    else if (strcmp(sc, "driver") == 0) {
        if (sum_tasks(50, 0)) return 1;
        fprintf(stderr, "mpi_failures: the driver kills itself (SIGKILL)\n");
        raise(SIGKILL);
        rc = 1;
    } else {
        fprintf(stderr, "mpi_failures: unknown scenario '%s'\n", sc);
        rc = 2;
    }
    st = tr_finalize();
    if (st != TR_OK) { fprintf(stderr, "rank 0: tr_finalize: %s: %s\n", tr_status_string(st), tr_last_error()); rc = 1; }
    if (rc == 0) printf("mpi_failures %s: ok\n", sc);
    return rc;
}
