/*
 * Object store, issue-2 scope: a per-rank shared-memory arena that ranks of
 * the same node map read-only (zero-copy gets), a first-fit allocator over
 * it, and blobs: reference-counted immutable values, on the heap (small,
 * inline values) or in the arena (large ones).
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

#endif
