/*
 * Placement: resource requests, the job's resource table, and the choice of
 * a rank for a task.  Issue-2 scope: hard resource constraints (cpus and
 * custom resources), then the least-loaded feasible rank from the owner's
 * view, round-robin among equals.
 */
#ifndef TR_SCHED_H
#define TR_SCHED_H

#include <taskray.h>
#include "comm/bootstrap.h"

#define TR__MAX_RES      16
#define TR__RES_NAME_LEN 32

typedef struct tr__res {
    char   name[TR__RES_NAME_LEN];
    double amount;
} tr__res_t;

/* What a task needs, or what a rank has. */
typedef struct tr__req {
    double    cpus;
    int       nres;
    tr__res_t res[TR__MAX_RES];
} tr__req_t;

/* Parse "a=1,b=0.5" into @req (cpus untouched).  TR_ERR_INVALID_ARG with
 * tr_last_error() set on bad syntax. */
tr_status_t tr__req_parse(const char *spec, tr__req_t *req);
/* Does @have cover @need? (@why gets the missing resource's name) */
int         tr__req_fits(const tr__req_t *have, const tr__req_t *need, const char **why);
double      tr__req_get(const tr__req_t *r, const char *name);

typedef struct tr__sched {
    int        size, self;
    tr__req_t *totals;   /* per rank */
    int       *load;     /* tasks this owner placed there and not finished */
    uint8_t   *dead;     /* ranks known dead: never picked */
    int        ndead;
    int        cursor;
} tr__sched_t;

/* Gathers every rank's resources (collective). */
tr_status_t tr__sched_init(tr__sched_t *s, tr__boot_t *boot, const tr__req_t *mine);
void        tr__sched_destroy(tr__sched_t *s);
void        tr__sched_rank_dead(tr__sched_t *s, int rank);
/* A rank for @need, or -1 (TR_ERR_UNSCHEDULABLE: tr_last_error() names the resource). */
int         tr__sched_pick(tr__sched_t *s, const tr__req_t *need, const char *task_name);

#endif
