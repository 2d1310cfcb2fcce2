/*
 * Rank deaths: agreement, recovery, and a shutdown that does not need MPI.
 *
 * A death is noticed by the transport (UCX reports the peer lost, or its
 * heartbeats stopped) on some rank, which tells every other live rank with
 * a DEATH message; every rank that learns of a death, by either path, tells
 * the others once, so the news survives the loss of its first messenger.
 * From then on the rank is gone for good: its late messages are dropped,
 * nothing is sent to it, and each survivor recovers what it owns:
 *
 *   requests waiting for the dead rank's answer fail (proto.c),
 *   tasks it ran for this rank run again elsewhere (task.c),
 *   objects forget it as a holder and a borrower; lost ones are rebuilt
 *   from their lineage when read (proto.c, task.c),
 *   actors this rank owns that lived there restart elsewhere, and calls to
 *   them are sent again or fail (actor.c).
 *
 * After a death MPI cannot be trusted to finish (MPI_Finalize waits for
 * every rank in the launcher's fence), so the shutdown barriers are FIN
 * messages among the live ranks, and MPI is finalized only when no rank has
 * seen a death.
 */
#include "core/core.h"
#include "comm/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Callable without rt->lock (the steal thread does): the flag is read
 * atomically; tr__sched_rank_dead writes it atomically under the lock. */
int tr__rank_is_dead(int rank)
{
    tr__rt_t *rt = tr__rt;
    return rt && rank >= 0 && rank < rt->size && rt->sched.dead &&
           __atomic_load_n(&rt->sched.dead[rank], __ATOMIC_RELAXED);
}

static void tell_others_locked(int dead)
{
    tr__rt_t *rt = tr__rt;
    for (int r = 0; r < rt->size; r++) {
        if (r == rt->rank || rt->sched.dead[r]) continue;
        tr__wbuf_t w;
        tr__wbuf_init(&w, 4);
        tr__wbuf_u32(&w, (uint32_t)dead);
        tr__send(r, &w, TR__MSG_DEATH);
    }
}

void tr__rank_died(int rank, const char *why)
{
    tr__rt_t *rt = tr__rt;
    if (rt == NULL || rank < 0 || rank >= rt->size) return;
    if (rank == rt->rank) {
        /* the others have written this rank off: it cannot rejoin */
        tr__error("the other ranks declared this rank dead (%s); it leaves the job now", why);
        tr__store_abandon(&rt->store);   /* no shared memory or spill file left behind */
        _exit(70);
    }
    pthread_mutex_lock(&rt->lock);
    if (rt->sched.dead[rank] || atomic_load(&tr__state) == 0) { pthread_mutex_unlock(&rt->lock); return; }
    tr__sched_rank_dead(&rt->sched, rank);
    rt->ndead++;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rt->fstats.ranks_died++;
    rt->fstats.detected_at = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    if (rt->comm) tr__comm_peer_dead(rt->comm, rank);
    if (rank == 0 && rt->mode == TR_MODE_DRIVER) {
        rt->driver_dead = 1;
        tr__error("the driver (rank 0) died (%s): the job cannot go on without it and ends", why);
    } else {
        tr__warn("rank %d died (%s); recovering its work", rank, why);
    }
    tell_others_locked(rank);
    tr__store_reap(&rt->store, rank);   /* its shared memory and spill files, if on this host */
    tr__rpcs_rank_died_locked(rank);
    tr__tasks_rank_died_locked(rank);
    tr__objs_rank_died_locked(rank);
    tr__rpins_rank_died_locked(rank);
    tr__actors_rank_died_locked(rank);
    tr__pgs_rank_died_locked(rank);
    pthread_cond_broadcast(&rt->state_cv);
    pthread_mutex_unlock(&rt->lock);
    tr__pool_bundles_owner_died(&rt->pool, rank);   /* its groups' reservations here go (no rt->lock) */
}

void tr__deaf(const char *why)
{
    tr__rt_t *rt = tr__rt;
    if (rt->rank == 0 && rt->mode == TR_MODE_DRIVER)
        tr__error("the driver can no longer receive messages (%s): a rank that died while writing to its "
                  "shared-memory queue blocked it; the job cannot go on", why);
    else
        tr__error("this rank can no longer receive messages (%s): a rank that died while writing to its "
                  "shared-memory queue blocked it; it leaves the job, and its work is recovered elsewhere", why);
    tr__store_abandon(&rt->store);
    _exit(71);
}

/* ------------------------------------------------------ shutdown barrier */

/*
 * Each phase gathers at a coordinator, the lowest rank this rank believes
 * alive: every rank sends it a FIN (phase 0 or 1); once it holds one from
 * every live rank it sends each a release (phase | FIN_RELEASE).  O(n)
 * messages, and every rank but the coordinator talks to one peer, so that
 * shutting down creates no endpoints between all pairs of ranks.  When the
 * coordinator dies (every rank learns of a death: tr__rank_died tells the
 * others) the ranks still in finalize send their FINs again to the next
 * one, and a rank already released answers a late FIN with a release.
 */
#define FIN_RELEASE 2u

static int fin_coordinator_locked(void)
{
    tr__rt_t *rt = tr__rt;
    for (int r = 0; r < rt->size; r++)
        if (!rt->sched.dead[r]) return r;
    return rt->rank;
}

static void send_fin_locked(int to, unsigned what)
{
    tr__rt_t *rt = tr__rt;
    int deaths = rt->ndead > rt->fin_deaths ? rt->ndead : rt->fin_deaths;
    tr__wbuf_t w;
    tr__wbuf_init(&w, 5);
    tr__wbuf_u8(&w, (uint8_t)what);
    tr__wbuf_u32(&w, (uint32_t)deaths);
    tr__send(to, &w, TR__MSG_FIN);
}

static int fin_complete_locked(int phase)
{
    tr__rt_t *rt = tr__rt;
    for (int r = 0; r < rt->size; r++)
        if (!rt->sched.dead[r] && !rt->fin_got[phase][r]) return 0;
    return 1;
}

/* The coordinator: release every live rank once all have arrived. */
static void fin_release_locked(int phase)
{
    tr__rt_t *rt = tr__rt;
    if (rt->fin_done[phase] || fin_coordinator_locked() != rt->rank || !fin_complete_locked(phase)) return;
    rt->fin_done[phase] = 1;
    for (int r = 0; r < rt->size; r++)
        if (r != rt->rank && !rt->sched.dead[r]) send_fin_locked(r, (unsigned)phase | FIN_RELEASE);
}

int tr__fin_barrier(int phase)
{
    tr__rt_t *rt = tr__rt;
    pthread_mutex_lock(&rt->lock);
    rt->fin_got[phase][rt->rank] = 1;
    if (rt->comm == NULL) rt->fin_done[phase] = 1;
    int coord = -1, ndead = -1;
    while (!rt->fin_done[phase]) {
        if (rt->ndead != ndead) {   /* the first time, and after each death */
            ndead = rt->ndead;
            int c = fin_coordinator_locked();
            if (c != coord && c != rt->rank)
                for (int p = 0; p <= phase; p++) send_fin_locked(c, (unsigned)p);
            coord = c;
        }
        fin_release_locked(phase);
        if (!rt->fin_done[phase]) pthread_cond_wait(&rt->state_cv, &rt->lock);
    }
    int clean = rt->ndead == 0 && rt->fin_deaths == 0;
    pthread_mutex_unlock(&rt->lock);
    return clean;
}

/* ------------------------------------------------------------- messages */

void tr__failure_recv(int type, const void *msg, size_t len)
{
    tr__rt_t *rt = tr__rt;
    tr__wire_hdr_t h;
    tr__rbuf_t r;
    tr__wire_open(msg, len, &h, &r);
    if (type == TR__MSG_DEATH) {
        uint32_t dead = tr__rbuf_u32(&r);
        if (r.bad || dead >= (uint32_t)rt->size) { tr__warn("dropped a malformed death notice from rank %u", h.src); return; }
        char why[64];
        snprintf(why, sizeof(why), "rank %u said so", h.src);
        tr__rank_died((int)dead, why);
        return;
    }
    uint8_t phase = tr__rbuf_u8(&r);
    uint32_t deaths = tr__rbuf_u32(&r);
    if (r.bad || phase > (1 | FIN_RELEASE)) { tr__warn("dropped a malformed shutdown message from rank %u", h.src); return; }
    pthread_mutex_lock(&rt->lock);
    if ((int)deaths > rt->fin_deaths) rt->fin_deaths = (int)deaths;
    if (phase & FIN_RELEASE) {
        rt->fin_done[phase & 1] = 1;
    } else {
        rt->fin_got[phase][h.src] = 1;
        if (rt->fin_done[phase]) send_fin_locked((int)h.src, phase | FIN_RELEASE);   /* a late FIN */
    }
    pthread_cond_broadcast(&rt->state_cv);
    pthread_mutex_unlock(&rt->lock);
}

/* ------------------------------------------------------------- public */

int tr_rank_alive(int rank)
{
    if (atomic_load(&tr__state) != 1 || rank < 0 || rank >= tr__rt->size) return -1;
    pthread_mutex_lock(&tr__rt->lock);
    int alive = !tr__rt->sched.dead[rank];
    pthread_mutex_unlock(&tr__rt->lock);
    return alive;
}

tr_status_t tr_failure_stats(tr_failure_stats_t *stats_p)
{
    if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;
    if (stats_p == NULL) return TR_ERR_INVALID_ARG;
    pthread_mutex_lock(&tr__rt->lock);
    *stats_p = tr__rt->fstats;
    pthread_mutex_unlock(&tr__rt->lock);
    return TR_OK;
}
