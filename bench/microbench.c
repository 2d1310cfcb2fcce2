/*
 * microbench: the workloads of Ray's `ray microbenchmark`, on taskray, next
 * to the hardware limits that bound them.
 *
 *   mpirun -n 2 bench/microbench [--json] [--filter SUBSTR] [--seconds S]
 *                                [--remote] [--node-per-rank]
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
 *   multi_client_put_gigabytes         every rank runs single_client_put_gigabytes at
 *                                      once; the sum of the ranks' GB/s
 *   1_1_actor_calls_sync               rank 0 calls a no-op method of an actor on rank 1
 *                                      and gets each result before the next call; calls/s
 *   1_1_actor_calls_async              1000 calls to that actor, then one tr_get_many;
 *                                      calls/s
 *   1_1_actor_calls_concurrent         the same with an actor of max_concurrency 16
 *   1_n_actor_calls_async              rank 0 calls n actors (one on every rank), 1000
 *                                      calls each per batch, round-robin; calls/s
 *   n_n_actor_calls_async              every rank does 1_n_actor_calls_async with its
 *                                      own n actors at once; the sum of the ranks' calls/s
 *   n_n_actor_calls_with_arg_async     every rank calls its own actor on the next rank
 *                                      with a TR_ARG_REF to an 8-byte object it put, 1000
 *                                      calls per batch; the sum of the ranks' calls/s
 *   actor_create_per_s                 rank 0 creates 1000 actors (default placement),
 *                                      calls a no-op method of each, gets all, releases
 *                                      all; actors/s
 *   single_client_get_object_containing_10k_refs
 *                                      tr_get of an object holding 10,000 refs
 *                                      (tr_put_refs), tr_buf_refs of all of them, and
 *                                      their release; gets/s
 *   get_same_node_1gib_us              zero-copy tr_get_buffer of a 1 GiB task result
 *                                      held by rank 1 on rank 0's node, one byte read,
 *                                      tr_buf_release; median microseconds
 *   get_cross_node_gbps                tr_get of a fresh 64 MiB task result held by
 *                                      rank 1 on another node (ucp_get); GB/s
 *   spill_gbps, restore_gbps           bytes spilled per second of tr_put time with
 *                                      objects totalling 4x the store, and bytes
 *                                      restored per second of tr_get time; GB/s
 * Limits measured in the same run:
 *   limit_memcpy_gbps                  single-thread memcpy of 80 MiB, best of 5, GB/s
 *   limit_am_roundtrip_us              UCX active-message ping-pong of 8 bytes between
 *                                      ranks 0 and 1, microseconds per round trip
 *                                      (needs 2 ranks; null with 1); also measured
 *                                      when a *_sync workload is selected, for
 *                                      its target
 *   limit_ucx_get_gbps                 one raw ucp_get of 64 MiB from rank 1 to rank 0
 *                                      over the transports taskray uses, best of the
 *                                      gets of about --seconds (at least 5) before the
 *                                      workloads and as many after them, GB/s
 *                                      (needs ranks 0 and 1 on different nodes)
 *   limit_disk_write_gbps              plain write() of the spilled bytes, in the same
 *                                      chunks, to a file in the spill directory, best
 *                                      of 3, GB/s
 *
 * Three invocations cover everything (the workloads need incompatible set-ups;
 * what an invocation cannot measure is printed as skipped, null in the JSON):
 *   mpirun -n 2 bench/microbench                      same node, default store
 *   mpirun -n 2 bench/microbench --node-per-rank --filter cross_node
 *   mpirun -n 2 bench/microbench --filter spill       a small store (setenv)
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
 * multi-client phases; the single-client phases submit from rank 0 only.
 * Every rank r has the custom resource microbench_rank<r> (added to
 * TASKRAY_RESOURCES before tr_init), so that the object workloads can make
 * their objects on rank 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
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
#define NUM_INNER     10000               /* refs inside the container object */
#define SAME_NODE_SIZE ((size_t)1 << 30)  /* get_same_node_1gib_us */
#define SAME_NODE_SLACK ((size_t)64 << 20) /* store room needed beyond the object */
#define MAX_SAMPLES   200000              /* get_same_node_1gib_us timings kept */
#define CROSS_SIZE    ((size_t)64 << 20)  /* get_cross_node_gbps, limit_ucx_get_gbps */
#define UCX_GET_TRIES 5                   /* at least, after the warm-up */
#define GET_SPIN_US   50                  /* as TASKRAY_SPIN_US's default */
#define SPILL_SHARE_MIB 256               /* store share per rank set for --filter spill */
#define SPILL_PARTS   8                   /* objects that fill the store */
#define SPILL_ROUNDS  4                   /* objects put: SPILL_ROUNDS x the store */
#define DISK_TRIES    3
#define PAGE          4096

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
    const char *group; /* also matched by --filter; NULL for none */
    char        skip[160]; /* why value is NAN */
} result_t;

enum {
    R_LIMIT_MEMCPY,
    R_LIMIT_AM,
    R_LIMIT_UCX_GET,
    R_LIMIT_DISK_WRITE,
    R_GET_CALLS,
    R_PUT_CALLS,
    R_PUT_GIGABYTES,
    R_TASKS_GET_BATCH,
    R_WAIT_1K_REFS,
    R_TASKS_SYNC,
    R_TASKS_ASYNC,
    R_MULTI_TASKS_ASYNC,
    R_MULTI_PUT_GIGABYTES,
    R_ACTOR_SYNC,
    R_ACTOR_ASYNC,
    R_ACTOR_CONCURRENT,
    R_ACTOR_1_N,
    R_ACTOR_N_N,
    R_ACTOR_N_N_ARG,
    R_ACTOR_CREATE,
    R_GET_10K_REFS,
    R_GET_SAME_NODE,
    R_GET_CROSS_NODE,
    R_SPILL,
    R_RESTORE,
    R_COUNT
};

static result_t results[R_COUNT] = {
    [R_LIMIT_MEMCPY]      = { "limit_memcpy_gbps", UNIT_GB_S, 0, 0 },
    [R_LIMIT_AM]          = { "limit_am_roundtrip_us", UNIT_US, 0, 0 },
    [R_LIMIT_UCX_GET]     = { "limit_ucx_get_gbps", UNIT_GB_S, 0, 0, "cross_node" },
    [R_LIMIT_DISK_WRITE]  = { "limit_disk_write_gbps", UNIT_GB_S, 0, 0, "spill" },
    [R_GET_CALLS]         = { "single_client_get_calls", UNIT_PER_S, 0, 0 },
    [R_PUT_CALLS]         = { "single_client_put_calls", UNIT_PER_S, 0, 0 },
    [R_PUT_GIGABYTES]     = { "single_client_put_gigabytes", UNIT_GB_S, 0, 0 },
    [R_TASKS_GET_BATCH]   = { "single_client_tasks_and_get_batch", UNIT_PER_S, 0, 0 },
    [R_WAIT_1K_REFS]      = { "single_client_wait_1k_refs", UNIT_PER_S, 0, 0 },
    [R_TASKS_SYNC]        = { "single_client_tasks_sync", UNIT_PER_S, 0, 0 },
    [R_TASKS_ASYNC]       = { "single_client_tasks_async", UNIT_PER_S, 0, 0 },
    [R_MULTI_TASKS_ASYNC] = { "multi_client_tasks_async", UNIT_PER_S, 0, 0 },
    [R_MULTI_PUT_GIGABYTES] = { "multi_client_put_gigabytes", UNIT_GB_S, 0, 0 },
    [R_ACTOR_SYNC]        = { "1_1_actor_calls_sync", UNIT_PER_S, 0, 0 },
    [R_ACTOR_ASYNC]       = { "1_1_actor_calls_async", UNIT_PER_S, 0, 0 },
    [R_ACTOR_CONCURRENT]  = { "1_1_actor_calls_concurrent", UNIT_PER_S, 0, 0 },
    [R_ACTOR_1_N]         = { "1_n_actor_calls_async", UNIT_PER_S, 0, 0 },
    [R_ACTOR_N_N]         = { "n_n_actor_calls_async", UNIT_PER_S, 0, 0 },
    [R_ACTOR_N_N_ARG]     = { "n_n_actor_calls_with_arg_async", UNIT_PER_S, 0, 0 },
    [R_ACTOR_CREATE]      = { "actor_create_per_s", UNIT_PER_S, 0, 0 },
    [R_GET_10K_REFS]      = { "single_client_get_object_containing_10k_refs", UNIT_PER_S, 0, 0 },
    [R_GET_SAME_NODE]     = { "get_same_node_1gib_us", UNIT_US, 0, 0 },
    [R_GET_CROSS_NODE]    = { "get_cross_node_gbps", UNIT_GB_S, 0, 0 },
    [R_SPILL]             = { "spill_gbps", UNIT_GB_S, 0, 0, "spill" },
    [R_RESTORE]           = { "restore_gbps", UNIT_GB_S, 0, 0, "spill" },
};

static struct {
    int         json;
    const char *filter;
    double      seconds;
    int         remote;
    int         node_per_rank;
} opts = { 0, "", 1.0, 0, 0 };

static int my_rank, num_ranks;
static char spill_note[512]; /* how the spill workloads ran, for the table */

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
    return strstr(results[r].name, opts.filter) != NULL ||
           (results[r].group != NULL && strstr(results[r].group, opts.filter) != NULL);
}

static int in_spill_group(int r)
{
    return r == R_SPILL || r == R_RESTORE || r == R_LIMIT_DISK_WRITE;
}

/* Mark @r as selected but not measurable here; the table prints @why. */
static void skip(int r, const char *why)
{
    results[r].ran = 1;
    results[r].value = NAN;
    snprintf(results[r].skip, sizeof(results[r].skip), "%s", why);
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

/*
 * Progress @b's worker until @done says so, the way taskray's event loop
 * waits (lib/comm/ucx.c): polling with sched_yield() between polls for
 * GET_SPIN_US after the last event, then sleeping on the worker's event fd.
 * With TCP (simulated nodes on one host) the kernel moves the bytes on the
 * same cores: on the 2-core VM, with other busy processes, polling without
 * yielding made the limit up to 1.5 times slower than taskray's own gets.
 */
static void ucx_wait(am_bench_t *b, int (*done)(am_bench_t *b, void *arg), void *arg)
{
    double idle_since = now_s();
    ucs_status_t st;

    while (!done(b, arg)) {
        if (ucp_worker_progress(b->worker)) {
            idle_since = now_s();
            continue;
        }
        if (now_s() - idle_since < GET_SPIN_US * 1e-6) {
            sched_yield();
            continue;
        }
        st = ucp_worker_arm(b->worker);
        if (st == UCS_OK) {
            UCS_CHECK(ucp_worker_wait(b->worker));
        } else if (st != UCS_ERR_BUSY) {
            die("ucp_worker_arm: %s", ucs_status_string(st));
        }
        idle_since = now_s();
    }
}

static int request_done(am_bench_t *b, void *req)
{
    (void)b;
    return ucp_request_check_status(req) != UCS_INPROGRESS;
}

static int message_received(am_bench_t *b, void *arg)
{
    (void)arg;
    return b->received > 0;
}

/* Ranks 0 and 1 each make a context, a worker and an endpoint to the other,
 * exchanging worker addresses over MPI.  @peer_errors: the endpoint asks for
 * peer-failure error handling, as taskray's endpoints do (lib/comm/ucx.c). */
static void am_setup(am_bench_t *b, int peer_errors)
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
    if (peer_errors) {
        eparams.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
        eparams.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    }
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
    am_setup(&b, 0);
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

/*
 * One raw ucp_get of CROSS_SIZE bytes from rank 1's memory into rank 0's:
 * the floor under get_cross_node_gbps.  Called after tr_init(), so that its
 * context reads the same UCX_* settings as taskray's (UCX_TLS=^sm between
 * simulated nodes, set by taskray in this process's environment); the same
 * features, thread mode and endpoint error mode as taskray's, both buffers
 * registered with ucp_mem_map like taskray's arenas, both sides waiting as
 * taskray's event loop does (ucx_wait).  One warm-up get, then the best of
 * at least UCX_GET_TRIES gets over opts.seconds.  Ranks 0 and 1 take part,
 * the others wait.
 * Returns GB/s on rank 0, NAN elsewhere.
 */
static double ucx_get_gbps(void)
{
    am_bench_t b = { 0 };
    ucp_mem_map_params_t mp = { 0 };
    ucp_mem_h memh;
    ucp_rkey_h rkey = NULL;
    void *rkey_buf = NULL;
    size_t rkey_len = 0;
    uint64_t remote[2] = { 0, 0 }; /* address, packed rkey length */
    char *buf;
    double best = INFINITY, t0, t, t_end;
    size_t i;

    if (my_rank > 1) {
        quiet_barrier(NULL);
        return NAN;
    }
    am_setup(&b, 1);
    buf = alloc_touched(CROSS_SIZE, my_rank == 1 ? 0x31 : 0);
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = buf;
    mp.length = CROSS_SIZE;
    UCS_CHECK(ucp_mem_map(b.context, &mp, &memh));
    if (my_rank == 1) {
        UCS_CHECK(ucp_rkey_pack(b.context, memh, &rkey_buf, &rkey_len));
        remote[0] = (uint64_t)(uintptr_t)buf;
        remote[1] = rkey_len;
        MPI_Send(remote, 2, MPI_UINT64_T, 0, 2, MPI_COMM_WORLD);
        MPI_Send(rkey_buf, (int)rkey_len, MPI_BYTE, 0, 3, MPI_COMM_WORLD);
        ucp_rkey_buffer_release(rkey_buf);
    } else {
        MPI_Recv(remote, 2, MPI_UINT64_T, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if ((rkey_buf = malloc(remote[1])) == NULL) die("out of memory");
        MPI_Recv(rkey_buf, (int)remote[1], MPI_BYTE, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        UCS_CHECK(ucp_ep_rkey_unpack(b.ep, rkey_buf, &rkey));
        free(rkey_buf);
        t_end = now_s() + opts.seconds;
        /* the first get warms up; then at least UCX_GET_TRIES, for opts.seconds */
        for (i = 0; i <= UCX_GET_TRIES || now_s() < t_end; i++) {
            ucp_request_param_t param = { .op_attr_mask = 0 };
            ucs_status_ptr_t req;

            buf[i % (CROSS_SIZE / PAGE) * PAGE] = 0;
            t0 = now_s();
            req = ucp_get_nbx(b.ep, buf, CROSS_SIZE, remote[0], rkey, &param);
            if (req != NULL && !UCS_PTR_IS_ERR(req)) {
                ucx_wait(&b, request_done, req);
            }
            am_wait_request(&b, req, "ucp_get_nbx");
            t = now_s() - t0;
            if (buf[i % (CROSS_SIZE / PAGE) * PAGE] != 0x31 || buf[CROSS_SIZE - 1] != 0x31) {
                die("ucp_get of %zu bytes read wrong data", CROSS_SIZE);
            }
            if (i > 0 && t < best) best = t;
        }
        ucp_rkey_destroy(rkey);
    }
    /* Rank 1 only progresses its worker until rank 0's message says it is
     * done: without hardware RMA (TCP) the target side of a get is software
     * that runs in that progress, as on taskray's event loop. */
    if (my_rank == 0) {
        am_send(&b);
    } else {
        ucx_wait(&b, message_received, NULL);
    }
    UCS_CHECK(ucp_mem_unmap(b.context, memh));
    am_teardown(&b);
    free(buf);
    return my_rank == 0 ? (double)CROSS_SIZE / 1e9 / best : NAN;
}

/* The spill directory taskray uses (taskray(7), TASKRAY_SPILL_DIR). */
static const char *spill_base(void)
{
    const char *d = getenv("TASKRAY_SPILL_DIR");

    if (d == NULL || *d == '\0') d = getenv("TMPDIR");
    if (d == NULL || *d == '\0') d = "/tmp";
    return d;
}

/* Plain sequential write() of @nchunks chunks of @chunk bytes from @src into
 * a new file of the spill directory, closed and unlinked after each try (no
 * fsync: spill files are never synced either); best of DISK_TRIES, GB/s. */
static double disk_write_gbps(const char *src, size_t chunk, size_t nchunks)
{
    char path[4096];
    double best = INFINITY, t0, t;
    size_t i, done;
    ssize_t w;
    int k, fd;

    snprintf(path, sizeof(path), "%s/microbench-disk-%ld.tmp", spill_base(), (long)getpid());
    for (k = 0; k < DISK_TRIES; k++) {
        t0 = now_s();
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("cannot create %s: %s", path, strerror(errno));
        for (i = 0; i < nchunks; i++) {
            for (done = 0; done < chunk; done += (size_t)w) {
                w = write(fd, src + done, chunk - done);
                if (w < 0 && errno == EINTR) {
                    w = 0;
                    continue;
                }
                if (w <= 0) die("write to %s: %s", path, strerror(errno));
            }
        }
        if (close(fd) != 0) die("close of %s: %s", path, strerror(errno));
        t = now_s() - t0;
        unlink(path);
        best = t < best ? t : best;
    }
    return (double)chunk * (double)nchunks / 1e9 / best;
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

/* fill_pages(size, stamp): a @size-byte result written in place
 * (tr_task_return_alloc), every page touched: byte 0 of each page and the
 * last byte hold @stamp. */
static tr_status_t fill_pages(tr_task_h task)
{
    int64_t size, stamp;
    unsigned char *p;
    size_t off;
    tr_status_t st;

    if ((st = tr_task_arg_i64(task, 0, &size)) != TR_OK ||
        (st = tr_task_arg_i64(task, 1, &stamp)) != TR_OK) {
        return st;
    }
    if (size <= 0) {
        tr_task_fail(task, "size %" PRId64 " is not positive", size);
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_return_alloc(task, 0, (size_t)size, (void **)&p)) != TR_OK) {
        tr_task_fail(task, "tr_task_return_alloc of %" PRId64 " bytes: %s (%s)", size,
                     tr_status_string(st), tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    for (off = 0; off < (size_t)size; off += PAGE) {
        p[off] = (unsigned char)stamp;
    }
    p[size - 1] = (unsigned char)stamp;
    return TR_OK;
}
TR_REMOTE(fill_pages)

/* Check the stamps fill_pages wrote. */
static void expect_pages(const unsigned char *p, size_t size, int64_t stamp)
{
    size_t off;

    for (off = 0; off < size; off += PAGE) {
        if (p[off] != (unsigned char)stamp) {
            die("object byte %zu is %u, not %u", off, p[off], (unsigned)(unsigned char)stamp);
        }
    }
    if (p[size - 1] != (unsigned char)stamp) die("the object's last byte is wrong");
}

typedef struct {
    int64_t  next;         /* the next echo argument */
    tr_ref_h refs[BATCH];
    tr_ref_h pending[BATCH];
    tr_buf_h bufs[BATCH];
    size_t   ready[BATCH];
    tr_ref_h small_ref;    /* get_calls */
    char    *big;          /* put_gigabytes */
    tr_ref_h container;    /* get_object_containing_10k_refs */
    tr_ref_h inner[NUM_INNER];
} bench_ctx_t;

/* Tasks that must run on rank 1 (it alone has microbench_rank1). */
static tr_task_params_t rank1_params = {
    .field_mask = TR_TASK_FIELD_RESOURCES,
    .resources  = "microbench_rank1=1",
};

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

/* Ray: ray.get() of an object that holds 10k refs (a list of ObjectRefs):
 * the container's view, a new handle to each ref inside, and their release. */
static double iter_get_10k_refs(void *arg)
{
    bench_ctx_t *c = arg;
    tr_buf_h buf;
    int i;

    TR_CHECK(tr_get(c->container, TR_TIMEOUT_INFINITE, &buf));
    if (tr_buf_num_refs(buf) != NUM_INNER) {
        die("the container holds %zu refs, not %d", tr_buf_num_refs(buf), NUM_INNER);
    }
    TR_CHECK(tr_buf_refs(buf, c->inner, NUM_INNER));
    for (i = 0; i < NUM_INNER; i++) {
        TR_CHECK(tr_ref_release(c->inner[i]));
    }
    TR_CHECK(tr_buf_release(buf));
    return 1;
}

/* Submit fill_pages(size, stamp) to rank 1 and wait until its result is ready. */
static tr_ref_h make_on_rank1(size_t size, int64_t stamp)
{
    tr_ref_h ref;
    size_t idx, n;
    const tr_arg_t args[2] = { TR_ARG_I64((int64_t)size), TR_ARG_I64(stamp) };

    TR_CHECK(tr_task_submit(fill_pages, args, 2, &rank1_params, &ref));
    TR_CHECK(tr_wait(&ref, 1, 1, TR_TIMEOUT_INFINITE, &idx, &n));
    return ref;
}

static void setup_10k_refs(bench_ctx_t *c)
{
    const int64_t n = NUM_INNER;
    int i;

    for (i = 0; i < NUM_INNER; i++) {
        TR_CHECK(tr_put_i64(i, &c->inner[i]));
    }
    TR_CHECK(tr_put_refs(&n, sizeof(n), c->inner, NUM_INNER, &c->container));
    for (i = 0; i < NUM_INNER; i++) { /* the container keeps them alive */
        TR_CHECK(tr_ref_release(c->inner[i]));
    }
}

/*
 * get_same_node_1gib_us, on rank 0: rank 1 makes a 1 GiB object; time
 * tr_get_buffer + reading one byte + tr_buf_release, one get at a time, for
 * opts.seconds after a warm-up of a fifth of that; the median.
 */
static double same_node_get_us(void)
{
    static double us[MAX_SAMPLES];
    tr_ref_h ref = make_on_rank1(SAME_NODE_SIZE, 0x5a);
    const void *data;
    size_t size, n = 0;
    tr_buf_h buf;
    volatile unsigned char sink;
    double t0 = now_s(), t1, t2;
    int warm = 1;

    TR_CHECK(tr_get_buffer(ref, TR_TIMEOUT_INFINITE, &data, &size, &buf));
    if (size != SAME_NODE_SIZE) die("the object has %zu bytes", size);
    expect_pages(data, size, 0x5a); /* every page, once, untimed */
    TR_CHECK(tr_buf_release(buf));
    for (;;) {
        t1 = now_s();
        TR_CHECK(tr_get_buffer(ref, TR_TIMEOUT_INFINITE, &data, &size, &buf));
        sink = ((const unsigned char *)data)[size / 2];
        TR_CHECK(tr_buf_release(buf));
        t2 = now_s();
        if (warm) {
            if (t2 - t0 >= opts.seconds * 0.2) {
                warm = 0;
                t0 = t2;
            }
            continue;
        }
        us[n++] = (t2 - t1) * 1e6;
        if (n == MAX_SAMPLES || t2 - t0 >= opts.seconds) break;
    }
    (void)sink;
    TR_CHECK(tr_ref_release(ref));
    qsort(us, n, sizeof(us[0]), cmp_double);
    return n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
}

/*
 * get_cross_node_gbps, on rank 0: rank 1 (another node) makes a fresh
 * CROSS_SIZE object per iteration (a second get of one object would read the
 * local copy); the task is awaited with tr_wait, then only tr_get is timed.
 * Bytes got over the summed tr_get times, for opts.seconds of wall time after
 * a warm-up of a fifth of that.
 */
static double cross_node_get_gbps(void)
{
    double t0 = now_s(), t1, t2, get_s = 0, bytes = 0;
    int64_t stamp = 0;
    tr_buf_h buf;
    tr_ref_h ref;
    int warm = 1;

    for (;;) {
        ref = make_on_rank1(CROSS_SIZE, ++stamp);
        t1 = now_s();
        TR_CHECK(tr_get(ref, TR_TIMEOUT_INFINITE, &buf));
        t2 = now_s();
        if (tr_buf_size(buf) != CROSS_SIZE) die("the object has %zu bytes", tr_buf_size(buf));
        expect_pages(tr_buf_data(buf), CROSS_SIZE, stamp);
        TR_CHECK(tr_buf_release(buf));
        TR_CHECK(tr_ref_release(ref));
        if (warm) {
            if (t2 - t0 >= opts.seconds * 0.2) {
                warm = 0;
                t0 = now_s();
            }
            continue;
        }
        get_s += t2 - t1;
        bytes += (double)CROSS_SIZE;
        if (now_s() - t0 >= opts.seconds) break;
    }
    return bytes / 1e9 / get_s;
}

/* This rank's object store statistics (tr_object_store_stats). */
static tr_object_store_stats_t store_stats(void)
{
    tr_object_store_stats_t st;

    TR_CHECK(tr_object_store_stats(&st));
    return st;
}

/*
 * spill_gbps, restore_gbps and limit_disk_write_gbps, on rank 0, sized from
 * this rank's store share C: objects of C/8 bytes.  The first 8 fill the store
 * (untimed); the next 24 (3 C) each make the store spill one: spill_gbps is
 * the spilled bytes (spill_bytes_total) over the time of those puts.  The 8
 * still in memory are then freed, and the 24 spilled ones read back one by
 * one, each freed after its read: restore_gbps is restore_bytes_total over
 * the summed tr_get times.  limit_disk_write_gbps writes the same bytes in
 * the same chunks to the spill directory first.
 */
static void spill_restore(void)
{
    const uint64_t cap = store_stats().capacity_bytes;
    const size_t part = (size_t)(cap / SPILL_PARTS) & ~(size_t)(PAGE - 1);
    const size_t fill = part ? (size_t)(cap / part) : 0, total = fill * SPILL_ROUNDS;
    tr_ref_h *refs = calloc(total ? total : 1, sizeof(*refs));
    char *src;
    tr_object_store_stats_t before, after;
    double t0, t1, get_s = 0;
    size_t i;
    tr_buf_h buf;

    if (part < PAGE || refs == NULL) die("object store share of %" PRIu64 " bytes is too small", cap);
    src = alloc_touched(part, 0x42);
    if (selected(R_LIMIT_DISK_WRITE)) {
        results[R_LIMIT_DISK_WRITE].value = disk_write_gbps(src, part, total - fill);
    }
    if (!selected(R_SPILL) && !selected(R_RESTORE)) goto out;

    for (i = 0; i < fill; i++) {
        memcpy(src, &i, sizeof(i));
        TR_CHECK(tr_put(src, part, &refs[i]));
    }
    before = store_stats();
    t0 = now_s();
    for (; i < total; i++) {
        memcpy(src, &i, sizeof(i));
        TR_CHECK(tr_put(src, part, &refs[i]));
    }
    t1 = now_s();
    after = store_stats();
    results[R_SPILL].value = (double)(after.spill_bytes_total - before.spill_bytes_total) / 1e9 /
                             (t1 - t0);
    if (after.spills - before.spills != total - fill) {
        fprintf(stderr, "microbench: spill: %" PRIu64 " objects spilled during %zu puts, "
                "expected %zu\n", after.spills - before.spills, total - fill, total - fill);
    }

    /* free the objects still in memory (the newest: least recently used
     * objects are spilled first), so that restoring needs no spilling */
    for (i = total - fill; i < total; i++) {
        TR_CHECK(tr_ref_release(refs[i]));
    }
    before = store_stats();
    if (before.spilled_objects != total - fill) {
        fprintf(stderr, "microbench: restore: %" PRIu64 " objects on disk, expected %zu\n",
                before.spilled_objects, total - fill);
    }
    for (i = 0; i < total - fill; i++) {
        size_t idx;

        t0 = now_s();
        TR_CHECK(tr_get(refs[i], TR_TIMEOUT_INFINITE, &buf));
        get_s += now_s() - t0;
        memcpy(&idx, tr_buf_data(buf), sizeof(idx));
        if (tr_buf_size(buf) != part || idx != i ||
            ((const char *)tr_buf_data(buf))[part - 1] != 0x42) {
            die("restored object %zu is wrong (%zu bytes, index %zu)", i, tr_buf_size(buf), idx);
        }
        TR_CHECK(tr_buf_release(buf));
        TR_CHECK(tr_ref_release(refs[i]));
    }
    after = store_stats();
    results[R_RESTORE].value =
        (double)(after.restore_bytes_total - before.restore_bytes_total) / 1e9 / get_s;
    snprintf(spill_note, sizeof(spill_note),
             "store share %.0f MiB, %zu objects of %.0f MiB put, %zu spilled and restored, in %s%s",
             (double)cap / 1048576, total, (double)part / 1048576, total - fill, spill_base(),
             getenv("TASKRAY_SPILL_ENCRYPT") && atoi(getenv("TASKRAY_SPILL_ENCRYPT")) == 1
                 ? " (TASKRAY_SPILL_ENCRYPT=1)" : "");
out:
    free(src);
    free(refs);
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

/* ---------------------------------------------------------------- actors */

#define ACTOR_CLASS     "microbench_actor"
#define ACTOR_CONC      16    /* 1_1_actor_calls_concurrent's max_concurrency */
#define CREATE_BATCH    1000  /* actors per actor_create_per_s iteration */

/* Ray's Actor: small_value() returns b"ok", small_value_arg(x) too. */
static int actor_state; /* every actor's state: nothing */

static tr_status_t actor_init(tr_task_h task, void **state_p)
{
    (void)task;
    *state_p = &actor_state;
    return TR_OK;
}

static tr_status_t actor_small_value(tr_task_h task, void *state)
{
    (void)state;
    return tr_task_return(task, 0, "ok", 2);
}

static tr_status_t actor_small_value_arg(tr_task_h task, void *state)
{
    int64_t x;
    tr_status_t st = tr_task_arg_i64(task, 0, &x); /* the value of the ref */

    (void)state;
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return(task, 0, "ok", 2);
}

static const tr_actor_method_t actor_methods[] = {
    { "small_value", actor_small_value },
    { "small_value_arg", actor_small_value_arg },
};

static const tr_actor_class_t actor_class = {
    .name        = ACTOR_CLASS,
    .init        = actor_init,
    .methods     = actor_methods,
    .num_methods = 2,
};

typedef struct {
    tr_actor_h *actors;  /* the actors this rank calls */
    int         nactors;
    size_t      per_actor;  /* calls per actor per iteration */
    tr_ref_h    arg;        /* n_n_actor_calls_with_arg_async: the put argument */
    tr_ref_h   *refs;    /* per iteration: nactors * per_actor (at least CREATE_BATCH) */
    tr_buf_h   *bufs;
} actor_ctx_t;

static actor_ctx_t actx;

static void actor_ctx_alloc(void)
{
    size_t n = (size_t)BATCH * (size_t)(num_ranks > 0 ? num_ranks : 1);

    if (n < CREATE_BATCH) n = CREATE_BATCH;
    actx.refs = calloc(n, sizeof(*actx.refs));
    actx.bufs = calloc(n, sizeof(*actx.bufs));
    actx.actors = calloc(n, sizeof(*actx.actors));
    if (actx.refs == NULL || actx.bufs == NULL || actx.actors == NULL) die("out of memory");
}

/* Create this rank's actors: @n of them, actor i on rank @rank_of(i) (-1:
 * default placement), with @max_conc. */
static void actors_create(int n, int (*rank_of)(int i), int max_conc, size_t per_actor)
{
    tr_actor_params_t p = { 0 };
    int i, rank;

    for (i = 0; i < n; i++) {
        p.field_mask = 0;
        rank = rank_of ? rank_of(i) : -1;
        if (rank >= 0) {
            p.field_mask |= TR_ACTOR_FIELD_RANK;
            p.rank = rank;
        }
        if (max_conc > 1) {
            p.field_mask |= TR_ACTOR_FIELD_MAX_CONCURRENCY;
            p.max_concurrency = max_conc;
        }
        TR_CHECK(tr_actor_create(ACTOR_CLASS, NULL, 0, &p, &actx.actors[i]));
    }
    actx.nactors = n;
    actx.per_actor = per_actor;
}

static void actors_release(void)
{
    int i;

    for (i = 0; i < actx.nactors; i++) {
        TR_CHECK(tr_actor_release(actx.actors[i]));
        actx.actors[i] = TR_ACTOR_NULL;
    }
    actx.nactors = 0;
}

static int rank_one(int i) { (void)i; return 1; }
static int rank_same(int i) { return i; }
static int rank_next(int i) { (void)i; return (my_rank + 1) % num_ranks; }

/* Check the b"ok" of @n results, release them and their refs. */
static void expect_ok(size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (tr_buf_size(actx.bufs[i]) != 2 || memcmp(tr_buf_data(actx.bufs[i]), "ok", 2) != 0) {
            die("an actor call returned %zu bytes, not \"ok\"", tr_buf_size(actx.bufs[i]));
        }
        TR_CHECK(tr_buf_release(actx.bufs[i]));
        TR_CHECK(tr_ref_release(actx.refs[i]));
    }
}

/* Ray: ray.get(a.small_value.remote()). */
static double iter_actor_sync(void *arg)
{
    (void)arg;
    TR_CHECK(tr_actor_call(actx.actors[0], "small_value", NULL, 0, NULL, &actx.refs[0]));
    TR_CHECK(tr_get(actx.refs[0], TR_TIMEOUT_INFINITE, &actx.bufs[0]));
    expect_ok(1);
    return 1;
}

/* Ray: ray.get([a.small_value.remote() for _ in range(1000)]), and for n
 * actors the calls spread round-robin over them; with actx.arg, every call
 * passes it (Ray: small_value_arg.remote(x)). */
static double iter_actor_async(void *arg)
{
    const size_t n = actx.per_actor * (size_t)actx.nactors;
    tr_arg_t ref_arg;
    size_t i;

    (void)arg;
    if (actx.arg != TR_REF_NULL) {
        ref_arg = TR_ARG_REF(actx.arg);
        for (i = 0; i < n; i++) {
            TR_CHECK(tr_actor_call(actx.actors[i % (size_t)actx.nactors], "small_value_arg",
                                   &ref_arg, 1, NULL, &actx.refs[i]));
        }
    } else {
        for (i = 0; i < n; i++) {
            TR_CHECK(tr_actor_call(actx.actors[i % (size_t)actx.nactors], "small_value", NULL, 0,
                                   NULL, &actx.refs[i]));
        }
    }
    TR_CHECK(tr_get_many(actx.refs, n, TR_TIMEOUT_INFINITE, actx.bufs));
    expect_ok(n);
    return (double)n;
}

/* Ray's Client.small_value_batch_arg: x = ray.put(0) once per batch, then
 * the batch of calls with it. */
static double iter_actor_async_arg(void *arg)
{
    double n;

    TR_CHECK(tr_put_i64(0, &actx.arg));
    n = iter_actor_async(arg);
    TR_CHECK(tr_ref_release(actx.arg));
    actx.arg = TR_REF_NULL;
    return n;
}

/* Create CREATE_BATCH actors (default placement), one small_value call on
 * each (it runs once the constructor has), get them all, release the
 * results and the actors. */
static double iter_actor_create(void *arg)
{
    size_t i;

    (void)arg;
    for (i = 0; i < CREATE_BATCH; i++) {
        TR_CHECK(tr_actor_create(ACTOR_CLASS, NULL, 0, NULL, &actx.actors[i]));
        TR_CHECK(tr_actor_call(actx.actors[i], "small_value", NULL, 0, NULL, &actx.refs[i]));
    }
    TR_CHECK(tr_get_many(actx.refs, CREATE_BATCH, TR_TIMEOUT_INFINITE, actx.bufs));
    expect_ok(CREATE_BATCH);
    for (i = 0; i < CREATE_BATCH; i++) {
        TR_CHECK(tr_actor_release(actx.actors[i]));
        actx.actors[i] = TR_ACTOR_NULL;
    }
    return CREATE_BATCH;
}

/* A 1_1 workload on rank 0 against one actor on rank 1. */
static void run_actor_1_1(int r, iter_fn_t iter, int max_conc, bench_ctx_t *c)
{
    if (!selected(r) || results[r].ran) {
        return;
    }
    if (my_rank == 0) {
        actors_create(1, rank_one, max_conc, BATCH);
    }
    run_single(r, iter, c);
    if (my_rank == 0) {
        actors_release();
    }
}

/* Every rank measures @iter with its own actors at once; the sum. */
static void run_actor_multi(int r, iter_fn_t iter)
{
    double mine, sum = 0;

    if (!selected(r)) {
        return;
    }
    quiet_barrier(NULL); /* start together */
    mine = measure(iter, NULL, opts.seconds);
    MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    results[r].value = sum;
    results[r].ran = 1;
    actors_release();
    quiet_barrier(NULL);
}

static void run_actor_workloads(bench_ctx_t *c)
{
    if (num_ranks < 2) {
        if (selected(R_ACTOR_SYNC)) skip(R_ACTOR_SYNC, "needs 2 ranks");
        if (selected(R_ACTOR_ASYNC)) skip(R_ACTOR_ASYNC, "needs 2 ranks");
        if (selected(R_ACTOR_CONCURRENT)) skip(R_ACTOR_CONCURRENT, "needs 2 ranks");
    }
    run_actor_1_1(R_ACTOR_SYNC, iter_actor_sync, 1, c);
    run_actor_1_1(R_ACTOR_ASYNC, iter_actor_async, 1, c);
    run_actor_1_1(R_ACTOR_CONCURRENT, iter_actor_async, ACTOR_CONC, c);

    if (selected(R_ACTOR_1_N)) {
        if (my_rank == 0) actors_create(num_ranks, rank_same, 1, BATCH);
        run_single(R_ACTOR_1_N, iter_actor_async, c);
        if (my_rank == 0) actors_release();
    }
    if (selected(R_ACTOR_N_N)) {
        actors_create(num_ranks, rank_same, 1, BATCH);
        run_actor_multi(R_ACTOR_N_N, iter_actor_async);
    }
    if (selected(R_ACTOR_N_N_ARG)) {
        actors_create(1, rank_next, 1, BATCH);
        run_actor_multi(R_ACTOR_N_N_ARG, iter_actor_async_arg);
    }
    run_single(R_ACTOR_CREATE, iter_actor_create, c);
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
    if (selected(R_MULTI_PUT_GIGABYTES)) {
        c->big = alloc_touched(BIG_SIZE, 3);
        quiet_barrier(NULL); /* start together */
        mine = measure(iter_put_gigabytes, c, opts.seconds);
        MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        results[R_MULTI_PUT_GIGABYTES].value = sum;
        results[R_MULTI_PUT_GIGABYTES].ran = 1;
        free(c->big);
        c->big = NULL;
        quiet_barrier(NULL);
    }

    run_actor_workloads(c);

    if (my_rank == 0 && selected(R_GET_10K_REFS)) {
        setup_10k_refs(c);
    }
    run_single(R_GET_10K_REFS, iter_get_10k_refs, c);
    if (c->container != TR_REF_NULL) {
        TR_CHECK(tr_ref_release(c->container));
        c->container = TR_REF_NULL;
    }

    if (selected(R_GET_SAME_NODE) && !results[R_GET_SAME_NODE].ran) {
        if (my_rank == 0) results[R_GET_SAME_NODE].value = same_node_get_us();
        results[R_GET_SAME_NODE].ran = 1;
        quiet_barrier(NULL);
    }
    if (selected(R_GET_CROSS_NODE) && !results[R_GET_CROSS_NODE].ran) {
        if (my_rank == 0) results[R_GET_CROSS_NODE].value = cross_node_get_gbps();
        results[R_GET_CROSS_NODE].ran = 1;
        quiet_barrier(NULL);
    }
    if ((selected(R_SPILL) && !results[R_SPILL].ran) ||
        (selected(R_RESTORE) && !results[R_RESTORE].ran) ||
        (selected(R_LIMIT_DISK_WRITE) && !results[R_LIMIT_DISK_WRITE].ran)) {
        if (my_rank == 0) spill_restore();
        results[R_SPILL].ran = selected(R_SPILL);
        results[R_RESTORE].ran = selected(R_RESTORE);
        results[R_LIMIT_DISK_WRITE].ran = selected(R_LIMIT_DISK_WRITE);
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

/* The heading of the targets, once, before the first of them. */
static void targets_header(void)
{
    static int done;

    if (!done) printf("\ntargets\n");
    done = 1;
}

static void print_table(void)
{
    double rtt_us, ratio;
    int r;

    printf("taskray %s microbenchmark: %d rank(s), %ld core(s), %.2f s per workload\n\n",
           tr_version(), num_ranks, sysconf(_SC_NPROCESSORS_ONLN), opts.seconds);
    printf("%-44s %16s  %s\n", "name", "value", "unit");
    for (r = 0; r < R_COUNT; r++) {
        if (!results[r].ran) {
            continue;
        }
        if (isfinite(results[r].value)) {
            printf("%-44s %16.3f  %s\n", results[r].name, results[r].value,
                   unit_name(results[r].unit));
        } else {
            printf("%-44s %16s  skipped: %s\n", results[r].name, "-",
                   results[r].skip[0] ? results[r].skip : "needs 2 ranks");
        }
    }
    if (spill_note[0]) {
        printf("\nspill: %s\n", spill_note);
    }

    if (have(R_TASKS_ASYNC)) {
        targets_header();
        printf("  single_client_tasks_async %.0f/s vs target 1000000/s: %s\n",
               results[R_TASKS_ASYNC].value,
               results[R_TASKS_ASYNC].value >= 1e6 ? "met" : "not met");
    }
    if (have(R_TASKS_SYNC) && have(R_LIMIT_AM)) {
        rtt_us = 1e6 / results[R_TASKS_SYNC].value;
        ratio = rtt_us / results[R_LIMIT_AM].value;
        targets_header();
        printf("  single_client_tasks_sync round trip %.2f us = %.2f x "
               "limit_am_roundtrip_us (%.2f us), target <= 3: %s\n",
               rtt_us, ratio, results[R_LIMIT_AM].value, ratio <= 3 ? "met" : "not met");
    }
    if (have(R_ACTOR_SYNC) && have(R_LIMIT_AM)) {
        rtt_us = 1e6 / results[R_ACTOR_SYNC].value;
        ratio = rtt_us / results[R_LIMIT_AM].value;
        targets_header();
        printf("  1_1_actor_calls_sync round trip %.2f us = %.2f x "
               "limit_am_roundtrip_us (%.2f us), target <= 3: %s\n",
               rtt_us, ratio, results[R_LIMIT_AM].value, ratio <= 3 ? "met" : "not met");
    }
    if (have(R_ACTOR_ASYNC)) {
        targets_header();
        printf("  1_1_actor_calls_async %.0f/s vs target 1000000/s: %s\n",
               results[R_ACTOR_ASYNC].value,
               results[R_ACTOR_ASYNC].value >= 1e6 ? "met" : "not met");
    }
    if (have(R_ACTOR_N_N)) {
        targets_header();
        printf("  n_n_actor_calls_async %.0f/s vs target 1000000/s: %s\n",
               results[R_ACTOR_N_N].value,
               results[R_ACTOR_N_N].value >= 1e6 ? "met" : "not met");
    }
    if (have(R_ACTOR_CREATE)) {
        targets_header();
        printf("  actor_create_per_s %.0f/s vs target 50000/s: %s\n",
               results[R_ACTOR_CREATE].value,
               results[R_ACTOR_CREATE].value >= 5e4 ? "met" : "not met");
    }
    if (have(R_PUT_GIGABYTES) && have(R_LIMIT_MEMCPY)) {
        ratio = results[R_PUT_GIGABYTES].value / results[R_LIMIT_MEMCPY].value;
        targets_header();
        printf("  single_client_put_gigabytes = %.2f x limit_memcpy_gbps, target >= 0.9: %s\n",
               ratio, ratio >= 0.9 ? "met" : "not met");
    }
    if (have(R_GET_10K_REFS)) {
        targets_header();
        printf("  single_client_get_object_containing_10k_refs %.1f/s vs target 500/s "
               "(Ray 13.4/s): %s\n", results[R_GET_10K_REFS].value,
               results[R_GET_10K_REFS].value >= 500 ? "met" : "not met");
    }
    if (have(R_GET_SAME_NODE)) {
        targets_header();
        printf("  get_same_node_1gib_us %.2f us vs target <= 50 us: %s\n",
               results[R_GET_SAME_NODE].value,
               results[R_GET_SAME_NODE].value <= 50 ? "met" : "not met");
    }
    if (have(R_GET_CROSS_NODE) && have(R_LIMIT_UCX_GET)) {
        targets_header();
        ratio = results[R_GET_CROSS_NODE].value / results[R_LIMIT_UCX_GET].value;
        printf("  get_cross_node_gbps = %.2f x limit_ucx_get_gbps, target >= 0.8: %s\n", ratio,
               ratio >= 0.8 ? "met" : "not met");
    }
    if (have(R_SPILL) && have(R_LIMIT_DISK_WRITE)) {
        ratio = results[R_SPILL].value / results[R_LIMIT_DISK_WRITE].value;
        targets_header();
        printf("  spill_gbps = %.2f x limit_disk_write_gbps, target >= 0.7: %s\n", ratio,
               ratio >= 0.7 ? "met" : "not met");
    }
}

/* ------------------------------------------------------------------ main */

/* The ranks of this rank's node as taskray will count them (TASKRAY_NODE_ID,
 * else the host name; lib/comm/bootstrap.c), before tr_init(). */
static int ranks_on_my_node(void)
{
    enum { KEY_LEN = 320 };
    char key[KEY_LEN] = { 0 }, *all;
    const char *id = getenv("TASKRAY_NODE_ID");
    int r, n = 0;

    if (id != NULL && *id != '\0') {
        snprintf(key, sizeof(key), "node-id:%s", id);
    } else if (gethostname(key, sizeof(key) - 1) != 0) {
        snprintf(key, sizeof(key), "localhost");
    }
    if ((all = malloc((size_t)num_ranks * KEY_LEN)) == NULL) die("out of memory");
    MPI_Allgather(key, KEY_LEN, MPI_CHAR, all, KEY_LEN, MPI_CHAR, MPI_COMM_WORLD);
    for (r = 0; r < num_ranks; r++) {
        n += strncmp(all + (size_t)r * KEY_LEN, key, KEY_LEN) == 0;
    }
    free(all);
    return n;
}

/* Before tr_init(): the spill workloads need a small store, the others the
 * default one, so the spill group runs only when nothing else is selected. */
static void prepare_spill(void)
{
    char value[64];
    int r, spill = 0, others = 0;

    for (r = 0; r < R_COUNT; r++) {
        if (selected(r)) {
            if (in_spill_group(r)) spill = 1; else others = 1;
        }
    }
    if (!spill) return;
    if (others) {
        for (r = 0; r < R_COUNT; r++) {
            if (selected(r) && in_spill_group(r)) {
                skip(r, "needs a small object store; run it on its own: --filter spill");
            }
        }
        return;
    }
    if (getenv("TASKRAY_OBJECT_STORE_BYTES") == NULL) {
        snprintf(value, sizeof(value), "%dm", SPILL_SHARE_MIB * ranks_on_my_node());
        setenv("TASKRAY_OBJECT_STORE_BYTES", value, 1);
    }
}

/* Before tr_init(): rank r gets the resource microbench_rank<r> (and, with
 * --remote, ranks other than 0 microbench_remote), added to the user's
 * TASKRAY_RESOURCES. */
static void set_resources(void)
{
    const char *user = getenv("TASKRAY_RESOURCES");
    char list[1024];

    snprintf(list, sizeof(list), "%s%smicrobench_rank%d=1%s", user ? user : "",
             user && *user ? "," : "", my_rank,
             opts.remote && my_rank != 0 ? ",microbench_remote=1" : "");
    setenv("TASKRAY_RESOURCES", list, 1);
}

/* After tr_init(): skip what the node layout and the store do not allow. */
static void check_layout(void)
{
    int cross = num_ranks >= 2 && tr_node_of(0) != tr_node_of(1);
    uint64_t cap = 0;
    char why[160];

    if (num_ranks < 2) {
        if (selected(R_GET_SAME_NODE)) skip(R_GET_SAME_NODE, "needs 2 ranks");
        if (selected(R_GET_CROSS_NODE)) skip(R_GET_CROSS_NODE, "needs 2 ranks");
        if (selected(R_LIMIT_UCX_GET)) skip(R_LIMIT_UCX_GET, "needs 2 ranks");
        return;
    }
    if (!cross) {
        if (selected(R_GET_CROSS_NODE))
            skip(R_GET_CROSS_NODE, "ranks 0 and 1 are on one node (use --node-per-rank)");
        if (selected(R_LIMIT_UCX_GET))
            skip(R_LIMIT_UCX_GET, "ranks 0 and 1 are on one node (use --node-per-rank)");
    }
    if (selected(R_GET_SAME_NODE)) {
        if (cross) {
            skip(R_GET_SAME_NODE, "ranks 0 and 1 are on different nodes");
            return;
        }
        if (my_rank == 1) cap = store_stats().capacity_bytes;
        MPI_Bcast(&cap, 1, MPI_UINT64_T, 1, MPI_COMM_WORLD);
        if (cap < SAME_NODE_SIZE + SAME_NODE_SLACK) {
            snprintf(why, sizeof(why),
                     "rank 1's object store share is %.0f MiB, needs %.0f MiB "
                     "(TASKRAY_OBJECT_STORE_BYTES)", (double)cap / 1048576,
                     (double)(SAME_NODE_SIZE + SAME_NODE_SLACK) / 1048576);
            skip(R_GET_SAME_NODE, why);
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpirun -n 2 microbench [--json] [--filter SUBSTR] [--seconds S] [--remote]\n"
            "  --json           print one JSON object (rank 0) instead of a table\n"
            "  --filter SUBSTR  run only the workloads whose name contains SUBSTR\n"
            "  --seconds S      measure each workload for about S seconds (default 1)\n"
            "  --remote         single-client tasks never run on rank 0 (cross-rank figures;\n"
            "                   multi_client_tasks_async is then skipped)\n"
            "  --node-per-rank  every rank is a node of its own (TASKRAY_NODE_ID = rank), for\n"
            "                   get_cross_node_gbps and limit_ucx_get_gbps on one host\n"
            "--filter actor runs the seven actor workloads (1_1_*, 1_n_*, n_n_*,\n"
            "actor_create_per_s).  Workload groups: --filter cross_node (get_cross_node_gbps, limit_ucx_get_gbps),\n"
            "--filter spill (spill_gbps, restore_gbps, limit_disk_write_gbps; they run only\n"
            "when nothing else is selected, with a 256 MiB store share per rank unless\n"
            "TASKRAY_OBJECT_STORE_BYTES is set).\n");
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "filter", required_argument, NULL, 'f' },
        { "seconds", required_argument, NULL, 's' },
        { "remote", no_argument, NULL, 'r' },
        { "node-per-rank", no_argument, NULL, 'n' },
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
        case 'n':
            opts.node_per_rank = 1;
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
    /* also for the round-trip targets of the sync workloads */
    if (selected(R_LIMIT_AM) || selected(R_TASKS_SYNC) || selected(R_ACTOR_SYNC)) {
        results[R_LIMIT_AM].value = num_ranks >= 2 ? am_roundtrip_us() : NAN;
        results[R_LIMIT_AM].ran = 1;
    }

    if (opts.remote) {
        if (num_ranks < 2) die("--remote needs at least 2 ranks");
        task_params = &remote_params;
    }
    if (opts.node_per_rank) {
        char id[32];

        snprintf(id, sizeof(id), "%d", my_rank);
        setenv("TASKRAY_NODE_ID", id, 1);
    }
    prepare_spill();
    set_resources();
    TR_CHECK(tr_actor_class_register(&actor_class));
    actor_ctx_alloc();
    TR_CHECK(tr_init(&init));
    ctx.next = (int64_t)my_rank << 40; /* distinct echo arguments per rank */
    quiet_barrier(NULL);
    check_layout();
    /* This limit after tr_init(), so that its UCX context reads the UCX_*
     * settings taskray makes (UCX_TLS=^sm between simulated nodes). */
    if (selected(R_LIMIT_UCX_GET) && !results[R_LIMIT_UCX_GET].ran) {
        results[R_LIMIT_UCX_GET].value = ucx_get_gbps();
        results[R_LIMIT_UCX_GET].ran = 1;
    }
    run_workloads(&ctx);
    /* Its tries again after the workloads, so that they bracket the gets
     * in time: this VM's speed drifts within a run. */
    if (selected(R_LIMIT_UCX_GET) && results[R_LIMIT_UCX_GET].skip[0] == '\0') {
        double again = ucx_get_gbps();

        if (again > results[R_LIMIT_UCX_GET].value) results[R_LIMIT_UCX_GET].value = again;
    }
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
