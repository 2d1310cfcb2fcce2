/*
 * mpi_topology: how ranks share a node's cores and GPUs, what tr_rank_info()
 * and tr_config_list() report.  tests/run_topology.sh runs each mode with
 * the environment it names:
 *
 *   xml4      4 ranks, TASKRAY_TOPOLOGY=tests/topo/two-numa-two-gpu.xml
 *             (2 NUMA nodes x 8 cores, an NVIDIA GPU near each): 4 cores
 *             each, ranks 0-1 on NUMA 0 and 2-3 on NUMA 1, GPU 0 held by
 *             rank 0 and GPU 1 by rank 2, with CUDA_VISIBLE_DEVICES set there
 *   xml1      1 rank, same topology: both GPUs, 16 executors; configuration
 *             sources of TASKRAY_NUM_EXECUTORS; a CUDA_VISIBLE_DEVICES the
 *             user set is left alone (EXPECT_CVD)
 *   params    1 rank: tr_init_params num_executors=5 (source tr_init_params)
 *   synthetic 1 rank, TASKRAY_TOPOLOGY="pack:2 core:4 pu:1": 8 cores
 *   bad       TASKRAY_TOPOLOGY unusable: TR_ERR_TOPOLOGY with a clear message
 *   real      any number of ranks on this machine: each rank's executor runs
 *             inside the rank's cpuset, and cpusets of ranks are disjoint
 *             when the machine has enough cores
 *   resources TASKRAY_RESOURCES="ssd=1,licence=2,cpus=3,gpus=2" overrides
 *
 * Every rank checks its own process (environment variables) after
 * tr_init(); rank 0 checks every rank through tr_rank_info() and, in real
 * mode, through an actor pinned to each rank.  Exit status 1 on any failure.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <taskray.h>

static int g_fail;
static int g_rank;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "mpi_topology[%d] FAIL %s:%d: ", g_rank, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            g_fail = 1;                                                           \
        }                                                                         \
    } while (0)

/* ----------------------------------------------- an actor that reports where it runs */

static tr_status_t probe_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}

/* Returns the calling thread's affinity as a CPU bitmask (first 64 CPUs) and its rank. */
static tr_status_t probe_where(tr_task_h t, void *state)
{
    (void)state;
    cpu_set_t cs;
    CPU_ZERO(&cs);
    if (sched_getaffinity(0, sizeof(cs), &cs) != 0) return tr_task_fail(t, "sched_getaffinity: %m");
    int64_t mask = 0;
    for (int c = 0; c < 63; c++)
        if (CPU_ISSET(c, &cs)) mask |= (int64_t)1 << c;
    for (int c = 63; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &cs)) mask = -1;   /* beyond the mask: "outside" */
    tr_status_t st = tr_task_return_i64(t, 0, mask);
    if (st == TR_OK) st = tr_task_return_i64(t, 1, tr_rank());
    return st;
}

static const tr_actor_method_t probe_methods[] = { { "where", probe_where } };

static void __attribute__((constructor)) register_probe(void)
{
    const tr_actor_class_t cls = { .name = "Probe", .init = probe_init, .methods = probe_methods, .num_methods = 1 };
    if (tr_actor_class_register(&cls) != TR_OK) abort();
}

/* "0-3,8" -> bitmask of the first 63 CPUs; -1 when the list is malformed or larger. */
static int64_t list_mask(const char *s)
{
    int64_t m = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s) return -1;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s) return -1;
        }
        if (a < 0 || b > 62 || b < a) return -1;
        for (long c = a; c <= b; c++) m |= (int64_t)1 << c;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') return -1;
    }
    return m;
}

/* ------------------------------------------------------------- checks */

static tr_rank_info_t info_of(int r)
{
    tr_rank_info_t in;
    memset(&in, 0, sizeof(in));
    tr_status_t st = tr_rank_info(r, &in);
    CHECK(st == TR_OK, "tr_rank_info(%d): %s", r, tr_status_string(st));
    return in;
}

static const tr_config_item_t *config_find(tr_config_item_t *items, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(items[i].name, name) == 0) return &items[i];
    return NULL;
}

static void check_config(const char *name, const char *value, const char *source)
{
    int n = tr_config_list(NULL, 0);
    CHECK(n > 0, "tr_config_list(NULL, 0) = %d", n);
    if (n <= 0) return;
    tr_config_item_t *items = calloc((size_t)n, sizeof(*items));
    CHECK(tr_config_list(items, n) == n, "tr_config_list count changed");
    const tr_config_item_t *it = config_find(items, n, name);
    CHECK(it != NULL, "%s not in tr_config_list", name);
    if (it) {
        CHECK(value == NULL || strcmp(it->value, value) == 0, "%s = '%s', expected '%s'", name, it->value, value);
        CHECK(strcmp(it->source, source) == 0, "%s source '%s', expected '%s'", name, it->source, source);
    }
    free(items);
}

static void check_args(void)
{
    tr_rank_info_t in;
    CHECK(tr_rank_info(-1, &in) == TR_ERR_INVALID_ARG, "tr_rank_info(-1) accepted");
    CHECK(tr_rank_info(tr_size(), &in) == TR_ERR_INVALID_ARG, "tr_rank_info(size) accepted");
    CHECK(tr_rank_info(0, NULL) == TR_ERR_INVALID_ARG, "tr_rank_info(0, NULL) accepted");
    CHECK(tr_config_list(NULL, 3) == -1, "tr_config_list(NULL, 3) accepted");
}

static void mode_xml4(void)
{
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    const char *want = g_rank == 0 ? "0" : g_rank == 2 ? "1" : NULL;
    if (want) {
        CHECK(cvd && strcmp(cvd, want) == 0, "CUDA_VISIBLE_DEVICES='%s', expected '%s'", cvd ? cvd : "(unset)", want);
        const char *ord = getenv("CUDA_DEVICE_ORDER");
        CHECK(ord && strcmp(ord, "PCI_BUS_ID") == 0, "CUDA_DEVICE_ORDER='%s'", ord ? ord : "(unset)");
    } else {
        CHECK(cvd == NULL, "CUDA_VISIBLE_DEVICES='%s' on a rank without a GPU", cvd);
    }
    if (g_rank != 0) return;
    CHECK(tr_size() == 4, "xml4 needs 4 ranks, got %d", tr_size());
    static const char *sets[] = { "0-3", "4-7", "8-11", "12-15" };
    for (int r = 0; r < tr_size() && r < 4; r++) {
        tr_rank_info_t in = info_of(r);
        CHECK(in.rank == r, "rank %d: info.rank %d", r, in.rank);
        CHECK(in.num_cores == 4, "rank %d: %d cores, expected 4", r, in.num_cores);
        CHECK(in.num_executors == 4, "rank %d: %d executors, expected 4", r, in.num_executors);
        CHECK(strcmp(in.cpuset, sets[r]) == 0, "rank %d: cpuset '%s', expected '%s'", r, in.cpuset, sets[r]);
        CHECK(in.numa_node == r / 2, "rank %d: NUMA node %d, expected %d", r, in.numa_node, r / 2);
        CHECK(in.num_numa_nodes == 2, "rank %d: %d NUMA nodes", r, in.num_numa_nodes);
        CHECK(in.bound == 0, "rank %d: bound on a topology that is not this machine", r);
        int g = r == 0 || r == 2;
        CHECK(in.num_gpus == g, "rank %d: %d GPUs, expected %d", r, in.num_gpus, g);
        CHECK(in.gpus_res == g, "rank %d: gpus resource %g, expected %d", r, in.gpus_res, g);
        CHECK(in.cpus == 4, "rank %d: cpus %g", r, in.cpus);
        CHECK(in.memory == (2ull << 30) / 4, "rank %d: memory %llu, expected 512 MiB", r,
              (unsigned long long)in.memory);
        if (r == 0) CHECK(strstr(in.gpus, "cuda0 0000:19:00.0") != NULL, "rank 0 gpus '%s'", in.gpus);
        if (r == 2) CHECK(strstr(in.gpus, "cuda1 0000:9b:00.0") != NULL && strstr(in.gpus, "near 8-15"),
                          "rank 2 gpus '%s'", in.gpus);
    }
    check_args();
}

static void mode_xml1(void)
{
    tr_rank_info_t in = info_of(0);
    CHECK(in.num_cores == 16 && in.num_gpus == 2 && in.numa_node == -1 && in.num_numa_nodes == 2,
          "cores %d gpus %d numa %d/%d", in.num_cores, in.num_gpus, in.numa_node, in.num_numa_nodes);
    CHECK(strcmp(in.cpuset, "0-15") == 0, "cpuset '%s'", in.cpuset);
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES"), *want = getenv("EXPECT_CVD");
    if (want == NULL) want = "0,1";
    CHECK(cvd && strcmp(cvd, want) == 0, "CUDA_VISIBLE_DEVICES='%s', expected '%s'", cvd ? cvd : "(unset)", want);
    const char *env = getenv("TASKRAY_NUM_EXECUTORS");
    if (env) {
        CHECK(in.num_executors == atoi(env), "%d executors, TASKRAY_NUM_EXECUTORS=%s", in.num_executors, env);
        check_config("TASKRAY_NUM_EXECUTORS", env, "environment");
    } else {
        CHECK(in.num_executors == 16, "%d executors, expected 16", in.num_executors);
        check_config("TASKRAY_NUM_EXECUTORS", "16", "topology");
    }
    check_config("TASKRAY_TOPOLOGY", NULL, "environment");
    check_config("TASKRAY_INLINE_MAX", "65536", "default");
    check_args();
}

static void mode_params(void)
{
    tr_rank_info_t in = info_of(0);
    CHECK(in.num_executors == 5, "%d executors, expected 5", in.num_executors);
    check_config("TASKRAY_NUM_EXECUTORS", "5", "tr_init_params");
}

static void mode_synthetic(void)
{
    tr_rank_info_t in = info_of(0);
    CHECK(in.num_cores == 8 && strcmp(in.cpuset, "0-7") == 0 && in.num_gpus == 0,
          "cores %d cpuset '%s' gpus %d", in.num_cores, in.cpuset, in.num_gpus);
    CHECK(in.memory > 0, "no memory");
}

static void mode_resources(void)
{
    if (g_rank != 0) return;
    for (int r = 0; r < tr_size(); r++) {
        tr_rank_info_t in = info_of(r);
        CHECK(in.cpus == 3 && in.gpus_res == 2, "rank %d: cpus %g gpus %g", r, in.cpus, in.gpus_res);
        CHECK(strcmp(in.resources, "ssd=1,licence=2") == 0, "rank %d: resources '%s'", r, in.resources);
        CHECK(in.memory > 0, "rank %d: no memory", r);
    }
    check_config("TASKRAY_RESOURCES", "ssd=1,licence=2,cpus=3,gpus=2", "environment");
}

static void mode_real(void)
{
    if (g_rank != 0) return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t seen = 0;
    for (int r = 0; r < tr_size(); r++) {
        tr_rank_info_t in = info_of(r);
        int64_t set = list_mask(in.cpuset);
        CHECK(set > 0, "rank %d: cpuset '%s'", r, in.cpuset);
        CHECK(in.num_executors == in.num_cores, "rank %d: %d executors for %d cores", r, in.num_executors,
              in.num_cores);
        if (tr_size() <= ncpu) {
            CHECK((seen & set) == 0, "rank %d: cpuset '%s' overlaps another rank's", r, in.cpuset);
            CHECK(in.bound, "rank %d has cores of its own but is not bound", r);
        }
        seen |= set;
        tr_actor_params_t p = { .field_mask = TR_ACTOR_FIELD_RANK, .rank = r };
        tr_actor_h a;
        tr_ref_h refs[2];
        if (tr_actor_create("Probe", NULL, 0, &p, &a) != TR_OK) { CHECK(0, "actor on %d: %s", r, tr_last_error()); continue; }
        tr_task_params_t cp = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
        int64_t mask = 0, where = -1;
        CHECK(tr_actor_call(a, "where", NULL, 0, &cp, refs) == TR_OK, "call: %s", tr_last_error());
        CHECK(tr_get_i64(refs[0], 60000, &mask) == TR_OK && tr_get_i64(refs[1], 60000, &where) == TR_OK,
              "where on rank %d: %s", r, tr_last_error());
        CHECK(where == r, "actor for rank %d ran on %lld", r, (long long)where);
        if (in.bound)
            CHECK(mask > 0 && (mask & ~set) == 0, "rank %d: executor affinity %#llx outside cpuset %s", r,
                  (unsigned long long)mask, in.cpuset);
        printf("rank %d: cpuset %s, %d executor(s), bound %d, executor affinity %#llx\n", r, in.cpuset,
               in.num_executors, in.bound, (unsigned long long)mask);
        tr_ref_release(refs[0]);
        tr_ref_release(refs[1]);
        tr_actor_release(a);
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "bad") == 0) {
        tr_status_t st = tr_init(NULL);
        CHECK(st == TR_ERR_TOPOLOGY, "tr_init with TASKRAY_TOPOLOGY='%s' gave %s", getenv("TASKRAY_TOPOLOGY"),
              tr_status_string(st));
        CHECK(strstr(tr_last_error(), "TASKRAY_TOPOLOGY") != NULL, "unclear error: '%s'", tr_last_error());
        CHECK(tr_rank_info(0, &(tr_rank_info_t){ 0 }) == TR_ERR_NOT_INITIALIZED, "tr_rank_info before init");
        CHECK(tr_config_list(NULL, 0) == -1, "tr_config_list before init");
        if (st == TR_OK) tr_finalize();
        return g_fail;
    }
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 5 };
    tr_status_t st = tr_init(strcmp(mode, "params") == 0 ? &ip : NULL);
    if (st != TR_OK) {
        fprintf(stderr, "mpi_topology: tr_init: %s: %s\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    g_rank = tr_rank();
    if (strcmp(mode, "xml4") == 0) mode_xml4();
    else if (strcmp(mode, "xml1") == 0) mode_xml1();
    else if (strcmp(mode, "params") == 0) mode_params();
    else if (strcmp(mode, "synthetic") == 0) mode_synthetic();
    else if (strcmp(mode, "resources") == 0) mode_resources();
    else if (strcmp(mode, "real") == 0) mode_real();
    else CHECK(0, "unknown mode '%s'", mode);
    st = tr_finalize();
    CHECK(st == TR_OK, "tr_finalize: %s", tr_status_string(st));
    if (!g_fail && g_rank == 0) printf("mpi_topology %s: passed\n", mode);
    return g_fail;
}
