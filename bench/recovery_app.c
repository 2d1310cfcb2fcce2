/*
 * recovery_app: one job of bench/recovery.  Rank 0 (the driver) runs a DAG
 * of tasks: LAYERS layers of WIDTH tasks, each task of layer l > 0 taking
 * the results of DEPS tasks of layer l-1 as TR_ARG_REF arguments, each
 * doing a fixed amount of CPU work (a hash loop) and returning an i64 that
 * depends on its inputs.  The driver submits the whole DAG at once, waits
 * for the last layer, and checks every value against its own computation.
 *
 * Optionally one worker rank dies midway: a task pinned to it (resource
 * "recovery_pin<R>") starts a thread that sleeps until KILL_AT_MS after the
 * DAG's start (CLOCK_REALTIME, so the victim needs no other message), writes
 * the CLOCK_REALTIME time to KILL_FILE and raises SIGKILL.
 *
 * Usage: recovery_app [--tasks N] [--width W] [--deps D] [--work-us U]
 *                     [--executors E] [--kill-at-ms M --victim R --kill-file F]
 *
 * Output (stdout of rank 0), one line:
 *   recovery_app: ok ranks=4 tasks=10000 elapsed_s=1.234 ranks_died=1
 *     detected_at=1795385832.482123 tasks_retried=12 objects_rebuilt=0 ...
 * or "recovery_app: FAIL: <what>".  elapsed_s runs from the first
 * submission to the last result (tr_init and tr_finalize excluded).
 */
#define _POSIX_C_SOURCE 200809L
#include <taskray.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPS 8
#define WAIT_MS 600000

static int g_rank, g_size;
static const char *g_kill_file;

static double realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The CPU work: @iters rounds of mix(); its result feeds the value, so the
 * compiler cannot drop it, but it does not change it. */
static uint64_t work(uint64_t x, int64_t iters)
{
    uint64_t h = x;
    for (int64_t i = 0; i < iters; i++) h = mix(h);
    return h;
}

/* The value of task (l, j) from the sum of its inputs. */
static int64_t value(int64_t l, int64_t j, uint64_t in)
{
    return (int64_t)(mix(in ^ ((uint64_t)l << 32) ^ (uint64_t)j) >> 2);
}

/* node(l, j, iters, dep...): value(l, j, sum of the deps) after the work. */
static tr_status_t fn_node(tr_task_h t)
{
    int64_t l = 0, j = 0, iters = 0;
    tr_task_arg_i64(t, 0, &l);
    tr_task_arg_i64(t, 1, &j);
    tr_task_arg_i64(t, 2, &iters);
    uint64_t in = 0;
    for (int i = 3; i < tr_task_num_args(t); i++) {
        int64_t v = 0;
        tr_status_t st = tr_task_arg_i64(t, i, &v);
        if (st != TR_OK) return st;
        in += (uint64_t)v;
    }
    uint64_t h = work(in, iters);
    int64_t v = value(l, j, in);
    if (h == 0x5eed && iters < 0) v++; /* never: keeps h alive */
    return tr_task_return_i64(t, 0, v);
}

static void *die_thread(void *arg)
{
    double at = *(double *)arg;
    free(arg);
    double now = realtime_s();
    if (at > now) {
        double d = at - now;
        struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    double t = realtime_s();
    if (g_kill_file != NULL) {
        FILE *f = fopen(g_kill_file, "w");
        if (f != NULL) {
            fprintf(f, "%.6f\n", t);
            fclose(f);
        }
    }
    raise(SIGKILL);
    return NULL;
}

/* die(at): SIGKILL this rank at CLOCK_REALTIME @at (seconds, as f64). */
static tr_status_t fn_die(tr_task_h t)
{
    double *at = malloc(sizeof(*at));
    if (at == NULL) return TR_ERR_NO_MEMORY;
    tr_task_arg_f64(t, 0, at);
    pthread_t th;
    if (pthread_create(&th, NULL, die_thread, at) != 0) return TR_ERR_SYSTEM;
    pthread_detach(th);
    return tr_task_return_i64(t, 0, 1);
}

static int env_int(const char *a, const char *b, const char *c, int dflt)
{
    const char *v = getenv(a);
    if (v == NULL || *v == '\0') v = getenv(b);
    if (v == NULL || *v == '\0') v = getenv(c);
    return v && *v ? atoi(v) : dflt;
}

/* Iterations of mix() that take about @us microseconds on this core. */
static int64_t calibrate(double us)
{
    int64_t n = 1 << 16;
    double t;
    for (;;) {
        double t0 = mono_s();
        volatile uint64_t sink = work(1, n);
        (void)sink;
        t = mono_s() - t0;
        if (t > 0.02) break;
        n *= 2;
    }
    return (int64_t)((double)n * us * 1e-6 / t);
}

int main(int argc, char **argv)
{
    g_rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", 0);
    g_size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", 1);
    int64_t tasks = 10000, width = 100, deps = 3;
    double work_us = 100, kill_at_ms = -1;
    int executors = 1, victim = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) goto usage;
        if (strcmp(a, "--tasks") == 0) tasks = atoll(v);
        else if (strcmp(a, "--width") == 0) width = atoll(v);
        else if (strcmp(a, "--deps") == 0) deps = atoll(v);
        else if (strcmp(a, "--work-us") == 0) work_us = atof(v);
        else if (strcmp(a, "--executors") == 0) executors = atoi(v);
        else if (strcmp(a, "--kill-at-ms") == 0) kill_at_ms = atof(v);
        else if (strcmp(a, "--victim") == 0) victim = atoi(v);
        else if (strcmp(a, "--kill-file") == 0) g_kill_file = v;
        else goto usage;
        i++;
    }
    if (victim < 0) victim = g_size - 1;
    if (tasks < 1 || width < 1 || deps < 1 || deps > MAX_DEPS || deps > width || executors < 1 ||
        work_us < 0 || (kill_at_ms >= 0 && (victim < 1 || victim >= g_size)))
        goto usage;

    char res[64];
    snprintf(res, sizeof(res), "recovery_pin%d=1", g_rank);
    setenv("TASKRAY_RESOURCES", res, 1);
    tr_function_register("node", fn_node);
    tr_function_register("die", fn_die);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = executors };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "recovery_app: rank %d: tr_init: %s (%s)\n", g_rank, tr_status_string(st), tr_last_error());
        if (g_rank == 0) printf("recovery_app: FAIL: tr_init: %s\n", tr_status_string(st));
        return 1;
    }
    if (g_rank != 0) {
        st = tr_finalize();
        return st == TR_OK ? 0 : 1;
    }

    int64_t iters = calibrate(work_us);
    int64_t layers = (tasks + width - 1) / width;
    int64_t *vals = calloc((size_t)(2 * width), sizeof(*vals));    /* expected: layer l-1, l */
    tr_ref_h *refs = calloc((size_t)tasks, sizeof(*refs));
    if (vals == NULL || refs == NULL) return 1;
    char fail[512] = "";

    double t0 = mono_s();
    tr_ref_h die = TR_REF_NULL;
    if (kill_at_ms >= 0) {
        char pin[64];
        snprintf(pin, sizeof(pin), "recovery_pin%d=1", victim);
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RESOURCES | TR_TASK_FIELD_MAX_RETRIES |
                                             TR_TASK_FIELD_NUM_CPUS,
                               .resources = pin, .max_retries = 0, .num_cpus = 0 };
        tr_arg_t a = TR_ARG_F64(realtime_s() + kill_at_ms / 1000.0);
        st = tr_task_submit(fn_die, &a, 1, &p, &die);
        if (st != TR_OK) snprintf(fail, sizeof(fail), "submit die: %s (%s)", tr_status_string(st), tr_last_error());
    }

    /* submit the DAG, layer by layer; the driver computes the same values */
    int64_t n = 0;
    for (int64_t l = 0; l < layers && fail[0] == '\0'; l++) {
        int64_t *prev = vals + ((l + 1) % 2) * width, *cur = vals + (l % 2) * width;
        int64_t w = l == layers - 1 ? tasks - l * width : width;
        int64_t pw = width;  /* every layer but the last is full */
        for (int64_t j = 0; j < w; j++, n++) {
            tr_arg_t a[3 + MAX_DEPS];
            a[0] = TR_ARG_I64(l), a[1] = TR_ARG_I64(j), a[2] = TR_ARG_I64(iters);
            int na = 3;
            uint64_t in = 0;
            if (l > 0)
                for (int64_t d = 0; d < deps; d++) {
                    int64_t k = (j * (2 * d + 1) + d * 7) % pw;
                    a[na++] = TR_ARG_REF(refs[(l - 1) * width + k]);
                    in += (uint64_t)prev[k];
                }
            cur[j] = value(l, j, in);
            st = tr_task_submit(fn_node, a, na, NULL, &refs[n]);
            if (st != TR_OK) {
                snprintf(fail, sizeof(fail), "submit (%" PRId64 ", %" PRId64 "): %s (%s)", l, j,
                         tr_status_string(st), tr_last_error());
                break;
            }
        }
        /* the previous layer's refs are held by the tasks that take them */
        if (l > 0)
            for (int64_t k = 0; k < width; k++) {
                tr_ref_release(refs[(l - 1) * width + k]);
                refs[(l - 1) * width + k] = TR_REF_NULL;
            }
    }
    /* the last layer: its values against the driver's */
    int64_t lastl = layers - 1, lastw = tasks - lastl * width;
    int64_t *expect = vals + (lastl % 2) * width;
    for (int64_t j = 0; j < lastw && fail[0] == '\0'; j++) {
        int64_t v = 0;
        st = tr_get_i64(refs[lastl * width + j], WAIT_MS, &v);
        if (st != TR_OK)
            snprintf(fail, sizeof(fail), "get (%" PRId64 ", %" PRId64 "): %s (%s)", lastl, j, tr_status_string(st),
                     tr_last_error());
        else if (v != expect[j])
            snprintf(fail, sizeof(fail), "task (%" PRId64 ", %" PRId64 ") gave %" PRId64 ", expected %" PRId64, lastl,
                     j, v, expect[j]);
    }
    double elapsed = mono_s() - t0;
    for (int64_t k = 0; k < tasks; k++)
        if (refs[k] != TR_REF_NULL) tr_ref_release(refs[k]);

    if (die != TR_REF_NULL) {
        int64_t one;
        st = tr_get_i64(die, WAIT_MS, &one);
        tr_ref_release(die);
        for (int i = 0; i < 5000 && tr_rank_alive(victim) == 1; i++) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
        if (tr_rank_alive(victim) != 0 && fail[0] == '\0')
            snprintf(fail, sizeof(fail), "rank %d was not seen dead", victim);
    }
    tr_failure_stats_t fs;
    memset(&fs, 0, sizeof(fs));
    tr_failure_stats(&fs);
    st = tr_finalize();
    if (st != TR_OK && fail[0] == '\0') snprintf(fail, sizeof(fail), "tr_finalize: %s", tr_status_string(st));
    if (fail[0] != '\0') {
        printf("recovery_app: FAIL: %s\n", fail);
        return 1;
    }
    printf("recovery_app: ok ranks=%d tasks=%" PRId64 " layers=%" PRId64 " width=%" PRId64 " deps=%" PRId64
           " work_us=%g iters=%" PRId64 " executors=%d elapsed_s=%.6f ranks_died=%" PRIu64
           " detected_at=%.6f tasks_retried=%" PRIu64 " objects_rebuilt=%" PRIu64 "\n",
           g_size, tasks, layers, width, deps, work_us, iters, executors, elapsed, fs.ranks_died,
           fs.detected_at, fs.tasks_retried, fs.objects_rebuilt);
    return 0;

usage:
    if (g_rank == 0)
        fprintf(stderr, "usage: recovery_app [--tasks N] [--width W] [--deps D] [--work-us U] [--executors E]\n"
                        "                    [--kill-at-ms M [--victim R] [--kill-file F]]\n");
    return 2;
}
