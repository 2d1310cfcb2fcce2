/*
 * The table of objects this rank holds a copy of, and what happens when the
 * arena is full: unpinned secondary copies (fetched from another node) are
 * evicted first, least recently used first; then unpinned primary copies are
 * spilled to disk (lib/store/spill.c) and restored when someone pins them.
 * Only when every copy is pinned does an allocation fail.
 */
#include "store/store.h"
#include <sys/mman.h>
#include "base/base.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

tr_status_t tr__store_init(tr__store_t *s, uint64_t job_id, int rank, size_t size,
                           const char *spill_base, int spill_encrypt)
{
    memset(s, 0, sizeof(*s));
    /* the lock before the arena, and gone after it: a reaper never takes
     * the arena of a live rank for a dead one's */
    s->lock_fd = tr__owner_lock(job_id, rank, s->lock_path, sizeof(s->lock_path));
    tr_status_t st = tr__arena_create(&s->arena, job_id, rank, size);
    if (st != TR_OK) { tr__owner_unlock(s->lock_fd, s->lock_path); s->lock_fd = -1; return st; }
    pthread_mutex_init(&s->lock, NULL);
    if (tr__hmap_init(&s->objs, 256) != 0 || tr__hmap_init(&s->zombies, 16) != 0) {
        tr__arena_destroy(&s->arena);
        tr__owner_unlock(s->lock_fd, s->lock_path);
        s->lock_fd = -1;
        return TR_ERR_NO_MEMORY;
    }
    s->job_id = job_id;
    s->rank = rank;
    s->spill_encrypt = spill_encrypt;
    s->spill_base = spill_base ? strdup(spill_base) : NULL;
    return TR_OK;
}

static void sobj_free(tr__store_t *s, tr__sobj_t *o)
{
    if (o->blob) tr__blob_unref(o->blob);
    if (o->spilled) {
        tr__spill_remove(&s->spill, o->id);
        s->spilled_objects--;
        s->spilled_bytes -= o->size;
    }
    if (o->primary) s->nprimary--; else s->nsecondary--;
    free(o);
}

void tr__store_reap(tr__store_t *s, int rank)
{
    char name[sizeof(s->arena.name)];
    tr__arena_name(name, sizeof(name), s->job_id, rank);
    if (shm_unlink(name) == 0) tr__debug("removed %s, left by dead rank %d", name, rank);
    tr__spill_reap(s->spill_base, s->job_id, rank);
    tr__owner_lock_name(name, sizeof(name), s->job_id, rank);
    unlink(name);   /* a rank only hung keeps its lock on the unlinked file */
}

void tr__store_abandon(tr__store_t *s)
{
    if (s->arena.base) shm_unlink(s->arena.name);
    if (s->spill_ready) tr__spill_close(&s->spill);
    if (s->lock_fd >= 0) unlink(s->lock_path);   /* the lock itself goes with the process */
}

void tr__store_destroy(tr__store_t *s)
{
    if (s->arena.base == NULL) return;
    for (size_t i = 0; s->objs.vals && i <= s->objs.mask; i++)
        if (s->objs.vals[i]) sobj_free(s, s->objs.vals[i]);
    tr__hmap_destroy(&s->objs);
    for (size_t i = 0; s->zombies.vals && i <= s->zombies.mask; i++) {
        tr__sobj_t *z = s->zombies.vals[i];
        if (z == NULL) continue;
        for (; z->rpins > 0; z->rpins--) tr__blob_unref(z->blob);
        free(z);
    }
    tr__hmap_destroy(&s->zombies);
    if (s->spill_ready) tr__spill_close(&s->spill);
    free(s->spill_base);
    pthread_mutex_destroy(&s->lock);
    tr__arena_destroy(&s->arena);
    tr__owner_unlock(s->lock_fd, s->lock_path);
    s->lock_fd = -1;
}

static int unpinned(const tr__sobj_t *o)
{
    return o->blob != NULL && atomic_load(&o->blob->refcnt) == 1;
}

/* The least recently used unpinned in-memory copy of the given kind. */
static tr__sobj_t *victim(tr__store_t *s, int primary)
{
    tr__sobj_t *best = NULL;
    for (size_t i = 0; i <= s->objs.mask; i++) {
        tr__sobj_t *o = s->objs.vals[i];
        if (o == NULL || o->primary != primary || !unpinned(o)) continue;
        if (best == NULL || o->last_use < best->last_use) best = o;
    }
    return best;
}

static tr_status_t spill_one(tr__store_t *s, tr__sobj_t *o)
{
    if (!s->spill_ready) {
        tr_status_t st = tr__spill_open(&s->spill, s->spill_base, s->job_id, s->rank, s->spill_encrypt);
        if (st != TR_OK) return st;
        s->spill_ready = 1;
    }
    tr_status_t st = tr__spill_write(&s->spill, o->id, o->blob->data, o->size);
    if (st != TR_OK) return st;
    tr__blob_unref(o->blob);    /* frees the arena block: nobody else held it */
    o->blob = NULL;
    o->spilled = 1;
    s->spilled_objects++;
    s->spilled_bytes += o->size;
    s->spills++;
    s->spill_bytes += o->size;
    tr__debug("spilled object %016" PRIx64 " (%zu bytes)", o->id, o->size);
    return TR_OK;
}

typedef struct { uint64_t id; int owner; } evicted_t;

/* Allocate with s->lock held; evicted secondary copies are collected in
 * @ev (up to @cap) for the caller to report once unlocked. */
static tr__blob_t *alloc_locked(tr__store_t *s, size_t size, tr_status_t *st_p, evicted_t *ev, int cap, int *nev)
{
    if (size > s->arena.size || TR__ALIGN_UP(size ? size : 1, TR__ARENA_ALIGN) > s->arena.size) {   /* no wrap near SIZE_MAX */
        tr__set_error("a %zu-byte object is larger than this rank's object store (%zu bytes; "
                      "raise TASKRAY_OBJECT_STORE_BYTES)", size, s->arena.size);
        *st_p = TR_ERR_OBJECT_TOO_LARGE;
        return NULL;
    }
    int spill_failed = 0;
    for (;;) {
        tr__blob_t *b = tr__blob_arena(&s->arena, size);
        if (b) return b;
        tr__sobj_t *o = victim(s, 0);
        if (o) {
            tr__hmap_del(&s->objs, o->id);
            if (*nev < cap) { ev[*nev].id = o->id; ev[*nev].owner = o->owner; (*nev)++; }
            s->evictions++;
            tr__debug("evicted the secondary copy of object %016" PRIx64 " (%zu bytes)", o->id, o->size);
            sobj_free(s, o);
            continue;
        }
        if (!spill_failed && (o = victim(s, 1)) != NULL) {
            if (spill_one(s, o) == TR_OK) continue;
            spill_failed = 1;   /* the disk refuses: report out of memory, keep everything */
        }
        tr__set_error("the object store is full: %zu bytes needed, %zu of %zu in use and every object "
                      "is pinned%s", size, s->arena.used, s->arena.size,
                      spill_failed ? " or could not be spilled" : "");
        *st_p = TR_ERR_OUT_OF_MEMORY;
        return NULL;
    }
}

static void report_evicted(tr__store_t *s, evicted_t *ev, int n)
{
    for (int i = 0; i < n && s->evicted; i++) s->evicted(s->evicted_arg, ev[i].id, ev[i].owner);
}

tr__blob_t *tr__store_alloc(tr__store_t *s, size_t size, tr_status_t *st_p)
{
    tr__blob_t *b = tr__blob_arena(&s->arena, size);   /* fast path: room without the table lock */
    if (b) return b;
    evicted_t ev[64];
    int nev = 0;
    pthread_mutex_lock(&s->lock);
    b = alloc_locked(s, size, st_p, ev, 64, &nev);
    pthread_mutex_unlock(&s->lock);
    report_evicted(s, ev, nev);
    return b;
}

tr_status_t tr__store_insert(tr__store_t *s, uint64_t id, int owner, int primary, tr__blob_t *b)
{
    tr__sobj_t *o = calloc(1, sizeof(*o));
    if (o == NULL) return TR_ERR_NO_MEMORY;
    o->id = id;
    o->owner = owner;
    o->primary = (uint8_t)primary;
    o->size = b->size;
    o->blob = b;
    tr__blob_ref(b);
    pthread_mutex_lock(&s->lock);
    o->last_use = ++s->clock;
    tr__sobj_t *old = tr__hmap_get(&s->objs, id);
    if (old) { tr__hmap_del(&s->objs, id); sobj_free(s, old); }
    if (tr__hmap_put(&s->objs, id, o) < 0) {
        pthread_mutex_unlock(&s->lock);
        tr__blob_unref(b);
        free(o);
        return TR_ERR_NO_MEMORY;
    }
    if (primary) s->nprimary++; else s->nsecondary++;
    pthread_mutex_unlock(&s->lock);
    return TR_OK;
}

/* With s->lock held: make @o resident. */
static tr_status_t restore_locked(tr__store_t *s, tr__sobj_t *o, evicted_t *ev, int cap, int *nev)
{
    if (o->corrupt) {
        tr__set_error("object %016" PRIx64 " was spilled to disk and its file failed its check", o->id);
        return TR_ERR_OBJECT_CORRUPT;
    }
    if (!o->spilled) return TR_OK;
    tr_status_t st;
    tr__blob_t *b = alloc_locked(s, o->size, &st, ev, cap, nev);
    if (b == NULL) return st;
    st = tr__spill_read(&s->spill, o->id, b->data, o->size);
    if (st != TR_OK) {
        tr__blob_unref(b);
        if (st == TR_ERR_OBJECT_CORRUPT || st == TR_ERR_OBJECT_LOST) {
            char why[512];
            snprintf(why, sizeof(why), "%s", tr_last_error());
            tr__error("restoring object %016" PRIx64 " from disk failed: %s", o->id, why);
            o->corrupt = 1;
            tr__set_error("object %016" PRIx64 " could not be restored from disk: %s", o->id, why);
            return TR_ERR_OBJECT_CORRUPT;
        }
        return st;
    }
    tr__spill_remove(&s->spill, o->id);
    o->blob = b;
    o->spilled = 0;
    s->spilled_objects--;
    s->spilled_bytes -= o->size;
    s->restores++;
    s->restore_bytes += o->size;
    return TR_OK;
}

/* Pin the copy of @id (restored if spilled): a blob reference in *@b_p;
 * @remote also counts it as a same-node reader's pin. */
static tr_status_t pin(tr__store_t *s, uint64_t id, int remote, tr__blob_t **b_p)
{
    evicted_t ev[64];
    int nev = 0;
    tr_status_t st;
    pthread_mutex_lock(&s->lock);
    tr__sobj_t *o = tr__hmap_get(&s->objs, id);
    if (o == NULL) st = TR_ERR_OBJECT_LOST;
    else if ((st = restore_locked(s, o, ev, 64, &nev)) == TR_OK) {
        o->last_use = ++s->clock;
        tr__blob_ref(o->blob);
        o->rpins += remote;
        *b_p = o->blob;
    }
    pthread_mutex_unlock(&s->lock);
    report_evicted(s, ev, nev);
    return st;
}

tr_status_t tr__store_pin(tr__store_t *s, uint64_t id, tr__blob_t **b_p) { return pin(s, id, 0, b_p); }

tr_status_t tr__store_rpin(tr__store_t *s, uint64_t id, uint64_t *off_p, uint64_t *size_p)
{
    tr__blob_t *b;
    tr_status_t st = pin(s, id, 1, &b);
    if (st == TR_OK) {
        *off_p = b->off;     /* the pin's reference keeps b alive */
        *size_p = b->size;
    }
    return st;
}

int tr__store_runpin(tr__store_t *s, uint64_t id)
{
    pthread_mutex_lock(&s->lock);
    tr__sobj_t *o = tr__hmap_get(&s->objs, id);
    tr__blob_t *b = NULL;
    if (o && o->rpins > 0 && o->blob) {
        o->rpins--;
        b = o->blob;
    } else if ((o = tr__hmap_get(&s->zombies, id)) != NULL) {
        b = o->blob;
        if (--o->rpins == 0) { tr__hmap_del(&s->zombies, id); free(o); }
    }
    pthread_mutex_unlock(&s->lock);
    if (b == NULL) return -1;
    tr__blob_unref(b);
    return 0;
}

int tr__store_has(tr__store_t *s, uint64_t id)
{
    pthread_mutex_lock(&s->lock);
    int has = tr__hmap_get(&s->objs, id) != NULL;
    pthread_mutex_unlock(&s->lock);
    return has;
}

int tr__store_remove(tr__store_t *s, uint64_t id, int owner)
{
    pthread_mutex_lock(&s->lock);
    tr__sobj_t *o = tr__hmap_get(&s->objs, id);
    if (o && owner >= 0 && o->owner != owner) o = NULL;
    if (o) tr__hmap_del(&s->objs, id);
    if (o && o->rpins > 0) {
        /* readers on this node still map the bytes: they stay until the
         * last UNPIN, in the zombie table, out of the counts */
        tr__blob_t *b = o->blob;
        int rpins = o->rpins;
        o->blob = NULL;
        o->rpins = 0;
        sobj_free(s, o);
        tr__sobj_t *z = tr__hmap_get(&s->zombies, id);
        if (z == NULL && (z = calloc(1, sizeof(*z))) != NULL) {
            z->id = id;
            z->blob = b;
            if (tr__hmap_put(&s->zombies, id, z) < 0) { free(z); z = NULL; }
        }   /* the zombie holds no reference of its own: the pins' keep the bytes */
        if (z) z->rpins += rpins;
        else tr__warn("out of memory keeping a pinned object; %d pins leak", rpins);
        tr__blob_unref(b);          /* the store's own reference */
    } else if (o) {
        sobj_free(s, o);
    }
    pthread_mutex_unlock(&s->lock);
    return o ? 0 : -1;
}

void tr__store_count_fetch(tr__store_t *s, size_t bytes)
{
    pthread_mutex_lock(&s->lock);
    s->fetches++;
    s->fetch_bytes += bytes;
    pthread_mutex_unlock(&s->lock);
}

void tr__store_stats(tr__store_t *s, tr_object_store_stats_t *st)
{
    pthread_mutex_lock(&s->lock);
    uint64_t pinned = 0;
    for (size_t i = 0; i <= s->objs.mask; i++) {
        tr__sobj_t *o = s->objs.vals[i];
        if (o && o->blob && atomic_load(&o->blob->refcnt) > 1) pinned += o->size;
    }
    st->pinned_bytes = pinned;
    st->num_objects = s->objs.count;
    st->num_primary = s->nprimary;
    st->num_secondary = s->nsecondary;
    st->spilled_objects = s->spilled_objects;
    st->spilled_bytes = s->spilled_bytes;
    st->spills = s->spills;
    st->spill_bytes_total = s->spill_bytes;
    st->restores = s->restores;
    st->restore_bytes_total = s->restore_bytes;
    st->evictions = s->evictions;
    st->fetches = s->fetches;
    st->fetch_bytes_total = s->fetch_bytes;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&s->arena.lock);
    st->capacity_bytes = s->arena.size;
    st->used_bytes = s->arena.used;
    pthread_mutex_unlock(&s->arena.lock);
}
