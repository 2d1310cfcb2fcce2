/*
 * A plain MPI program (no taskray) for run_launcher.sh: how taskray-run
 * reports rank 0's status and keeps survivors alive when a rank dies.
 *
 *   launch_kill ok DIR      every rank calls MPI_Finalize; rank 0 returns 0
 *   launch_kill exit5 DIR   the same, but rank 0 returns 5
 *   launch_kill kill2 DIR   rank 2 raises SIGKILL after 0.5 s; the others
 *                           sleep 2 s, leave DIR/survived.RANK and exit
 *                           without MPI_Finalize (rank 0 with status 3),
 *                           as taskray's ranks do after a rank death
 *   launch_kill kill0 DIR   rank 0 raises SIGKILL after 0.5 s; the others
 *                           exit 0 after 3 s without MPI_Finalize
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void lk_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {}
}

static void lk_mark(const char *dir, int rank)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/survived.%d", dir, rank);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return;
    }
    fclose(f);
    printf("launch_kill: rank %d survived\n", rank);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *mode, *dir;
    int rank, size;

    if (argc != 3) {
        fprintf(stderr, "usage: launch_kill ok|exit5|kill2|kill0 DIR\n");
        return 2;
    }
    mode = argv[1];
    dir = argv[2];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    if (strcmp(mode, "kill2") == 0 && size > 2) {
        if (rank == 2) {
            lk_sleep_ms(500);
            raise(SIGKILL);
        }
        lk_sleep_ms(2000);
        lk_mark(dir, rank);
        _exit(rank == 0 ? 3 : 0);
    }
    if (strcmp(mode, "kill0") == 0) {
        if (rank == 0) {
            lk_sleep_ms(500);
            raise(SIGKILL);
        }
        lk_sleep_ms(3000);
        _exit(0);
    }
    MPI_Finalize();
    return rank == 0 && strcmp(mode, "exit5") == 0 ? 5 : 0;
}
