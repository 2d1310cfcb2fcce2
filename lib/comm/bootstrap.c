/*
 * MPI bootstrap.  No MPI call happens anywhere else in the library, and none
 * after start-up except the shutdown barriers.
 */
#include "comm/bootstrap.h"
#include "base/base.h"

#include <errno.h>
#include <mpi.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define HOST_LEN 256

/* A launcher (mpirun, mpiexec, srun with PMI) leaves one of these. */
static int launched_by_mpi(void)
{
    static const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK",
                                  "PMI_FD", "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD" };
    for (size_t i = 0; i < TR__ARRAY_SIZE(vars); i++)
        if (getenv(vars[i]) != NULL) return 1;
    return 0;
}

static tr_status_t mpi_err(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    tr__error("%s failed: %s", what, s);
    return TR_ERR_BOOTSTRAP;
}

/* Each rank contributes (node key, hostname, job id): the node key is
 * TASKRAY_NODE_ID when set (simulated nodes), else the hostname.  Nodes are
 * numbered in order of first appearance; host_size counts the ranks that
 * share this rank's real host (and its memory), whatever the node key.
 * Rank 0's ids (random) become the job's: one collective, not two. */
static tr_status_t group_nodes(tr__boot_t *b, const uint64_t words[2])
{
    char rec[2 * HOST_LEN + 4 * sizeof(uint64_t)] = { 0 };
    char *key = rec, *host = rec + HOST_LEN;
    memcpy(rec + 2 * HOST_LEN, &b->job_id, sizeof(b->job_id));
    memcpy(rec + 2 * HOST_LEN + sizeof(uint64_t), &b->name_id, sizeof(b->name_id));
    memcpy(rec + 2 * HOST_LEN + 2 * sizeof(uint64_t), words, 2 * sizeof(uint64_t));
    if (gethostname(host, HOST_LEN - 1) != 0) snprintf(host, HOST_LEN, "localhost");
    const char *override = getenv("TASKRAY_NODE_ID");
    if (override != NULL && *override != '\0') snprintf(key, HOST_LEN, "node-id:%s", override);
    else memcpy(key, host, HOST_LEN);

    char *all = malloc((size_t)b->size * sizeof(rec));
    b->node_of = malloc((size_t)b->size * sizeof(int));
    b->words = malloc((size_t)b->size * 2 * sizeof(uint64_t));
    if (all == NULL || b->node_of == NULL || b->words == NULL) { free(all); return TR_ERR_NO_MEMORY; }
    tr_status_t st = tr__boot_allgather(b, rec, sizeof(rec), all);
    if (st != TR_OK) { free(all); return st; }
    memcpy(&b->job_id, all + 2 * HOST_LEN, sizeof(b->job_id));
    memcpy(&b->name_id, all + 2 * HOST_LEN + sizeof(uint64_t), sizeof(b->name_id));
    for (int r = 0; r < b->size; r++)
        memcpy(b->words + 2 * r, all + (size_t)r * sizeof(rec) + 2 * HOST_LEN + 2 * sizeof(uint64_t), 2 * sizeof(uint64_t));
    b->nnodes = 0;
    for (int r = 0; r < b->size; r++) {
        int n = -1;
        for (int q = 0; q < r && n < 0; q++)
            if (strncmp(all + (size_t)q * sizeof(rec), all + (size_t)r * sizeof(rec), HOST_LEN) == 0)
                n = b->node_of[q];
        b->node_of[r] = (n >= 0) ? n : b->nnodes++;
    }
    b->local_rank = b->local_size = b->host_size = 0;
    for (int r = 0; r < b->size; r++) {
        if (strncmp(all + (size_t)r * sizeof(rec) + HOST_LEN, host, HOST_LEN) == 0) b->host_size++;
        if (b->node_of[r] != b->node_of[b->rank]) continue;
        if (r < b->rank) b->local_rank++;
        b->local_size++;
    }
    free(all);
    return TR_OK;
}

/* The job's two random ids (rank 0 draws them). */
static void new_ids(tr__boot_t *b)
{
    uint64_t ids[2];
    if (RAND_bytes((unsigned char *)ids, sizeof(ids)) != 1) {
        tr__warn("RAND_bytes failed: the job id comes from the pid and the clock");
        ids[0] = tr__hash2((uint64_t)getpid(), tr__now_ns());
        ids[1] = tr__hash2(ids[0], tr__now_ns());
    }
    b->job_id = ids[0];
    b->name_id = ids[1];
}

tr_status_t tr__boot_init(tr__boot_t *b, int *argc, char ***argv, const uint64_t words[2])
{
    int inited = 0, rc;
    memset(b, 0, sizeof(*b));
    MPI_Initialized(&inited);
    if (!inited && !launched_by_mpi()) {
        /* embedded mode: a one-rank job, no MPI at all */
        b->rank = 0; b->size = 1; b->nnodes = 1; b->local_size = 1; b->host_size = 1;
        b->node_of = calloc(1, sizeof(int));
        b->words = malloc(2 * sizeof(uint64_t));
        if (b->node_of == NULL || b->words == NULL) return TR_ERR_NO_MEMORY;
        memcpy(b->words, words, 2 * sizeof(uint64_t));
        new_ids(b);
        return TR_OK;
    }
    b->use_mpi = 1;
    if (!inited) {
        int provided;
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_err(rc, "MPI_Init_thread");
        b->mpi_owned = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &b->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &b->size);
    tr__log_set_rank(b->rank);

    if (b->rank == 0) new_ids(b);
    return group_nodes(b, words);   /* also hands rank 0's ids to every rank */
}

tr_status_t tr__boot_allgather(tr__boot_t *b, const void *send, size_t len, void *recv)
{
    if (!b->use_mpi) { memcpy(recv, send, len); return TR_OK; }
    int rc = MPI_Allgather(send, (int)len, MPI_BYTE, recv, (int)len, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? TR_OK : mpi_err(rc, "MPI_Allgather");
}

tr_status_t tr__boot_allgatherv(tr__boot_t *b, const void *send, size_t len, char **recv_p,
                                size_t **lens_p, size_t **offs_p)
{
    int n = b->size, rc;
    int *ilens = malloc(sizeof(int) * (size_t)n), *idispl = malloc(sizeof(int) * (size_t)n);
    size_t *lens = malloc(sizeof(size_t) * (size_t)n), *offs = malloc(sizeof(size_t) * (size_t)n);
    char *recv = NULL;
    int mylen = (int)len;
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (!ilens || !idispl || !lens || !offs) goto err;
    if ((st = tr__boot_allgather(b, &mylen, sizeof(int), ilens)) != TR_OK) goto err;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        idispl[i] = (int)total; lens[i] = (size_t)ilens[i]; offs[i] = total;
        total += (size_t)ilens[i];
    }
    st = TR_ERR_NO_MEMORY;
    if ((recv = malloc(total ? total : 1)) == NULL) goto err;
    if (!b->use_mpi) {
        memcpy(recv, send, len);
    } else {
        rc = MPI_Allgatherv(send, mylen, MPI_BYTE, recv, ilens, idispl, MPI_BYTE, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) { st = mpi_err(rc, "MPI_Allgatherv"); goto err; }
    }
    free(ilens); free(idispl);
    *recv_p = recv; *lens_p = lens; *offs_p = offs;
    return TR_OK;
err:
    free(ilens); free(idispl); free(lens); free(offs); free(recv);
    return st;
}

tr_status_t tr__boot_barrier(tr__boot_t *b)
{
    if (!b->use_mpi) return TR_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? TR_OK : mpi_err(rc, "MPI_Barrier");
}

void tr__boot_finalize(tr__boot_t *b, int clean)
{
    if (b->use_mpi && b->mpi_owned && clean) MPI_Finalize();
    free(b->node_of);
    b->node_of = NULL;
    free(b->words);
    b->words = NULL;
}

/* ------------------------------------------------------------- watchdog */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t  cond;
    pthread_t       thread;
    int             running, done;
    const char     *what;
    int64_t         seconds;
    void          (*cleanup)(void *);
    void           *cleanup_arg;
} wd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, 0, NULL, NULL };

void tr__watchdog_cleanup(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&wd.lock);
    wd.cleanup = fn;
    wd.cleanup_arg = arg;
    pthread_mutex_unlock(&wd.lock);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec ts;
    tr__deadline(wd.seconds * 1000, &ts);
    pthread_mutex_lock(&wd.lock);
    int rc = 0;
    while (!wd.done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&wd.cond, &wd.lock, &ts);
    int fire = !wd.done;
    void (*cleanup)(void *) = wd.cleanup;
    void *cleanup_arg = wd.cleanup_arg;
    pthread_mutex_unlock(&wd.lock);
    if (fire) {
        if (cleanup) cleanup(cleanup_arg);   /* no shared memory left behind */
        char host[128] = "?";
        gethostname(host, sizeof(host) - 1);
        fprintf(stderr,
                "taskray: %s did not complete within %lld s on %s (pid %d); a rank may have died "
                "or failed to start, or the launcher cannot reach every node. Giving up "
                "(TASKRAY_BOOTSTRAP_TIMEOUT sets the limit).\n",
                wd.what, (long long)wd.seconds, host, (int)getpid());
        fflush(stderr);
        _exit(75);
    }
    return NULL;
}

void tr__watchdog_start(const char *what)
{
    wd.seconds = tr__env_i64("TASKRAY_BOOTSTRAP_TIMEOUT", 120, 1, 86400);
    wd.what = what;
    wd.done = 0;
    wd.running = (pthread_create(&wd.thread, NULL, watchdog_main, NULL) == 0);
    if (!wd.running) tr__warn("could not start the bootstrap watchdog thread");
}

void tr__watchdog_stop(void)
{
    if (!wd.running) return;
    pthread_mutex_lock(&wd.lock);
    wd.done = 1;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    wd.running = 0;
}
