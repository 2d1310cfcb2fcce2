/*
 * Placement: resource requests, the job's resource table, and the choice of
 * a rank for a task or an actor, made by its owner alone (no global
 * scheduler): hard constraints first (resources, rank/node affinity, a
 * placement group's bundle), then the strategy (default: locality of the
 * argument bytes unless that node is overloaded, then load; or spread),
 * then load from the owner's view.  Idle ranks steal what an owner placed
 * badly (lib/core/steal.c).
 */
#ifndef TR_SCHED_H
#define TR_SCHED_H

#include <taskray.h>
#include "comm/bootstrap.h"

#define TR__MAX_RES      16
#define TR__RES_NAME_LEN 32
#define TR__MAX_GPUS     16

typedef struct tr__res {
    char   name[TR__RES_NAME_LEN];
    double amount;
} tr__res_t;

/* What a task needs, or what a rank has. */
typedef struct tr__req {
    double    cpus;
    int       nres;
    tr__res_t res[TR__MAX_RES];
    uint64_t  pg;       /* inside this placement group's bundle (0: none): drawn from the
                           bundle's reservation, not from the rank's free resources */
    int       bundle;
} tr__req_t;

/* Where: the strategy and affinities of one task or actor, and where its
 * argument bytes are (for locality). */
typedef struct tr__place {
    int             strategy;   /* TR_STRATEGY_* */
    int             rank;       /* affinity, -1 none */
    int             node;       /* affinity, -1 none */
    int             soft;       /* the affinity is a preference */
    int             nloc;
    const int      *loc_rank;   /* ranks holding copies of stored arguments */
    const uint64_t *loc_bytes;  /* and how many bytes of them */
} tr__place_t;

/* Parse "a=1,b=0.5" into @req (cpus untouched).  TR_ERR_INVALID_ARG with
 * tr_last_error() set on bad syntax. */
tr_status_t tr__req_parse(const char *spec, tr__req_t *req);
/* Does @have cover @need? (@why gets the missing resource's name) */
int         tr__req_fits(const tr__req_t *have, const tr__req_t *need, const char **why);
double      tr__req_get(const tr__req_t *r, const char *name);
/* Set @name's amount (added when absent).  TR_ERR_INVALID_ARG with the
 * message set when @req already has TR__MAX_RES resources. */
tr_status_t tr__req_set(tr__req_t *req, const char *name, double amount);

typedef struct tr__sched {
    int        size, self;
    tr__req_t *totals;   /* per rank */
    tr__req_t *reserved; /* per rank: held by placement groups this rank created */
    int       *load;     /* tasks this owner placed there and not finished */
    double    *mem;      /* declared memory of those tasks */
    uint8_t   *dead;     /* ranks known dead: never picked (set atomically, read lock-free) */
    int        ndead;
    int        cursor;
    const int *node_of;  /* the bootstrap's table */
    int        nnodes;
    int        spread_node;   /* TR_STRATEGY_SPREAD: the node used last */
    int        locality;      /* TASKRAY_LOCALITY (default 1) */
    uint64_t   locality_min;  /* argument bytes below which locality is not worth it */
    /* what the decisions were (tests, TASKRAY_SUMMARY) */
    uint64_t   n_local, n_locality, n_spread, n_affinity, n_load;
} tr__sched_t;

/* @totals: every rank's resources (boot->size of them), gathered by the caller. */
tr_status_t tr__sched_init(tr__sched_t *s, tr__boot_t *boot, const tr__req_t *totals);
void        tr__sched_destroy(tr__sched_t *s);
void        tr__sched_rank_dead(tr__sched_t *s, int rank);
/* A rank for @need placed as @pl says (NULL: default), or -1 with *@st set
 * (TR_ERR_UNSCHEDULABLE: tr_last_error() names the resource or the
 * constraint; TR_ERR_INVALID_ARG: an affinity out of range).  @what is
 * "task" or "actor", @name its name, for the message. */
int         tr__sched_place(tr__sched_t *s, const tr__req_t *need, const tr__place_t *pl,
                            const char *what, const char *name, tr_status_t *st);
/* The old entry point: default placement of a task. */
int         tr__sched_pick(tr__sched_t *s, const tr__req_t *need, const char *task_name);
/* Book-keeping of what this owner placed: @sign +1 when placed, -1 when done. */
void        tr__sched_account(tr__sched_t *s, int rank, const tr__req_t *need, int sign);
/* Could @need ever fit a live rank (@rank, or a rank of @node, when >= 0)?
 * 0 with the message set (it names the resource). */
int         tr__sched_feasible(tr__sched_t *s, const tr__req_t *need, int rank, int node, const char *what,
                               const char *name);

#endif
