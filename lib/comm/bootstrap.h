/*
 * Bootstrap: the only place MPI is called.  Rank discovery, node grouping,
 * collectives used at start-up and shutdown, and the watchdog that turns a
 * stuck start-up into an error message.
 */
#ifndef TR_BOOTSTRAP_H
#define TR_BOOTSTRAP_H

#include <taskray.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tr__boot {
    int       rank, size;
    int       use_mpi;       /* 0: launched without a launcher: a one-rank job */
    int       mpi_owned;     /* we called MPI_Init and must finalize */
    int      *node_of;       /* size entries: node index of each rank */
    int       nnodes;
    int       local_rank, local_size;  /* within this rank's node */
    int       host_size;               /* ranks on this rank's host (several simulated nodes share it) */
    uint64_t  job_id;        /* random, from rank 0: the wire's job field, known only to the job */
    uint64_t  name_id;       /* random, from rank 0: names of the job's files (/dev/shm, spill);
                              * separate, so that listing /dev/shm does not tell the job_id */
    uint64_t *words;         /* size * 2: the @words each rank passed to tr__boot_init */
} tr__boot_t;

/* Start (MPI_Init unless done) and group the ranks into nodes; @words, two
 * values of the caller's, travel in the same collective (b->words). */
tr_status_t tr__boot_init(tr__boot_t *b, int *argc, char ***argv, const uint64_t words[2]);
/* Gather @len bytes from every rank into @recv (size * len bytes). */
tr_status_t tr__boot_allgather(tr__boot_t *b, const void *send, size_t len, void *recv);
/* Variable-size gather: *recv_p (malloc'd) holds rank i's bytes at (*offs_p)[i]. */
tr_status_t tr__boot_allgatherv(tr__boot_t *b, const void *send, size_t len, char **recv_p,
                                size_t **lens_p, size_t **offs_p);
tr_status_t tr__boot_barrier(tr__boot_t *b);
/* @clean: 1 when every rank reached shutdown normally (MPI_Finalize is safe). */
void        tr__boot_finalize(tr__boot_t *b, int clean);

/* The watchdog: if tr__watchdog_stop() is not called within the timeout
 * (TASKRAY_BOOTSTRAP_TIMEOUT seconds), print @what and exit the process. */
void tr__watchdog_start(const char *what);
void tr__watchdog_stop(void);
/* What the watchdog runs before it exits (remove files and shared memory);
 * NULL for nothing. */
void tr__watchdog_cleanup(void (*fn)(void *), void *arg);

#endif
