/*
 * The per-rank shared-memory arena and its allocator.  The segment is
 * /dev/shm/taskray-<job>-<rank> (0600); other ranks of the node map it
 * read-only.  It is sparse: pages cost memory only once written.
 */
#include "store/store.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void tr__arena_name(char *buf, size_t len, uint64_t job_id, int rank)
{
    snprintf(buf, len, "/taskray-%016" PRIx64 "-%d", job_id, rank);
}

tr_status_t tr__arena_create(tr__arena_t *a, uint64_t job_id, int rank, size_t size)
{
    memset(a, 0, sizeof(*a));
    size = TR__ALIGN_UP(size, 4096);
    tr__arena_name(a->name, sizeof(a->name), job_id, rank);
    int fd = shm_open(a->name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        tr__error("shm_open(%s) failed: %m", a->name);
        return TR_ERR_SYSTEM;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        tr__error("ftruncate(%s, %zu) failed: %m", a->name, size);
        goto err_unlink;
    }
    a->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a->base == MAP_FAILED) {
        tr__error("mmap of the %zu-byte arena %s failed: %m", size, a->name);
        a->base = NULL;
        goto err_unlink;
    }
    close(fd);
    a->size = size;
    pthread_mutex_init(&a->lock, NULL);
    a->free_list = malloc(sizeof(*a->free_list));
    if (a->free_list == NULL || tr__hmap_init(&a->allocated, 64) != 0) {
        free(a->free_list);
        munmap(a->base, size);
        shm_unlink(a->name);
        return TR_ERR_NO_MEMORY;
    }
    a->free_list->next = NULL;
    a->free_list->off = 0;
    a->free_list->size = size;
    return TR_OK;
err_unlink:
    close(fd);
    shm_unlink(a->name);
    return TR_ERR_SYSTEM;
}

void tr__arena_destroy(tr__arena_t *a)
{
    if (a->base == NULL) return;
    munmap(a->base, a->size);
    shm_unlink(a->name);
    for (tr__free_block_t *b = a->free_list, *n; b; b = n) { n = b->next; free(b); }
    tr__hmap_destroy(&a->allocated);
    pthread_mutex_destroy(&a->lock);
    a->base = NULL;
}

int tr__arena_alloc(tr__arena_t *a, size_t size, uint64_t *off_p)
{
    if (size > a->size) return -1;   /* also keeps the rounding below from wrapping */
    uint64_t need = TR__ALIGN_UP(size ? size : 1, TR__ARENA_ALIGN);
    pthread_mutex_lock(&a->lock);
    tr__free_block_t **pp = &a->free_list, *b;
    for (; (b = *pp) != NULL; pp = &b->next)
        if (b->size >= need) break;
    if (b == NULL) { pthread_mutex_unlock(&a->lock); return -1; }
    uint64_t off = b->off;
    if (tr__hmap_put(&a->allocated, off, (void *)(uintptr_t)need) < 0) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    if (b->size == need) { *pp = b->next; free(b); }
    else { b->off += need; b->size -= need; }
    a->used += need;
    pthread_mutex_unlock(&a->lock);
    *off_p = off;
    return 0;
}

int tr__arena_free(tr__arena_t *a, uint64_t off)
{
    pthread_mutex_lock(&a->lock);
    void *v = tr__hmap_del(&a->allocated, off);
    if (v == NULL) { pthread_mutex_unlock(&a->lock); return -1; }
    uint64_t size = (uint64_t)(uintptr_t)v;
    a->used -= size;
    tr__free_block_t **pp = &a->free_list, *prev = NULL, *b;
    for (; (b = *pp) != NULL && b->off < off; pp = &b->next) prev = b;
    if (prev && prev->off + prev->size == off) {          /* merge with previous */
        prev->size += size;
        if (b && prev->off + prev->size == b->off) { prev->size += b->size; prev->next = b->next; free(b); }
    } else if (b && off + size == b->off) {                /* merge with next */
        b->off = off; b->size += size;
    } else {
        tr__free_block_t *n = malloc(sizeof(*n));
        if (n == NULL) {
            /* keep the space accounted as used rather than corrupt the list */
            a->used += size;
            pthread_mutex_unlock(&a->lock);
            tr__warn("out of memory while freeing arena block; %" PRIu64 " bytes leak", size);
            return 0;
        }
        n->off = off; n->size = size; n->next = b; *pp = n;
    }
    pthread_mutex_unlock(&a->lock);
    return 0;
}

void *tr__arena_map_peer(uint64_t job_id, int rank, size_t size)
{
    char name[96];
    tr__arena_name(name, sizeof(name), job_id, rank);
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) {
        tr__error("shm_open(%s) of rank %d's arena failed: %m", name, rank);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        tr__error("mmap of rank %d's arena failed: %m", rank);
        return NULL;
    }
    return p;
}

void tr__arena_unmap_peer(void *base, size_t size) { if (base) munmap(base, size); }

/* ---------------------------------------------------------------- blobs */

tr__blob_t *tr__blob_heap(size_t size)
{
    if (size > (size_t)PTRDIFF_MAX - sizeof(tr__blob_t)) return NULL;   /* no such block; the sum could wrap */
    tr__blob_t *b = malloc(sizeof(*b) + size);
    if (b == NULL) return NULL;
    atomic_init(&b->refcnt, 1);
    b->kind = TR__BLOB_HEAP;
    b->size = size;
    b->data = b + 1;
    return b;
}

tr__blob_t *tr__blob_arena(tr__arena_t *a, size_t size)
{
    uint64_t off;
    tr__blob_t *b = malloc(sizeof(*b));
    if (b == NULL) return NULL;
    if (tr__arena_alloc(a, size, &off) != 0) { free(b); return NULL; }
    atomic_init(&b->refcnt, 1);
    b->kind = TR__BLOB_ARENA;
    b->size = size;
    b->off = off;
    b->arena = a;
    b->data = (char *)a->base + off;
    return b;
}

tr__blob_t *tr__blob_ext(const void *data, size_t size, tr__blob_release_fn rel, void *arg)
{
    tr__blob_t *b = malloc(sizeof(*b));
    if (b == NULL) return NULL;
    atomic_init(&b->refcnt, 1);
    b->kind = TR__BLOB_EXT;
    b->size = size;
    b->data = (void *)data;
    b->release = rel;
    b->arg = arg;
    return b;
}

void tr__blob_unref(tr__blob_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refcnt, 1, memory_order_acq_rel) != 1) return;
    switch (b->kind) {
    case TR__BLOB_ARENA:
        tr__arena_free(b->arena, b->off);
        break;
    case TR__BLOB_EXT:
        if (b->release) b->release(b);
        break;
    default:
        break;
    }
    free(b);
}
