/*
 * startup_app: one job of bench/startup.  Built twice: startup_bare
 * (STARTUP_BARE: MPI_Init_thread + MPI_Finalize, nothing else) and
 * startup_app (tr_init + tr_finalize, driver mode).  Every rank prints one
 * line after finalizing:
 *
 *   startup: rank=R init_s=F fin_s=F rss_kib=K hwm_kib=K
 *
 * init_s: from just before MPI_Init_thread / tr_init to its return;
 * fin_s: the same for MPI_Finalize / tr_finalize; rss_kib: resident set
 * (/proc/self/statm) right after start-up, before any finalize; hwm_kib:
 * the peak (VmHWM) at the end.  bench/startup adds up the job's wall time.
 */
#define _POSIX_C_SOURCE 200809L
#ifdef STARTUP_BARE
#include <mpi.h>
#else
#include <taskray.h>
#endif

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long hwm_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%ld", &v) == 1) break;
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    int rank = -1;
    double t0 = mono_s();
#ifdef STARTUP_BARE
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "startup_bare: MPI_Init_thread failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
#else
    tr_init_params_t p = { .field_mask = TR_INIT_FIELD_ARGC_ARGV, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&p);
    if (st != TR_OK) {
        fprintf(stderr, "startup_app: tr_init failed: %s\n", tr_status_string(st));
        return 1;
    }
    rank = tr_rank();
#endif
    double t1 = mono_s();
    long rss = rss_kib();
    double t2 = mono_s();
#ifdef STARTUP_BARE
    MPI_Finalize();
#else
    if ((st = tr_finalize()) != TR_OK) {
        fprintf(stderr, "startup_app: tr_finalize failed: %s\n", tr_status_string(st));
        return 1;
    }
#endif
    double t3 = mono_s();
    printf("startup: rank=%d init_s=%.6f fin_s=%.6f rss_kib=%ld hwm_kib=%ld\n", rank, t1 - t0, t3 - t2,
           rss, hwm_kib());
    return 0;
}
