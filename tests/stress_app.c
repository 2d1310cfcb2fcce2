/*
 * stress_app: one job of tests/stress (TR_MODE_DRIVER; rank 0 drives, the
 * others serve).  In each of --rounds rounds the driver runs the same
 * workload:
 *   - tasks:   --tasks / rounds tiny tasks (i64 in, i64 out), submitted in
 *              batches of --batch, every result checked;
 *   - objects: --objects objects put into the store (64 bytes each; run it
 *              with TASKRAY_INLINE_MAX=0 so that they are stored, not
 *              inlined), all live at once, the store's used bytes checked
 *              against its capacity all along; a sample read back, some by
 *              tasks on other ranks; all released;
 *   - actors:  --actors / rounds actors (0 cpus), all live at once, each
 *              called twice, then released;
 * and after each round it reads every rank's resident set (/proc/self/statm)
 * through a task pinned to that rank (TR_TASK_FIELD_RANK).  RSS after the
 * last round must not exceed RSS after the first by more than
 * --rss-margin-mib on any rank (the first round warms the allocators up).
 * Then two nested chains:
 *   - blocking:     --block-depth tasks, each submitting its child and
 *                   waiting for it with tr_get() (each waiting task holds an
 *                   executor thread, so the depth is bounded by the threads
 *                   the pool may start: MAX_THREADS in lib/core/exec.c);
 *   - continuation: --depth tasks, each submitting its child and returning
 *                   a ref to it (tr_task_return_refs): no thread waits; the
 *                   driver walks the chain.
 *
 * Usage: stress_app [--tasks N] [--objects N] [--actors N] [--depth N]
 *                   [--block-depth N] [--rounds R] [--batch B]
 *                   [--rss-margin-mib M]
 * Output: figures on stdout, then "stress_app: ok ..." or
 * "stress_app: FAIL: <what>" (exit status 1).
 */
#define _POSIX_C_SOURCE 200809L
#include <taskray.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 600000
#define OBJ_SIZE 64

static struct {
    long tasks, objects, actors, depth, block_depth, rounds, batch;
    double rss_margin_mib;
} opt = { 100000, 10000, 1000, 1000, 1000, 3, 10000, 16.0 };

static int g_size;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("stress_app: FAIL: ");
    vprintf(fmt, ap);
    va_end(ap);
    printf(" (%s)\n", tr_last_error());
    fflush(stdout);
    return 1;
}

/* ------------------------------------------------------------- tasks */

/* inc(i): i + 1 */
static tr_status_t st_inc(tr_task_h t)
{
    int64_t i;
    tr_status_t st = tr_task_arg_i64(t, 0, &i);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, i + 1);
}
TR_REMOTE(st_inc)

/* rss(): this rank's resident set in KiB */
static tr_status_t st_rss(tr_task_h t)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    int n = f != NULL ? fscanf(f, "%ld %ld", &pages, &resident) : 0;
    if (f != NULL) fclose(f);
    if (n != 2) {
        tr_task_fail(t, "cannot read /proc/self/statm");
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, (int64_t)resident * (sysconf(_SC_PAGESIZE) / 1024));
}
TR_REMOTE(st_rss)

/* sum(obj): the sum of the object's bytes (a ref argument: fetched here) */
static tr_status_t st_sum(tr_task_h t)
{
    const void *d;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, &d, &n);
    if (st != TR_OK) return st;
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) s += ((const unsigned char *)d)[i];
    return tr_task_return_i64(t, 0, s);
}
TR_REMOTE(st_sum)

/* block(d): d == 0 ? 0 : 1 + tr_get(block(d - 1)) */
static tr_status_t st_block(tr_task_h t)
{
    int64_t d, v = 0;
    tr_status_t st = tr_task_arg_i64(t, 0, &d);
    if (st != TR_OK || d == 0) return st != TR_OK ? st : tr_task_return_i64(t, 0, 0);
    tr_arg_t a = TR_ARG_I64(d - 1);
    tr_ref_h child;
    if ((st = tr_task_submit(st_block, &a, 1, NULL, &child)) != TR_OK) return st;
    st = tr_get_i64(child, WAIT_MS, &v);
    tr_ref_release(child);
    return st != TR_OK ? st : tr_task_return_i64(t, 0, v + 1);
}
TR_REMOTE(st_block)

/* cont(d): its value is d; when d > 0 it also holds a ref to cont(d - 1) */
static tr_status_t st_cont(tr_task_h t)
{
    int64_t d;
    tr_status_t st = tr_task_arg_i64(t, 0, &d);
    if (st != TR_OK) return st;
    if (d == 0) return tr_task_return(t, 0, &d, sizeof(d));
    tr_arg_t a = TR_ARG_I64(d - 1);
    tr_ref_h child;
    if ((st = tr_task_submit(st_cont, &a, 1, NULL, &child)) != TR_OK) return st;
    st = tr_task_return_refs(t, 0, &d, sizeof(d), &child, 1);
    tr_ref_release(child);
    return st;
}
TR_REMOTE(st_cont)

/* ------------------------------------------------------------- actors */

static tr_status_t ac_init(tr_task_h t, void **state_p)
{
    int64_t *s = malloc(sizeof(*s));
    if (s == NULL) return TR_ERR_NO_MEMORY;
    if (tr_task_arg_i64(t, 0, s) != TR_OK) { free(s); return TR_ERR_INVALID_ARG; }
    *state_p = s;
    return TR_OK;
}

static void ac_fini(void *state) { free(state); }

static tr_status_t ac_add(tr_task_h t, void *state)
{
    int64_t d;
    tr_status_t st = tr_task_arg_i64(t, 0, &d);
    if (st != TR_OK) return st;
    *(int64_t *)state += d;
    return tr_task_return_i64(t, 0, *(int64_t *)state);
}

static const tr_actor_method_t ac_methods[] = { { "add", ac_add } };
static const tr_actor_class_t ac_class = { .name = "stress_counter", .init = ac_init, .fini = ac_fini,
                                           .methods = ac_methods, .num_methods = 1 };

/* ------------------------------------------------------------- phases */

static int run_tasks(long n)
{
    tr_ref_h *refs = malloc(sizeof(*refs) * (size_t)opt.batch);
    if (refs == NULL) return fail("out of memory");
    for (long done = 0; done < n;) {
        long b = n - done < opt.batch ? n - done : opt.batch;
        for (long i = 0; i < b; i++) {
            tr_arg_t a = TR_ARG_I64(done + i);
            tr_status_t st = tr_task_submit(st_inc, &a, 1, NULL, &refs[i]);
            if (st != TR_OK) { free(refs); return fail("tr_task_submit: %s", tr_status_string(st)); }
        }
        int bad = 0;
        for (long i = 0; i < b; i++) {
            int64_t v = -1;
            tr_status_t st = tr_get_i64(refs[i], WAIT_MS, &v);
            if (!bad && (st != TR_OK || v != done + i + 1)) {
                bad = fail("task %ld: %s, value %" PRId64, done + i, tr_status_string(st), v);
            }
            tr_ref_release(refs[i]);
        }
        if (bad) { free(refs); return 1; }
        done += b;
    }
    free(refs);
    return 0;
}

static int store_check(const char *when, uint64_t *peak_p)
{
    tr_object_store_stats_t s;
    tr_status_t st = tr_object_store_stats(&s);
    if (st != TR_OK) return fail("tr_object_store_stats: %s", tr_status_string(st));
    if (s.used_bytes > *peak_p) *peak_p = s.used_bytes;
    if (s.used_bytes > s.capacity_bytes)
        return fail("%s: the store uses %" PRIu64 " bytes, over its capacity %" PRIu64, when, s.used_bytes,
                    s.capacity_bytes);
    return 0;
}

static int run_objects(long n, uint64_t *peak_p, uint64_t *left_p)
{
    tr_ref_h *refs = calloc((size_t)n, sizeof(*refs));
    unsigned char v[OBJ_SIZE];
    int rc = 0;
    if (refs == NULL) return fail("out of memory");
    for (long i = 0; i < n && rc == 0; i++) {
        memset(v, (int)(i & 0xff), sizeof(v));
        tr_status_t st = tr_put(v, sizeof(v), &refs[i]);
        if (st != TR_OK) rc = fail("tr_put %ld of %ld: %s", i, n, tr_status_string(st));
        else if (i % 1000 == 0) rc = store_check("putting", peak_p);
    }
    if (rc == 0) rc = store_check("all objects live", peak_p);
    /* read a sample back here (every 97th) and by tasks (every 499th) */
    for (long i = 0; i < n && rc == 0; i += 97) {
        unsigned char got[OBJ_SIZE];
        size_t size = 0;
        tr_status_t st = tr_get_copy(refs[i], WAIT_MS, got, sizeof(got), &size);
        memset(v, (int)(i & 0xff), sizeof(v));
        if (st != TR_OK || size != sizeof(v) || memcmp(got, v, sizeof(v)) != 0)
            rc = fail("object %ld read back: %s, %zu bytes", i, tr_status_string(st), size);
    }
    for (long i = 0; i < n && rc == 0; i += 499) {
        tr_arg_t a = TR_ARG_REF(refs[i]);
        tr_ref_h r;
        int64_t sum = -1;
        tr_status_t st = tr_task_submit(st_sum, &a, 1, NULL, &r);
        if (st == TR_OK) { st = tr_get_i64(r, WAIT_MS, &sum); tr_ref_release(r); }
        if (st != TR_OK || sum != (int64_t)(i & 0xff) * OBJ_SIZE)
            rc = fail("a task reading object %ld: %s, sum %" PRId64, i, tr_status_string(st), sum);
    }
    for (long i = 0; i < n; i++)
        if (refs[i]) tr_ref_release(refs[i]);
    free(refs);
    tr_object_store_stats_t s;
    if (rc == 0 && tr_object_store_stats(&s) == TR_OK) *left_p = s.used_bytes;
    return rc;
}

static int run_actors(long n)
{
    tr_actor_h *a = calloc((size_t)n, sizeof(*a));
    tr_ref_h *r = calloc((size_t)n, sizeof(*r));
    int rc = 0;
    if (a == NULL || r == NULL) { free(a); free(r); return fail("out of memory"); }
    for (long i = 0; i < n && rc == 0; i++) {
        tr_arg_t arg = TR_ARG_I64(i);
        tr_status_t st = tr_actor_create("stress_counter", &arg, 1, NULL, &a[i]);
        if (st != TR_OK) rc = fail("tr_actor_create %ld of %ld: %s", i, n, tr_status_string(st));
    }
    for (int call = 1; call <= 2 && rc == 0; call++) {
        for (long i = 0; i < n && rc == 0; i++) {
            tr_arg_t arg = TR_ARG_I64(call);
            tr_status_t st = tr_actor_call(a[i], "add", &arg, 1, NULL, &r[i]);
            if (st != TR_OK) rc = fail("tr_actor_call %ld: %s", i, tr_status_string(st));
        }
        for (long i = 0; i < n; i++) {
            if (r[i] == NULL) continue;
            int64_t v = -1;
            tr_status_t st = tr_get_i64(r[i], WAIT_MS, &v);
            int64_t want = i + (call == 1 ? 1 : 3);
            if (rc == 0 && (st != TR_OK || v != want))
                rc = fail("actor %ld call %d: %s, value %" PRId64 " (want %" PRId64 ")", i, call,
                          tr_status_string(st), v, want);
            tr_ref_release(r[i]);
            r[i] = NULL;
        }
    }
    for (long i = 0; i < n; i++)
        if (a[i]) tr_actor_release(a[i]);
    free(a);
    free(r);
    return rc;
}

/* Every rank's RSS in KiB into @kib (g_size of them), by pinned tasks. */
static int read_rss(int64_t *kib)
{
    tr_ref_h *r = calloc((size_t)g_size, sizeof(*r));
    int rc = 0;
    if (r == NULL) return fail("out of memory");
    for (int k = 0; k < g_size && rc == 0; k++) {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RANK, .rank = k };
        tr_status_t st = tr_task_submit(st_rss, NULL, 0, &p, &r[k]);
        if (st != TR_OK) rc = fail("rss task for rank %d: %s", k, tr_status_string(st));
    }
    for (int k = 0; k < g_size; k++) {
        if (r[k] == NULL) continue;
        tr_status_t st = tr_get_i64(r[k], WAIT_MS, &kib[k]);
        if (rc == 0 && st != TR_OK) rc = fail("rss of rank %d: %s", k, tr_status_string(st));
        tr_ref_release(r[k]);
    }
    free(r);
    return rc;
}

static int run_block_chain(long depth)
{
    tr_arg_t a = TR_ARG_I64(depth);
    tr_ref_h r;
    int64_t v = -1;
    double t0 = mono_s();
    tr_status_t st = tr_task_submit(st_block, &a, 1, NULL, &r);
    if (st != TR_OK) return fail("blocking chain: %s", tr_status_string(st));
    st = tr_get_i64(r, WAIT_MS, &v);
    tr_ref_release(r);
    if (st != TR_OK || v != depth)
        return fail("blocking chain of %ld: %s, value %" PRId64, depth, tr_status_string(st), v);
    printf("stress: nested blocking chain, depth %ld: %.2f s\n", depth, mono_s() - t0);
    return 0;
}

static int run_cont_chain(long depth)
{
    tr_arg_t a = TR_ARG_I64(depth);
    tr_ref_h r;
    double t0 = mono_s();
    tr_status_t st = tr_task_submit(st_cont, &a, 1, NULL, &r);
    if (st != TR_OK) return fail("continuation chain: %s", tr_status_string(st));
    for (long want = depth;; want--) {
        const void *d;
        size_t n;
        tr_buf_h b;
        int64_t v = -1;
        st = tr_get_buffer(r, WAIT_MS, &d, &n, &b);
        if (st != TR_OK) { tr_ref_release(r); return fail("continuation chain at %ld: %s", want, tr_status_string(st)); }
        if (n == sizeof(v)) memcpy(&v, d, sizeof(v));
        size_t nrefs = tr_buf_num_refs(b);
        tr_ref_h next = TR_REF_NULL;
        if (v != want || nrefs != (want > 0 ? 1u : 0u)) {
            tr_buf_release(b);
            tr_ref_release(r);
            return fail("continuation chain: value %" PRId64 " with %zu refs, want %ld", v, nrefs, want);
        }
        if (nrefs) st = tr_buf_refs(b, &next, 1);
        tr_buf_release(b);
        tr_ref_release(r);
        if (st != TR_OK) return fail("tr_buf_refs at %ld: %s", want, tr_status_string(st));
        if (want == 0) break;
        r = next;
    }
    printf("stress: nested continuation chain, depth %ld: %.2f s\n", depth, mono_s() - t0);
    return 0;
}

/* ------------------------------------------------------------- driver */

static int drive(void)
{
    int64_t *first = calloc((size_t)g_size, sizeof(int64_t)), *now = calloc((size_t)g_size, sizeof(int64_t));
    uint64_t peak = 0, left = 0, cap = 0;
    int rc = 0;
    if (first == NULL || now == NULL) { free(first); free(now); return fail("out of memory"); }
    tr_object_store_stats_t s0;
    if (tr_object_store_stats(&s0) == TR_OK) cap = s0.capacity_bytes;
    printf("stress: %d ranks, %ld rounds of %ld tasks, %ld live objects, %ld actors; depth %ld (blocking %ld); "
           "store capacity %.1f MiB on the driver\n", g_size, opt.rounds, opt.tasks / opt.rounds, opt.objects,
           opt.actors / opt.rounds, opt.depth, opt.block_depth, (double)cap / 1048576.0);
    for (long k = 1; k <= opt.rounds && rc == 0; k++) {
        long ntasks = opt.tasks / opt.rounds + (k == opt.rounds ? opt.tasks % opt.rounds : 0);
        long nactors = opt.actors / opt.rounds + (k == opt.rounds ? opt.actors % opt.rounds : 0);
        double t0 = mono_s();
        rc = run_tasks(ntasks);
        double t1 = mono_s();
        if (rc == 0) rc = run_objects(opt.objects, &peak, &left);
        double t2 = mono_s();
        if (rc == 0) rc = run_actors(nactors);
        double t3 = mono_s();
        if (rc == 0) rc = read_rss(k == 1 ? first : now);
        if (rc != 0) break;
        int64_t *v = k == 1 ? first : now, sum = 0, max = 0;
        for (int r = 0; r < g_size; r++) { sum += v[r]; if (v[r] > max) max = v[r]; }
        printf("stress: round %ld: tasks %.2f s (%.0f/s), objects %.2f s, actors %.2f s (%.0f/s); "
               "RSS mean %.1f MiB, max %.1f MiB (rank 0 %.1f MiB); store peak %.2f MiB, after release %.2f MiB\n",
               k, t1 - t0, (double)ntasks / (t1 - t0), t2 - t1, t3 - t2, (double)nactors / (t3 - t2), (double)sum / g_size / 1024.0, (double)max / 1024.0,
               (double)v[0] / 1024.0, (double)peak / 1048576.0, (double)left / 1048576.0);
        fflush(stdout);
    }
    if (rc == 0 && opt.rounds > 1) {
        double worst = -1e9;
        int wr = 0;
        for (int r = 0; r < g_size; r++) {
            double g = (double)(now[r] - first[r]) / 1024.0;
            if (g > worst) { worst = g; wr = r; }
        }
        printf("stress: RSS growth from round 1 to round %ld: largest on rank %d, %.2f MiB (%.1f -> %.1f MiB; "
               "margin %.1f MiB)\n", opt.rounds, wr, worst, (double)first[wr] / 1024.0, (double)now[wr] / 1024.0,
               opt.rss_margin_mib);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        /* a sanitizer keeps freed memory in quarantine (ASan: up to 256 MiB)
         * and shadow memory, so RSS grows without a leak; LeakSanitizer
         * checks leaks in that build instead */
        if (worst > opt.rss_margin_mib)
            printf("stress: RSS growth not checked in a sanitizer build (quarantine); LeakSanitizer checks leaks\n");
#else
        if (worst > opt.rss_margin_mib) rc = fail("rank %d's RSS grew by %.2f MiB over the rounds", wr, worst);
#endif
    }
    if (rc == 0 && opt.block_depth > 0) rc = run_block_chain(opt.block_depth);
    if (rc == 0 && opt.depth > 0) rc = run_cont_chain(opt.depth);
    if (rc == 0)
        printf("stress_app: ok ranks=%d tasks=%ld objects=%ld actors=%ld depth=%ld block_depth=%ld\n", g_size,
               opt.tasks, opt.objects, opt.actors, opt.depth,
               opt.block_depth);
    fflush(stdout);
    free(first);
    free(now);
    return rc;
}

static int parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc) goto usage;
        char *end;
        double v = strtod(argv[++i], &end);
        if (*end != '\0' || v < 0) goto usage;
        if (strcmp(o, "--tasks") == 0) opt.tasks = (long)v;
        else if (strcmp(o, "--objects") == 0) opt.objects = (long)v;
        else if (strcmp(o, "--actors") == 0) opt.actors = (long)v;
        else if (strcmp(o, "--depth") == 0) opt.depth = (long)v;
        else if (strcmp(o, "--block-depth") == 0) opt.block_depth = (long)v;
        else if (strcmp(o, "--rounds") == 0 && v >= 1) opt.rounds = (long)v;
        else if (strcmp(o, "--batch") == 0 && v >= 1) opt.batch = (long)v;
        else if (strcmp(o, "--rss-margin-mib") == 0) opt.rss_margin_mib = v;
        else goto usage;
    }
    return 0;
usage:
    fprintf(stderr, "usage: stress_app [--tasks N] [--objects N] [--actors N] [--depth N] [--block-depth N] "
                    "[--rounds R] [--batch B] [--rss-margin-mib M]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) != 0) return 2;
    tr_status_t st = tr_actor_class_register(&ac_class);
    if (st != TR_OK) { fprintf(stderr, "stress_app: tr_actor_class_register: %s\n", tr_status_string(st)); return 1; }
    if ((st = tr_init(NULL)) != TR_OK) { fprintf(stderr, "stress_app: tr_init: %s\n", tr_status_string(st)); return 1; }
    g_size = tr_size();
    int rc = 0;
    if (tr_rank() == 0) rc = drive();
    if ((st = tr_finalize()) != TR_OK && rc == 0) rc = fail("tr_finalize: %s", tr_status_string(st));
    return rc;
}
