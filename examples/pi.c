/*
 * pi: estimate pi by Monte Carlo with one task per batch of samples.
 *
 *   mpirun -n 4 ./pi [-t TASKS] [-n SAMPLES_PER_TASK]
 *
 * Each of TASKS tasks (default 64) draws SAMPLES_PER_TASK points (default
 * 1,000,000) in the unit square from its own random stream, seeded from its
 * task number, and returns how many fell inside the quarter circle.  The
 * driver sums the hits: pi ~ 4 * hits / samples.
 *
 * Checks: the remote result of task 0 equals the same computation done
 * locally (streams are deterministic), and, with at least 10^6 samples in
 * all, |pi - M_PI| < 0.01.  Exit status 0 on success, 1 on a wrong result,
 * 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <taskray.h>

#define MIN_SAMPLES_FOR_CHECK 1000000.0

/* splitmix64: turns a task number into a well-mixed 64-bit seed. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* xorshift64*: a small, fast generator; state must not be zero. */
static uint64_t xorshift64s(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double uniform(uint64_t *state)
{
    return (double)(xorshift64s(state) >> 11) * 0x1.0p-53;
}

/* The hits of stream @seed over @samples points: plain C, used both by the
 * task and by the driver's check. */
static int64_t count_hits(int64_t seed, int64_t samples)
{
    uint64_t state = splitmix64((uint64_t)seed) | 1; /* never zero */
    int64_t i, hits = 0;
    double x, y;

    for (i = 0; i < samples; i++) {
        x = uniform(&state);
        y = uniform(&state);
        hits += (x * x + y * y < 1.0);
    }
    return hits;
}

/* Remote function sample(seed, samples) -> hits. */
static tr_status_t sample(tr_task_h task)
{
    int64_t seed, samples;
    tr_status_t st = tr_task_arg_i64(task, 0, &seed);

    if (st == TR_OK) {
        st = tr_task_arg_i64(task, 1, &samples);
    }
    if (st != TR_OK) {
        return st;
    }
    if (samples < 0) {
        tr_task_fail(task, "samples must not be negative, got %" PRId64, samples);
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(task, 0, count_hits(seed, samples));
}
TR_REMOTE(sample)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_count(const char *text, int64_t min, int64_t max, int64_t *value_p)
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
    fprintf(f, "usage: pi [-t TASKS] [-n SAMPLES_PER_TASK]\n"
               "  -t TASKS             number of tasks (default 64)\n"
               "  -n SAMPLES_PER_TASK  points drawn by each task (default 1000000)\n");
}

/* The driver's part; returns the exit status. */
static int run(int64_t num_tasks, int64_t samples)
{
    tr_ref_h *refs;
    tr_arg_t args[2];
    int64_t i, hits = 0, hits0 = 0, value;
    double t0, elapsed, total, pi, err;
    tr_status_t st = TR_OK;
    int failed = 0;

    refs = calloc((size_t)num_tasks, sizeof(*refs));
    if (refs == NULL) {
        fprintf(stderr, "pi: out of memory\n");
        return 1;
    }

    t0 = now_s();
    for (i = 0; i < num_tasks && st == TR_OK; i++) {
        args[0] = TR_ARG_I64(i);
        args[1] = TR_ARG_I64(samples);
        st = tr_task_submit(sample, args, 2, NULL, &refs[i]);
    }
    if (st != TR_OK) {
        fprintf(stderr, "pi: tr_task_submit: %s (%s)\n", tr_status_string(st),
                tr_last_error());
        num_tasks = i - 1; /* the refs made so far */
        failed = 1;
    }
    for (i = 0; i < num_tasks; i++) {
        if (!failed) {
            st = tr_get_i64(refs[i], TR_TIMEOUT_INFINITE, &value);
            if (st == TR_OK) {
                hits += value;
                hits0 = (i == 0) ? value : hits0;
            } else {
                fprintf(stderr, "pi: tr_get_i64: %s (%s)\n", tr_status_string(st),
                        tr_last_error());
                failed = 1;
            }
        }
        tr_ref_release(refs[i]);
    }
    elapsed = now_s() - t0;
    free(refs);
    if (failed) {
        return 1;
    }

    total = (double)num_tasks * (double)samples;
    pi = total > 0 ? 4.0 * (double)hits / total : 0.0;
    err = fabs(pi - M_PI);
    printf("pi ~ %.8f  (error %.2e, %" PRId64 " tasks x %" PRId64 " samples)\n", pi, err,
           num_tasks, samples);
    printf("%.3f s, %.0f tasks/s, %.3g samples/s\n", elapsed, (double)num_tasks / elapsed,
           total / elapsed);

    /* Streams are deterministic: task 0 must match a local run. */
    if (num_tasks > 0 && (value = count_hits(0, samples)) != hits0) {
        fprintf(stderr, "pi: task 0 returned %" PRId64 " hits, expected %" PRId64 "\n",
                hits0, value);
        failed = 1;
    }
    if (total >= MIN_SAMPLES_FOR_CHECK) {
        if (!(err < 0.01)) {
            fprintf(stderr, "pi: error %.4f is not below 0.01\n", err);
            failed = 1;
        }
    } else {
        printf("(fewer than %.0f samples: accuracy not checked)\n", MIN_SAMPLES_FOR_CHECK);
    }
    if (!failed) {
        printf("pi: ok\n");
    }
    return failed;
}

int main(int argc, char **argv)
{
    int64_t num_tasks = 64, samples = 1000000;
    tr_status_t st;
    int opt, rc = 0;

    /* Every rank parses the same command line, so every rank agrees. */
    while ((opt = getopt(argc, argv, "t:n:h")) != -1) {
        switch (opt) {
        case 't':
            if (parse_count(optarg, 1, INT32_MAX, &num_tasks) != 0) {
                fprintf(stderr, "pi: bad task count '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (parse_count(optarg, 0, INT64_MAX / 2, &samples) != 0) {
                fprintf(stderr, "pi: bad sample count '%s'\n", optarg);
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
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "pi: tr_init: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_is_driver()) {
        rc = run(num_tasks, samples);
    }
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "pi: tr_finalize: %s\n", tr_status_string(st));
        rc = 1;
    }
    return rc;
}
