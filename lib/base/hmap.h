/*
 * Open-addressing hash map from uint64_t keys to pointers (linear probing,
 * backward-shift deletion, no tombstones).  Not thread-safe: the owner
 * serializes access.
 */
#ifndef TR_HMAP_H
#define TR_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr__hmap {
    uint64_t *keys;
    void    **vals;   /* NULL marks an empty slot: values are never NULL */
    size_t    mask;   /* capacity - 1, capacity a power of two */
    size_t    count;
} tr__hmap_t;

int   tr__hmap_init(tr__hmap_t *m, size_t capacity_hint);   /* 0 or -1 (ENOMEM) */
void  tr__hmap_destroy(tr__hmap_t *m);
void *tr__hmap_get(const tr__hmap_t *m, uint64_t key);
int   tr__hmap_put(tr__hmap_t *m, uint64_t key, void *val);  /* 0, 1 if it existed, -1 ENOMEM */
void *tr__hmap_del(tr__hmap_t *m, uint64_t key);             /* the removed value or NULL */

/* Iterate: for (size_t i = 0; i <= m->mask; i++) if (m->vals[i]) ... */
#endif
