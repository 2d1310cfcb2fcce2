#include "base/handle.h"
#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << 16)

typedef struct {
    _Atomic uint32_t gen;   /* odd: live */
    uint8_t          kind;
    void            *ptr;
    uint32_t         next_free;
} slot_t;

static slot_t *_Atomic chunks[MAX_CHUNKS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t free_head = UINT32_MAX;
static uint32_t nslots;

static inline slot_t *slot_at(uint32_t idx)
{
    slot_t *c = atomic_load_explicit(&chunks[idx >> CHUNK_BITS], memory_order_acquire);
    return c ? &c[idx & (CHUNK_SIZE - 1)] : NULL;
}

uint64_t tr__handle_alloc(tr__handle_kind_t kind, void *ptr)
{
    uint32_t idx;
    pthread_mutex_lock(&lock);
    if (free_head != UINT32_MAX) {
        idx = free_head;
        free_head = slot_at(idx)->next_free;
    } else {
        if (nslots >= (uint64_t)MAX_CHUNKS * CHUNK_SIZE - 1) goto fail;
        if ((nslots & (CHUNK_SIZE - 1)) == 0) {
            slot_t *c = calloc(CHUNK_SIZE, sizeof(slot_t));
            if (c == NULL) goto fail;
            atomic_store_explicit(&chunks[nslots >> CHUNK_BITS], c, memory_order_release);
        }
        idx = nslots++;
    }
    slot_t *s = slot_at(idx);
    s->kind = (uint8_t)kind;
    s->ptr = ptr;
    uint32_t g = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
    if ((g & 1) == 0) g++;
    atomic_store_explicit(&s->gen, g, memory_order_release);
    pthread_mutex_unlock(&lock);
    return ((uint64_t)g << 32) | (uint64_t)(idx + 1);
fail:
    pthread_mutex_unlock(&lock);
    return 0;
}

static slot_t *lookup(uint64_t h, tr__handle_kind_t kind, uint32_t *gen_p)
{
    uint32_t lo = (uint32_t)h, g = (uint32_t)(h >> 32);
    if (lo == 0 || (g & 1) == 0) return NULL;
    uint32_t idx = lo - 1;
    if ((idx >> CHUNK_BITS) >= MAX_CHUNKS) return NULL;
    slot_t *s = slot_at(idx);
    if (s == NULL || atomic_load_explicit(&s->gen, memory_order_acquire) != g || s->kind != kind)
        return NULL;
    *gen_p = g;
    return s;
}

void *tr__handle_get(uint64_t h, tr__handle_kind_t kind)
{
    uint32_t g;
    slot_t *s = lookup(h, kind, &g);
    return s ? s->ptr : NULL;
}

void *tr__handle_free(uint64_t h, tr__handle_kind_t kind)
{
    uint32_t g;
    slot_t *s = lookup(h, kind, &g);
    if (s == NULL) return NULL;
    void *ptr = s->ptr;
    /* only one of two racing frees wins */
    if (!atomic_compare_exchange_strong(&s->gen, &g, g + 1)) return NULL;
    pthread_mutex_lock(&lock);
    s->ptr = NULL;
    s->next_free = free_head;
    free_head = (uint32_t)((uint32_t)h - 1);
    pthread_mutex_unlock(&lock);
    return ptr;
}

void tr__handle_release_all(void (*cb)(tr__handle_kind_t kind, void *ptr))
{
    uint32_t n;
    pthread_mutex_lock(&lock);
    n = nslots;
    pthread_mutex_unlock(&lock);
    for (uint32_t idx = 0; idx < n; idx++) {
        slot_t *s = slot_at(idx);
        uint32_t g = atomic_load(&s->gen);
        if ((g & 1) == 0) continue;
        uint64_t h = ((uint64_t)g << 32) | (uint64_t)(idx + 1);
        tr__handle_kind_t kind = (tr__handle_kind_t)s->kind;
        void *ptr = tr__handle_free(h, kind);
        if (ptr) cb(kind, ptr);
    }
}
