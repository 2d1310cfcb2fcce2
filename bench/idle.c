/*
 * idle: how much CPU an idle taskray job burns.
 *
 *   mpirun --oversubscribe -n 16 bench/idle [--seconds S] [--json]
 *
 * Every rank starts taskray (TR_MODE_DRIVER: rank 0 drives, the others
 * serve), runs one tiny task per rank so every event loop and executor has
 * been woken once, then the whole job sits idle for S seconds (default 5)
 * while each rank measures its own CPU time (getrusage: all threads of the
 * process, UCX's and MPI's included).  Rank 0 prints the job's total as a
 * percentage of one core.  Target (issue 2): < 5 % for 16 ranks on 2 cores.
 *
 * MPI: the program initializes MPI itself so that it can reduce the figures
 * between tr_init() and tr_finalize(); taskray then leaves MPI to it.
 */
#include <taskray.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static tr_status_t noop(tr_task_h t) { return tr_task_return_i64(t, 0, tr_task_rank(t)); }
TR_REMOTE(noop)

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    int json = 0, provided;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else { fprintf(stderr, "usage: %s [--seconds S] [--json]\n", argv[0]); return 2; }
    }
    if (!(seconds > 0)) { fprintf(stderr, "idle: --seconds must be positive\n"); return 2; }
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    tr_status_t st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "idle: tr_init: %s: %s\n", tr_status_string(st), tr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int rank = tr_rank(), size = tr_size();
    if (tr_is_driver()) {   /* wake every rank once: a task per rank */
        for (int i = 0; i < size; i++) {
            tr_ref_h r;
            int64_t v;
            if (tr_task_submit(noop, NULL, 0, NULL, &r) != TR_OK || tr_get_i64(r, TR_TIMEOUT_INFINITE, &v) != TR_OK) {
                fprintf(stderr, "idle: a task failed: %s\n", tr_last_error());
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            tr_ref_release(r);
        }
    }
    /* let the loops and executors finish spinning and fall asleep */
    MPI_Barrier(MPI_COMM_WORLD);
    usleep(200000);
    MPI_Barrier(MPI_COMM_WORLD);
    double c0 = cpu_seconds(), w0 = wall();
    usleep((useconds_t)(seconds * 1e6));
    double mine = cpu_seconds() - c0, w = wall() - w0, total = 0;
    MPI_Reduce(&mine, &total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        double pct = 100.0 * total / w;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if (json)
            printf("{\"ranks\": %d, \"cores\": %ld, \"seconds\": %.2f, \"idle_cpu_percent\": %.3f}\n",
                   size, cores, w, pct);
        else
            printf("idle: %d ranks on %ld cores, %.1f s idle: %.3f %% of one core in total (target < 5 %%)\n",
                   size, cores, w, pct);
    }
    tr_finalize();
    MPI_Finalize();
    return 0;
}
