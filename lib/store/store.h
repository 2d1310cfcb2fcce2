/*
 * Object store: a per-rank shared-memory arena that ranks of the same node
 * map read-only (zero-copy gets), a first-fit allocator over it, blobs
 * (reference-counted immutable values, on the heap for small inline values
 * or in the arena for large ones), and the table of objects this rank holds
 * a copy of, with eviction and spilling when the arena is full.
 */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <taskray.h>
#include <pthread.h>
#include <stdatomic.h>
#include "base/hmap.h"

#define TR__ARENA_ALIGN 64

typedef struct tr__free_block {
    struct tr__free_block *next;
    uint64_t off, size;
} tr__free_block_t;

typedef struct tr__arena {
    void             *base;
    size_t            size;
    char              name[96];   /* shm_open name, or a file path */
    int               is_file;    /* 1: a file under TMPDIR, not /dev/shm */
    pthread_mutex_t   lock;
    tr__free_block_t *free_list;  /* sorted by offset, coalesced */
    tr__hmap_t        allocated;  /* offset -> size (as uintptr) */
    size_t            used;
} tr__arena_t;

tr_status_t tr__arena_create(tr__arena_t *a, uint64_t job_id, int rank, size_t size);
void        tr__arena_destroy(tr__arena_t *a);
/* 0 and the offset, or -1 when no block is large enough. */
int         tr__arena_alloc(tr__arena_t *a, size_t size, uint64_t *off_p);
/* 0, or -1 when @off is not the start of an allocated block (bad peer input). */
int         tr__arena_free(tr__arena_t *a, uint64_t off);
/* Map another rank's arena read-only; NULL on failure (logged). */
void       *tr__arena_map_peer(uint64_t job_id, int rank, size_t size);
void        tr__arena_unmap_peer(void *base, size_t size);
void        tr__arena_name(char *buf, size_t len, uint64_t job_id, int rank);

/* ------------------------------------------------ owners and leftovers
 * (lib/store/reap.c) */
/* Create and flock this rank's owner lock (/dev/shm/taskray-<job>-<rank>.lock),
 * its path in @path: the fd, or -1 (logged; the job runs without). */
int  tr__owner_lock(uint64_t job_id, int rank, char *path, size_t len);
/* Unlink the lock file, then drop the lock (fd -1: nothing). */
void tr__owner_unlock(int fd, const char *path);
void tr__owner_lock_name(char *buf, size_t len, uint64_t job_id, int rank);
/* "<host> <boot id> <pid> <start time>\n" of this process. */
void tr__owner_line(char *buf, size_t len);
/* Remove what dead jobs of this user left in /dev/shm and under
 * @spill_base (NULL: TMPDIR or /tmp), never job @my_job's; the number of
 * dead ranks cleaned up (each logged at info level). */
int  tr__leftovers_reap(const char *spill_base, uint64_t my_job);

/* ---------------------------------------------------------------- blobs */
typedef enum { TR__BLOB_HEAP = 1, TR__BLOB_ARENA = 2, TR__BLOB_EXT = 3 } tr__blob_kind_t;

typedef struct tr__blob tr__blob_t;
typedef void (*tr__blob_release_fn)(tr__blob_t *b);

struct tr__blob {
    _Atomic int         refcnt;
    uint8_t             kind;
    size_t              size;
    void               *data;
    uint64_t            off;      /* ARENA: offset in arena */
    tr__arena_t        *arena;    /* ARENA */
    tr__blob_release_fn release;  /* EXT: called at the last unref */
    void               *arg;      /* EXT: for release */
};

tr__blob_t *tr__blob_heap(size_t size);                      /* data uninitialized */
tr__blob_t *tr__blob_arena(tr__arena_t *a, size_t size);     /* NULL when the arena is full */
tr__blob_t *tr__blob_ext(const void *data, size_t size, tr__blob_release_fn rel, void *arg);
static inline void tr__blob_ref(tr__blob_t *b) { atomic_fetch_add_explicit(&b->refcnt, 1, memory_order_relaxed); }
void        tr__blob_unref(tr__blob_t *b);

/* --------------------------------------------------------- stored objects */
#include "store/spill.h"

/*
 * One copy of an object in this rank's store, keyed by object id.  The
 * store holds one reference on the blob; anyone else holding one pins it
 * (a view, a running task, a remote reader's pin).  Only unpinned copies are
 * evicted (secondary) or spilled (primary).  An arena blob of a stored
 * object is reachable only through this table, so a new pin is always taken
 * under the store lock and "refcnt == 1" under it means unpinned.
 */
typedef struct tr__sobj {
    uint64_t    id;
    int         owner;
    uint8_t     primary;   /* made here (put, task result); else fetched */
    uint8_t     spilled;   /* bytes on disk, blob NULL */
    uint8_t     corrupt;   /* the spill file failed its check */
    tr__blob_t *blob;
    size_t      size;
    int         rpins;     /* remote readers' pins, each holds a blob ref */
    uint64_t    last_use;
} tr__sobj_t;

typedef void (*tr__store_evict_fn)(void *arg, uint64_t id, int owner);

typedef struct tr__store {
    tr__arena_t        arena;
    pthread_mutex_t    lock;          /* after rt->lock; before the arena lock */
    tr__hmap_t         objs;          /* id -> tr__sobj_t */
    tr__hmap_t         zombies;       /* freed objects still pinned by readers of the node */
    tr__spill_t        spill;
    int                spill_ready;   /* spill dir created (lazily, at the first spill) */
    int                spill_encrypt;
    char              *spill_base;    /* TASKRAY_SPILL_DIR or NULL */
    uint64_t           job_id;
    int                rank;
    int                lock_fd;       /* the owner lock (tr__owner_lock), -1 without */
    char               lock_path[128];
    uint64_t           clock;
    tr__store_evict_fn evicted;       /* called without the lock for dropped secondary copies */
    void              *evicted_arg;
    /* counters (under lock) */
    uint64_t nprimary, nsecondary, spilled_objects, spilled_bytes;
    uint64_t spills, spill_bytes, restores, restore_bytes, evictions, fetches, fetch_bytes;
} tr__store_t;

tr_status_t tr__store_init(tr__store_t *s, uint64_t job_id, int rank, size_t size,
                           const char *spill_base, int spill_encrypt);
/* Remove what dead rank @rank of this job left on this host: its shared
 * memory arena and its spill directory (idempotent; nothing when absent). */
void        tr__store_reap(tr__store_t *s, int rank);
void        tr__store_destroy(tr__store_t *s);
/* This rank is leaving at once: unlink its arena and spill files only. */
void        tr__store_abandon(tr__store_t *s);
/* An arena blob of @size bytes, making room by evicting and spilling.
 * NULL with TR_ERR_OUT_OF_MEMORY (all pinned) or TR_ERR_OBJECT_TOO_LARGE. */
tr__blob_t *tr__store_alloc(tr__store_t *s, size_t size, tr_status_t *st_p);
/* Record a copy; the store takes its own reference on @b.  Replaces an
 * older copy of the same id. */
tr_status_t tr__store_insert(tr__store_t *s, uint64_t id, int owner, int primary, tr__blob_t *b);
/* Pin the copy of @id, restoring it from disk when spilled: a new blob
 * reference in *@b_p.  TR_ERR_OBJECT_LOST when not here, TR_ERR_OBJECT_CORRUPT. */
tr_status_t tr__store_pin(tr__store_t *s, uint64_t id, tr__blob_t **b_p);
/* Pin for a remote reader of the node: the arena offset and size. */
tr_status_t tr__store_rpin(tr__store_t *s, uint64_t id, uint64_t *off_p, uint64_t *size_p);
/* Drop a remote pin; -1 when there was none (bad peer input). */
int         tr__store_runpin(tr__store_t *s, uint64_t id);
int         tr__store_has(tr__store_t *s, uint64_t id);
/* Drop the copy of @id (its object was freed); the memory returns once
 * unpinned, the spill file is removed now.  -1 when not here, or when
 * @owner >= 0 is not the object's owner (bad peer input). */
int         tr__store_remove(tr__store_t *s, uint64_t id, int owner);
void        tr__store_count_fetch(tr__store_t *s, size_t bytes);
void        tr__store_stats(tr__store_t *s, tr_object_store_stats_t *st);

#endif
