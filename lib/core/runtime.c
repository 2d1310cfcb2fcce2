/*
 * Runtime start-up and shutdown, and the dispatch of incoming messages.
 *
 * Shutdown protocol: every rank first waits until the tasks it owns are done
 * (serving ranks in TR_MODE_DRIVER also wait for the driver's SHUTDOWN), then
 * all ranks meet in a barrier while still serving.  After it no task runs
 * anywhere, so executors and the loop stop, a second barrier makes sure no
 * rank closes its endpoints while a peer still flushes, and MPI finalizes.
 */
#include "core/core.h"
#include "comm/wire.h"
#include "base/handle.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

tr__rt_t *tr__rt;
_Atomic int tr__state;

static void on_recv(void *arg, const void *msg, size_t len)
{
    (void)arg;
    tr__wire_hdr_t h;
    memcpy(&h, msg, sizeof(h));
    switch (h.type) {
    case TR__MSG_TASK:   tr__recv_task(msg, len); break;
    case TR__MSG_RESULT: tr__recv_result(msg, len); break;
    case TR__MSG_CANCEL: tr__recv_cancel(msg, len); break;
    case TR__MSG_FREE: case TR__MSG_BORROW: case TR__MSG_UNBORROW: case TR__MSG_STATE:
    case TR__MSG_LOCATE: case TR__MSG_ADD_LOC: case TR__MSG_DROP_LOC: case TR__MSG_PIN:
    case TR__MSG_UNPIN: case TR__MSG_REPLY: case TR__MSG_REPLICATE:
        tr__proto_recv(h.type, msg, len);
        break;
    case TR__MSG_ACREATE: case TR__MSG_ACALL: case TR__MSG_AKILL: case TR__MSG_NAME:
    case TR__MSG_ARESTART: case TR__MSG_ACKPT:
        tr__actor_recv(h.type, msg, len);
        break;
    case TR__MSG_PG:
        tr__pg_recv(h.type, msg, len);
        break;
    case TR__MSG_STEAL: case TR__MSG_STOLEN: case TR__MSG_MOVED:
        tr__steal_recv(h.type, msg, len);
        break;
    case TR__MSG_DEATH: case TR__MSG_FIN:
        tr__failure_recv(h.type, msg, len);
        break;
    case TR__MSG_SHUTDOWN:
        if ((int)h.src != 0) { tr__warn("dropped a shutdown message from rank %u (only the driver sends it)", h.src); break; }
        pthread_mutex_lock(&tr__rt->lock);
        tr__rt->shutdown_msg = 1;
        pthread_cond_broadcast(&tr__rt->state_cv);
        pthread_mutex_unlock(&tr__rt->lock);
        break;
    default:
        break;
    }
}

static void on_peer_failed(void *arg, int rank, const char *why)
{
    (void)arg;
    tr__rank_died(rank, why);
}

static void abandon_store(void *store)
{
    tr__store_abandon(store);
}

static void on_deaf(void *arg, const char *why)
{
    (void)arg;
    tr__deaf(why);
}

/* This rank's share of the node's object-store cap: TASKRAY_OBJECT_STORE_BYTES
 * (default 30 % of physical memory) split among the node's ranks, never
 * more than 90 % of what /dev/shm has free. */
static size_t store_bytes(const tr__boot_t *b)
{
    int nlocal = b->local_size ? b->local_size : 1;
    int nhost = b->host_size > nlocal ? b->host_size : nlocal;   /* simulated nodes share the host */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t node = pages > 0 && psize > 0 ? (int64_t)pages * psize / 10 * 3 : 4ll << 30;
    node = node / nhost * nlocal;   /* a simulated node's fair part of the host */
    const char *legacy = getenv("TASKRAY_ARENA_BYTES");   /* 0.1 name: per rank */
    int64_t share;
    if (getenv("TASKRAY_OBJECT_STORE_BYTES") == NULL && legacy != NULL)
        share = tr__env_i64("TASKRAY_ARENA_BYTES", 1ll << 30, 1ll << 20, 1ll << 46);
    else
        share = tr__env_i64("TASKRAY_OBJECT_STORE_BYTES", node, 1ll << 20, 1ll << 50) / nlocal;
    struct statvfs sv;
    if (statvfs("/dev/shm", &sv) == 0) {
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize / (uint64_t)nhost / 10 * 9;
        if ((uint64_t)share > avail) {
            tr__info("object store: %" PRId64 " bytes per rank asked, /dev/shm leaves %" PRIu64, share, avail);
            share = (int64_t)avail;
        }
    }
    if (share < (1 << 20)) share = 1 << 20;   /* shm_open/ftruncate then report what is wrong */
    return (size_t)share;
}

/* Ranks of one host in different TASKRAY_NODE_ID groups are separate nodes
 * to taskray; UCX must then not use shared memory between them, or the
 * cross-node path would not be the real one. */
static void simulated_nodes(tr__rt_t *rt)
{
    if (getenv("TASKRAY_NODE_ID") == NULL || rt->boot.nnodes < 2) return;
    rt->sim_nodes = 1;
    if (getenv("UCX_TLS") == NULL) {
        setenv("UCX_TLS", "^sm", 0);
        tr__debug("TASKRAY_NODE_ID: UCX_TLS=^sm (network transports between simulated nodes)");
    }
}

void tr__rt_stats(tr_object_store_stats_t *st)
{
    tr__rt_t *rt = tr__rt;
    memset(st, 0, sizeof(*st));
    tr__store_stats(&rt->store, st);
    pthread_mutex_lock(&rt->lock);
    st->owned_objects = (uint64_t)rt->n_owned;
    st->borrowed_objects = (uint64_t)rt->n_borrowed;
    st->lineage_bytes = rt->lineage_bytes;
    pthread_mutex_unlock(&rt->lock);
}

/* "truncated 0, oversized 0, ...": the dropped messages by reason. */
static void drops_by_reason(tr__rt_t *rt, char *buf, size_t len)
{
    uint64_t n[TR__DROP_NREASONS] = { 0 };
    size_t off = 0;
    if (rt->comm) tr__comm_drop_counts(rt->comm, n);
    buf[0] = '\0';
    for (int i = 0; i < TR__DROP_NREASONS && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s %" PRIu64, i ? ", " : "", tr__drop_name((tr__drop_t)i), n[i]);
        if (w < 0) break;
        off += (size_t)w;
    }
}

static void print_summary(tr__rt_t *rt)
{
    tr_object_store_stats_t s;
    uint64_t stolen, given;
    char drops[256];
    drops_by_reason(rt, drops, sizeof(drops));
    tr__rt_stats(&s);
    tr__steal_counts(&stolen, &given);
    fprintf(stderr,
            "taskray summary: rank %d: tasks submitted %" PRIu64 " run %" PRIu64 "; object store: capacity %" PRIu64
            " used %" PRIu64 " objects %" PRIu64 " (primary %" PRIu64 ", secondary %" PRIu64 "), spilled %" PRIu64
            " bytes in %" PRIu64 " objects, spills %" PRIu64 " (%" PRIu64 " bytes), restores %" PRIu64 " (%" PRIu64
            " bytes), evictions %" PRIu64 ", fetches %" PRIu64 " (%" PRIu64 " bytes), owned %" PRIu64 ", borrowed %" PRIu64
            ", lineage %" PRIu64 " bytes; messages dropped %" PRIu64 " (%s); failures: ranks died %" PRIu64
            ", tasks retried %" PRIu64 ", objects rebuilt %" PRIu64 ", actors restarted %" PRIu64
            ", calls retried %" PRIu64 "; work stealing: tasks stolen %" PRIu64 ", given away %" PRIu64 "\n",
            rt->rank, rt->tasks_submitted, atomic_load(&rt->tasks_run), s.capacity_bytes, s.used_bytes, s.num_objects,
            s.num_primary, s.num_secondary, s.spilled_bytes, s.spilled_objects, s.spills, s.spill_bytes_total,
            s.restores, s.restore_bytes_total, s.evictions, s.fetches, s.fetch_bytes_total, s.owned_objects,
            s.borrowed_objects, s.lineage_bytes, rt->comm ? tr__comm_dropped(rt->comm) : 0, drops,
            rt->fstats.ranks_died, rt->fstats.tasks_retried, rt->fstats.objects_rebuilt,
            rt->fstats.actors_restarted, rt->fstats.calls_retried, stolen, given);
}

static tr_status_t check_tables(tr__rt_t *rt)
{
    const uint64_t *all = rt->boot.words;   /* { digest, count } of each rank: gathered by tr__boot_init */
    tr_status_t st = TR_OK;
    for (int r = 1; r < rt->size; r++) {
        if (all[2 * r] == all[0]) continue;
        tr__set_error("rank %d registered %" PRIu64 " remote functions and rank 0 registered %" PRIu64
                      ", with different names (digests %016" PRIx64 " and %016" PRIx64 "): the ranks were "
                      "built from different binaries; run the same program on every rank",
                      r, all[2 * r + 1], all[1], all[2 * r], all[0]);
        if (rt->rank == 0 || rt->rank == r) tr__error("%s", tr_last_error());
        st = TR_ERR_MISMATCH;
    }
    return st;
}

static tr_status_t runtime_start(tr__rt_t *rt, const tr_init_params_t *params)
{
    int *argc = NULL;
    char ***argv = NULL;
    if (params && (params->field_mask & TR_INIT_FIELD_ARGC_ARGV)) { argc = params->argc; argv = params->argv; }
    uint64_t tables[2] = { tr__fn_digest(), (uint64_t)tr__fn_count() };
    tr_status_t st = tr__boot_init(&rt->boot, argc, argv, tables);
    if (st != TR_OK) return st;
    rt->rank = rt->boot.rank;
    rt->size = rt->boot.size;
    tr__log_set_rank(rt->rank);
    if ((st = check_tables(rt)) != TR_OK) return st;
    if ((st = tr__topo_load(&rt->topo)) != TR_OK) return st;

    int nexec;   /* the share of the node's cores, GPUs, resources, every rank's info */
    if ((st = tr__rt_placement(rt, params, &nexec)) != TR_OK) return st;
    rt->inline_max = (size_t)tr__env_i64("TASKRAY_INLINE_MAX", 65536, 0, 1ll << 30);
    rt->fetch_chunk = (size_t)tr__env_i64("TASKRAY_FETCH_CHUNK", 8ll << 20, 4096, 1ll << 32);
    rt->max_lineage = (uint64_t)tr__env_i64("TASKRAY_MAX_LINEAGE_BYTES", 256ll << 20, 0, 1ll << 50);
    int encrypt = (int)tr__env_i64("TASKRAY_SPILL_ENCRYPT", 0, 0, 1);
    if ((st = tr__store_init(&rt->store, rt->boot.name_id, rt->rank, store_bytes(&rt->boot),
                             getenv("TASKRAY_SPILL_DIR"), encrypt)) != TR_OK) return st;
    rt->store.evicted = tr__store_evicted;
    if (rt->boot.local_rank == 0)   /* one rank per node: what dead jobs of this user left */
        tr__leftovers_reap(getenv("TASKRAY_SPILL_DIR"), rt->boot.name_id);
    tr__watchdog_cleanup(abandon_store, &rt->store);
    if (tr__topo_bind_area(&rt->topo, rt->store.arena.base, rt->store.arena.size) == 0)
        tr__debug("object store bound to the NUMA node(s) of this rank's cores");
    simulated_nodes(rt);
    if ((rt->peer_maps = calloc((size_t)rt->size, sizeof(void *))) == NULL) return TR_ERR_NO_MEMORY;
    if (tr__hmap_init(&rt->specs, 1024) != 0 || tr__hmap_init(&rt->objs, 1024) != 0 ||
        tr__hmap_init(&rt->rpcs, 64) != 0 || tr__hmap_init(&rt->rebuild_wait, 8) != 0 ||
        tr__hmap_init(&rt->rpins, 64) != 0) return TR_ERR_NO_MEMORY;
    if ((rt->fin_got[0] = calloc((size_t)rt->size, 1)) == NULL ||
        (rt->fin_got[1] = calloc((size_t)rt->size, 1)) == NULL) return TR_ERR_NO_MEMORY;
    if ((st = tr__actors_init()) != TR_OK) return st;
    if ((st = tr__pgs_init()) != TR_OK) return st;
    rt->root_id = tr__hash2(rt->boot.job_id, (uint64_t)rt->rank);
    uint64_t spin_ns = (uint64_t)tr__env_i64("TASKRAY_SPIN_US", 50, 0, 10000000) * 1000;
    if ((st = tr__pool_start(&rt->pool, nexec, &rt->mine, spin_ns)) != TR_OK) return st;
    /* Tasks may arrive as soon as the transport exists, from ranks that
     * finished start-up first, and may submit nested tasks: the runtime is
     * up from here on (tr_init() resets the state if the transport fails). */
    atomic_store(&tr__state, 1);
    if (rt->size > 1) {
        tr__comm_cb_t cb = { on_recv, on_peer_failed, on_deaf, rt };
        uint64_t hb = (uint64_t)tr__env_i64("TASKRAY_HEARTBEAT_MS", 1000, 0, 3600000);
        uint64_t hb_to = (uint64_t)tr__env_i64("TASKRAY_HEARTBEAT_TIMEOUT_MS", (long long)hb * 20, hb, 36000000);
        size_t max_msg = (size_t)tr__env_i64("TASKRAY_MAX_MESSAGE_BYTES", (long long)TR__WIRE_MAX_LEN_DEFAULT,
                                             1ll << 16, (long long)UINT32_MAX);
        if ((st = tr__comm_create(&rt->boot, rt->store.arena.base, rt->store.arena.size, spin_ns, hb, hb_to, max_msg,
                                  &cb, &rt->comm)) != TR_OK) return st;
        if ((st = tr__steal_start()) != TR_OK) return st;
    }
    return TR_OK;
}

/* Handles the application still holds at finalize die with the runtime. */
static void drop_handle(tr__handle_kind_t kind, void *ptr)
{
    if (kind == TR__HANDLE_BUF) {
        tr__view_free(ptr);
        return;
    }
    if (kind == TR__HANDLE_PG) return;   /* groups are freed with rt->pgs (tr__pgs_free) */
    if (kind == TR__HANDLE_OBJECT) {   /* created, never sealed */
        tr__blob_unref(*(tr__blob_t **)ptr);
        free(ptr);
        return;
    }
    pthread_mutex_lock(&tr__rt->lock);
    tr__obj_unref_locked(ptr);
    pthread_mutex_unlock(&tr__rt->lock);
}

static void runtime_free(tr__rt_t *rt, int clean)
{
    tr__steal_stop();
    if (rt->pool.threads) tr__pool_stop(&rt->pool);
    tr__actors_shutdown();   /* destructors of live actors, on this thread */
    if (rt->comm) tr__comm_destroy(rt->comm);
    rt->comm = NULL;
    tr__steal_free();
    tr__handle_release_all(drop_handle);
    tr__hmap_destroy(&rt->specs);
    tr__hmap_destroy(&rt->objs);
    tr__hmap_destroy(&rt->rpcs);
    tr__hmap_destroy(&rt->rebuild_wait);
    tr__pgs_free();
    if (rt->rpins.vals) tr__rpins_free();
    free(rt->fin_got[0]);
    free(rt->fin_got[1]);
    tr__store_destroy(&rt->store);
    tr__topo_destroy(&rt->topo);
    tr__sched_destroy(&rt->sched);
    free(rt->info);
    tr__config_clear();
    tr__boot_finalize(&rt->boot, clean);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->map_lock);
    pthread_cond_destroy(&rt->state_cv);
    free(rt->peer_maps);
    free(rt);
}

tr_status_t tr_init(const tr_init_params_t *params)
{
    int expected = 0;
    if (params != NULL) {
        if ((params->field_mask & TR_INIT_FIELD_MODE) && params->mode != TR_MODE_DRIVER && params->mode != TR_MODE_SPMD)
            return TR_ERR_INVALID_ARG;
        if ((params->field_mask & TR_INIT_FIELD_NUM_EXECUTORS) && (params->num_executors < 1 || params->num_executors > 4096))
            return TR_ERR_INVALID_ARG;
    }
    if (!atomic_compare_exchange_strong(&tr__state, &expected, 3)) return TR_ERR_ALREADY_INIT;
    tr__log_init();
    tr__clear_error();
    tr__rt_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) { atomic_store(&tr__state, 0); return TR_ERR_NO_MEMORY; }
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->map_lock, NULL);
    pthread_cond_init(&rt->state_cv, NULL);
    rt->mode = (params && (params->field_mask & TR_INIT_FIELD_MODE)) ? params->mode : TR_MODE_DRIVER;
    tr__rt = rt;
    tr__fn_freeze(1);

    tr__watchdog_start("taskray start-up (tr_init)");
    tr_status_t st = runtime_start(rt, params);
    tr__watchdog_stop();
    tr__watchdog_cleanup(NULL, NULL);
    if (st != TR_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", tr_last_error());
        /* a mismatch is seen by every rank alike, so MPI can finalize cleanly */
        runtime_free(rt, st == TR_ERR_MISMATCH);
        tr__rt = NULL;
        tr__fn_freeze(0);
        tr__set_error("%s", msg);
        atomic_store(&tr__state, 0);
        return st;
    }
    atomic_store(&tr__state, 1);
    return TR_OK;
}

static void send_shutdown(tr__rt_t *rt)
{
    for (int r = 1; r < rt->size; r++) {
        tr__wbuf_t w;
        size_t len;
        tr__wbuf_init(&w, 0);
        void *m = tr__wbuf_finish(&w, TR__MSG_SHUTDOWN, (uint32_t)rt->rank, rt->boot.job_id, &len);
        if (m == NULL) { tr__error("out of memory sending shutdown to rank %d", r); continue; }
        tr__comm_send(rt->comm, r, m, len);
    }
}

tr_status_t tr_finalize(void)
{
    if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;
    if (tr__on_executor) return TR_ERR_WRONG_MODE;
    tr__rt_t *rt = tr__rt;

    tr_status_t st = TR_OK;
    pthread_mutex_lock(&rt->lock);
    if (rt->mode == TR_MODE_DRIVER && rt->rank != 0)
        while (!rt->shutdown_msg && !rt->driver_dead) pthread_cond_wait(&rt->state_cv, &rt->lock);
    while (rt->owned_pending > 0 && !rt->driver_dead) pthread_cond_wait(&rt->state_cv, &rt->lock);
    int driver_dead = rt->driver_dead;
    pthread_mutex_unlock(&rt->lock);
    if (rt->mode == TR_MODE_DRIVER && rt->rank == 0 && rt->size > 1) send_shutdown(rt);

    /* the barriers are messages among the live ranks: MPI's would wait for
     * a dead rank for ever (and a rank may die while we wait) */
    int clean = 1;
    if (driver_dead) {
        st = TR_ERR_WORKER_DIED;
        tr__set_error("the driver (rank 0) died: the job's work is lost");
        clean = 0;
    } else {
        clean = tr__fin_barrier(0);   /* everyone still serves here */
    }
    tr__steal_stop();   /* no task is left anywhere to steal */
    if (tr__env_i64("TASKRAY_SUMMARY", 0, 0, 1)) print_summary(rt);
    atomic_store(&tr__state, 2);
    tr__pool_stop(&rt->pool);
    if (rt->comm) {
        tr__comm_flush(rt->comm);
        tr__comm_closing(rt->comm);
        if (!driver_dead) clean = tr__fin_barrier(1) && clean;
    }
    if (!clean && !driver_dead)
        tr__info("a rank died during the job: finishing without MPI_Finalize (see taskray-run(1))");
    for (int r = 0; r < rt->size; r++)
        if (rt->peer_maps[r]) tr__arena_unmap_peer(rt->peer_maps[r], tr__comm_arena_size(rt->comm, r));
    memset(rt->peer_maps, 0, sizeof(void *) * (size_t)rt->size);
    runtime_free(rt, clean);
    tr__rt = NULL;
    tr__fn_freeze(0);
    atomic_store(&tr__state, 0);
    return st;
}

int tr_rank(void) { return atomic_load(&tr__state) == 1 ? tr__rt->rank : -1; }
int tr_size(void) { return atomic_load(&tr__state) == 1 ? tr__rt->size : 0; }

int tr_is_driver(void)
{
    if (atomic_load(&tr__state) != 1) return 0;
    if (tr__cur_task != NULL) return 1;
    if (tr__on_executor) return 0;
    return tr__rt->mode == TR_MODE_SPMD || tr__rt->rank == 0;
}

int tr_node_of(int rank)
{
    if (atomic_load(&tr__state) != 1 || rank < 0 || rank >= tr__rt->size) return -1;
    return tr__rt->boot.node_of[rank];
}
