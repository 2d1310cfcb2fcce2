/*
 * Remote-function registry.  Functions are registered by name before
 * tr_init() (TR_REMOTE does it at load time); ids are hashes of names, so
 * every rank derives the same ids, and tr_init() compares a digest of the
 * tables to refuse mismatched binaries.  Read-only while the runtime runs.
 */
#include "core/core.h"

#include <pthread.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tr__hmap_t by_id, by_ptr;
static int nfns, frozen;

const tr__fn_t *tr__fn_by_id(uint64_t id) { return tr__hmap_get(&by_id, id); }

const tr__fn_t *tr__fn_by_ptr(tr_remote_fn_t fn)
{
    return tr__hmap_get(&by_ptr, (uint64_t)(uintptr_t)fn);
}

int tr__fn_count(void) { return nfns; }

void tr__fn_freeze(int f)
{
    pthread_mutex_lock(&reg_lock);
    frozen = f;
    pthread_mutex_unlock(&reg_lock);
}

uint64_t tr__fn_digest(void)
{
    /* order-independent: a sum of mixed ids, plus the count */
    uint64_t d = tr__mix64((uint64_t)nfns);
    for (size_t i = 0; by_id.vals && i <= by_id.mask; i++)
        if (by_id.vals[i]) d += tr__mix64(by_id.keys[i] ^ 0x7461736b726179ull);
    return d;
}

tr_status_t tr_function_register(const char *name, tr_remote_fn_t fn)
{
    if (name == NULL || fn == NULL || *name == '\0' || strlen(name) > 255) return TR_ERR_INVALID_ARG;
    uint64_t id = tr__hash_str(name);
    tr_status_t st = TR_OK;
    pthread_mutex_lock(&reg_lock);
    if (frozen) { st = TR_ERR_WRONG_MODE; goto out; }
    if (tr__hmap_get(&by_id, id) || tr__hmap_get(&by_ptr, (uint64_t)(uintptr_t)fn)) {
        st = TR_ERR_EXISTS;
        goto out;
    }
    tr__fn_t *f = malloc(sizeof(*f));
    char *n = strdup(name);
    if (f == NULL || n == NULL) { free(f); free(n); st = TR_ERR_NO_MEMORY; goto out; }
    f->id = id; f->name = n; f->fn = fn;
    if (tr__hmap_put(&by_id, id, f) < 0) { free(f); free(n); st = TR_ERR_NO_MEMORY; goto out; }
    if (tr__hmap_put(&by_ptr, (uint64_t)(uintptr_t)fn, f) < 0) {
        tr__hmap_del(&by_id, id); free(f); free(n); st = TR_ERR_NO_MEMORY; goto out;
    }
    nfns++;
out:
    pthread_mutex_unlock(&reg_lock);
    return st;
}
