/*
 * fib: naive recursive Fibonacci, one task per call.
 *
 *   mpirun -n 4 ./fib [-c CUTOFF] [N]
 *
 * fib(n) for n >= 2 submits fib(n - 1) and fib(n - 2) as tasks and waits for
 * both inside the task; fib(0) = 0 and fib(1) = 1.  Below CUTOFF a task
 * computes serially instead.  The default cutoff, 0, keeps the recursion
 * pure: fib(25) (the default N) makes 2 * fib(26) - 1 = 242,785 tasks.
 *
 * This is the tree of tiny, blocking tasks that tests a runtime's overhead:
 * every task but the leaves waits on its children, so it needs a runtime
 * whose blocked tasks give their executor to other tasks.  It works on one
 * rank with one executor (TASKRAY_NUM_EXECUTORS=1 ./fib).
 *
 * The driver checks the result against an iterative fib and prints the time
 * and the task rate.  Exit status 0 on success, 1 on a wrong result, 2 on a
 * usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <taskray.h>

#define FIB_MAX 92 /* fib(93) overflows int64_t */

static int64_t fib_iterative(int64_t n)
{
    int64_t a = 0, b = 1, t;

    while (n-- > 0) {
        t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t fib_serial(int64_t n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* How many tasks fib(n) makes with @cutoff, itself included. */
static int64_t fib_task_count(int64_t n, int64_t cutoff)
{
    int64_t count[FIB_MAX + 1], i;

    for (i = 0; i <= n; i++) {
        count[i] = (i < 2 || i < cutoff) ? 1 : 1 + count[i - 1] + count[i - 2];
    }
    return count[n];
}

/* Remote function fib(n, cutoff). */
static tr_status_t fib(tr_task_h task)
{
    int64_t n, cutoff, a, b;
    tr_arg_t args[2];
    tr_ref_h ra, rb;
    tr_status_t st = tr_task_arg_i64(task, 0, &n);

    if (st == TR_OK) {
        st = tr_task_arg_i64(task, 1, &cutoff);
    }
    if (st != TR_OK) {
        return st;
    }
    if (n < 2 || n < cutoff) {
        return tr_task_return_i64(task, 0, fib_serial(n));
    }

    /* Submit both children, then wait for both: they run in parallel. */
    args[0] = TR_ARG_I64(n - 1);
    args[1] = TR_ARG_I64(cutoff);
    st = tr_task_submit(fib, args, 2, NULL, &ra);
    if (st != TR_OK) {
        tr_task_fail(task, "fib(%lld): submit: %s: %s", (long long)n, tr_status_string(st), tr_last_error());
        return st;
    }
    args[0] = TR_ARG_I64(n - 2);
    st = tr_task_submit(fib, args, 2, NULL, &rb);
    if (st != TR_OK) {
        tr_task_fail(task, "fib(%lld): submit: %s: %s", (long long)n, tr_status_string(st), tr_last_error());
        tr_ref_release(ra);
        return st;
    }
    st = tr_get_i64(ra, TR_TIMEOUT_INFINITE, &a);
    if (st == TR_OK) {
        st = tr_get_i64(rb, TR_TIMEOUT_INFINITE, &b);
    }
    tr_ref_release(ra);
    tr_ref_release(rb);
    if (st != TR_OK) {
        /* pass the child's reason up, so the driver sees the root cause */
        tr_task_fail(task, "fib(%lld): %s", (long long)n, tr_last_error());
        return st;
    }
    return tr_task_return_i64(task, 0, a + b);
}
TR_REMOTE(fib)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_int(const char *text, int64_t min, int64_t max, int64_t *value_p)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *value_p = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fib [-c CUTOFF] [N]\n"
               "  N          compute fib(N), 0..%d (default 25)\n"
               "  -c CUTOFF  compute serially inside a task when n < CUTOFF\n"
               "             (default 0: one task per call)\n",
            FIB_MAX);
}

/* The driver's part; returns the exit status. */
static int run(int64_t n, int64_t cutoff)
{
    int64_t value, expected = fib_iterative(n), tasks = fib_task_count(n, cutoff);
    tr_arg_t args[2] = { TR_ARG_I64(n), TR_ARG_I64(cutoff) };
    tr_ref_h ref;
    tr_status_t st;
    double t0, elapsed;

    t0 = now_s();
    st = tr_task_submit(fib, args, 2, NULL, &ref);
    if (st == TR_OK) {
        st = tr_get_i64(ref, TR_TIMEOUT_INFINITE, &value);
        tr_ref_release(ref);
    }
    elapsed = now_s() - t0;
    if (st != TR_OK) {
        fprintf(stderr, "fib: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }

    printf("fib(%" PRId64 ") = %" PRId64 " on %d rank(s), cutoff %" PRId64 "\n", n, value,
           tr_size(), cutoff);
    printf("%" PRId64 " tasks in %.3f s: %.0f tasks/s\n", tasks, elapsed,
           (double)tasks / elapsed);
    if (value != expected) {
        fprintf(stderr, "fib: wrong result, expected %" PRId64 "\n", expected);
        return 1;
    }
    printf("fib: ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n = 25, cutoff = 0;
    tr_status_t st;
    int opt, rc = 0;

    /* Every rank parses the same command line, so every rank agrees. */
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c':
            if (parse_int(optarg, 0, FIB_MAX + 1, &cutoff) != 0) {
                fprintf(stderr, "fib: bad cutoff '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc && parse_int(argv[optind++], 0, FIB_MAX, &n) != 0) {
        fprintf(stderr, "fib: N must be an integer in 0..%d\n", FIB_MAX);
        return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "fib: tr_init: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_is_driver()) {
        rc = run(n, cutoff);
    }
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "fib: tr_finalize: %s\n", tr_status_string(st));
        rc = 1;
    }
    return rc;
}
