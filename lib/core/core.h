/*
 * Ownership core: remote-function registry, objects and refs, task specs
 * (owner side), executing tasks (executor side), the executor pool, and the
 * runtime that ties them to the transport.
 *
 * Locking: rt->lock guards every object, spec and the scheduler; the pool
 * has its own lock (order: rt->lock, then pool.mu).  The transport queue has
 * its own lock, taken last.  Task functions run with no lock held.
 */
#ifndef TR_CORE_H
#define TR_CORE_H

#include <taskray.h>
#include <pthread.h>
#include <stdatomic.h>
#include "base/base.h"
#include "base/hmap.h"
#include "base/completion.h"
#include "comm/bootstrap.h"
#include "comm/comm.h"
#include "sched/sched.h"
#include "store/store.h"
#include "topo/topo.h"

/* ------------------------------------------------------------ registry */
typedef struct tr__fn {
    uint64_t       id;     /* hash of the name */
    const char    *name;
    tr_remote_fn_t fn;
} tr__fn_t;

typedef struct tr__method {
    uint64_t           id;     /* tr__method_id(name) */
    const char        *name;
    tr_actor_method_fn fn;
} tr__method_t;

typedef struct tr__class {
    uint64_t            id;
    const char         *name;
    tr_actor_init_fn    init;
    tr_actor_fini_fn    fini;
    tr_actor_save_fn    save;
    tr_actor_restore_fn restore;
    tr__method_t       *methods;
    int                 nmethods;
} tr__class_t;

uint64_t            tr__method_id(const char *name);
const char         *tr__method_name(uint64_t method_id);
const tr__class_t  *tr__class_by_id(uint64_t id);
const tr__class_t  *tr__class_by_name(const char *name);
const tr__method_t *tr__class_method(const tr__class_t *c, uint64_t method_id);

const tr__fn_t *tr__fn_by_id(uint64_t id);
const tr__fn_t *tr__fn_by_ptr(tr_remote_fn_t fn);
uint64_t        tr__fn_digest(void);
int             tr__fn_count(void);
void            tr__fn_freeze(int frozen);   /* registration closed while running */

/* ------------------------------------------------------------- objects */
typedef enum { TR__OBJ_PENDING = 0, TR__OBJ_READY, TR__OBJ_FAILED } tr__obj_state_t;

typedef struct tr__waiter {
    pthread_cond_t cv;
    int            remaining;
} tr__waiter_t;

typedef struct tr__wnode {
    struct tr__wnode   *next;
    tr__waiter_t       *w;
} tr__wnode_t;

struct tr__spec;

/* A ref contained in an object, as it travels: (owner rank, object id). */
typedef struct tr__iref {
    int      owner;
    uint64_t id;
} tr__iref_t;

/* Owner side: a fetch into a node in progress, and who waits for it. */
typedef struct tr__fetch {
    struct tr__fetch *next;
    int               node, rank;     /* rank of @node pulling a copy */
    int              *wait_rank;      /* LOCATE requests answered when it lands */
    uint64_t         *wait_tag;
    int               nwait, capwait;
} tr__fetch_t;

typedef struct tr__borrower {
    int rank, count;
} tr__borrower_t;

/*
 * An object as this rank knows it: owned (owner == this rank: the metadata
 * of record) or borrowed (a proxy for a ref owned elsewhere, registered with
 * the owner and told its state).  Either way refcnt counts this rank's
 * handles, pending tasks that take it, views, containing objects, and the
 * producing task; the owner adds one per borrowing rank.
 */
typedef struct tr__obj {
    uint64_t          id;
    int               owner;
    int               refcnt;
    uint8_t           state;
    uint8_t           is_put;
    uint8_t           stored;      /* READY and the value is in object stores, not inline */
    uint8_t           in_table;
    uint8_t           rebuilding;  /* owner: being made again from its lineage; LOCATEs wait */
    tr__blob_t       *blob;        /* inline value (heap), READY */
    size_t            size;
    int               holder;      /* a rank holding a copy: primary (owner) or a hint (borrower) */
    int              *locs;        /* owner: every rank holding a copy */
    int               nlocs, caplocs;
    tr__fetch_t      *fetching;    /* owner: fetches in progress, one per node */
    struct tr__obj  **inner;       /* objects this one contains (kept alive), on its creator */
    tr__iref_t       *irefs;       /* the contained refs, on a borrower (from OBJ_STATE) */
    int               ninner;
    tr__borrower_t   *borrowers;   /* owner: ranks that borrow it */
    int               nborrowers;
    int              *subs;        /* owner: borrowers to tell when it is done */
    int               nsubs;
    tr_status_t       err;
    int               err_rank;
    char             *err_msg;
    struct tr__spec  *producer;    /* the pending task that makes it */
    struct tr__spec  *lineage;     /* owner: the finished task that made it, kept to rebuild it;
                                      borrower: the task of ours that returned it, if any */
    uint8_t           is_actor;    /* owner: an actor's handle object (destroy the actor at zero) */
    struct tr__spec **aq;          /* actor handle: this rank's calls not yet sent, in order */
    int               aqh, naq, capaq; /* queue aq[aqh..naq) */
    uint64_t          aseq;        /* actor handle: sequence number of this rank's next call */
    uint64_t          astream;     /* actor handle: id of this rank's stream of calls (per incarnation) */
    uint8_t           asusp;       /* actor handle: its rank died; calls wait for the owner's word */
    struct tr__ainfo *ainfo;       /* owner of an actor handle: what a restart needs */
    tr__wnode_t      *waiters;
    struct tr__spec **deps;        /* pending tasks waiting for it */
    int               ndeps, capdeps;
} tr__obj_t;

/* A view (tr_buf_h): the bytes, and the object when it contains refs. */
typedef struct tr__view {
    tr__blob_t *blob;
    tr__obj_t  *obj;
} tr__view_t;

/* ----------------------------------------------------- owner-side specs */
typedef enum { TR__SPEC_WAITING = 0, TR__SPEC_QUEUED, TR__SPEC_DONE } tr__spec_state_t;

typedef struct tr__sarg {
    tr__obj_t  *obj;     /* a ref argument, a large by-value one, or NULL */
    tr__blob_t *blob;    /* a small by-value argument */
    int         borrow;  /* TR_ARG_BORROW: the ref itself travels */
    struct tr__spec *lineage;  /* kept lineage: the spec that made the ref argument */
    uint64_t    arg_id;        /* kept lineage: the ref argument's id */
} tr__sarg_t;

typedef struct tr__spec {
    uint64_t        id;
    const tr__fn_t *fn;
    char           *name;      /* custom name or NULL */
    int             nret;
    tr__obj_t     **rets;
    int             nargs;
    tr__sarg_t     *args;
    int             max_retries, attempt;
    int             gen;            /* retries the task asked for: seeds its children's ids */
    tr__req_t       req;            /* req.pg: inside a placement group (req.bundle -1: any) */
    int8_t          strategy;       /* TR_STRATEGY_* */
    uint8_t         soft;           /* the affinity is a preference */
    int             aff_rank, aff_node;   /* -1: none */
    uint8_t         state;
    int             target;
    int             unresolved;
    int             cancel_sent;
    uint8_t         no_steal;       /* hard placement (rank/node affinity, placement group): never stolen */
    tr__obj_t      *actor;          /* an actor call: the actor's handle object */
    uint64_t        method_id;
    uint64_t        aseq_sent;      /* an actor call: its sequence number in its stream */
    struct tr__spec *rerun;         /* kept lineage: the spec running it again now */
    struct tr__spec *from;          /* a re-run: the kept lineage it runs again */
    /* lineage, kept after success while a return object lives */
    int             lineage_refs;   /* live returns + specs that name this one as an argument's */
    size_t          lineage_size;
    int             lineage_evicted;
    struct tr__spec *lin_prev, *lin_next;
} tr__spec_t;

/* ------------------------------------------------- executor-side tasks */
typedef struct tr__xarg {
    const void *data;
    size_t      size;
    tr__blob_t *blob;   /* holds the bytes alive, or NULL when they live in msgbuf */
    uint8_t     kind;   /* TR__VAL_* */
    int         owner;  /* VAL_REF / VAL_BORROW: the object, read before the task runs */
    int         hint;   /* VAL_REF: a rank holding a copy */
    uint64_t    id;
} tr__xarg_t;

struct tr_task {
    uint64_t        id;
    const tr__fn_t *fn;
    int             owner;
    int             attempt;
    int             nret;
    int             nargs;
    tr__xarg_t     *args;
    void           *msgbuf;      /* copy of the TASK message that inline args point into */
    tr__blob_t    **rets;
    char           *fail_msg;
    tr__req_t       req;
    int             gpu_ids[TR__MAX_GPUS];   /* the GPUs it holds while it runs (in its pool or bundle) */
    int             gpu_devs[TR__MAX_GPUS];  /* and their device numbers */
    int             ngpu_ids;
    double          gpu_last;    /* the share of the last of them (fractional num_gpus) */
    uint32_t        child_seq, put_seq;
    struct tr_task *next;
    tr_status_t     fetch_status;
    uint64_t        ctx_id;      /* id seed for children (task id mixed with attempt) */
    uint32_t        gen;         /* the owner's retry generation (ctx_id's seed), for re-sending */
    uint8_t         no_steal;    /* stays on this rank: hard placement, or stolen once already */
    /* actor work: a call, the constructor, or the destructor */
    struct tr__actor *actor;
    int             actor_op;    /* TR__AOP_* */
    struct tr__rinner *rinner;   /* per return: refs it contains (tr_task_return_refs), or NULL */
    uint64_t        method_id, aseq, astream;
};

enum { TR__AOP_NONE = 0, TR__AOP_CALL, TR__AOP_INIT, TR__AOP_FINI, TR__AOP_REPLICATE };

/* Refs a task's return contains (tr_task_return_refs), counted by the task. */
typedef struct tr__rinner {
    tr__obj_t **objs;
    int         n;
} tr__rinner_t;
void tr__rinner_release(struct tr_task *t);   /* rt->lock not held */

/* ------------------------------------------------------- executor pool */
/* GPUs as the pool hands them to tasks: device numbers as the process sees
 * them (0..n-1 of the rank's visible devices), and each one's free share. */
typedef struct tr__gpuset {
    int    n;
    int    id[TR__MAX_GPUS];
    double free[TR__MAX_GPUS];
} tr__gpuset_t;

/* A placement group's bundle reserved on this rank (lib/core/pg.c). */
typedef struct tr__bundle {
    struct tr__bundle *next;
    uint64_t      pg;
    int           idx, owner;
    tr__req_t     size;       /* what it reserves */
    double        cpus_avail; /* free inside it */
    tr__req_t     avail;
    tr__gpuset_t  gpus;       /* its devices (ids: the rank's numbering) */
    double        gshare[TR__MAX_GPUS];   /* the share of each it reserved */
    int           state;      /* TR__BUNDLE_* */
    int           running;    /* tasks running in it */
} tr__bundle_t;
enum { TR__BUNDLE_PENDING = 0, TR__BUNDLE_RESERVED = 1, TR__BUNDLE_REMOVED = 2 };

typedef struct tr__pool {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    struct tr_task *head;        /* LIFO: nested work runs depth-first */
    int             queued;
    int             nthreads, nidle, target;
    int             active;      /* threads running a task that is not blocked */
    int             nstarting;   /* threads created, not yet in their loop */
    int             nspin;       /* threads spinning for work: they see a push */
    int             stop;
    double          cpus_avail;
    tr__req_t       avail;       /* custom resources free now */
    tr__gpuset_t    gpus;        /* which GPUs are free */
    tr__bundle_t   *bundles;     /* placement-group reservations here */
    pthread_t      *threads;
    int             cap_threads;
    uint64_t        spin_ns;     /* TASKRAY_SPIN_US: idle spin before sleeping */
} tr__pool_t;

tr_status_t tr__pool_start(tr__pool_t *p, int nexec, const tr__req_t *have, uint64_t spin_ns);
void        tr__pool_stop(tr__pool_t *p);
void        tr__pool_push(tr__pool_t *p, struct tr_task *t);
/* Work stealing (victim side): take out the oldest queued task that @ok
 * accepts, provided more runnable tasks are queued than executors are free
 * to take them.  NULL when none; @ok runs under pool.mu (takes no lock). */
struct tr_task *tr__pool_steal(tr__pool_t *p, int (*ok)(const struct tr_task *t, void *arg), void *arg);
/* Resources free now, and 1 when the pool is idle: no runnable queued task
 * and an executor slot free. */
int         tr__pool_idle(tr__pool_t *p, tr__req_t *free_p);
/* Tasks queued or running (not blocked) now. */
int         tr__pool_busy(tr__pool_t *p);
/* Remove a queued task; 1 when it was found (not started). */
int         tr__pool_remove(tr__pool_t *p, uint64_t task_id, struct tr_task **t_p);
/* A task about to block (tr_get inside a task) lends its slot to others. */
void        tr__pool_block_enter(void);
void        tr__pool_hold(tr__pool_t *p, const tr__req_t *r, int hold);
void        tr__pool_block_leave(void);
/* Placement-group bundles on this rank: reserve (1: reserved now, 0:
 * pending until resources free up; it is then reported through
 * tr__pg_reserved), and remove every bundle of @pg. */
int         tr__pool_bundle_reserve(tr__pool_t *p, uint64_t pg, int idx, int owner, const tr__req_t *size);
void        tr__pool_bundle_remove(tr__pool_t *p, uint64_t pg);
/* Bundles owned by rank @owner (dead) go. */
void        tr__pool_bundles_owner_died(tr__pool_t *p, int owner);

extern _Thread_local struct tr_task *tr__cur_task;
extern _Thread_local int             tr__on_executor;

/* ------------------------------------------------------------- runtime */
typedef struct tr__rt {
    tr__boot_t      boot;
    int             rank, size;
    tr_mode_t       mode;
    tr__topo_t      topo;
    tr__comm_t     *comm;
    tr__store_t     store;
    void          **peer_maps;     /* node-local peers' arenas, mapped lazily */
    pthread_mutex_t map_lock;
    size_t          inline_max;

    pthread_mutex_t lock;
    pthread_cond_t  state_cv;      /* owned_pending reached 0, or shutdown arrived */
    tr__hmap_t      specs;         /* task id -> pending spec (owned) */
    long            owned_pending;
    int             shutdown_msg;
    tr__hmap_t      objs;          /* id -> owned or borrowed object that peers may name */
    tr__hmap_t      rpcs;          /* tag -> tr__rpc_t waiting for a reply */
    tr__hmap_t      rebuild_wait;  /* id -> LOCATEs waiting for a rebuild */
    tr__hmap_t      rpins;         /* hash(rank, id) -> pins a reading rank holds here */
    /* failures (lib/core/failure.c) */
    int             ndead;
    int             driver_dead;   /* TR_MODE_DRIVER and rank 0 died: the job ends */
    tr_failure_stats_t fstats;
    uint8_t        *fin_got[2];    /* shutdown barrier: FIN of each phase seen, per rank */
    int             fin_done[2];   /* shutdown barrier: each phase released */
    int             fin_deaths;    /* the most deaths a FIN reported */
    uint64_t        rpc_seq;
    long            n_owned, n_borrowed;
    uint64_t        tasks_submitted;
    _Atomic uint64_t tasks_run;
    size_t          fetch_chunk;   /* TASKRAY_FETCH_CHUNK: ucp_get pipeline unit */
    uint64_t        max_lineage;   /* TASKRAY_MAX_LINEAGE_BYTES */
    uint64_t        lineage_bytes;
    struct tr__spec *lin_head, *lin_tail;   /* kept lineage, oldest first */
    tr__hmap_t      actors;        /* id -> tr__actor_t living on this rank */
    tr__hmap_t      actor_early;   /* id -> calls that arrived before the actor's creation */
    tr__hmap_t      actor_dead;    /* ids of actors destroyed here (late calls fail at once) */
    tr__hmap_t      names;         /* hash(name) -> name entry, on the name's directory rank */
    tr__hmap_t      pgs;           /* id -> placement group this rank created */
    uint64_t        pg_seq;
    int            *actors_placed; /* per rank: actors this rank created there */
    uint64_t        stream_seq;    /* makes call-stream ids unique on this rank */
    int             sim_nodes;     /* TASKRAY_NODE_ID split one host into several nodes */
    tr__sched_t     sched;
    tr__pool_t      pool;
    tr__req_t       mine;          /* this rank's resources */
    tr_rank_info_t *info;          /* size entries, gathered at tr_init (rankinfo.c) */

    uint64_t        root_id;
    _Atomic uint64_t root_seq;
    _Atomic uint64_t put_seq;
} tr__rt_t;

extern tr__rt_t *tr__rt;

/* Start-up after tr__topo_load() (rankinfo.c, collective): this rank's share
 * of the node's cores and GPUs, its executor count (*nexec_p) and resources
 * (rt->mine), and every rank's tr_rank_info_t (rt->info). */
tr_status_t tr__rt_placement(tr__rt_t *rt, const tr_init_params_t *params, int *nexec_p);
extern _Atomic int tr__state;      /* 0 down, 1 up, 2 finalizing */

/* object.c */
tr__obj_t  *tr__obj_new(uint64_t id);                      /* refcnt 1, owned; not in the table */
void        tr__obj_unref_locked(tr__obj_t *o);
void        tr__obj_publish_locked(tr__obj_t *o);          /* into rt->objs */
tr__obj_t  *tr__obj_adopt_locked(uint64_t id);             /* an orphaned proxy becomes ours (refcnt +1) */
/* Forget @o's value (and the refs it contains): pending again, to be made
 * again (@rebuilding: LOCATEs, or a proxy's re-pointing, wait for it). */
void        tr__obj_unmake_locked(tr__obj_t *o, int rebuilding);
void        tr__obj_set_ready_locked(tr__obj_t *o, tr__blob_t *blob, int holder, size_t size);
void        tr__obj_set_failed_locked(tr__obj_t *o, tr_status_t err, int rank, const char *msg);
tr_status_t tr__ref_new(tr__obj_t *o, tr_ref_h *ref_p);    /* takes one of o's counts */
tr__obj_t  *tr__ref_obj(tr_ref_h ref);                     /* NULL when released */
tr_status_t tr__obj_get(tr__obj_t *o, int64_t timeout_ms, tr_buf_h *buf_p);
tr_status_t tr__wait(tr__obj_t **objs, size_t n, size_t k, int64_t timeout_ms, size_t *idx, size_t *nready);
tr_status_t tr__put_blob(tr__blob_t *b, tr__obj_t **inner, int ninner, tr_ref_h *ref_p);
tr_status_t tr__put_obj(tr__blob_t *b, tr__obj_t **inner, int ninner, tr__obj_t **o_p);  /* refcnt 1 */
void        tr__view_free(tr__view_t *v);
tr__blob_t *tr__blob_for(size_t size, tr_status_t *st_p);  /* heap (inline) or the store by size */
const void *tr__peer_arena(int rank);                       /* node-local peer's arena, mapped */
/* Pin the stored value of object @id (owner @owner, a copy maybe on @hint):
 * own store, a same-node peer's (zero-copy), or fetched from another node. */
tr_status_t tr__read_stored(int owner, uint64_t id, int hint, tr__blob_t **b_p);
/* The local object for a ref named by a peer: owned, or a borrowed proxy
 * registered with its owner (waits for the owner's answer).  Counted. */
tr_status_t tr__borrow(const tr__iref_t *refs, int n, tr__obj_t **objs);
int         tr__same_node(int a, int b);
/* Replicas of put objects (tr_put_replicated): the @k-th rank to keep a
 * copy of @id owned by @owner, the same on every rank; -1 when none. */
int         tr__replica_rank(uint64_t id, int owner, int k);
#define TR__MAX_REPLICAS 3
/* Executor: pull a replica of @id from its owner @owner, kept like a
 * primary copy (spilled, never evicted). */
tr_status_t tr__replica_fetch(int owner, uint64_t id);

/* proto.c: object-protocol messages and the replies waited for */
typedef struct tr__rpc {
    tr__completion_t done;
    int              remaining;    /* replies still expected */
    int             *peers;        /* ranks a reply is expected from (one entry per reply) */
    int              npeers, cappeers;
    int              peers_inline[2];
    tr_status_t      status;
    int              holder;
    int              fetch;        /* LOCATE: the asker must pull the copy itself */
    uint64_t         off, size;
} tr__rpc_t;
uint64_t    tr__rpc_open(tr__rpc_t *r, int nreplies);   /* the tag */
/* A reply to @tag is expected from @rank (so its death answers it). */
void        tr__rpc_peer_locked(uint64_t tag, int rank);
void        tr__rpc_peer(uint64_t tag, int rank);
tr_status_t tr__rpc_wait(tr__rpc_t *r);
/* A reply from rank @src (-1: a local failure to send). */
void        tr__rpc_reply_locked(uint64_t tag, int src, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size);
void        tr__rpc_reply(uint64_t tag, int src, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size);
/* @rank died: every reply expected from it fails. */
void        tr__rpcs_rank_died_locked(int rank);
void        tr__send_ids(int dst, int type, const uint64_t *vals, int n);
struct tr__wbuf;
/* Finish @w as a message of @type and queue it to @dst; TR_ERR_NO_MEMORY (logged). */
tr_status_t tr__send(int dst, struct tr__wbuf *w, int type);
/* BORROW of @id at its @owner on behalf of rank @who; @tag 0: no answer wanted
 * (else a failure to send answers the tag; rt->lock not held then). */
void        tr__send_borrow(int owner, uint64_t tag, uint64_t id, int who);
/* Answer @rank's request @tag (this rank's own: completed directly). */
void        tr__reply_to_locked(int rank, uint64_t tag, tr_status_t st, int holder, int fetch, uint64_t off, uint64_t size);
void        tr__locate_locked(tr__obj_t *o, int reader, uint64_t tag, int bad);
tr_status_t tr__borrow_add_locked(tr__obj_t *o, int rank);
void        tr__fetched_locked(tr__obj_t *o, int rank, int ok);
void        tr__notify_subs_locked(tr__obj_t *o);
void        tr__rebuild_done_locked(tr__obj_t *o);     /* answer LOCATEs that waited for a rebuild */
void        tr__objs_rank_died_locked(int rank);
void        tr__rpins_rank_died_locked(int rank);         /* a dead reader's pins go */
void        tr__rpins_free(void);
void        tr__proto_recv(int type, const void *msg, size_t len);
void        tr__store_evicted(void *arg, uint64_t id, int owner);

/* failure.c */
void        tr__rank_died(int rank, const char *why);     /* loop thread; takes rt->lock */
void        tr__failure_recv(int type, const void *msg, size_t len);
/* This rank can no longer receive: it leaves the job (a worker: its work
 * is recovered like a death's; the driver: the job ends).  Does not return. */
void        tr__deaf(const char *why);
/* The shutdown barrier over the transport: every live rank reaches @phase.
 * Returns 1 when no rank (here or in any FIN) has seen a death. */
int         tr__fin_barrier(int phase);
int         tr__rank_is_dead(int rank);
/* task.c: failures */
int         tr__rebuild_locked(tr__obj_t *o);            /* 1: o is being made again */
int         tr__rerun_locked(tr__spec_t *L, uint64_t for_id);
void        tr__tasks_rank_died_locked(int rank);
/* actor.c: failures */
void        tr__actors_rank_died_locked(int rank);
void        tr__ainfo_free(struct tr__ainfo *ai);

/* runtime.c */
void        tr__rt_stats(tr_object_store_stats_t *st);

/* pg.c: placement groups */
tr_status_t tr__pgs_init(void);
void        tr__pgs_free(void);
void        tr__pg_recv(int type, const void *msg, size_t len);
/* A bundle reserved on this rank (loop or executor thread, no lock held). */
void        tr__pg_reserved(uint64_t pg, int idx, int owner);
void        tr__pgs_rank_died_locked(int rank);
/* Owner: resolve params' placement group into @req (pg id, bundle); 0 when
 * valid, else the status with the message set.  rt->lock held. */
tr_status_t tr__pg_check_locked(tr_pg_h pg, int bundle, tr__req_t *req, const char *what, const char *name);
/* Owner: the rank a task (or actor) in a group goes to: >= 0; -1 when it
 * must wait for the group to be ready (queued on it: dispatched then);
 * -2 when it cannot run (group removed, rank died: message set). */
int         tr__pg_target_locked(tr__spec_t *s);
int         tr__pg_actor_rank_locked(tr__req_t *req, const char *name, tr_status_t *st);

/* task.c */
tr_status_t tr__task_submit(const tr__fn_t *fn, const tr_arg_t *args, int nargs,
                            const tr_task_params_t *params, tr_ref_h *refs_p);
/* A task (fn) or an actor call (actor handle object + method). */
tr_status_t tr__submit(const tr__fn_t *fn, tr__obj_t *actor, uint64_t method_id, const char *method,
                       const tr_arg_t *args, int nargs, const tr_task_params_t *params, tr_ref_h *refs_p);
struct tr__wbuf;
struct tr__rbuf;
void        tr__encode_args(struct tr__wbuf *w, const tr__spec_t *s, int target);
void        tr__encode_req(struct tr__wbuf *w, const tr__req_t *req);
/* A by-value argument copied into a blob (the store when @may_store and it
 * is large); none for refs, which are only checked.  Sets tr_last_error. */
tr_status_t tr__arg_value(const tr_arg_t *a, int i, int may_store, tr__blob_t **b_p);
void        tr__decode_req(struct tr__rbuf *r, tr__req_t *req);
void        tr__decode_args(struct tr__rbuf *r, struct tr_task *t, size_t len);
void        tr__local_args(struct tr_task *t, const tr__spec_t *s);
struct tr_task *tr__task_new(uint64_t id, const tr__fn_t *fn, int owner, int attempt, int nret, int nargs);
int         tr__spec_args_failed_locked(tr__spec_t *s);   /* 1: failed it (an argument failed) */
void        tr__spec_fail_locked(tr__spec_t *s, tr_status_t err, int rank, const char *msg);
void        tr__spec_sent_locked(tr__spec_t *s, int target);  /* dispatched: now QUEUED there */
/* Sent again: WAITING, and waits for arguments that are pending again
 * (being rebuilt).  -1 when out of memory. */
int         tr__spec_rewait_locked(tr__spec_t *s);

/* actor.c */
typedef struct tr__actor tr__actor_t;
void        tr__actor_pump_locked(tr__obj_t *a);          /* send this rank's ready calls, in order */
void        tr__actor_run(struct tr_task *t);             /* executor: run actor work */
void        tr__actor_gone_locked(tr__obj_t *a);          /* owner: the last handle went */
void        tr__actor_recv(int type, const void *msg, size_t len);
void        tr__actors_shutdown(void);                    /* finalize: destroy what lives here */
tr_status_t tr__actors_init(void);
tr_status_t tr__task_cancel(tr__obj_t *o);
void        tr__spec_dep_ready_locked(tr__spec_t *s);
void        tr__spec_dispatch_locked(tr__spec_t *s);   /* place and send a spec whose arguments are ready */
void        tr__lineage_unref_locked(tr__spec_t *s);
void        tr__task_finish(struct tr_task *t, tr_status_t st);   /* executor: report outcome */
void        tr__task_free(struct tr_task *t);
void        tr__task_failmsg(struct tr_task *t, const char *fmt, ...) TR_PRINTF(2, 3);
void        tr__recv_task(const void *msg, size_t len);
void        tr__recv_result(const void *msg, size_t len);
/* Parse a RESULT message without acting on it: 0 when well formed (fuzz/). */
int         tr__result_check(const void *msg, size_t len, int nranks);
void        tr__recv_cancel(const void *msg, size_t len);
/* Decode a task body (the TASK layout after the header) from @r, which
 * reads the heap copy @copy of @len bytes that the task then keeps.  NULL
 * on a malformed body (@why says why; @id_p and @attempt_p are set when
 * they could be read) or no memory (*why_p NULL). */
struct tr_task *tr__task_decode(struct tr__rbuf *r, void *copy, size_t len, int owner,
                                uint64_t *id_p, uint32_t *attempt_p, const char **why_p);
/* The TASK body of a queued task, with its true owner implied. */
void        tr__task_encode(struct tr__wbuf *w, const struct tr_task *t);
/* Answer @owner's task @id with a failure (the task cannot run here). */
void        tr__task_reply_failed(int owner, uint64_t id, uint32_t attempt, const char *why);
/* Owner: spec @s's executing rank @rank is gone: re-run it or fail it. */
void        tr__spec_lost_locked(tr__spec_t *s, int rank);

/* steal.c: work stealing between ranks */
tr_status_t tr__steal_start(void);        /* after the transport is up */
void        tr__steal_stop(void);         /* the stealer thread; before the transport goes */
void        tr__steal_free(void);         /* after the transport is gone */
void        tr__steal_kick(void);         /* an executor found no work: the rank may be idle */
void        tr__steal_surplus(void);      /* more queued than free executors (no lock held) */
void        tr__steal_recv(int type, const void *msg, size_t len);
void        tr__steal_counts(uint64_t *stolen_p, uint64_t *given_p);
void        tr__task_resolve_args(struct tr_task *t);    /* executor: pin stored arguments */
uint64_t    tr__next_task_id(void);

#endif
