/*
 * taskray: Ray's programming model (dynamic tasks, futures, an object store)
 * for MPI jobs.  One header; see taskray(7) for the model and the environment
 * variables, and the man3 pages for each function.
 *
 * Thread safety: after tr_init() returns, every function may be called from
 * any thread of the process (the driver thread, application threads, and
 * task functions running on executor threads) unless its comment says
 * otherwise.  tr_init() and tr_finalize() must be called by the same thread,
 * once each.
 *
 * Handles (tr_ref_h, tr_buf_h) are opaque.  Output arguments end in _p and
 * are written only when the call returns TR_OK.
 */
#ifndef TASKRAY_H
#define TASKRAY_H

#include <stddef.h>
#include <stdint.h>
#include <taskray/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TR_EXPORT __attribute__((visibility("default")))
#define TR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TR_EXPORT
#define TR_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ status */

/**
 * Status codes.  TR_OK is zero; errors are negative and grouped by scope:
 * usage (-1..-19), task (-20..-39), object (-40..-59), actor (-60..-79),
 * rank and transport (-80..-99).
 */
typedef enum {
    TR_OK                    = 0,
    /* usage */
    TR_ERR_INVALID_ARG       = -1,  /* NULL, out of range or malformed argument */
    TR_ERR_NOT_INITIALIZED   = -2,  /* called before tr_init() or after tr_finalize() */
    TR_ERR_ALREADY_INIT      = -3,  /* tr_init() called twice */
    TR_ERR_WRONG_MODE        = -4,  /* not allowed in this mode or context */
    TR_ERR_UNKNOWN_FUNCTION  = -5,  /* function pointer or name never registered */
    TR_ERR_EXISTS            = -6,  /* a function, class or actor of that name exists */
    TR_ERR_NO_MEMORY         = -7,  /* malloc failed */
    TR_ERR_TIMEOUT           = -8,  /* the timeout passed first */
    TR_ERR_REF_RELEASED      = -9,  /* the handle was released (or never valid) */
    TR_ERR_BUFFER_TOO_SMALL  = -10, /* the caller's buffer cannot hold the value */
    TR_ERR_TYPE              = -11, /* value has the wrong size for the typed helper */
    TR_ERR_UNSCHEDULABLE     = -12, /* no rank can ever satisfy the resources */
    TR_ERR_SHUTDOWN          = -13, /* the runtime is shutting down */
    /* task */
    TR_ERR_TASK_FAILED       = -20, /* the task (or a task it depends on) failed */
    TR_ERR_TASK_CANCELLED    = -21, /* tr_cancel() removed the task before it ran */
    TR_ERR_TASK_RETRY        = -22, /* returned by a task function: fail, retry if allowed */
    TR_ERR_TASK_STARTED      = -23, /* tr_cancel(): the task already started or finished */
    TR_ERR_DEPENDENCY        = -24, /* reserved: a dependency could not be resolved */
    /* object */
    TR_ERR_OUT_OF_MEMORY     = -40, /* the object store is full */
    TR_ERR_OBJECT_LOST       = -41, /* every copy of the object is gone */
    TR_ERR_OBJECT_CORRUPT    = -42, /* the stored bytes failed their check */
    TR_ERR_OBJECT_TOO_LARGE  = -43, /* larger than the object store can ever hold */
    /* actor */
    TR_ERR_ACTOR_DIED        = -60, /* the actor was killed, failed to start, or was collected */
    TR_ERR_ACTOR_NOT_FOUND   = -61, /* no live actor has that name */
    TR_ERR_UNKNOWN_METHOD    = -62, /* the actor's class has no method of that name */
    /* rank and transport */
    TR_ERR_MISMATCH          = -80, /* ranks registered different remote functions or actor classes */
    TR_ERR_BOOTSTRAP         = -81, /* MPI start-up or address exchange failed */
    TR_ERR_TRANSPORT         = -82, /* UCX reported an error */
    TR_ERR_WORKER_DIED       = -83, /* the rank running the task died */
    TR_ERR_PROTOCOL          = -84, /* a peer sent a malformed message */
    TR_ERR_SYSTEM            = -85, /* a system call failed (see the log) */
    TR_ERR_TOPOLOGY          = -86  /* hwloc could not load the topology */
} tr_status_t;

/** A static, lowercase description of @status; never NULL. */
TR_EXPORT const char *tr_status_string(tr_status_t status);

/**
 * The calling thread's last detailed error message (for example "task 'fib'
 * failed on rank 2: n must be positive"), or "" when there is none.  Valid
 * until the thread's next taskray call.
 */
TR_EXPORT const char *tr_last_error(void);

/** The package version string ("0.1.0") and the API version (TR_API_VERSION). */
TR_EXPORT const char *tr_version(void);
TR_EXPORT unsigned tr_api_version(void);

/* -------------------------------------------------------------- lifecycle */

/** Who drives.  Default: rank 0 drives and the other ranks serve tasks. */
typedef enum {
    TR_MODE_DRIVER = 0, /* rank 0 is the driver; other ranks serve */
    TR_MODE_SPMD   = 1  /* every rank is a driver and owns what it submits */
} tr_mode_t;

enum {
    TR_INIT_FIELD_MODE          = 1u << 0,
    TR_INIT_FIELD_NUM_EXECUTORS = 1u << 1,
    TR_INIT_FIELD_ARGC_ARGV     = 1u << 2
};

/** Parameters of tr_init().  Unset fields take the defaults given here. */
typedef struct tr_init_params {
    uint64_t   field_mask;    /* TR_INIT_FIELD_* bits of the fields set */
    tr_mode_t  mode;          /* default TR_MODE_DRIVER */
    int        num_executors; /* executor threads per rank; default: the cores
                                 the rank is bound to (TASKRAY_NUM_EXECUTORS) */
    int       *argc;          /* passed to MPI_Init_thread; default NULL */
    char    ***argv;
} tr_init_params_t;

/**
 * Start the runtime on this rank: MPI bootstrap (or a one-rank job when no
 * launcher started the program), UCX, the event loop and the executors.
 * Collective: every rank of the job calls it.  Returns on every rank.
 * @params may be NULL (all defaults).
 * Errors: TR_ERR_ALREADY_INIT, TR_ERR_INVALID_ARG, TR_ERR_MISMATCH (the ranks
 * registered different remote functions: different binaries),
 * TR_ERR_BOOTSTRAP, TR_ERR_TRANSPORT, TR_ERR_SYSTEM, TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_init(const tr_init_params_t *params);

/**
 * Stop the runtime.  On the driver: waits for the tasks it owns to finish,
 * then tells every rank to stop.  On a serving rank: serves tasks until the
 * driver finalizes.  In SPMD mode: serves until every rank has finalized.
 * Handles still held are released.  Errors: TR_ERR_NOT_INITIALIZED,
 * TR_ERR_WRONG_MODE (called from a task).
 */
TR_EXPORT tr_status_t tr_finalize(void);

/** This rank's number and the job's size; -1 / 0 before tr_init(). */
TR_EXPORT int tr_rank(void);
TR_EXPORT int tr_size(void);
/** Non-zero when the calling thread may submit tasks (driver, or a task). */
TR_EXPORT int tr_is_driver(void);
/** The node (host, or TASKRAY_NODE_ID) of a rank; -1 when out of range. */
TR_EXPORT int tr_node_of(int rank);

/* ---------------------------------------------------- remote functions */

typedef struct tr_task *tr_task_h; /* the running task, inside a task function */
#define TR_TASK_NULL ((tr_task_h)0)

/**
 * A remote function.  It reads its arguments with tr_task_arg*(), sets its
 * returns with tr_task_return*(), and returns TR_OK, an error status (the
 * task fails), or TR_ERR_TASK_RETRY (the task fails and is retried while its
 * max_retries allows).
 */
typedef tr_status_t (*tr_remote_fn_t)(tr_task_h task);

/**
 * Register @fn under @name before tr_init().  Every rank must register the
 * same names (tr_init() compares the tables).  Errors: TR_ERR_INVALID_ARG,
 * TR_ERR_EXISTS (the name, or the function under another name, is already
 * registered), TR_ERR_WRONG_MODE (after tr_init()), TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_function_register(const char *name, tr_remote_fn_t fn);

/** Declare @fn a remote function, registered under its own name at load time. */
#define TR_REMOTE(fn)                                                         \
    static void __attribute__((constructor)) tr_register_remote__##fn(void)   \
    {                                                                         \
        tr_function_register(#fn, fn);                                        \
    }

/* ------------------------------------------------------------- arguments */

typedef struct tr_ref *tr_ref_h;  /* a future: reference to an object */
#define TR_REF_NULL ((tr_ref_h)0)

typedef enum {
    TR_ARG_KIND_BYTES = 1, /* copied at submission */
    TR_ARG_KIND_I64   = 2,
    TR_ARG_KIND_F64   = 3,
    TR_ARG_KIND_REF   = 4, /* the value of the object, once it is ready */
    TR_ARG_KIND_BORROW = 5 /* the ref itself: the task borrows it (tr_task_arg_ref) */
} tr_arg_kind_t;

/**
 * One task argument: a fixed descriptor, like an iovec.  Fill it with the
 * TR_ARG_* macros.  Bytes are copied during tr_task_submit(); a ref argument
 * keeps its object alive until the task has run.
 */
typedef struct tr_arg {
    tr_arg_kind_t kind;
    union {
        struct { const void *data; size_t size; } bytes;
        int64_t  i64;
        double   f64;
        tr_ref_h ref;
    } u;
} tr_arg_t;

#define TR_ARG_BYTES(p, n) ((tr_arg_t){ .kind = TR_ARG_KIND_BYTES, .u.bytes = { (p), (n) } })
#define TR_ARG_I64(v)      ((tr_arg_t){ .kind = TR_ARG_KIND_I64, .u.i64 = (v) })
#define TR_ARG_F64(v)      ((tr_arg_t){ .kind = TR_ARG_KIND_F64, .u.f64 = (v) })
#define TR_ARG_REF(r)      ((tr_arg_t){ .kind = TR_ARG_KIND_REF, .u.ref = (r) })
#define TR_ARG_STR(s)      TR_ARG_BYTES((s), __builtin_strlen(s) + 1)
#define TR_ARG_BORROW(r)   ((tr_arg_t){ .kind = TR_ARG_KIND_BORROW, .u.ref = (r) })

/* ------------------------------------------------------------------ tasks */

enum {
    TR_TASK_FIELD_NUM_RETURNS = 1u << 0,
    TR_TASK_FIELD_MAX_RETRIES = 1u << 1,
    TR_TASK_FIELD_NUM_CPUS    = 1u << 2,
    TR_TASK_FIELD_RESOURCES   = 1u << 3,
    TR_TASK_FIELD_NAME        = 1u << 4,
    TR_TASK_FIELD_NUM_GPUS    = 1u << 5,
    TR_TASK_FIELD_MEMORY      = 1u << 6,
    TR_TASK_FIELD_STRATEGY    = 1u << 7,
    TR_TASK_FIELD_RANK        = 1u << 8,
    TR_TASK_FIELD_NODE        = 1u << 9,
    TR_TASK_FIELD_PLACEMENT_GROUP = 1u << 10
};

/** Where the owner places a task or an actor (see taskray(7), PLACEMENT). */
typedef enum {
    TR_STRATEGY_DEFAULT = 0, /* locality (the node, then the rank, holding the most argument
                                bytes) unless it is overloaded, then the least-loaded rank */
    TR_STRATEGY_SPREAD  = 1  /* round-robin over the nodes, then their ranks */
} tr_strategy_t;

typedef struct tr_pg *tr_pg_h;   /* a placement group */
#define TR_PG_NULL ((tr_pg_h)0)

#define TR_MAX_RETURNS 64

/** Options of one task.  Unset fields take the defaults given here. */
typedef struct tr_task_params {
    uint64_t    field_mask;  /* TR_TASK_FIELD_* bits of the fields set */
    int         num_returns; /* 1..TR_MAX_RETURNS; default 1 */
    int         max_retries; /* re-executions after the executing rank died or the task
                                returned TR_ERR_TASK_RETRY; default 3, -1 forever */
    double      num_cpus;    /* executor slots the task holds; default 1, 0 allowed */
    const char *resources;   /* custom resources, "licence=1,ssd=0.5"; default none */
    const char *name;        /* for traces and error messages; default the function's */
    double      num_gpus;    /* the rank's "gpus" resource held while it runs; default 0.
                                tr_task_gpus() says which devices */
    uint64_t    memory;      /* bytes of the rank's "memory" resource held while it runs;
                                default 0 (not accounted) */
    tr_strategy_t strategy;  /* default TR_STRATEGY_DEFAULT */
    int         rank;        /* affinity: run on this rank (TR_TASK_FIELD_RANK) */
    int         node;        /* affinity: run on a rank of this node (TR_TASK_FIELD_NODE) */
    int         soft;        /* non-zero: the affinity is a preference, not a constraint */
    tr_pg_h     placement_group; /* run inside this group's bundle (TR_TASK_FIELD_PLACEMENT_GROUP) */
    int         bundle_index;    /* the bundle; -1: any bundle of the group that fits */
} tr_task_params_t;

/**
 * Submit a task running @fn (a registered remote function) on @args.  The
 * caller owns the results: @refs_p (an array of num_returns handles) receives
 * one new handle per return, each to be released with tr_ref_release().
 * Contexts: the driver thread(s), and tasks (nested submission).
 * Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG, TR_ERR_UNKNOWN_FUNCTION,
 * TR_ERR_REF_RELEASED (an argument ref, or the placement group),
 * TR_ERR_WRONG_MODE (a serving rank's application thread in TR_MODE_DRIVER),
 * TR_ERR_UNSCHEDULABLE (no rank has the resources; tr_last_error() names the
 * resource), TR_ERR_OBJECT_TOO_LARGE and TR_ERR_OUT_OF_MEMORY (a by-value
 * argument larger than TASKRAY_INLINE_MAX that the object store cannot
 * hold), TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_task_submit(tr_remote_fn_t fn, const tr_arg_t *args, int nargs,
                                     const tr_task_params_t *params, tr_ref_h *refs_p);

/**
 * Cancel the task that produces @ref if it has not started: its results then
 * fail with TR_ERR_TASK_CANCELLED.  Returns TR_OK when the task was cancelled
 * or cancellation was sent to the rank that holds it (the outcome is then
 * seen by tr_get()), TR_ERR_TASK_STARTED when it already started or finished,
 * TR_ERR_INVALID_ARG for a ref made by tr_put(), TR_ERR_REF_RELEASED.
 */
TR_EXPORT tr_status_t tr_cancel(tr_ref_h ref);

/* Inside a task function.  Calling these with a task handle that is not the
 * running task of the calling thread gives TR_ERR_INVALID_ARG. */

/** Number of arguments; -1 when @task is invalid. */
TR_EXPORT int tr_task_num_args(tr_task_h task);
/** Argument @i: a pointer valid until the task returns, and its size.
 *  TR_ERR_TYPE when it was passed with TR_ARG_BORROW() (see tr_task_arg_ref()). */
TR_EXPORT tr_status_t tr_task_arg(tr_task_h task, int i, const void **data_p, size_t *size_p);
/** Typed helpers: TR_ERR_TYPE when the argument does not have that size. */
TR_EXPORT tr_status_t tr_task_arg_i64(tr_task_h task, int i, int64_t *value_p);
TR_EXPORT tr_status_t tr_task_arg_f64(tr_task_h task, int i, double *value_p);
/**
 * Argument @i passed with TR_ARG_BORROW(): a new handle to the ref itself (not
 * its value), which the task may tr_get(), pass on, put inside objects, or
 * keep past its return; release it with tr_ref_release().  The rank becomes
 * a borrower: the object stays alive until every borrower released it.
 * Errors: TR_ERR_INVALID_ARG (@i out of range), TR_ERR_TYPE (argument @i was
 * not passed with TR_ARG_BORROW()), TR_ERR_NO_MEMORY, TR_ERR_TRANSPORT.
 */
TR_EXPORT tr_status_t tr_task_arg_ref(tr_task_h task, int i, tr_ref_h *ref_p);
/** Set return @i to a copy of @data (a return left unset is an empty value).
 *  Errors: TR_ERR_INVALID_ARG (@i out of range, NULL with size > 0),
 *  TR_ERR_OBJECT_TOO_LARGE, TR_ERR_OUT_OF_MEMORY, TR_ERR_NO_MEMORY. */
TR_EXPORT tr_status_t tr_task_return(tr_task_h task, int i, const void *data, size_t size);
TR_EXPORT tr_status_t tr_task_return_i64(tr_task_h task, int i, int64_t value);
TR_EXPORT tr_status_t tr_task_return_f64(tr_task_h task, int i, double value);
/**
 * Set return @i to a copy of @data that contains the refs @refs (@nrefs of
 * them), like tr_put_refs(): whoever gets the result reads them with
 * tr_buf_refs(), and the result keeps them alive.  The task keeps its own
 * handles.  Errors: as tr_task_return(), TR_ERR_REF_RELEASED (a ref in
 * @refs), TR_ERR_INVALID_ARG (@refs NULL with @nrefs > 0).
 */
TR_EXPORT tr_status_t tr_task_return_refs(tr_task_h task, int i, const void *data, size_t size,
                                          const tr_ref_h *refs, size_t nrefs);
/** Allocate return @i (@size bytes) in place, for the task to fill: no copy. */
TR_EXPORT tr_status_t tr_task_return_alloc(tr_task_h task, int i, size_t size, void **data_p);
/**
 * Record why the task fails.  The task function must then return an error
 * status (TR_ERR_TASK_FAILED, or TR_ERR_TASK_RETRY to ask for a retry); every
 * tr_get() of its results returns TR_ERR_TASK_FAILED with this message.
 */
TR_EXPORT tr_status_t tr_task_fail(tr_task_h task, const char *fmt, ...) TR_PRINTF(2, 3);
/** The rank the task runs on, and its attempt (0 first, 1 first retry...). */
TR_EXPORT int tr_task_rank(tr_task_h task);
TR_EXPORT int tr_task_attempt(tr_task_h task);
/**
 * The GPUs the running task holds (its num_gpus): their device numbers as
 * the process sees them (CUDA_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES and
 * ROCR_VISIBLE_DEVICES list the rank's GPUs), up to @max of them into
 * @ids.  Returns how many it holds (0 for a task without GPUs), -1 when
 * @task is not the running task or @ids is NULL with @max > 0.
 */
TR_EXPORT int tr_task_gpus(tr_task_h task, int *ids, int max);

/* ------------------------------------------------------- objects, futures */

#define TR_TIMEOUT_INFINITE ((int64_t)-1)

typedef struct tr_buf *tr_buf_h; /* a read-only view of an object's value */
#define TR_BUF_NULL ((tr_buf_h)0)

/**
 * Put a copy of @data into the object store; the caller owns the new object.
 * Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG (NULL with size > 0),
 * TR_ERR_OBJECT_TOO_LARGE (larger than this rank's object store),
 * TR_ERR_OUT_OF_MEMORY, TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_put(const void *data, size_t size, tr_ref_h *ref_p);
TR_EXPORT tr_status_t tr_put_i64(int64_t value, tr_ref_h *ref_p);
/**
 * tr_put() that also keeps @replicas (0..3) copies on other ranks (of other
 * nodes when the job has several), made before it returns, so that the
 * value can still be read when this rank, its owner, dies: put objects have
 * no lineage to rebuild them from.  Values up to the inline size travel
 * with every ref and need none.  Errors: as tr_put(), TR_ERR_INVALID_ARG
 * (@replicas out of range, or more than the other ranks), and what making
 * a replica failed with (TR_ERR_OUT_OF_MEMORY, TR_ERR_WORKER_DIED).
 */
TR_EXPORT tr_status_t tr_put_replicated(const void *data, size_t size, int replicas, tr_ref_h *ref_p);
TR_EXPORT tr_status_t tr_put_f64(double value, tr_ref_h *ref_p);

/**
 * Put a copy of @data that contains the refs @refs (@nrefs of them) into the
 * object store.  The new object keeps each contained object alive for as
 * long as it lives itself; a rank that gets it reads the refs back with
 * tr_buf_refs() and becomes a borrower of each.  The caller keeps its own
 * handles in @refs.  Errors: as tr_put(), and TR_ERR_REF_RELEASED (a ref in
 * @refs), TR_ERR_INVALID_ARG (@refs NULL with @nrefs > 0).
 */
TR_EXPORT tr_status_t tr_put_refs(const void *data, size_t size, const tr_ref_h *refs, size_t nrefs,
                                  tr_ref_h *ref_p);

/** An object being written in place: allocated by tr_object_create(). */
typedef struct tr_object *tr_object_h;
#define TR_OBJECT_NULL ((tr_object_h)0)

/**
 * Allocate a @size-byte object in this rank's object store for the caller to
 * fill through *@data_p (no copy), then publish it with tr_object_seal().
 * Nobody else can see the object before it is sealed; after sealing it is
 * immutable.  tr_object_abort() discards it unsealed.
 * Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG, TR_ERR_OUT_OF_MEMORY
 * (nothing can be spilled to make room), TR_ERR_OBJECT_TOO_LARGE (larger
 * than this rank's object store), TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_object_create(size_t size, void **data_p, tr_object_h *obj_p);
/** Seal @obj: it becomes an immutable object owned by the caller, and @obj is
 *  consumed.  Errors: TR_ERR_INVALID_ARG (NULL, or already sealed/aborted). */
TR_EXPORT tr_status_t tr_object_seal(tr_object_h obj, tr_ref_h *ref_p);
/** Discard an unsealed object.  Errors: TR_ERR_INVALID_ARG. */
TR_EXPORT tr_status_t tr_object_abort(tr_object_h obj);

/**
 * Wait up to @timeout_ms (TR_TIMEOUT_INFINITE: forever) for @ref and return
 * a read-only view of its value in @buf_p, without copying when the value is
 * on this node.  Release the view with tr_buf_release().  A task that calls
 * tr_get() yields its executor to other tasks while it waits.
 * Errors: TR_ERR_TIMEOUT, TR_ERR_TASK_FAILED (tr_last_error() holds the
 * task's message and rank), TR_ERR_TASK_CANCELLED, TR_ERR_REF_RELEASED,
 * TR_ERR_INVALID_ARG, TR_ERR_NOT_INITIALIZED, TR_ERR_SHUTDOWN, and for
 * values in the object store: TR_ERR_OUT_OF_MEMORY (a spilled or remote
 * value cannot be brought in: everything here is pinned),
 * TR_ERR_OBJECT_CORRUPT (its spill file failed its check),
 * TR_ERR_OBJECT_LOST (no copy can be reached).  Inside a task (or an actor
 * method), on one of that task's own results: TR_ERR_WRONG_MODE, since only
 * the task itself can produce them (a longer cycle is not detected).
 */
TR_EXPORT tr_status_t tr_get(tr_ref_h ref, int64_t timeout_ms, tr_buf_h *buf_p);
/** tr_get() of @n refs at once: all views, or the first error (no views). */
TR_EXPORT tr_status_t tr_get_many(const tr_ref_h *refs, size_t n, int64_t timeout_ms,
                                  tr_buf_h *bufs_p);
/** tr_get() into a caller buffer: TR_ERR_BUFFER_TOO_SMALL if it does not fit
 *  (@size_p then still holds the size needed). */
TR_EXPORT tr_status_t tr_get_copy(tr_ref_h ref, int64_t timeout_ms, void *dst, size_t capacity,
                                  size_t *size_p);
TR_EXPORT tr_status_t tr_get_i64(tr_ref_h ref, int64_t timeout_ms, int64_t *value_p);
TR_EXPORT tr_status_t tr_get_f64(tr_ref_h ref, int64_t timeout_ms, double *value_p);

/**
 * Zero-copy get: tr_get() that also returns the view's bytes and size.  On
 * this node the pointer is into shared memory (read-only, no copy), valid
 * and pinned (never spilled or moved) until tr_buf_release(*@buf_p).
 * Errors: as tr_get().
 */
TR_EXPORT tr_status_t tr_get_buffer(tr_ref_h ref, int64_t timeout_ms, const void **data_p,
                                    size_t *size_p, tr_buf_h *buf_p);

/** The bytes and size of a view; NULL / 0 for an invalid handle. */
TR_EXPORT const void *tr_buf_data(tr_buf_h buf);
TR_EXPORT size_t tr_buf_size(tr_buf_h buf);
/** The number of refs the viewed object contains (tr_put_refs()); 0 for an
 *  invalid handle. */
TR_EXPORT size_t tr_buf_num_refs(tr_buf_h buf);
/**
 * New handles to the first @n refs the viewed object contains, in the order
 * they were put, into @refs_p; each is released with tr_ref_release().
 * Errors: TR_ERR_INVALID_ARG (invalid view, NULL, @n larger than
 * tr_buf_num_refs()), TR_ERR_NO_MEMORY, TR_ERR_TRANSPORT.
 */
TR_EXPORT tr_status_t tr_buf_refs(tr_buf_h buf, tr_ref_h *refs_p, size_t n);
/** Release a view.  TR_ERR_INVALID_ARG for NULL or a released view. */
TR_EXPORT tr_status_t tr_buf_release(tr_buf_h buf);

/**
 * Wait until @k of the @n refs are ready (done or failed) or the timeout
 * passes.  @ready_idx_p (an array of n) receives the indices of up to k ready
 * refs, in input order, and @num_ready_p their count: fewer than k means the
 * timeout passed.  Errors: TR_ERR_INVALID_ARG (k > n, NULL), TR_ERR_REF_RELEASED,
 * TR_ERR_NOT_INITIALIZED, TR_ERR_NO_MEMORY, TR_ERR_WRONG_MODE (inside a task,
 * when k cannot be reached without the task's own results).
 */
TR_EXPORT tr_status_t tr_wait(const tr_ref_h *refs, size_t n, size_t k, int64_t timeout_ms,
                              size_t *ready_idx_p, size_t *num_ready_p);

/**
 * A ref handle is a counted reference: copying the handle value (the
 * pointer) does not add a reference, and each handle is released once.
 * tr_ref_dup() makes a second, independent handle to the same object.
 * When the last handle is released and no pending task needs the object,
 * its memory is freed.  Using a released handle gives TR_ERR_REF_RELEASED.
 */
TR_EXPORT tr_status_t tr_ref_release(tr_ref_h ref);
TR_EXPORT tr_status_t tr_ref_dup(tr_ref_h ref, tr_ref_h *ref_p);

/**
 * Details of a failed object: the status, the rank the task ran on (-1 when
 * unknown) and its message (copied into @msg, @msg_len bytes at most).
 * TR_OK when the object is not (yet) failed: *status_p is then TR_OK.
 */
TR_EXPORT tr_status_t tr_ref_error(tr_ref_h ref, tr_status_t *status_p, int *rank_p, char *msg,
                                   size_t msg_len);

/* ---------------------------------------------------------------- actors */

/**
 * An actor: state that lives on one rank, whose methods run there.  A
 * class is a name, a constructor (state from arguments), methods registered
 * by name, a destructor, and optionally save/restore functions that turn
 * the state into bytes and back (used to restart actors after a failure).
 * Inside the constructor and the methods, arguments and returns go through
 * the same tr_task_arg*() / tr_task_return*() / tr_task_fail() calls as in
 * a task function.
 */
typedef struct tr_actor *tr_actor_h;
#define TR_ACTOR_NULL ((tr_actor_h)0)

/** Build the state from the constructor's arguments into *@state_p. */
typedef tr_status_t (*tr_actor_init_fn)(tr_task_h task, void **state_p);
/** A method: reads its arguments, sets its returns, may change @state. */
typedef tr_status_t (*tr_actor_method_fn)(tr_task_h task, void *state);
/** Free the state (the actor is being destroyed). */
typedef void (*tr_actor_fini_fn)(void *state);
/** Serialize the state into a malloc'd buffer (*@data_p, *@size_p). */
typedef tr_status_t (*tr_actor_save_fn)(void *state, void **data_p, size_t *size_p);
/** Rebuild the state from what save() produced. */
typedef tr_status_t (*tr_actor_restore_fn)(const void *data, size_t size, void **state_p);

typedef struct tr_actor_method {
    const char        *name;
    tr_actor_method_fn fn;
} tr_actor_method_t;

typedef struct tr_actor_class {
    const char              *name;        /* unique among classes */
    tr_actor_init_fn         init;        /* required */
    tr_actor_fini_fn         fini;        /* optional */
    const tr_actor_method_t *methods;     /* @num_methods of them, names unique */
    int                      num_methods;
    tr_actor_save_fn         save;        /* optional, with restore */
    tr_actor_restore_fn      restore;
} tr_actor_class_t;

/**
 * Register an actor class (copied) before tr_init(); every rank registers
 * the same classes (tr_init() compares them with the remote functions).
 * Errors: TR_ERR_INVALID_ARG (NULL, no name or init, a method without a
 * name or function, num_methods < 0), TR_ERR_EXISTS (a class of that name,
 * or two methods of one name), TR_ERR_WRONG_MODE (after tr_init()),
 * TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_actor_class_register(const tr_actor_class_t *cls);

enum {
    TR_ACTOR_FIELD_NUM_CPUS        = 1u << 0,
    TR_ACTOR_FIELD_RESOURCES       = 1u << 1,
    TR_ACTOR_FIELD_MAX_CONCURRENCY = 1u << 2,
    TR_ACTOR_FIELD_NAME            = 1u << 3,
    TR_ACTOR_FIELD_RANK            = 1u << 4,
    TR_ACTOR_FIELD_NODE            = 1u << 5,
    TR_ACTOR_FIELD_SPREAD          = 1u << 6,
    TR_ACTOR_FIELD_NUM_GPUS        = 1u << 7,
    TR_ACTOR_FIELD_MAX_RESTARTS    = 1u << 8,
    TR_ACTOR_FIELD_MAX_TASK_RETRIES = 1u << 9,
    TR_ACTOR_FIELD_SOFT            = 1u << 10,
    TR_ACTOR_FIELD_MEMORY          = 1u << 11,
    TR_ACTOR_FIELD_PLACEMENT_GROUP = 1u << 12
};

/** Options of tr_actor_create().  Unset fields take the defaults given here. */
typedef struct tr_actor_params {
    uint64_t    field_mask;      /* TR_ACTOR_FIELD_* bits of the fields set */
    double      num_cpus;        /* executor slots held for the actor's life; default 0 */
    const char *resources;       /* custom resources held, "gpu_slot=1"; default none */
    int         max_concurrency; /* methods running at once, 1..1024; default 1 (in order) */
    const char *name;            /* a job-wide name (tr_actor_get_by_name); default none */
    int         rank;            /* run on this rank (hard affinity); default: placed */
    int         node;            /* run on a rank of this node (hard affinity) */
    int         spread;          /* non-zero: prefer the node, then the rank, with the fewest actors */
    double      num_gpus;        /* the "gpus" resource held for its life; default 0.  Ranks
                                    have gpus when TASKRAY_RESOURCES declares them ("gpus=1") */
    int         max_restarts;    /* restarts on a surviving rank after its rank died; default 0,
                                    -1 forever.  From the last tr_actor_checkpoint() when the
                                    class has save/restore, else from the constructor */
    int         max_task_retries; /* calls pending when its rank died that are re-sent to the
                                    restarted actor; default 0 (they fail with
                                    TR_ERR_ACTOR_DIED), -1 forever */
    int         soft;            /* non-zero: rank/node are preferences (TR_ACTOR_FIELD_SOFT) */
    uint64_t    memory;          /* bytes of the "memory" resource held for its life; default 0 */
    tr_pg_h     placement_group; /* live inside this group's bundle */
    int         bundle_index;    /* the bundle; -1: any bundle that fits */
} tr_actor_params_t;

/**
 * Create an actor of the class registered as @class_name, its constructor
 * called with @args on the rank chosen for it.  Returns at once: calls made
 * meanwhile wait for the constructor.  The caller owns the actor: it lives
 * while a handle to it (here, in a task, on another rank, inside an object)
 * exists, or until tr_actor_kill().  Release @actor_p with
 * tr_actor_release().  Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG,
 * TR_ERR_UNKNOWN_FUNCTION (no such class), TR_ERR_EXISTS (the name is taken
 * by a live actor), TR_ERR_UNSCHEDULABLE, TR_ERR_REF_RELEASED (an argument
 * ref), TR_ERR_WRONG_MODE, TR_ERR_NO_MEMORY.  A constructor that fails makes
 * every call fail with TR_ERR_ACTOR_DIED and its message.
 */
TR_EXPORT tr_status_t tr_actor_create(const char *class_name, const tr_arg_t *args, int nargs,
                                      const tr_actor_params_t *params, tr_actor_h *actor_p);

/**
 * Call @method of @actor with @args: like tr_task_submit(), the caller owns
 * the results (@refs_p, num_returns of them; @params may set num_returns
 * and name only).  Calls from one caller to an actor with max_concurrency 1
 * run in the order they were made; a call whose ref arguments are not ready
 * waits for them without holding the actor.  A method that fails fails that
 * call only.  Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG (also
 * for a ready ref that does not name an actor), TR_ERR_REF_RELEASED (the
 * actor handle or an argument), TR_ERR_WRONG_MODE,
 * TR_ERR_NO_MEMORY; the results fail with TR_ERR_ACTOR_DIED (killed,
 * collected, or its constructor failed) or TR_ERR_UNKNOWN_METHOD.
 */
TR_EXPORT tr_status_t tr_actor_call(tr_actor_h actor, const char *method, const tr_arg_t *args,
                                    int nargs, const tr_task_params_t *params, tr_ref_h *refs_p);

/**
 * Kill @actor now: calls queued or arriving later fail with
 * TR_ERR_ACTOR_DIED; a method running finishes, then the destructor runs.
 * The handle stays valid (release it).  Errors: TR_ERR_NOT_INITIALIZED,
 * TR_ERR_REF_RELEASED.
 */
TR_EXPORT tr_status_t tr_actor_kill(tr_actor_h actor);

/** Release an actor handle; the last handle anywhere destroys the actor once
 *  its pending calls are done.  Errors: TR_ERR_NOT_INITIALIZED,
 *  TR_ERR_REF_RELEASED. */
TR_EXPORT tr_status_t tr_actor_release(tr_actor_h actor);
/** A second, independent handle.  Errors: as tr_actor_release(), TR_ERR_NO_MEMORY. */
TR_EXPORT tr_status_t tr_actor_dup(tr_actor_h actor, tr_actor_h *actor_p);

/**
 * Handles travel as refs: tr_actor_ref() gives a ref to @actor that can be
 * passed to tasks (TR_ARG_BORROW, or TR_ARG_ACTOR) or put inside objects
 * (tr_put_refs); tr_actor_from_ref() turns such a ref back into an actor
 * handle on any rank.  Calls made from each rank keep their order.
 * Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_REF_RELEASED, TR_ERR_INVALID_ARG
 * (NULL, or for tr_actor_from_ref() a ref that is not an actor's),
 * TR_ERR_NO_MEMORY.  Actor handles are refs: tr_actor_ref(), tr_actor_dup()
 * and tr_actor_release() do not check that their handle names an actor.
 */
TR_EXPORT tr_status_t tr_actor_ref(tr_actor_h actor, tr_ref_h *ref_p);
TR_EXPORT tr_status_t tr_actor_from_ref(tr_ref_h ref, tr_actor_h *actor_p);
#define TR_ARG_ACTOR(a) TR_ARG_BORROW((tr_ref_h)(a))
/** Argument @i passed with TR_ARG_ACTOR(): a new actor handle.  Errors: as
 *  tr_task_arg_ref() and tr_actor_from_ref(). */
TR_EXPORT tr_status_t tr_task_arg_actor(tr_task_h task, int i, tr_actor_h *actor_p);

/**
 * A handle to the live actor named @name (TR_ACTOR_FIELD_NAME), from any
 * rank.  Errors: TR_ERR_ACTOR_NOT_FOUND (no live actor has that name),
 * TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG, TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_actor_get_by_name(const char *name, tr_actor_h *actor_p);

/** Inside a method: the rank the actor lives on is tr_task_rank(); this
 *  gives the actor's own handle (a new one, to release).  TR_ERR_INVALID_ARG
 *  outside an actor method (TR_ERR_NOT_INITIALIZED without a runtime). */
TR_EXPORT tr_status_t tr_actor_self(tr_task_h task, tr_actor_h *actor_p);

/**
 * Inside a method: save the actor's state now (the class's save()) and keep
 * the bytes with the actor's owner, so that a restart after its rank dies
 * begins from here (restore()) instead of the constructor.  Calls that ran
 * after the checkpoint are re-sent when max_task_retries allows.  Errors:
 * TR_ERR_INVALID_ARG (not inside an actor method, or the class has no
 * save/restore), TR_ERR_NOT_INITIALIZED, TR_ERR_NO_MEMORY, and what save()
 * returned.
 */
TR_EXPORT tr_status_t tr_actor_checkpoint(tr_task_h task);

/** Inside an actor's constructor or method: 1 when this incarnation of the
 *  actor is a restart after its rank died, 0 for the first, -1 outside an
 *  actor (or @task invalid). */
TR_EXPORT int tr_actor_was_restarted(tr_task_h task);

/* ------------------------------------------------------------- placement */

/**
 * Placement groups reserve bundles of resources (each bundle on one rank)
 * for tasks and actors scheduled into them.  Strategies: PACK (as few nodes
 * as possible), SPREAD (as many nodes as possible), STRICT_PACK (every
 * bundle on one node, or unschedulable), STRICT_SPREAD (each bundle on a
 * different node, or unschedulable).
 */
typedef enum {
    TR_PG_PACK          = 0,
    TR_PG_SPREAD        = 1,
    TR_PG_STRICT_PACK   = 2,
    TR_PG_STRICT_SPREAD = 3
} tr_pg_strategy_t;

/** One bundle: what it reserves on its rank. */
typedef struct tr_bundle {
    double      num_cpus;   /* executor slots */
    double      num_gpus;
    uint64_t    memory;     /* bytes */
    const char *resources;  /* custom resources, "ssd=1"; NULL for none */
} tr_bundle_t;

#define TR_PG_MAX_BUNDLES 1024

/**
 * Create a placement group of @nbundles bundles (1..TR_PG_MAX_BUNDLES)
 * placed with @strategy.  Returns at once; the reservation completes in
 * the background (tr_placement_group_wait()).  Tasks and actors submitted
 * into it meanwhile wait for it.  Release with tr_placement_group_remove().
 * Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG, TR_ERR_WRONG_MODE
 * (not a driver or a task), TR_ERR_UNSCHEDULABLE (no placement of the
 * bundles can ever exist; tr_last_error() says why), TR_ERR_NO_MEMORY.
 */
TR_EXPORT tr_status_t tr_placement_group_create(const tr_bundle_t *bundles, int nbundles,
                                                tr_pg_strategy_t strategy, tr_pg_h *pg_p);
/**
 * Wait until every bundle of @pg is reserved.  Errors: TR_ERR_TIMEOUT,
 * TR_ERR_REF_RELEASED (removed or invalid), TR_ERR_WORKER_DIED (a bundle's
 * rank died), TR_ERR_NOT_INITIALIZED.
 */
TR_EXPORT tr_status_t tr_placement_group_wait(tr_pg_h pg, int64_t timeout_ms);
/** The rank bundle @i of @pg is reserved on; -1 for an invalid group or index. */
TR_EXPORT int tr_placement_group_bundle_rank(tr_pg_h pg, int i);
/**
 * Remove @pg: its reservations are released once the tasks running in it
 * finish; tasks and actors still waiting to be placed in it fail with
 * TR_ERR_UNSCHEDULABLE.  The handle is invalid afterwards.  Errors:
 * TR_ERR_NOT_INITIALIZED, TR_ERR_REF_RELEASED.
 */
TR_EXPORT tr_status_t tr_placement_group_remove(tr_pg_h pg);

/** A rank as taskray sees it (tr_rank_info(), taskray-info(1)). */
typedef struct tr_rank_info {
    int      rank;
    int      node;             /* tr_node_of() */
    char     hostname[64];
    char     cpuset[128];      /* hwloc list of the PUs the rank uses ("0-7") */
    int      num_cores;        /* cores in that set */
    int      num_executors;
    int      bound;            /* 1: executors are bound one per core */
    int      numa_node;        /* NUMA node of its cores and object store; -1 several/unknown */
    int      num_numa_nodes;   /* NUMA nodes of the rank's machine */
    int      num_gpus;         /* GPUs the rank holds */
    char     gpus[512];        /* one line per GPU held: "cuda0 0000:65:00.0 NVIDIA H100 near 0-15" */
    double   cpus;             /* its resources */
    double   gpus_res;
    uint64_t memory;
    char     resources[256];   /* custom resources, "ssd=1,licence=2" */
    uint64_t reserved[8];
} tr_rank_info_t;

/** What tr_init() learned about @rank (any rank of the job).  Errors:
 *  TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG (NULL, rank out of range). */
TR_EXPORT tr_status_t tr_rank_info(int rank, tr_rank_info_t *info_p);

/** One configuration value in force, and where it came from. */
typedef struct tr_config_item {
    const char *name;        /* "TASKRAY_NUM_EXECUTORS" */
    char        value[128];
    const char *source;      /* "environment", "default", "topology", "tr_init_params" */
} tr_config_item_t;

/**
 * The configuration this rank runs with: up to @max items into @items.
 * Returns the number of items there are (call with @max 0 to count), or -1
 * before tr_init() or with @items NULL and @max > 0.
 */
TR_EXPORT int tr_config_list(tr_config_item_t *items, int max);

/* ---------------------------------------------------------- object store */

/**
 * This rank's object store (see taskray(7)): its share of the node's cap,
 * what it holds, and what it has done.  Counters are since tr_init().
 */
typedef struct tr_object_store_stats {
    uint64_t capacity_bytes;   /* this rank's share of TASKRAY_OBJECT_STORE_BYTES */
    uint64_t used_bytes;       /* bytes allocated in shared memory now */
    uint64_t pinned_bytes;     /* of which pinned (views, running tasks) */
    uint64_t num_objects;      /* objects with a copy here, in memory or spilled */
    uint64_t num_primary;      /* copies made here (puts, task results) */
    uint64_t num_secondary;    /* copies fetched from another node */
    uint64_t spilled_objects;  /* on disk now */
    uint64_t spilled_bytes;    /* on disk now */
    uint64_t spills;           /* objects written to disk */
    uint64_t spill_bytes_total;
    uint64_t restores;         /* objects read back from disk */
    uint64_t restore_bytes_total;
    uint64_t evictions;        /* secondary copies dropped to make room */
    uint64_t fetches;          /* objects pulled from another node */
    uint64_t fetch_bytes_total;
    uint64_t owned_objects;    /* objects this rank owns (metadata, any size) */
    uint64_t borrowed_objects; /* objects owned elsewhere that this rank holds refs to */
    uint64_t lineage_bytes;    /* task specs kept to rebuild objects (TASKRAY_MAX_LINEAGE_BYTES) */
    uint64_t reserved[8];
} tr_object_store_stats_t;

/** Fill @stats_p.  Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG. */
TR_EXPORT tr_status_t tr_object_store_stats(tr_object_store_stats_t *stats_p);

/* ------------------------------------------------------------- failures */

/**
 * 1 while @rank is part of the job, 0 once this rank has learned that it
 * died (UCX reported the peer lost, or it missed TASKRAY_HEARTBEAT_MS
 * heartbeats, or another rank said so); a dead rank never comes back.
 * -1 before tr_init() or for a rank out of range.
 */
TR_EXPORT int tr_rank_alive(int rank);

/** What this rank has seen and done about failures since tr_init(). */
typedef struct tr_failure_stats {
    uint64_t ranks_died;        /* deaths this rank learned of */
    uint64_t tasks_retried;     /* owned tasks re-executed after their rank died */
    uint64_t objects_rebuilt;   /* owned objects re-made from lineage */
    uint64_t actors_restarted;  /* owned actors restarted on another rank */
    uint64_t calls_retried;     /* actor calls re-sent to a restarted actor */
    double   detected_at;       /* the last death: when this rank learned of it, in seconds
                                   of CLOCK_REALTIME (compare with the time of the kill) */
    uint64_t reserved[8];
} tr_failure_stats_t;

/** Fill @stats_p.  Errors: TR_ERR_NOT_INITIALIZED, TR_ERR_INVALID_ARG. */
TR_EXPORT tr_status_t tr_failure_stats(tr_failure_stats_t *stats_p);

#ifdef __cplusplus
}
#endif
#endif /* TASKRAY_H */
