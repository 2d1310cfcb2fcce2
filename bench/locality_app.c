/*
 * locality_app: one job of bench/locality.  Every rank should be a node of
 * its own (TASKRAY_NODE_ID, set by bench/per_rank_node.sh), so that a task
 * reading an object made on another rank fetches its bytes with UCX.
 *
 * Rank 0 (the driver) runs CHAINS independent chains (default: one and a
 * half per rank) of STAGES stages.  Stage 0 of chain c runs on rank c mod ranks
 * (pinned with the resource locality_rank<r>) and makes a MIB-MiB object;
 * stage s > 0 takes stage s-1's object as a TR_ARG_REF and makes a new one,
 * reading and writing every byte (out[i] = in[i] + 1 over 64-bit words), with
 * default placement: with locality on, the scheduler should run it where
 * its argument is, and nothing moves; with locality off (TASKRAY_LOCALITY=0
 * in every rank's environment, set by --locality off before tr_init) it
 * ignores argument bytes.  The driver submits stage s+1 of a chain when stage
 * s is done (so that the argument's location is known when it is placed),
 * and checks each stage's sum of words against its own.
 *
 * Bytes moved: the sum over ranks of the growth of fetch_bytes_total
 * (tr_object_store_stats) during the pipeline, read on each rank by an actor
 * pinned there (TR_ACTOR_FIELD_RANK) whose method returns the stats.
 *
 * Usage: locality_app [--stages S] [--chains C] [--mib M] [--locality on|off]
 *
 * Output (stdout of rank 0), one line:
 *   locality_app: ok locality=on ranks=4 nodes=4 chains=4 stages=8 mib=64
 *     elapsed_s=1.234 bytes_moved=0 fetches=0 stages_moved=0 spills=0
 * or "locality_app: FAIL: <what>".  elapsed_s runs from the first submission
 * to the last stage's result; stages_moved counts stages that ran on
 * another rank than their argument's.
 *
 * TASKRAY_OBJECT_STORE_BYTES, when unset, is set to hold (3 x chains + 2)
 * objects on every node (at least 1 GiB), so that nothing spills.
 */
#define _POSIX_C_SOURCE 200809L
#include <taskray.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 600000

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The sum of the words of stage @s of chain @c (words w: (c << 40) + w + s),
 * modulo 2^64. */
static uint64_t expected_sum(int64_t c, int64_t s, uint64_t nwords)
{
    uint64_t tri = nwords % 2 ? nwords * ((nwords - 1) / 2) : (nwords / 2) * (nwords - 1);
    return nwords * ((uint64_t)c << 40) + tri + nwords * (uint64_t)s;
}

/* stage(chain, stage, bytes[, prev]): the new object, the sum of its words,
 * the rank it ran on. */
static tr_status_t fn_stage(tr_task_h t)
{
    int64_t c = 0, s = 0, bytes = 0;
    const uint64_t *in = NULL;
    size_t in_size = 0;
    if (tr_task_arg_i64(t, 0, &c) != TR_OK || tr_task_arg_i64(t, 1, &s) != TR_OK ||
        tr_task_arg_i64(t, 2, &bytes) != TR_OK || bytes <= 0 || bytes % 8 != 0 ||
        (s > 0 && (tr_task_arg(t, 3, (const void **)&in, &in_size) != TR_OK || in_size != (size_t)bytes))) {
        tr_task_fail(t, "stage: malformed arguments");
        return TR_ERR_TASK_FAILED;
    }
    uint64_t *out = NULL;
    tr_status_t st = tr_task_return_alloc(t, 0, (size_t)bytes, (void **)&out);
    if (st != TR_OK) {
        tr_task_fail(t, "stage %" PRId64 " of chain %" PRId64 ": %s", s, c, tr_status_string(st));
        return TR_ERR_TASK_FAILED;
    }
    uint64_t sum = 0, n = (uint64_t)bytes / 8, base = (uint64_t)c << 40;
    if (s == 0)
        for (uint64_t w = 0; w < n; w++) sum += out[w] = base + w;
    else
        for (uint64_t w = 0; w < n; w++) sum += out[w] = in[w] + 1;
    tr_task_return_i64(t, 1, (int64_t)sum);
    return tr_task_return_i64(t, 2, tr_task_rank(t));
}
TR_REMOTE(fn_stage)

/* The Stats actor: its method returns this rank's tr_object_store_stats_t. */
static tr_status_t stats_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}

static tr_status_t stats_get(tr_task_h t, void *state)
{
    (void)state;
    tr_object_store_stats_t st;
    tr_status_t rc = tr_object_store_stats(&st);
    if (rc != TR_OK) return rc;
    return tr_task_return(t, 0, &st, sizeof(st));
}

static const tr_actor_method_t stats_methods[] = { { "stats", stats_get } };
static const tr_actor_class_t stats_class = { .name = "LocalityStats", .init = stats_init,
                                              .methods = stats_methods, .num_methods = 1 };

/* Every rank's stats, through its actor, into @out (ranks of them). */
static tr_status_t all_stats(tr_actor_h *actors, int n, tr_object_store_stats_t *out)
{
    tr_status_t st = TR_OK;
    for (int r = 0; r < n && st == TR_OK; r++) {
        tr_ref_h ref;
        size_t size = 0;
        st = tr_actor_call(actors[r], "stats", NULL, 0, NULL, &ref);
        if (st != TR_OK) break;
        st = tr_get_copy(ref, WAIT_MS, &out[r], sizeof(out[r]), &size);
        tr_ref_release(ref);
        if (st == TR_OK && size != sizeof(out[r])) st = TR_ERR_PROTOCOL;
    }
    return st;
}

/* Submit stage @s of chain @c (taking @in, the stage before's object, when
 * @s > 0): its object, sum and rank into @out. */
static tr_status_t submit_stage(int64_t c, int64_t s, tr_ref_h in, int64_t bytes, int ranks, tr_ref_h out[3])
{
    tr_arg_t a[4] = { TR_ARG_I64(c), TR_ARG_I64(s), TR_ARG_I64(bytes), TR_ARG_I64(0) };
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 3 };
    char res[64];
    int na = 3;
    if (s == 0) {
        snprintf(res, sizeof(res), "locality_rank%d=0.001", (int)(c % ranks));
        p.field_mask |= TR_TASK_FIELD_RESOURCES;
        p.resources = res;
    } else {
        a[na++] = TR_ARG_REF(in);
    }
    return tr_task_submit(fn_stage, a, na, &p, out);
}

typedef struct result {
    double   elapsed_s;
    uint64_t bytes_moved, fetches, spills;
    int64_t  stages_moved;
} result_t;

/* Check stage @s of chain @c from its sum and rank refs; count a move. */
static tr_status_t check_stage(int64_t c, int64_t s, tr_ref_h sum_ref, tr_ref_h rank_ref, int64_t bytes,
                               int64_t *prev_rank, int64_t *moved, char *fail, size_t flen)
{
    int64_t sum = 0, rank = -1;
    tr_status_t st;
    if ((st = tr_get_i64(sum_ref, WAIT_MS, &sum)) != TR_OK || (st = tr_get_i64(rank_ref, WAIT_MS, &rank)) != TR_OK)
        return st;
    uint64_t want = expected_sum(c, s, (uint64_t)bytes / 8);
    if ((uint64_t)sum != want) {
        snprintf(fail, flen, "stage %" PRId64 " of chain %" PRId64 " (rank %" PRId64 ") summed to %" PRIu64
                 ", expected %" PRIu64, s, c, rank, (uint64_t)sum, want);
        return TR_ERR_TASK_FAILED;
    }
    if (s > 0 && rank != *prev_rank) (*moved)++;
    *prev_rank = rank;
    return TR_OK;
}

/* The pipeline.  Eager: every stage of every chain submitted at once, chain
 * after chain (each stage's argument pending when it is submitted), then
 * every result checked.  Ready: stage s+1 of a chain submitted when stage s
 * is done (its argument's location known).  Fills @res; a message in @fail
 * on error. */
static int pipeline(int64_t chains, int64_t stages, int64_t bytes, int ranks, int eager, result_t *res,
                    char *fail, size_t flen)
{
    size_t n = (size_t)(chains * stages);
    tr_ref_h *refs = calloc(3 * n, sizeof(*refs));   /* (object, sum, rank) of stage (c, s) */
    tr_ref_h *wait = calloc((size_t)chains, sizeof(*wait));
    int64_t *wc = calloc((size_t)chains, sizeof(*wc)), *next = calloc((size_t)chains, sizeof(*next));
    int64_t *prev_rank = calloc((size_t)chains, sizeof(*prev_rank));
    size_t *idx = calloc((size_t)chains, sizeof(*idx));
    int64_t moved = 0;
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (refs == NULL || wait == NULL || wc == NULL || next == NULL || idx == NULL || prev_rank == NULL) goto out;
#define REF(c, s, i) refs[3 * ((size_t)(c) * (size_t)stages + (size_t)(s)) + (i)]
    double t0 = mono_s();
    for (int64_t c = 0; c < chains; c++)
        for (int64_t s = 0; s < (eager ? stages : 1); s++) {
            if ((st = submit_stage(c, s, s ? REF(c, s - 1, 0) : TR_REF_NULL, bytes, ranks, &REF(c, s, 0))) != TR_OK)
                goto out;
            if (s > 0) tr_ref_release(REF(c, s - 1, 0)), REF(c, s - 1, 0) = TR_REF_NULL;
        }
    if (eager) {
        for (int64_t c = 0; c < chains; c++)
            for (int64_t s = 0; s < stages; s++)
                if ((st = check_stage(c, s, REF(c, s, 1), REF(c, s, 2), bytes, &prev_rank[c], &moved, fail,
                                      flen)) != TR_OK)
                    goto out;
    } else {
        for (int64_t left = chains; left > 0;) {
            size_t nw = 0, nready = 0;
            for (int64_t c = 0; c < chains; c++)
                if (next[c] < stages) wait[nw] = REF(c, next[c], 0), wc[nw++] = c;
            if ((st = tr_wait(wait, nw, 1, WAIT_MS, idx, &nready)) != TR_OK) goto out;
            if (nready == 0) {
                st = TR_ERR_TIMEOUT;
                goto out;
            }
            int64_t c = wc[idx[0]], s = next[c]++;
            if ((st = check_stage(c, s, REF(c, s, 1), REF(c, s, 2), bytes, &prev_rank[c], &moved, fail, flen)) !=
                TR_OK)
                goto out;
            if (s + 1 == stages) {
                left--;
                continue;
            }
            if ((st = submit_stage(c, s + 1, REF(c, s, 0), bytes, ranks, &REF(c, s + 1, 0))) != TR_OK) goto out;
            tr_ref_release(REF(c, s, 0)), REF(c, s, 0) = TR_REF_NULL;
        }
    }
    res->elapsed_s = mono_s() - t0;
    res->stages_moved = moved;
#undef REF
out:
    if (st != TR_OK && fail[0] == '\0')
        snprintf(fail, flen, "pipeline: %s (%s)", tr_status_string(st), tr_last_error());
    for (size_t i = 0; refs != NULL && i < 3 * n; i++)
        if (refs[i] != TR_REF_NULL) tr_ref_release(refs[i]);
    free(refs), free(wait), free(wc), free(next), free(idx), free(prev_rank);
    return st == TR_OK ? 0 : -1;
}

static const char *launcher_rank(void)
{
    const char *names[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && *v != '\0') return v;
    }
    return "0";
}

/* Set up the environment before tr_init(): the locality switch, the pin
 * resource, and a store large enough for the chains. */
static void setup_env(int locality, int64_t chains, int64_t bytes)
{
    if (!locality) setenv("TASKRAY_LOCALITY", "0", 1);
    const char *old = getenv("TASKRAY_RESOURCES");
    char res[512];
    snprintf(res, sizeof(res), "%s%slocality_rank%s=1", old && *old ? old : "", old && *old ? "," : "",
             launcher_rank());
    setenv("TASKRAY_RESOURCES", res, 1);
    const char *osb = getenv("TASKRAY_OBJECT_STORE_BYTES");
    if (osb == NULL || *osb == '\0') {
        uint64_t need = (uint64_t)(3 * chains + 2) * (uint64_t)bytes;
        if (need < (1ull << 30)) need = 1ull << 30;
        char v[32];
        snprintf(v, sizeof(v), "%" PRIu64 "m", (need + (1u << 20) - 1) >> 20);
        setenv("TASKRAY_OBJECT_STORE_BYTES", v, 1);
    }
}

int main(int argc, char **argv)
{
    int64_t stages = 8, chains = -1, mib = 64;
    int locality = 1, eager = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) goto usage;
        if (strcmp(a, "--stages") == 0) stages = atoll(v);
        else if (strcmp(a, "--chains") == 0) chains = atoll(v);
        else if (strcmp(a, "--mib") == 0) mib = atoll(v);
        else if (strcmp(a, "--submit") == 0 && (strcmp(v, "eager") == 0 || strcmp(v, "ready") == 0))
            eager = strcmp(v, "eager") == 0;
        else if (strcmp(a, "--locality") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            locality = strcmp(v, "on") == 0;
        else goto usage;
        i++;
    }
    int launcher_size = atoi(getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : "1");
    if (stages < 1 || mib < 1 || mib > 4096 || chains == 0 || chains > 4096) goto usage;
    int64_t bytes = mib << 20;
    setup_env(locality, chains > 0 ? chains : (launcher_size > 0 ? launcher_size + launcher_size / 2 : 1), bytes);
    if (tr_actor_class_register(&stats_class) != TR_OK) return 1;
    tr_status_t st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "locality_app: rank %s: tr_init: %s (%s)\n", launcher_rank(), tr_status_string(st),
                tr_last_error());
        return 1;
    }
    if (tr_rank() != 0) return tr_finalize() == TR_OK ? 0 : 1;

    int ranks = tr_size(), nodes = 0;
    if (chains < 0) chains = ranks + ranks / 2;   /* more chains than ranks: placement matters */
    char fail[512] = "";
    for (int r = 0; r < ranks; r++)
        if (tr_node_of(r) + 1 > nodes) nodes = tr_node_of(r) + 1;
    for (int r = 1; r < ranks && fail[0] == '\0'; r++)
        for (int q = 0; q < r; q++)
            if (tr_node_of(q) == tr_node_of(r)) {
                snprintf(fail, sizeof(fail), "ranks %d and %d are on one node: run every rank as a node of its "
                         "own (bench/per_rank_node.sh)", q, r);
                break;
            }
    tr_actor_h *actors = calloc((size_t)ranks, sizeof(*actors));
    tr_object_store_stats_t *before = calloc((size_t)ranks, sizeof(*before));
    tr_object_store_stats_t *after = calloc((size_t)ranks, sizeof(*after));
    result_t res = { 0, 0, 0, 0, 0 };
    if (actors == NULL || before == NULL || after == NULL) snprintf(fail, sizeof(fail), "out of memory");
    for (int r = 0; r < ranks && fail[0] == '\0'; r++) {
        tr_actor_params_t ap = { .field_mask = TR_ACTOR_FIELD_RANK, .rank = r };
        if ((st = tr_actor_create("LocalityStats", NULL, 0, &ap, &actors[r])) != TR_OK)
            snprintf(fail, sizeof(fail), "actor on rank %d: %s (%s)", r, tr_status_string(st), tr_last_error());
    }
    if (fail[0] == '\0' && (st = all_stats(actors, ranks, before)) != TR_OK)
        snprintf(fail, sizeof(fail), "stats: %s (%s)", tr_status_string(st), tr_last_error());
    if (fail[0] == '\0') pipeline(chains, stages, bytes, ranks, eager, &res, fail, sizeof(fail));
    if (fail[0] == '\0' && (st = all_stats(actors, ranks, after)) != TR_OK)
        snprintf(fail, sizeof(fail), "stats: %s (%s)", tr_status_string(st), tr_last_error());
    for (int r = 0; r < ranks && fail[0] == '\0'; r++) {
        res.bytes_moved += after[r].fetch_bytes_total - before[r].fetch_bytes_total;
        res.fetches += after[r].fetches - before[r].fetches;
        res.spills += after[r].spills - before[r].spills;
    }
    for (int r = 0; actors != NULL && r < ranks; r++)
        if (actors[r] != TR_ACTOR_NULL) tr_actor_release(actors[r]);
    free(actors), free(before), free(after);
    st = tr_finalize();
    if (st != TR_OK && fail[0] == '\0') snprintf(fail, sizeof(fail), "tr_finalize: %s", tr_status_string(st));
    if (fail[0] != '\0') {
        printf("locality_app: FAIL: %s\n", fail);
        return 1;
    }
    printf("locality_app: ok submit=%s locality=%s ranks=%d nodes=%d chains=%" PRId64 " stages=%" PRId64 " mib=%" PRId64
           " elapsed_s=%.6f bytes_moved=%" PRIu64 " fetches=%" PRIu64 " stages_moved=%" PRId64 " spills=%" PRIu64
           "\n",
           eager ? "eager" : "ready", locality ? "on" : "off", ranks, nodes, chains, stages, mib, res.elapsed_s, res.bytes_moved, res.fetches,
           res.stages_moved, res.spills);
    return 0;

usage:
    fprintf(stderr, "usage: locality_app [--stages S] [--chains C] [--mib M] [--locality on|off]\n"
                    "                    [--submit eager|ready]\n");
    return 2;
}
