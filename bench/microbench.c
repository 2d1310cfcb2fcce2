/*
 * microbench: the workloads of Ray's `ray microbenchmark`, on taskray, next
 * to the hardware limits that bound them.
 *
 *   mpirun -n 2 bench/microbench [--json] [--filter SUBSTR] [--seconds S]
 *
 * Workloads (names as Ray's, with '_' for ' '; see bench/README.md):
 *   single_client_get_calls            tr_get + tr_buf_release of a small put object
 *   single_client_put_calls            tr_put of 8 bytes + tr_ref_release
 *   single_client_put_gigabytes        10 puts of 80 MiB each, GB/s (1 GB = 1e9 bytes)
 *   single_client_tasks_and_get_batch  1000 tasks, one tr_get_many; tasks/s
 *   single_client_wait_1k_refs         1000 tasks, then 1000 tr_wait(k = 1) calls
 *                                      on the shrinking list of pending refs; cycles/s
 *   single_client_tasks_sync           submit one task and get it; tasks/s
 *   single_client_tasks_async          1000 tasks, then tr_get_i64 of each; tasks/s
 *   multi_client_tasks_async           every rank runs single_client_tasks_async at
 *                                      once; the sum of the ranks' tasks/s
 * Limits measured in the same run:
 *   limit_memcpy_gbps                  single-thread memcpy of 80 MiB, best of 5, GB/s
 *   limit_am_roundtrip_us              UCX active-message ping-pong of 8 bytes between
 *                                      ranks 0 and 1, microseconds per round trip
 *                                      (needs 2 ranks; null with 1)
 * A tiny task is echo(i): a remote function returning its int64 argument.
 *
 * How this program uses MPI.  It calls MPI_Init_thread(MPI_THREAD_MULTIPLE)
 * itself, before tr_init(): taskray then uses that MPI library state and
 * leaves MPI initialized at tr_finalize(), so the program calls MPI_Finalize()
 * at the end.  Between tr_init() and tr_finalize() it separates the phases
 * with barriers on MPI_COMM_WORLD and sums the multi-client rates with
 * MPI_Reduce.  That is safe because taskray serves tasks on its own threads
 * (the event loop and the executors), not on the application thread, and
 * makes no MPI call on the task path: a rank waiting in a barrier keeps
 * running the tasks sent to it.  The barriers poll MPI_Test with short sleeps
 * so that waiting ranks leave the cores to the runtime threads.
 *
 * Everything runs in TR_MODE_SPMD, so that every rank may submit in the
 * multi-client phase; the single-client phases submit from rank 0 only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#include <ucp/api/ucp.h>

#include <taskray.h>

#define BATCH         1000                /* tasks per batch, as in Ray */
#define SMALL_SIZE    8                   /* bytes of a small object */
#define BIG_SIZE      (80u * 1024 * 1024) /* one large put, and the memcpy size */
#define BIG_PUTS      10                  /* large puts per put_gigabytes cycle */
#define MEMCPY_TRIES  5
#define AM_ID         7
#define AM_WARMUP     1000
#define AM_ITERS      10000
#define AM_BATCHES    10                  /* median over batches of AM_ITERS/AM_BATCHES */

/* The same UCX features and worker thread mode as taskray's own context
 * (lib/comm/ucx.c: one thread, the event loop, owns the worker), with UCX's
 * default configuration otherwise. */
#define BENCH_UCX_FEATURES    (UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP)
#define BENCH_UCX_THREAD_MODE UCS_THREAD_MODE_SINGLE

typedef enum { UNIT_PER_S, UNIT_GB_S, UNIT_US } unit_t;

typedef struct {
    const char *name;
    unit_t      unit;
    int         ran;   /* selected and measured (or null) */
    double      value; /* NAN: not measurable here, printed as null */
} result_t;

enum {
    R_LIMIT_MEMCPY,
    R_LIMIT_AM,
    R_GET_CALLS,
    R_PUT_CALLS,
    R_PUT_GIGABYTES,
    R_TASKS_GET_BATCH,
    R_WAIT_1K_REFS,
    R_TASKS_SYNC,
    R_TASKS_ASYNC,
    R_MULTI_TASKS_ASYNC,
    R_COUNT
};

static result_t results[R_COUNT] = {
    [R_LIMIT_MEMCPY]      = { "limit_memcpy_gbps", UNIT_GB_S, 0, 0 },
    [R_LIMIT_AM]          = { "limit_am_roundtrip_us", UNIT_US, 0, 0 },
    [R_GET_CALLS]         = { "single_client_get_calls", UNIT_PER_S, 0, 0 },
    [R_PUT_CALLS]         = { "single_client_put_calls", UNIT_PER_S, 0, 0 },
    [R_PUT_GIGABYTES]     = { "single_client_put_gigabytes", UNIT_GB_S, 0, 0 },
    [R_TASKS_GET_BATCH]   = { "single_client_tasks_and_get_batch", UNIT_PER_S, 0, 0 },
    [R_WAIT_1K_REFS]      = { "single_client_wait_1k_refs", UNIT_PER_S, 0, 0 },
    [R_TASKS_SYNC]        = { "single_client_tasks_sync", UNIT_PER_S, 0, 0 },
    [R_TASKS_ASYNC]       = { "single_client_tasks_async", UNIT_PER_S, 0, 0 },
    [R_MULTI_TASKS_ASYNC] = { "multi_client_tasks_async", UNIT_PER_S, 0, 0 },
};

static struct {
    int         json;
    const char *filter;
    double      seconds;
    int         remote;
} opts = { 0, "", 1.0, 0 };

static int my_rank, num_ranks;

/* ------------------------------------------------------------- utilities */

static void die(const char *fmt, ...) TR_PRINTF(1, 2) __attribute__((noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "microbench: rank %d: ", my_rank);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

#define TR_CHECK(call)                                                         \
    do {                                                                       \
        tr_status_t chk_st_ = (call);                                          \
        if (chk_st_ != TR_OK) {                                                \
            die("%s: %s (%s)", #call, tr_status_string(chk_st_),               \
                tr_last_error());                                              \
        }                                                                      \
    } while (0)

#define UCS_CHECK(call)                                                        \
    do {                                                                       \
        ucs_status_t chk_st_ = (call);                                         \
        if (chk_st_ != UCS_OK) {                                               \
            die("%s: %s", #call, ucs_status_string(chk_st_));                  \
        }                                                                      \
    } while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int selected(int r)
{
    if (opts.remote && r == R_MULTI_TASKS_ASYNC) return 0;
    return strstr(results[r].name, opts.filter) != NULL;
}

static void *alloc_touched(size_t size, int byte)
{
    void *p = malloc(size);

    if (p == NULL) {
        die("cannot allocate %zu bytes", size);
    }
    memset(p, byte, size); /* fault every page in before timing */
    return p;
}

/*
 * A barrier on MPI_COMM_WORLD that waits quietly: it tests an MPI_Ibarrier
 * and sleeps between tests (or progresses @worker, when given, so that UCX
 * peers can finish their own closing).  A rank waiting here uses almost no
 * CPU, which leaves the cores to the taskray threads serving tasks.
 */
static void quiet_barrier(ucp_worker_h worker)
{
    const struct timespec nap = { 0, 1000 * 1000 }; /* 1 ms */
    MPI_Request req;
    int done = 0;

    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) {
            break;
        }
        if (worker != NULL) {
            ucp_worker_progress(worker);
        } else {
            nanosleep(&nap, NULL);
        }
    }
}

/*
 * Run @iter until @seconds have passed, after a warmup of a fifth of that
 * (at least one call).  @iter does one unit of work and returns how many
 * operations (tasks, calls, bytes) it did.  Returns operations per second.
 */
typedef double (*iter_fn_t)(void *ctx);

static double measure(iter_fn_t iter, void *ctx, double seconds)
{
    double t0 = now_s(), t, ops = 0;

    do {
        iter(ctx);
    } while (now_s() - t0 < seconds * 0.2);

    t0 = now_s();
    do {
        ops += iter(ctx);
        t = now_s();
    } while (t - t0 < seconds);
    return ops / (t - t0);
}

/* ------------------------------------------------------------ the limits */

static double memcpy_gbps(void)
{
    char *src = alloc_touched(BIG_SIZE, 1), *dst = alloc_touched(BIG_SIZE, 2);
    volatile char sink;
    double best = INFINITY, t0, t;
    int i;

    for (i = 0; i < MEMCPY_TRIES; i++) {
        src[i] = (char)i; /* a different copy each time */
        t0 = now_s();
        memcpy(dst, src, BIG_SIZE);
        t = now_s() - t0;
        sink = dst[i];
        best = t < best ? t : best;
    }
    (void)sink;
    free(src);
    free(dst);
    return (double)BIG_SIZE / 1e9 / best;
}

typedef struct {
    ucp_context_h context;
    ucp_worker_h  worker;
    ucp_ep_h      ep;
    uint64_t      received; /* AM messages received */
} am_bench_t;

static ucs_status_t am_recv(void *arg, const void *header, size_t header_length,
                            void *data, size_t length, const ucp_am_recv_param_t *param)
{
    (void)header;
    (void)header_length;
    (void)data;
    (void)length;
    (void)param;
    ((am_bench_t *)arg)->received++;
    return UCS_OK; /* the data is not kept */
}

static void am_wait_request(am_bench_t *b, ucs_status_ptr_t req, const char *what)
{
    ucs_status_t st;

    if (req == NULL) {
        return; /* completed in place */
    }
    if (UCS_PTR_IS_ERR(req)) {
        die("%s: %s", what, ucs_status_string(UCS_PTR_STATUS(req)));
    }
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS) {
        ucp_worker_progress(b->worker);
    }
    ucp_request_free(req);
    if (st != UCS_OK) {
        die("%s: %s", what, ucs_status_string(st));
    }
}

static void am_send(am_bench_t *b)
{
    static const uint64_t payload = 0x7461736b726179ull;
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = UCP_AM_SEND_FLAG_EAGER,
    };

    am_wait_request(b, ucp_am_send_nbx(b->ep, AM_ID, NULL, 0, &payload, sizeof(payload),
                                       &param),
                    "ucp_am_send_nbx");
}

static void am_wait_received(am_bench_t *b, uint64_t count)
{
    while (b->received < count) {
        ucp_worker_progress(b->worker);
    }
}

/* Ranks 0 and 1 each make a context, a worker and an endpoint to the other,
 * exchanging worker addresses over MPI. */
static void am_setup(am_bench_t *b)
{
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES,
        .features   = BENCH_UCX_FEATURES,
    };
    ucp_worker_params_t wparams = {
        .field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = BENCH_UCX_THREAD_MODE,
    };
    ucp_am_handler_param_t hparams = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id         = AM_ID,
        .cb         = am_recv,
        .arg        = b,
    };
    ucp_ep_params_t eparams;
    ucp_config_t *config;
    ucp_address_t *addr;
    size_t addr_len;
    uint64_t len, peer_len;
    void *peer_addr;
    int peer = 1 - my_rank;

    UCS_CHECK(ucp_config_read(NULL, NULL, &config)); /* default settings */
    UCS_CHECK(ucp_init(&params, config, &b->context));
    ucp_config_release(config);
    UCS_CHECK(ucp_worker_create(b->context, &wparams, &b->worker));
    UCS_CHECK(ucp_worker_set_am_recv_handler(b->worker, &hparams));
    UCS_CHECK(ucp_worker_get_address(b->worker, &addr, &addr_len));

    len = addr_len;
    MPI_Sendrecv(&len, 1, MPI_UINT64_T, peer, 0, &peer_len, 1, MPI_UINT64_T, peer, 0,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    peer_addr = malloc(peer_len);
    if (peer_addr == NULL) {
        die("out of memory");
    }
    MPI_Sendrecv(addr, (int)addr_len, MPI_BYTE, peer, 1, peer_addr, (int)peer_len, MPI_BYTE,
                 peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    ucp_worker_release_address(b->worker, addr);

    memset(&eparams, 0, sizeof(eparams));
    eparams.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
    eparams.address = peer_addr;
    UCS_CHECK(ucp_ep_create(b->worker, &eparams, &b->ep));
    free(peer_addr);
}

static void am_teardown(am_bench_t *b)
{
    ucp_request_param_t param = { .op_attr_mask = 0 };

    /* A flushing close; both peers keep progressing until both are done. */
    am_wait_request(b, ucp_ep_close_nbx(b->ep, &param), "ucp_ep_close_nbx");
    quiet_barrier(b->worker);
    ucp_worker_destroy(b->worker);
    ucp_cleanup(b->context);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/*
 * 8-byte active-message ping-pong between ranks 0 and 1 with busy polling:
 * the floor under any taskray round trip.  Returns, on rank 0, the median
 * over AM_BATCHES batches of the mean round trip in microseconds.  Every
 * rank calls it (it ends with a barrier); ranks above 1 only wait.
 */
static double am_roundtrip_us(void)
{
    am_bench_t b = { 0 };
    double batch_us[AM_BATCHES], t0;
    uint64_t i, n = 0;
    const uint64_t per_batch = AM_ITERS / AM_BATCHES;
    int k;

    if (my_rank > 1) {
        quiet_barrier(NULL);
        return NAN;
    }
    am_setup(&b);
    if (my_rank == 1) {
        for (i = 0; i < AM_WARMUP + AM_ITERS; i++) {
            am_wait_received(&b, i + 1);
            am_send(&b);
        }
    } else {
        for (i = 0; i < AM_WARMUP; i++) {
            am_send(&b);
            am_wait_received(&b, ++n);
        }
        for (k = 0; k < AM_BATCHES; k++) {
            t0 = now_s();
            for (i = 0; i < per_batch; i++) {
                am_send(&b);
                am_wait_received(&b, ++n);
            }
            batch_us[k] = (now_s() - t0) * 1e6 / (double)per_batch;
        }
    }
    am_teardown(&b);
    if (my_rank != 0) {
        return NAN;
    }
    qsort(batch_us, AM_BATCHES, sizeof(batch_us[0]), cmp_double);
    return (batch_us[(AM_BATCHES - 1) / 2] + batch_us[AM_BATCHES / 2]) / 2;
}

/* ------------------------------------------------------------- workloads */

/* The tiny task: echo(x) = x. */
static tr_status_t echo(tr_task_h task)
{
    int64_t x;
    tr_status_t st = tr_task_arg_i64(task, 0, &x);

    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(task, 0, x);
}
TR_REMOTE(echo)

typedef struct {
    int64_t  next;         /* the next echo argument */
    tr_ref_h refs[BATCH];
    tr_ref_h pending[BATCH];
    tr_buf_h bufs[BATCH];
    size_t   ready[BATCH];
    tr_ref_h small_ref;    /* get_calls */
    char    *big;          /* put_gigabytes */
} bench_ctx_t;

/* --remote: tasks need a resource that only ranks other than the submitter
 * have, so every task crosses between ranks (the default policy keeps work
 * on the owner's rank while it is less than half busy). */
static tr_task_params_t remote_params = {
    .field_mask = TR_TASK_FIELD_RESOURCES,
    .resources  = "microbench_remote=1",
};
static const tr_task_params_t *task_params = NULL;

static void submit_batch(bench_ctx_t *c)
{
    int i;

    for (i = 0; i < BATCH; i++) {
        TR_CHECK(tr_task_submit(echo, &TR_ARG_I64(c->next + i), 1, task_params, &c->refs[i]));
    }
}

static void expect_echo(bench_ctx_t *c, int i, int64_t value)
{
    if (value != c->next + i) {
        die("echo(%" PRId64 ") returned %" PRId64, c->next + i, value);
    }
}

static double iter_tasks_sync(void *arg)
{
    bench_ctx_t *c = arg;
    tr_ref_h ref;
    int64_t value;

    TR_CHECK(tr_task_submit(echo, &TR_ARG_I64(c->next), 1, task_params, &ref));
    TR_CHECK(tr_get_i64(ref, TR_TIMEOUT_INFINITE, &value));
    TR_CHECK(tr_ref_release(ref));
    expect_echo(c, 0, value);
    c->next++;
    return 1;
}

/* Ray: ray.get([small_value.remote() for _ in range(1000)]).  Here the
 * results are taken one by one, in submission order. */
static double iter_tasks_async(void *arg)
{
    bench_ctx_t *c = arg;
    int64_t value;
    int i;

    submit_batch(c);
    for (i = 0; i < BATCH; i++) {
        TR_CHECK(tr_get_i64(c->refs[i], TR_TIMEOUT_INFINITE, &value));
        TR_CHECK(tr_ref_release(c->refs[i]));
        expect_echo(c, i, value);
    }
    c->next += BATCH;
    return BATCH;
}

/* Ray: submitted = [small_value.remote() ...]; ray.get(submitted), one batch get. */
static double iter_tasks_get_batch(void *arg)
{
    bench_ctx_t *c = arg;
    int64_t value;
    int i;

    submit_batch(c);
    TR_CHECK(tr_get_many(c->refs, BATCH, TR_TIMEOUT_INFINITE, c->bufs));
    for (i = 0; i < BATCH; i++) {
        if (tr_buf_size(c->bufs[i]) != sizeof(value)) {
            die("echo returned %zu bytes", tr_buf_size(c->bufs[i]));
        }
        memcpy(&value, tr_buf_data(c->bufs[i]), sizeof(value));
        expect_echo(c, i, value);
        TR_CHECK(tr_buf_release(c->bufs[i]));
        TR_CHECK(tr_ref_release(c->refs[i]));
    }
    c->next += BATCH;
    return BATCH;
}

/* Ray: 1000 tasks, then `_ready, not_ready = ray.wait(not_ready)` until
 * nothing is pending: 1000 waits for one ref each, over a shrinking list
 * kept in submission order.  One cycle is one operation. */
static double iter_wait_1k_refs(void *arg)
{
    bench_ctx_t *c = arg;
    size_t n = BATCH, num_ready, j;
    int i;

    submit_batch(c);
    memcpy(c->pending, c->refs, sizeof(c->refs));
    while (n > 0) {
        TR_CHECK(tr_wait(c->pending, n, 1, TR_TIMEOUT_INFINITE, c->ready, &num_ready));
        if (num_ready != 1 || (j = c->ready[0]) >= n) {
            die("tr_wait: %zu ready, index %zu of %zu", num_ready, c->ready[0], n);
        }
        memmove(&c->pending[j], &c->pending[j + 1], (n - j - 1) * sizeof(c->pending[0]));
        n--;
    }
    for (i = 0; i < BATCH; i++) {
        TR_CHECK(tr_ref_release(c->refs[i]));
    }
    c->next += BATCH;
    return 1;
}

static double iter_put_calls(void *arg)
{
    bench_ctx_t *c = arg;
    tr_ref_h ref;

    TR_CHECK(tr_put(&c->next, SMALL_SIZE, &ref));
    TR_CHECK(tr_ref_release(ref));
    return 1;
}

static double iter_get_calls(void *arg)
{
    bench_ctx_t *c = arg;
    tr_buf_h buf;

    TR_CHECK(tr_get(c->small_ref, TR_TIMEOUT_INFINITE, &buf));
    if (tr_buf_size(buf) != SMALL_SIZE) {
        die("small object has %zu bytes", tr_buf_size(buf));
    }
    TR_CHECK(tr_buf_release(buf));
    return 1;
}

static double iter_put_gigabytes(void *arg)
{
    bench_ctx_t *c = arg;
    tr_ref_h ref;
    int i;

    for (i = 0; i < BIG_PUTS; i++) {
        TR_CHECK(tr_put(c->big, BIG_SIZE, &ref));
        TR_CHECK(tr_ref_release(ref));
    }
    return (double)BIG_PUTS * BIG_SIZE / 1e9; /* GB */
}

/* A single-client workload: rank 0 measures, the other ranks serve. */
static void run_single(int r, iter_fn_t iter, bench_ctx_t *c)
{
    if (!selected(r)) {
        return;
    }
    if (my_rank == 0) {
        results[r].value = measure(iter, c, opts.seconds);
    }
    results[r].ran = 1;
    quiet_barrier(NULL);
}

static void run_workloads(bench_ctx_t *c)
{
    double mine, sum = 0;

    if (my_rank == 0 && selected(R_GET_CALLS)) {
        int64_t zero = 0;

        TR_CHECK(tr_put(&zero, SMALL_SIZE, &c->small_ref));
    }
    run_single(R_GET_CALLS, iter_get_calls, c);
    if (c->small_ref != TR_REF_NULL) {
        TR_CHECK(tr_ref_release(c->small_ref));
        c->small_ref = TR_REF_NULL;
    }
    run_single(R_PUT_CALLS, iter_put_calls, c);

    if (my_rank == 0 && selected(R_PUT_GIGABYTES)) {
        c->big = alloc_touched(BIG_SIZE, 3);
    }
    run_single(R_PUT_GIGABYTES, iter_put_gigabytes, c);
    free(c->big);
    c->big = NULL;

    run_single(R_TASKS_GET_BATCH, iter_tasks_get_batch, c);
    run_single(R_WAIT_1K_REFS, iter_wait_1k_refs, c);
    run_single(R_TASKS_SYNC, iter_tasks_sync, c);
    run_single(R_TASKS_ASYNC, iter_tasks_async, c);

    /* Every rank submits at once; the rate is the sum over ranks. */
    if (selected(R_MULTI_TASKS_ASYNC)) {
        mine = measure(iter_tasks_async, c, opts.seconds);
        MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        results[R_MULTI_TASKS_ASYNC].value = sum;
        results[R_MULTI_TASKS_ASYNC].ran = 1;
        quiet_barrier(NULL);
    }
}

/* ---------------------------------------------------------------- output */

static const char *unit_name(unit_t u)
{
    return u == UNIT_PER_S ? "/s" : u == UNIT_GB_S ? "GB/s" : "us";
}

static void print_json(void)
{
    int r;

    printf("{\"ranks\": %d, \"cores\": %ld", num_ranks, sysconf(_SC_NPROCESSORS_ONLN));
    for (r = 0; r < R_COUNT; r++) {
        if (!results[r].ran) {
            continue;
        }
        if (isfinite(results[r].value)) {
            printf(", \"%s\": %.3f", results[r].name, results[r].value);
        } else {
            printf(", \"%s\": null", results[r].name);
        }
    }
    printf("}\n");
}

static int have(int r)
{
    return results[r].ran && isfinite(results[r].value);
}

static void print_table(void)
{
    double rtt_us, ratio;
    int r;

    printf("taskray %s microbenchmark: %d rank(s), %ld core(s), %.2f s per workload\n\n",
           tr_version(), num_ranks, sysconf(_SC_NPROCESSORS_ONLN), opts.seconds);
    printf("%-36s %16s  %s\n", "name", "value", "unit");
    for (r = 0; r < R_COUNT; r++) {
        if (!results[r].ran) {
            continue;
        }
        if (isfinite(results[r].value)) {
            printf("%-36s %16.3f  %s\n", results[r].name, results[r].value,
                   unit_name(results[r].unit));
        } else {
            printf("%-36s %16s  %s\n", results[r].name, "-", "(needs 2 ranks)");
        }
    }

    printf("\ntargets\n");
    if (have(R_TASKS_ASYNC)) {
        printf("  single_client_tasks_async %.0f/s vs target 1000000/s: %s\n",
               results[R_TASKS_ASYNC].value,
               results[R_TASKS_ASYNC].value >= 1e6 ? "met" : "not met");
    }
    if (have(R_TASKS_SYNC) && have(R_LIMIT_AM)) {
        rtt_us = 1e6 / results[R_TASKS_SYNC].value;
        ratio = rtt_us / results[R_LIMIT_AM].value;
        printf("  single_client_tasks_sync round trip %.2f us = %.2f x "
               "limit_am_roundtrip_us (%.2f us), target <= 3: %s\n",
               rtt_us, ratio, results[R_LIMIT_AM].value, ratio <= 3 ? "met" : "not met");
    }
    if (have(R_PUT_GIGABYTES) && have(R_LIMIT_MEMCPY)) {
        ratio = results[R_PUT_GIGABYTES].value / results[R_LIMIT_MEMCPY].value;
        printf("  single_client_put_gigabytes = %.2f x limit_memcpy_gbps, target >= 0.9: %s\n",
               ratio, ratio >= 0.9 ? "met" : "not met");
    }
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpirun -n 2 microbench [--json] [--filter SUBSTR] [--seconds S] [--remote]\n"
            "  --json           print one JSON object (rank 0) instead of a table\n"
            "  --filter SUBSTR  run only the workloads whose name contains SUBSTR\n"
            "  --seconds S      measure each workload for about S seconds (default 1)\n"
            "  --remote         single-client tasks never run on rank 0 (cross-rank figures;\n"
            "                   multi_client_tasks_async is then skipped)\n");
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "filter", required_argument, NULL, 'f' },
        { "seconds", required_argument, NULL, 's' },
        { "remote", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    int opt;

    opterr = (my_rank == 0);
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            opts.json = 1;
            break;
        case 'f':
            opts.filter = optarg;
            break;
        case 'r':
            opts.remote = 1;
            break;
        case 's':
            errno = 0;
            opts.seconds = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(opts.seconds > 0) ||
                opts.seconds > 3600) {
                if (my_rank == 0) {
                    fprintf(stderr, "microbench: bad --seconds '%s'\n", optarg);
                }
                return 2;
            }
            break;
        case 'h':
            if (my_rank == 0) {
                usage(stdout);
            }
            return 0;
        default:
            if (my_rank == 0) {
                usage(stderr);
            }
            return 2;
        }
    }
    if (optind != argc) {
        if (my_rank == 0) {
            usage(stderr);
        }
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    const tr_init_params_t init = {
        .field_mask = TR_INIT_FIELD_MODE,
        .mode       = TR_MODE_SPMD,
    };
    static bench_ctx_t ctx; /* large: keep it off the stack */
    int provided, rc;

    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "microbench: MPI_Init_thread failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &num_ranks);
    if (provided < MPI_THREAD_MULTIPLE) {
        die("MPI_THREAD_MULTIPLE is not available (got level %d)", provided);
    }
    rc = parse_args(argc, argv); /* same arguments, same outcome on every rank */
    if (rc >= 0) {
        MPI_Finalize();
        return rc;
    }

    /* The limits, before the runtime starts, so nothing competes. */
    if (selected(R_LIMIT_MEMCPY)) {
        if (my_rank == 0) {
            results[R_LIMIT_MEMCPY].value = memcpy_gbps();
        }
        results[R_LIMIT_MEMCPY].ran = 1;
        quiet_barrier(NULL);
    }
    if (selected(R_LIMIT_AM)) {
        results[R_LIMIT_AM].value = num_ranks >= 2 ? am_roundtrip_us() : NAN;
        results[R_LIMIT_AM].ran = 1;
    }

    if (opts.remote) {
        if (num_ranks < 2) die("--remote needs at least 2 ranks");
        if (my_rank != 0) setenv("TASKRAY_RESOURCES", "microbench_remote=1", 1);
        task_params = &remote_params;
    }
    TR_CHECK(tr_init(&init));
    ctx.next = (int64_t)my_rank << 40; /* distinct echo arguments per rank */
    quiet_barrier(NULL);
    run_workloads(&ctx);
    TR_CHECK(tr_finalize());

    if (my_rank == 0) {
        if (opts.json) {
            print_json();
        } else {
            print_table();
        }
        fflush(stdout);
    }
    MPI_Finalize();
    return 0;
}
