/*
 * mpi_placement: where the owner places tasks and actors (issue 6), with 4
 * ranks that are each a node (tests/per_rank_node.sh), 4 executors each,
 * and TASKRAY_RESOURCES="memory=1000,gpus=2,ssd=1" on every rank
 * (tests/run_placement.sh):
 *   unschedulable  needs no rank has: TR_ERR_UNSCHEDULABLE naming the resource
 *   affinity       hard rank and node affinity; soft affinity
 *   spread         TR_STRATEGY_SPREAD goes round the nodes
 *   locality       a task goes to the node holding its large argument
 *   memory         declared memory never exceeds a rank's memory at once
 *   gpus           tasks get distinct GPUs (tr_task_gpus)
 *   pg             placement groups: strategies, readiness, bundles,
 *                  reservations, removal, actors in a bundle
 * Usage: mpi_placement [TEST...]
 */
#include <inttypes.h>
#include <unistd.h>

#include "tr_test.h"

#define WAIT_MS 60000
#define NEXEC 4

static int g_rank = 0;
static int g_size = 1;

static int64_t get_i64(tr_ref_h r)
{
    int64_t v = -99;
    tt_ok(tr_get_i64(r, WAIT_MS, &v));
    return v;
}

/* --------------------------------------------------------------- tasks */

static tr_status_t where(tr_task_h t)
{
    int64_t ms = 0;
    if (tr_task_num_args(t) > 0) tr_task_arg_i64(t, 0, &ms);
    if (ms > 0) tt_msleep((long)ms);
    return tr_task_return_i64(t, 0, tr_task_rank(t));
}
TR_REMOTE(where)

/* A large result: stored in the object store of the rank that made it. */
static tr_status_t big(tr_task_h t)
{
    void *p;
    tr_status_t st = tr_task_return_alloc(t, 0, 4u << 20, &p);
    if (st != TR_OK) return st;
    memset(p, 7, 4u << 20);
    return TR_OK;
}
TR_REMOTE(big)

static tr_status_t consume(tr_task_h t)
{
    const void *d;
    size_t n;
    tr_status_t st = tr_task_arg(t, 0, &d, &n);
    if (st != TR_OK) return st;
    if (n != 4u << 20 || ((const unsigned char *)d)[n - 1] != 7) return tr_task_fail(t, "bad argument"), TR_ERR_TASK_FAILED;
    return tr_task_return_i64(t, 0, tr_task_rank(t));
}
TR_REMOTE(consume)

static atomic_int g_mem_now, g_mem_max;

/* Holds its declared memory for a while; returns the most tasks of its
 * kind running at once on this rank. */
static tr_status_t memhog(tr_task_h t)
{
    int now = atomic_fetch_add(&g_mem_now, 1) + 1;
    int m = atomic_load(&g_mem_max);
    while (now > m && !atomic_compare_exchange_weak(&g_mem_max, &m, now)) {}
    tt_msleep(30);
    atomic_fetch_sub(&g_mem_now, 1);
    return tr_task_return_i64(t, 0, (int64_t)atomic_load(&g_mem_max) * 100 + tr_task_rank(t));
}
TR_REMOTE(memhog)

static atomic_int g_gpu_busy[16];

/* Uses the GPUs it was given; -1 when one was in use by another task. */
static tr_status_t gpuuser(tr_task_h t)
{
    int ids[16];
    int n = tr_task_gpus(t, ids, 16);
    if (n != 1 || ids[0] < 0 || ids[0] > 1) return tr_task_return_i64(t, 0, -100 - n);
    if (atomic_fetch_add(&g_gpu_busy[ids[0]], 1) != 0) return tr_task_return_i64(t, 0, -1);
    tt_msleep(20);
    atomic_fetch_sub(&g_gpu_busy[ids[0]], 1);
    return tr_task_return_i64(t, 0, ids[0]);
}
TR_REMOTE(gpuuser)

/* Which rank, and what CUDA_VISIBLE_DEVICES says there. */
static tr_status_t gpuenv(tr_task_h t)
{
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    int ids[4];
    int n = tr_task_gpus(t, ids, 4);
    char buf[64];
    snprintf(buf, sizeof(buf), "%d %d %s", tr_task_rank(t), n, v ? v : "(unset)");
    return tr_task_return(t, 0, buf, strlen(buf) + 1);
}
TR_REMOTE(gpuenv)

static tr_status_t pa_init(tr_task_h t, void **state_p)
{
    (void)t;
    *state_p = NULL;
    return TR_OK;
}
static tr_status_t pa_where(tr_task_h t, void *state)
{
    (void)state;
    return tr_task_return_i64(t, 0, tr_task_rank(t));
}
static const tr_actor_method_t pa_methods[] = { { "where", pa_where } };
static const tr_actor_class_t pa_class = { "placed", pa_init, NULL, pa_methods, 1, NULL, NULL };

static tr_ref_h submit(tr_remote_fn_t fn, int64_t arg, const tr_task_params_t *p)
{
    tr_ref_h r;
    tr_arg_t a = TR_ARG_I64(arg);
    tt_ok(tr_task_submit(fn, &a, 1, p, &r));
    return r;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_unschedulable)
{
    tr_ref_h r;
    tr_arg_t a = TR_ARG_I64(0);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_GPUS, .num_gpus = 3 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "gpus=3");
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RESOURCES, .resources = "licence=1" };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "licence");
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_MEMORY, .memory = 2000 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "memory");
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RANK | TR_TASK_FIELD_NUM_CPUS, .rank = 1, .num_cpus = NEXEC + 1 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "rank 1");
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RANK, .rank = g_size };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_INVALID_ARG);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_NODE, .node = -1 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_INVALID_ARG);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_STRATEGY, .strategy = (tr_strategy_t)7 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_INVALID_ARG);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_NUM_GPUS, .num_gpus = 1.5 };
    tt_assert_status(tr_task_submit(where, &a, 1, &p, &r), TR_ERR_INVALID_ARG);
    /* an actor too */
    tr_actor_h act;
    tr_actor_params_t ap = { .field_mask = TR_ACTOR_FIELD_MEMORY, .memory = 5000 };
    tt_assert_status(tr_actor_create("placed", NULL, 0, &ap, &act), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "memory");
}
END_TEST

START_TEST(test_affinity)
{
    for (int r = 0; r < g_size; r++) {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RANK, .rank = r };
        tr_ref_h refs[8];
        for (int i = 0; i < 8; i++) refs[i] = submit(where, 5, &p);
        for (int i = 0; i < 8; i++) {
            ck_assert_int_eq(get_i64(refs[i]), r);
            tr_ref_release(refs[i]);
        }
        /* node affinity: each rank is its own node here */
        p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_NODE, .node = tr_node_of(r) };
        tr_ref_h x = submit(where, 0, &p);
        ck_assert_int_eq(get_i64(x), r);
        tr_ref_release(x);
    }
    /* soft: the preferred rank while it can take the task */
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RANK, .rank = g_size - 1, .soft = 1 };
    tr_ref_h x = submit(where, 0, &p);
    ck_assert_int_eq(get_i64(x), g_size - 1);
    tr_ref_release(x);
    /* soft with a need the rank can never meet: placed elsewhere instead of failing */
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RANK | TR_TASK_FIELD_RESOURCES, .rank = 1, .soft = 1,
                            .resources = "ssd=1" };
    x = submit(where, 0, &p);
    ck_assert_int_ge(get_i64(x), 0);
    tr_ref_release(x);
    /* an actor with soft affinity to a rank */
    tr_actor_h act;
    tr_actor_params_t ap = { .field_mask = TR_ACTOR_FIELD_RANK | TR_ACTOR_FIELD_SOFT, .rank = 2 % g_size, .soft = 1 };
    tt_ok(tr_actor_create("placed", NULL, 0, &ap, &act));
    tt_ok(tr_actor_call(act, "where", NULL, 0, NULL, &x));
    ck_assert_int_eq(get_i64(x), 2 % g_size);
    tr_ref_release(x);
    tr_actor_release(act);
}
END_TEST

START_TEST(test_spread)
{
    enum { N = 16 };
    int per[64] = { 0 };
    tr_ref_h refs[N];
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_STRATEGY, .strategy = TR_STRATEGY_SPREAD };
    for (int i = 0; i < N; i++) refs[i] = submit(where, 20, &p);
    for (int i = 0; i < N; i++) {
        int64_t r = get_i64(refs[i]);
        ck_assert(r >= 0 && r < g_size);
        per[r]++;
        tr_ref_release(refs[i]);
    }
    for (int r = 0; r < g_size; r++)
        ck_assert_msg(per[r] == N / g_size, "rank %d ran %d of %d spread tasks", r, per[r], N);
}
END_TEST

START_TEST(test_locality)
{
    for (int k = 0; k < 6; k++) {
        int src = 1 + k % (g_size - 1);
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_RANK, .rank = src };
        tr_ref_h b;
        tt_ok(tr_task_submit(big, NULL, 0, &p, &b));
        tt_ok(tr_wait(&b, 1, 1, WAIT_MS, (size_t[1]){ 0 }, (size_t[1]){ 0 }));
        tr_ref_h c;
        tr_arg_t a = TR_ARG_REF(b);
        tt_ok(tr_task_submit(consume, &a, 1, NULL, &c));
        ck_assert_msg(get_i64(c) == src, "the consumer of a 4 MiB object made on rank %d ran elsewhere", src);
        tr_ref_release(c);
        tr_ref_release(b);
    }
}
END_TEST

START_TEST(test_memory)
{
    enum { N = 24 };
    tr_ref_h refs[N];
    int used[64] = { 0 };
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_MEMORY, .memory = 600 };
    for (int i = 0; i < N; i++) tt_ok(tr_task_submit(memhog, NULL, 0, &p, &refs[i]));
    for (int i = 0; i < N; i++) {
        int64_t v = get_i64(refs[i]);
        ck_assert_msg(v / 100 == 1, "%" PRId64 " tasks of 600 bytes ran at once on rank %" PRId64
                      " (memory=1000)", v / 100, v % 100);
        used[v % 100] = 1;
        tr_ref_release(refs[i]);
    }
    int n = 0;
    for (int r = 0; r < g_size; r++) n += used[r];
    ck_assert_msg(n >= 2, "memory-bound tasks used %d rank(s)", n);
}
END_TEST

START_TEST(test_gpus)
{
    enum { N = 12 };
    tr_ref_h refs[N];
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_GPUS | TR_TASK_FIELD_RANK, .num_gpus = 1, .rank = 1 };
    for (int i = 0; i < N; i++) tt_ok(tr_task_submit(gpuuser, NULL, 0, &p, &refs[i]));
    int seen[2] = { 0, 0 };
    for (int i = 0; i < N; i++) {
        int64_t v = get_i64(refs[i]);
        ck_assert_msg(v == 0 || v == 1, "a GPU task saw %" PRId64 " (-1: its GPU was in use)", v);
        seen[v]++;
        tr_ref_release(refs[i]);
    }
    ck_assert(seen[0] > 0 && seen[1] > 0);
}
END_TEST

START_TEST(test_pg)
{
    tr_bundle_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (tr_bundle_t){ .num_cpus = 1 };
    tr_pg_h pg;
    /* STRICT_SPREAD: one bundle per node; tasks submitted before it is ready wait for it */
    tt_ok(tr_placement_group_create(b, g_size, TR_PG_STRICT_SPREAD, &pg));
    tr_ref_h refs[8];
    for (int i = 0; i < g_size; i++) {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_PLACEMENT_GROUP, .placement_group = pg, .bundle_index = i };
        refs[i] = submit(where, 0, &p);
    }
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    int seen[64] = { 0 };
    for (int i = 0; i < g_size; i++) {
        int r = tr_placement_group_bundle_rank(pg, i);
        ck_assert(r >= 0 && r < g_size && !seen[r]);
        seen[r] = 1;
        ck_assert_int_eq(get_i64(refs[i]), r);
        tr_ref_release(refs[i]);
    }
    ck_assert_int_eq(tr_placement_group_bundle_rank(pg, g_size), -1);
    /* a task that needs more than its bundle */
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_PLACEMENT_GROUP | TR_TASK_FIELD_NUM_CPUS,
                           .placement_group = pg, .bundle_index = 0, .num_cpus = 2 };
    tr_ref_h x;
    tr_arg_t a0 = TR_ARG_I64(0);
    tt_assert_status(tr_task_submit(where, &a0, 1, &p, &x), TR_ERR_UNSCHEDULABLE);
    p.bundle_index = g_size;
    p.num_cpus = 1;
    tt_assert_status(tr_task_submit(where, &a0, 1, &p, &x), TR_ERR_INVALID_ARG);
    /* an actor in bundle 1 */
    tr_actor_h act;
    tr_actor_params_t ap = { .field_mask = TR_ACTOR_FIELD_PLACEMENT_GROUP | TR_ACTOR_FIELD_NUM_CPUS,
                             .placement_group = pg, .bundle_index = 1, .num_cpus = 1 };
    tt_ok(tr_actor_create("placed", NULL, 0, &ap, &act));
    tt_ok(tr_actor_call(act, "where", NULL, 0, NULL, &x));
    ck_assert_int_eq(get_i64(x), tr_placement_group_bundle_rank(pg, 1));
    tr_ref_release(x);
    tr_actor_release(act);
    tt_ok(tr_placement_group_remove(pg));
    tt_assert_status(tr_placement_group_remove(pg), TR_ERR_REF_RELEASED);
    tt_assert_status(tr_placement_group_wait(pg, 0), TR_ERR_REF_RELEASED);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_PLACEMENT_GROUP, .placement_group = pg, .bundle_index = -1 };
    tt_assert_status(tr_task_submit(where, &a0, 1, &p, &x), TR_ERR_REF_RELEASED);

    /* strategies that cannot be met */
    tt_assert_status(tr_placement_group_create(b, g_size + 1, TR_PG_STRICT_SPREAD, &pg), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "STRICT_SPREAD");
    tr_bundle_t big3[2] = { { .num_cpus = 3 }, { .num_cpus = 3 } };
    tt_assert_status(tr_placement_group_create(big3, 2, TR_PG_STRICT_PACK, &pg), TR_ERR_UNSCHEDULABLE);
    tr_bundle_t huge = { .num_gpus = 4 };
    tt_assert_status(tr_placement_group_create(&huge, 1, TR_PG_PACK, &pg), TR_ERR_UNSCHEDULABLE);
    tt_assert_contains(tr_last_error(), "gpus");
    tr_bundle_t none = { 0 };
    tt_assert_status(tr_placement_group_create(&none, 1, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_placement_group_create(b, 0, TR_PG_PACK, &pg), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_placement_group_create(b, 1, (tr_pg_strategy_t)9, &pg), TR_ERR_INVALID_ARG);

    /* STRICT_PACK: both on one rank (one rank per node here); PACK of two
     * 2-GPU bundles: two ranks, each has 2 GPUs */
    tr_bundle_t two[2] = { { .num_cpus = 2 }, { .num_cpus = 2 } };
    tt_ok(tr_placement_group_create(two, 2, TR_PG_STRICT_PACK, &pg));
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    ck_assert_int_eq(tr_placement_group_bundle_rank(pg, 0), tr_placement_group_bundle_rank(pg, 1));
    tt_ok(tr_placement_group_remove(pg));
    /* SPREAD: as many nodes as possible (one rank per node here); PACK of
     * two small bundles: one node */
    tt_ok(tr_placement_group_create(b, g_size, TR_PG_SPREAD, &pg));
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    int used[64] = { 0 };
    for (int i = 0; i < g_size; i++) {
        int br = tr_placement_group_bundle_rank(pg, i);
        ck_assert_msg(br >= 0 && !used[br], "SPREAD put two bundles on rank %d", br);
        used[br] = 1;
    }
    tt_ok(tr_placement_group_remove(pg));
    tt_ok(tr_placement_group_create(b, 2, TR_PG_PACK, &pg));
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    ck_assert_int_eq(tr_node_of(tr_placement_group_bundle_rank(pg, 0)), tr_node_of(tr_placement_group_bundle_rank(pg, 1)));
    tt_ok(tr_placement_group_remove(pg));
    tr_bundle_t g2[2] = { { .num_gpus = 2 }, { .num_gpus = 2 } };
    tt_ok(tr_placement_group_create(g2, 2, TR_PG_PACK, &pg));
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    ck_assert_int_ne(tr_placement_group_bundle_rank(pg, 0), tr_placement_group_bundle_rank(pg, 1));
    tt_ok(tr_placement_group_remove(pg));

    /* a reservation holds its resources: a rank's 4 cpus reserved, a task
     * pinned there waits until the group is removed */
    tr_bundle_t all = { .num_cpus = NEXEC };
    tt_ok(tr_placement_group_create(&all, 1, TR_PG_STRICT_PACK, &pg));
    tt_ok(tr_placement_group_wait(pg, WAIT_MS));
    int r = tr_placement_group_bundle_rank(pg, 0);
    p = (tr_task_params_t){ .field_mask = TR_TASK_FIELD_RANK, .rank = r };
    x = submit(where, 0, &p);
    size_t idx, nready = 9;
    tt_ok(tr_wait(&x, 1, 1, 300, &idx, &nready));
    ck_assert_msg(nready == 0, "a task ran on rank %d while a placement group held all its cpus", r);
    tt_ok(tr_placement_group_remove(pg));
    ck_assert_int_eq(get_i64(x), r);
    tr_ref_release(x);
}
END_TEST

/* With TASKRAY_TOPOLOGY=tests/topo/two-numa-two-gpu.xml and 4 ranks on one
 * node: the GPUs are near ranks 0 and 2, and a gpus=1 task runs there with
 * its device visible. */
START_TEST(test_gpu_xml)
{
    int holders = 0;
    for (int r = 0; r < g_size; r++) {
        tr_rank_info_t info;
        tt_ok(tr_rank_info(r, &info));
        holders += info.num_gpus > 0;
    }
    ck_assert_int_ge(holders, 1);
    for (int i = 0; i < 8; i++) {
        tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_GPUS, .num_gpus = 1 };
        tr_ref_h x;
        tt_ok(tr_task_submit(gpuenv, NULL, 0, &p, &x));
        char buf[64] = "";
        size_t n;
        tt_ok(tr_get_copy(x, WAIT_MS, buf, sizeof(buf), &n));
        tr_ref_release(x);
        int rank = -1, ng = -1;
        char env[32] = "";
        ck_assert_int_eq(sscanf(buf, "%d %d %31s", &rank, &ng, env), 3);
        tr_rank_info_t info;
        tt_ok(tr_rank_info(rank, &info));
        ck_assert_msg(info.num_gpus >= 1, "a gpus=1 task ran on rank %d, which holds no GPU", rank);
        ck_assert_int_eq(ng, 1);
        ck_assert_msg(strcmp(env, "(unset)") != 0, "CUDA_VISIBLE_DEVICES unset for a GPU task on rank %d", rank);
    }
}
END_TEST

typedef struct {
    const char *name;
    const TTest *test;
} case_t;

int main(int argc, char **argv)
{
    if (tt_launcher_shape("mpi_placement", &g_rank, &g_size) != 0) return 1;
    tr_actor_class_register(&pa_class);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE | TR_INIT_FIELD_ARGC_ARGV | TR_INIT_FIELD_NUM_EXECUTORS,
                            .mode = TR_MODE_DRIVER, .num_executors = NEXEC, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "rank %d: tr_init: %s: %s\n", g_rank, tr_status_string(st), tr_last_error());
        return 1;
    }
    if (g_rank != 0) return tr_finalize() == TR_OK ? 0 : 1;

    const case_t cases[] = {
        { "unschedulable", test_unschedulable }, { "affinity", test_affinity }, { "spread", test_spread },
        { "locality", test_locality },           { "memory", test_memory },     { "gpus", test_gpus },
        { "pg", test_pg },                       { "gpu_xml", test_gpu_xml },
    };
    const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
    int failed = 0, nsel = 0;
    int only_xml = argc == 2 && strcmp(argv[1], "gpu_xml") == 0;
    if (!only_xml && (g_size < 3 || tr_node_of(1) == tr_node_of(2))) {
        fprintf(stderr, "mpi_placement: needs at least 3 ranks, each a node (got %d)\n", g_size);
        failed++;
    }
    Suite *s = suite_create("mpi_placement");
    for (int k = 0; k < ncases; k++) {
        int want = argc <= 1 && strcmp(cases[k].name, "gpu_xml") != 0;
        for (int i = 1; i < argc; i++) want |= strcmp(argv[i], cases[k].name) == 0;
        if (!want) continue;
        TCase *tc = tcase_create(cases[k].name);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[k].test);
        suite_add_tcase(s, tc);
        nsel++;
    }
    SRunner *sr = srunner_create(s);
    if (failed == 0) {
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
    }
    srunner_free(sr);
    if ((st = tr_finalize()) != TR_OK) {
        fprintf(stderr, "rank 0: tr_finalize: %s\n", tr_status_string(st));
        failed++;
    }
    printf("mpi_placement: %d rank(s), %d test(s), %s\n", g_size, nsel, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
