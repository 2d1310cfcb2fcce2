#include "base/hmap.h"
#include "base/base.h"

static inline size_t slot_of(const tr__hmap_t *m, uint64_t key)
{
    return (size_t)tr__mix64(key) & m->mask;
}

int tr__hmap_init(tr__hmap_t *m, size_t hint)
{
    size_t cap = 16;
    while (cap < hint * 2) cap <<= 1;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = calloc(cap, sizeof(*m->vals));
    if (m->keys == NULL || m->vals == NULL) {
        free(m->keys); free(m->vals);
        m->keys = NULL; m->vals = NULL;
        return -1;
    }
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

void tr__hmap_destroy(tr__hmap_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL; m->vals = NULL; m->count = 0; m->mask = 0;
}

void *tr__hmap_get(const tr__hmap_t *m, uint64_t key)
{
    if (m->vals == NULL) return NULL;
    for (size_t i = slot_of(m, key);; i = (i + 1) & m->mask) {
        if (m->vals[i] == NULL) return NULL;
        if (m->keys[i] == key) return m->vals[i];
    }
}

static int grow(tr__hmap_t *m)
{
    tr__hmap_t n;
    if (tr__hmap_init(&n, (m->mask + 1)) != 0) return -1;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->vals[i] != NULL) tr__hmap_put(&n, m->keys[i], m->vals[i]);
    tr__hmap_destroy(m);
    *m = n;
    return 0;
}

int tr__hmap_put(tr__hmap_t *m, uint64_t key, void *val)
{
    if (m->vals == NULL && tr__hmap_init(m, 8) != 0) return -1;
    if ((m->count + 1) * 4 > (m->mask + 1) * 3 && grow(m) != 0) return -1;
    for (size_t i = slot_of(m, key);; i = (i + 1) & m->mask) {
        if (m->vals[i] == NULL) {
            m->keys[i] = key; m->vals[i] = val; m->count++;
            return 0;
        }
        if (m->keys[i] == key) { m->vals[i] = val; return 1; }
    }
}

void *tr__hmap_del(tr__hmap_t *m, uint64_t key)
{
    if (m->vals == NULL) return NULL;
    size_t i = slot_of(m, key);
    for (;; i = (i + 1) & m->mask) {
        if (m->vals[i] == NULL) return NULL;
        if (m->keys[i] == key) break;
    }
    void *old = m->vals[i];
    /* backward-shift: move later entries of the cluster into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->vals[j] != NULL; j = (j + 1) & m->mask) {
        size_t home = slot_of(m, m->keys[j]);
        /* can j's entry move to hole?  yes if home is not in (hole, j] cyclically */
        bool between = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->keys[hole] = m->keys[j]; m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->vals[hole] = NULL;
    m->count--;
    return old;
}
