/*
 * taskray-info: print the machine as taskray sees it.
 *
 *   taskray-info [--json]              the one-rank view of this host
 *   mpirun -n N taskray-info [--json]  the whole job, printed by rank 0
 *
 * It starts the runtime like any taskray program (tr_init gathers every
 * rank's tr_rank_info_t), and rank 0 prints the job, each node, each rank
 * and the configuration in force (tr_config_list) with where each value
 * came from; the other ranks print nothing and wait in tr_finalize.  It
 * registers no remote functions.  Everything is written with one fwrite,
 * so the output of a job is not interleaved with the launcher's.
 *
 * A node's cores, NUMA nodes and GPUs are what its ranks report: the union
 * of their cpusets (cores counted at the ranks' own cores-per-PU ratio),
 * the NUMA node count of the first rank, and the distinct GPU lines of the
 * ranks that hold GPUs.
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskray.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define TR_INFO_MAX_PUS 8192 /* PU numbers past it are not counted in a node's union */

/* A growing string: all of the output, written at once at the end. */
typedef struct {
    char   *s;
    size_t  len, cap;
    int     failed;
} tr_info_buf_t;

/* What rank 0 learned: every rank's info and its own configuration. */
typedef struct {
    int               size;
    tr_rank_info_t   *info;     /* [size] */
    tr_status_t      *status;   /* [size]: tr_rank_info() of each rank */
    int              *nodes;    /* the distinct node ids, ascending */
    int               num_nodes;
    tr_config_item_t *config;
    int               num_config;
} tr_info_job_t;

static void tr_info_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr_info_err(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "taskray-info: ");

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

/* ---------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------- */

static void tr_info_put(tr_info_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tr_info_put(tr_info_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed) return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = 1; return; }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) { b->failed = 1; return; }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* @s as a JSON string, quotes included. */
static void tr_info_put_json_str(tr_info_buf_t *b, const char *s, size_t len)
{
    tr_info_put(b, "\"");
    for (size_t i = 0; i < len && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') tr_info_put(b, "\\%c", c);
        else if (c == '\n') tr_info_put(b, "\\n");
        else if (c == '\t') tr_info_put(b, "\\t");
        else if (c < 0x20) tr_info_put(b, "\\u%04x", c);
        else tr_info_put(b, "%c", c);
    }
    tr_info_put(b, "\"");
}

static void tr_info_put_json_num(tr_info_buf_t *b, double v)
{
    if (isfinite(v)) tr_info_put(b, "%.17g", v);
    else tr_info_put(b, "null");
}

/* ---------------------------------------------------------------------
 * PU lists ("0-3,8-11") and sizes
 * ------------------------------------------------------------------- */

/* Set in @bits the PUs of the hwloc list @list; returns how many it names,
 * or -1 when it is not a list. */
static int tr_info_list_parse(const char *list, unsigned char *bits)
{
    const char *p = list;
    int count = 0;

    if (*p == '\0') return 0;
    for (;;) {
        char *end;
        long lo = strtol(p, &end, 10), hi;
        if (end == p || lo < 0) return -1;
        hi = lo;
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p || hi < lo) return -1;
        }
        for (long i = lo; i <= hi; i++, count++)
            if (i < TR_INFO_MAX_PUS) bits[i / 8] |= (unsigned char)(1u << (i % 8));
        if (*end == '\0') return count;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static int tr_info_bit(const unsigned char *bits, int i)
{
    return (bits[i / 8] >> (i % 8)) & 1;
}

/* The set PUs of @bits as an hwloc list; returns how many there are. */
static int tr_info_list_put(tr_info_buf_t *b, const unsigned char *bits)
{
    int count = 0, first = 1;

    for (int i = 0; i < TR_INFO_MAX_PUS; i++) {
        if (!tr_info_bit(bits, i)) continue;
        int j = i;
        while (j + 1 < TR_INFO_MAX_PUS && tr_info_bit(bits, j + 1)) j++;
        tr_info_put(b, j > i ? "%s%d-%d" : "%s%d", first ? "" : ",", i, j);
        count += j - i + 1;
        first = 0;
        i = j;
    }
    return count;
}

/* 1536 -> "1.5 KiB" */
static void tr_info_put_bytes(tr_info_buf_t *b, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;

    while (v >= 1024.0 && u < 6) { v /= 1024.0; u++; }
    if (u == 0) tr_info_put(b, "%llu B", (unsigned long long)bytes);
    else tr_info_put(b, "%.1f %s", v, units[u]);
}

/* ---------------------------------------------------------------------
 * Gathering
 * ------------------------------------------------------------------- */

static int tr_info_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void tr_info_job_free(tr_info_job_t *job)
{
    free(job->info);
    free(job->status);
    free(job->nodes);
    free(job->config);
}

/* Fill @job on rank 0; returns 0, or -1 out of memory. */
static int tr_info_job_gather(tr_info_job_t *job)
{
    int n = tr_size(), k = 0;

    job->size = n;
    job->info = calloc((size_t)n, sizeof(*job->info));
    job->status = calloc((size_t)n, sizeof(*job->status));
    job->nodes = calloc((size_t)n, sizeof(*job->nodes));
    if (job->info == NULL || job->status == NULL || job->nodes == NULL) return -1;
    for (int r = 0; r < n; r++) {
        job->status[r] = tr_rank_info(r, &job->info[r]);
        job->nodes[r] = job->status[r] == TR_OK ? job->info[r].node : tr_node_of(r);
    }
    qsort(job->nodes, (size_t)n, sizeof(int), tr_info_cmp_int);
    for (int i = 0; i < n; i++)
        if (i == 0 || job->nodes[i] != job->nodes[k - 1]) job->nodes[k++] = job->nodes[i];
    job->num_nodes = k;

    int count = tr_config_list(NULL, 0);
    if (count > 0) {
        job->config = calloc((size_t)count, sizeof(*job->config));
        if (job->config == NULL) return -1;
        int got = tr_config_list(job->config, count);
        job->num_config = got < 0 ? 0 : got < count ? got : count;
    }
    return 0;
}

static int tr_info_node_of(const tr_info_job_t *job, int r)
{
    return job->status[r] == TR_OK ? job->info[r].node : tr_node_of(r);
}

/* The ranks of @node as a list ("0-3,6"), from @job. */
static void tr_info_put_ranks(tr_info_buf_t *b, const tr_info_job_t *job, int node)
{
    int first = 1;

    for (int r = 0; r < job->size; r++) {
        if (tr_info_node_of(job, r) != node) continue;
        int s = r;
        while (s + 1 < job->size && tr_info_node_of(job, s + 1) == node) s++;
        tr_info_put(b, s > r ? "%s%d-%d" : "%s%d", first ? "" : ",", r, s);
        first = 0;
        r = s;
    }
}

/* Calls @fn on each distinct GPU line of the ranks of @node, in rank
 * order; returns how many there are. */
typedef void (*tr_info_gpu_fn_t)(tr_info_buf_t *b, const char *line, size_t len, int index);

static int tr_info_node_gpus(tr_info_buf_t *b, const tr_info_job_t *job, int node,
                             tr_info_gpu_fn_t fn)
{
    int count = 0;

    for (int r = 0; r < job->size; r++) {
        if (job->status[r] != TR_OK || job->info[r].node != node) continue;
        const char *line = job->info[r].gpus, *end;
        for (; *line != '\0'; line = *end ? end + 1 : end) {
            end = line + strcspn(line, "\n");
            size_t len = (size_t)(end - line);
            int seen = 0;
            if (len == 0) continue;
            /* the same line from an earlier rank of the node, or earlier here? */
            for (int q = 0; q <= r && !seen; q++) {
                if (job->status[q] != TR_OK || job->info[q].node != node) continue;
                const char *g = job->info[q].gpus;
                for (const char *e; *g != '\0' && !seen; g = *e ? e + 1 : e) {
                    e = g + strcspn(g, "\n");
                    if (g == line) break;
                    seen = (size_t)(e - g) == len && memcmp(g, line, len) == 0;
                }
            }
            if (seen) continue;
            if (fn != NULL) fn(b, line, len, count);
            count++;
        }
    }
    return count;
}

/* The cores of @node: the union of its ranks' cpusets (written to @pus as
 * a list when non-NULL), counted at their cores-per-PU ratio; -1 unknown. */
static int tr_info_node_cores(tr_info_buf_t *pus, const tr_info_job_t *job, int node)
{
    unsigned char bits[TR_INFO_MAX_PUS / 8] = {0};
    long sum_pus = 0, sum_cores = 0;

    for (int r = 0; r < job->size; r++) {
        if (job->status[r] != TR_OK || job->info[r].node != node) continue;
        int n = tr_info_list_parse(job->info[r].cpuset, bits);
        if (n < 0) return -1;
        sum_pus += n;
        sum_cores += job->info[r].num_cores;
    }
    tr_info_buf_t scratch = {0};
    int n = tr_info_list_put(pus != NULL ? pus : &scratch, bits);
    free(scratch.s);
    if (sum_pus == 0) return 0;
    return (int)(((double)n * (double)sum_cores) / (double)sum_pus + 0.5);
}

/* The first rank of @node with its info, or -1. */
static int tr_info_node_first(const tr_info_job_t *job, int node)
{
    for (int r = 0; r < job->size; r++)
        if (job->status[r] == TR_OK && job->info[r].node == node) return r;
    return -1;
}

/* ---------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------- */

#define TR_INFO_INDENT "                 " /* under a value of "  label  value" */

static void tr_info_text_gpu(tr_info_buf_t *b, const char *line, size_t len, int index)
{
    (void)index;
    tr_info_put(b, TR_INFO_INDENT "%.*s\n", (int)len, line);
}

static void tr_info_text_node(tr_info_buf_t *b, const tr_info_job_t *job, int node)
{
    int first = tr_info_node_first(job, node);

    tr_info_put(b, "\nnode %d  %s\n", node, first >= 0 ? job->info[first].hostname : "?");
    tr_info_put(b, "  ranks          ");
    tr_info_put_ranks(b, job, node);
    tr_info_put(b, "\n  cores          ");
    tr_info_buf_t pus = {0};
    int cores = tr_info_node_cores(&pus, job, node);
    if (cores < 0) tr_info_put(b, "unknown\n");
    else tr_info_put(b, "%d (PUs %s)\n", cores, pus.s != NULL ? pus.s : "none");
    free(pus.s);
    if (first >= 0) tr_info_put(b, "  NUMA nodes     %d\n", job->info[first].num_numa_nodes);
    int ngpus = tr_info_node_gpus(b, job, node, NULL);
    tr_info_put(b, "  GPUs           %d\n", ngpus);
    tr_info_node_gpus(b, job, node, tr_info_text_gpu);
}

static void tr_info_text_rank(tr_info_buf_t *b, const tr_info_job_t *job, int r)
{
    const tr_rank_info_t *ri = &job->info[r];

    if (job->status[r] != TR_OK) {
        tr_info_put(b, "\nrank %d  no information: %s\n", r, tr_status_string(job->status[r]));
        return;
    }
    tr_info_put(b, "\nrank %d  node %d, %s\n", r, ri->node, ri->hostname);
    tr_info_put(b, "  cpuset         %s\n", ri->cpuset[0] ? ri->cpuset : "none");
    tr_info_put(b, "  cores          %d\n", ri->num_cores);
    tr_info_put(b, "  executors      %d, %s\n", ri->num_executors,
                ri->bound ? "bound one per core" : "not bound");
    if (ri->numa_node >= 0) tr_info_put(b, "  NUMA node      %d\n", ri->numa_node);
    else tr_info_put(b, "  NUMA node      several or unknown\n");
    tr_info_put(b, "  GPUs held      %d\n", ri->num_gpus);
    for (const char *g = ri->gpus, *e; *g != '\0'; g = *e ? e + 1 : e) {
        e = g + strcspn(g, "\n");
        if (e > g) tr_info_text_gpu(b, g, (size_t)(e - g), 0);
    }
    tr_info_put(b, "  resources      cpus %g, gpus %g, memory ", ri->cpus, ri->gpus_res);
    tr_info_put_bytes(b, ri->memory);
    tr_info_put(b, ", custom %s\n", ri->resources[0] ? ri->resources : "none");
}

static void tr_info_text(tr_info_buf_t *b, const tr_info_job_t *job)
{
    int wname = 4, wvalue = 5;

    tr_info_put(b, "job\n");
    tr_info_put(b, "  ranks          %d\n", job->size);
    tr_info_put(b, "  nodes          %d\n", job->num_nodes);
    tr_info_put(b, "  taskray        %s\n", tr_version());
    for (int i = 0; i < job->num_nodes; i++) tr_info_text_node(b, job, job->nodes[i]);
    for (int r = 0; r < job->size; r++) tr_info_text_rank(b, job, r);

    for (int i = 0; i < job->num_config; i++) {
        const tr_config_item_t *c = &job->config[i];
        int wn = c->name ? (int)strlen(c->name) : 0;
        int wv = (int)strnlen(c->value, sizeof(c->value));
        if (wn > wname) wname = wn;
        if (wv > wvalue) wvalue = wv;
    }
    tr_info_put(b, "\nconfiguration (as rank 0 sees it)\n");
    tr_info_put(b, "  %-*s  %-*s  %s\n", wname, "NAME", wvalue, "VALUE", "SOURCE");
    for (int i = 0; i < job->num_config; i++) {
        const tr_config_item_t *c = &job->config[i];
        tr_info_put(b, "  %-*s  %-*.*s  %s\n", wname, c->name ? c->name : "?", wvalue,
                    (int)sizeof(c->value), c->value, c->source ? c->source : "?");
    }
}

/* ---------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------- */

static void tr_info_json_gpu(tr_info_buf_t *b, const char *line, size_t len, int index)
{
    /* "cuda0 0000:65:00.0 NVIDIA H100 near 0-15" -> name, near */
    size_t name_len = len;
    const char *near = NULL;

    for (size_t i = 0; i + 6 <= len; i++)
        if (memcmp(line + i, " near ", 6) == 0) { name_len = i; near = line + i + 6; }
    tr_info_put(b, "%s{\"name\": ", index ? ", " : "");
    tr_info_put_json_str(b, line, name_len);
    tr_info_put(b, ", \"near\": ");
    if (near != NULL) tr_info_put_json_str(b, near, (size_t)(line + len - near));
    else tr_info_put(b, "null");
    tr_info_put(b, "}");
}

static void tr_info_json_node(tr_info_buf_t *b, const tr_info_job_t *job, int node)
{
    int first = tr_info_node_first(job, node);

    tr_info_put(b, "    {\"node\": %d, \"hostname\": ", node);
    if (first >= 0) tr_info_put_json_str(b, job->info[first].hostname, sizeof(job->info[first].hostname));
    else tr_info_put(b, "null");
    tr_info_put(b, ", \"ranks\": \"");
    tr_info_put_ranks(b, job, node);
    tr_info_put(b, "\", \"cpuset\": \"");
    int cores = tr_info_node_cores(b, job, node);
    tr_info_put(b, "\", \"num_cores\": %d, \"num_numa_nodes\": %d, \"gpus\": [", cores,
                first >= 0 ? job->info[first].num_numa_nodes : -1);
    tr_info_node_gpus(b, job, node, tr_info_json_gpu);
    tr_info_put(b, "]}");
}

static void tr_info_json_rank(tr_info_buf_t *b, const tr_info_job_t *job, int r)
{
    const tr_rank_info_t *ri = &job->info[r];
    int first = 1;

    if (job->status[r] != TR_OK) {
        tr_info_put(b, "    {\"rank\": %d, \"error\": ", r);
        tr_info_put_json_str(b, tr_status_string(job->status[r]), SIZE_MAX);
        tr_info_put(b, "}");
        return;
    }
    tr_info_put(b, "    {\"rank\": %d, \"node\": %d, \"hostname\": ", ri->rank, ri->node);
    tr_info_put_json_str(b, ri->hostname, sizeof(ri->hostname));
    tr_info_put(b, ", \"cpuset\": ");
    tr_info_put_json_str(b, ri->cpuset, sizeof(ri->cpuset));
    tr_info_put(b, ", \"num_cores\": %d, \"num_executors\": %d, \"bound\": %s,"
                " \"numa_node\": %d, \"num_numa_nodes\": %d, \"num_gpus\": %d, \"gpus\": [",
                ri->num_cores, ri->num_executors, ri->bound ? "true" : "false",
                ri->numa_node, ri->num_numa_nodes, ri->num_gpus);
    for (const char *g = ri->gpus, *e; *g != '\0'; g = *e ? e + 1 : e) {
        e = g + strcspn(g, "\n");
        if (e == g) continue;
        tr_info_put(b, first ? "" : ", ");
        tr_info_put_json_str(b, g, (size_t)(e - g));
        first = 0;
    }
    tr_info_put(b, "], \"cpus\": ");
    tr_info_put_json_num(b, ri->cpus);
    tr_info_put(b, ", \"gpus_res\": ");
    tr_info_put_json_num(b, ri->gpus_res);
    tr_info_put(b, ", \"memory\": %llu, \"resources\": ", (unsigned long long)ri->memory);
    tr_info_put_json_str(b, ri->resources, sizeof(ri->resources));
    tr_info_put(b, "}");
}

static void tr_info_json(tr_info_buf_t *b, const tr_info_job_t *job)
{
    tr_info_put(b, "{\n  \"version\": ");
    tr_info_put_json_str(b, tr_version(), SIZE_MAX);
    tr_info_put(b, ",\n  \"ranks\": %d,\n  \"nodes\": %d,\n  \"node_info\": [\n",
                job->size, job->num_nodes);
    for (int i = 0; i < job->num_nodes; i++) {
        tr_info_json_node(b, job, job->nodes[i]);
        tr_info_put(b, i + 1 < job->num_nodes ? ",\n" : "\n");
    }
    tr_info_put(b, "  ],\n  \"rank_info\": [\n");
    for (int r = 0; r < job->size; r++) {
        tr_info_json_rank(b, job, r);
        tr_info_put(b, r + 1 < job->size ? ",\n" : "\n");
    }
    tr_info_put(b, "  ],\n  \"config\": [\n");
    for (int i = 0; i < job->num_config; i++) {
        const tr_config_item_t *c = &job->config[i];
        tr_info_put(b, "    {\"name\": ");
        tr_info_put_json_str(b, c->name ? c->name : "", SIZE_MAX);
        tr_info_put(b, ", \"value\": ");
        tr_info_put_json_str(b, c->value, sizeof(c->value));
        tr_info_put(b, ", \"source\": ");
        tr_info_put_json_str(b, c->source ? c->source : "", SIZE_MAX);
        tr_info_put(b, i + 1 < job->num_config ? "},\n" : "}\n");
    }
    tr_info_put(b, "  ]\n}\n");
}

/* ---------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------- */

static void tr_info_usage(FILE *out)
{
    fprintf(out,
        "Usage: taskray-info [--json]\n"
        "       mpirun -n N taskray-info [--json]\n"
        "Print the machine as taskray sees it: the job, each node (host, ranks, cores,\n"
        "NUMA nodes, GPUs and the PUs near each), each rank (cpuset, cores, executors,\n"
        "binding, NUMA node, GPUs, resources) and the configuration in force with where\n"
        "each value came from.  Under a launcher, rank 0 prints the whole job.\n"
        "\n"
        "  --json         print one JSON object instead\n"
        "  -h, --help     print this help\n"
        "  -V, --version  print the version\n"
        "See taskray-info(1).\n");
}

/* Returns 0 to run, 1 when done (help, version), -1 on a usage error. */
static int tr_info_parse(int argc, char **argv, int *json_p)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            *json_p = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tr_info_usage(stdout);
            return 1;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("taskray-info (taskray) %s\n", PACKAGE_VERSION);
            return 1;
        } else {
            tr_info_err("unknown argument '%s' (taskray-info --help for usage)", a);
            return -1;
        }
    }
    return 0;
}

/* Rank 0: gather and print.  Returns 0 or 1. */
static int tr_info_print(int json)
{
    tr_info_job_t job = {0};
    tr_info_buf_t out = {0};
    int rc = 0;

    if (tr_info_job_gather(&job) != 0) {
        tr_info_err("out of memory");
        rc = 1;
        goto out;
    }
    if (json) tr_info_json(&out, &job);
    else tr_info_text(&out, &job);
    if (out.failed) {
        tr_info_err("out of memory");
        rc = 1;
        goto out;
    }
    if (fwrite(out.s, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        tr_info_err("cannot write the output");
        rc = 1;
    }
out:
    free(out.s);
    tr_info_job_free(&job);
    return rc;
}

int main(int argc, char **argv)
{
    int json = 0, rc = 0;
    tr_status_t st;

    rc = tr_info_parse(argc, argv, &json);
    if (rc != 0) return rc > 0 ? 0 : 1;

    st = tr_init(NULL);
    if (st != TR_OK) {
        const char *why = tr_last_error(), *topo = getenv("TASKRAY_TOPOLOGY");
        if (*why == '\0' && st == TR_ERR_TOPOLOGY && topo != NULL)
            tr_info_err("cannot start taskray: %s (TASKRAY_TOPOLOGY='%s')", tr_status_string(st), topo);
        else
            tr_info_err("cannot start taskray: %s%s%s", tr_status_string(st), *why ? ": " : "", why);
        return 1;
    }
    if (tr_rank() == 0) rc = tr_info_print(json);
    st = tr_finalize();
    if (st != TR_OK) {
        tr_info_err("tr_finalize: %s", tr_status_string(st));
        rc = 1;
    }
    return rc;
}
