/*
 * Remote-function registry.  Functions are registered by name before
 * tr_init() (TR_REMOTE does it at load time); ids are hashes of names, so
 * every rank derives the same ids, and tr_init() compares a digest of the
 * tables to refuse mismatched binaries.  Read-only while the runtime runs.
 */
#include "core/core.h"

#include <pthread.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tr__hmap_t by_id, by_ptr, classes, method_names;   /* method id -> a class's name for it */
static int nfns, nclasses, frozen;

const tr__fn_t *tr__fn_by_id(uint64_t id) { return tr__hmap_get(&by_id, id); }

const tr__fn_t *tr__fn_by_ptr(tr_remote_fn_t fn)
{
    return tr__hmap_get(&by_ptr, (uint64_t)(uintptr_t)fn);
}

int tr__fn_count(void) { return nfns + nclasses; }

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
    for (size_t i = 0; classes.vals && i <= classes.mask; i++) {
        const tr__class_t *c = classes.vals[i];
        if (c == NULL) continue;
        d += tr__mix64(c->id ^ 0x6163746f72ull);
        for (int m = 0; m < c->nmethods; m++) d += tr__mix64(c->methods[m].id ^ (uint64_t)m);
    }
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

/* ---------------------------------------------------------- actor classes */

uint64_t tr__method_id(const char *name) { return tr__hash2(0x6d6574686f64ull, tr__hash_str(name)); }

const tr__class_t *tr__class_by_id(uint64_t id) { return tr__hmap_get(&classes, id); }

/* The name of a method some class registered under @method_id, or NULL
 * (read on every actor call: a table, filled at registration). */
const char *tr__method_name(uint64_t method_id) { return tr__hmap_get(&method_names, method_id); }

const tr__class_t *tr__class_by_name(const char *name)
{
    return name ? tr__hmap_get(&classes, tr__hash2(0x636c617373ull, tr__hash_str(name))) : NULL;
}

const tr__method_t *tr__class_method(const tr__class_t *c, uint64_t method_id)
{
    for (int i = 0; i < c->nmethods; i++)
        if (c->methods[i].id == method_id) return &c->methods[i];
    return NULL;
}

static void class_free(tr__class_t *c)
{
    for (int i = 0; c->methods && i < c->nmethods; i++) free((char *)c->methods[i].name);
    free(c->methods);
    free((char *)c->name);
    free(c);
}

tr_status_t tr_actor_class_register(const tr_actor_class_t *cls)
{
    if (cls == NULL || cls->name == NULL || *cls->name == '\0' || strlen(cls->name) > 255 || cls->init == NULL ||
        cls->num_methods < 0 || (cls->num_methods > 0 && cls->methods == NULL) || (cls->save == NULL) != (cls->restore == NULL))
        return TR_ERR_INVALID_ARG;
    for (int i = 0; i < cls->num_methods; i++) {
        if (cls->methods[i].name == NULL || *cls->methods[i].name == '\0' || cls->methods[i].fn == NULL ||
            strlen(cls->methods[i].name) > 255)
            return TR_ERR_INVALID_ARG;
        for (int j = 0; j < i; j++)
            if (strcmp(cls->methods[i].name, cls->methods[j].name) == 0) return TR_ERR_EXISTS;
    }
    tr__class_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return TR_ERR_NO_MEMORY;
    c->id = tr__hash2(0x636c617373ull, tr__hash_str(cls->name));
    c->name = strdup(cls->name);
    c->init = cls->init; c->fini = cls->fini; c->save = cls->save; c->restore = cls->restore;
    c->nmethods = cls->num_methods;
    c->methods = calloc((size_t)(cls->num_methods ? cls->num_methods : 1), sizeof(*c->methods));
    if (c->name == NULL || c->methods == NULL) { class_free(c); return TR_ERR_NO_MEMORY; }
    for (int i = 0; i < cls->num_methods; i++) {
        c->methods[i].id = tr__method_id(cls->methods[i].name);
        c->methods[i].fn = cls->methods[i].fn;
        if ((c->methods[i].name = strdup(cls->methods[i].name)) == NULL) { class_free(c); return TR_ERR_NO_MEMORY; }
    }
    tr_status_t st = TR_OK;
    pthread_mutex_lock(&reg_lock);
    if (frozen) st = TR_ERR_WRONG_MODE;
    else if (tr__hmap_get(&classes, c->id)) st = TR_ERR_EXISTS;
    else if (tr__hmap_put(&classes, c->id, c) < 0) st = TR_ERR_NO_MEMORY;
    else {
        nclasses++;
        for (int i = 0; i < c->nmethods; i++)
            if (tr__hmap_get(&method_names, c->methods[i].id) == NULL)
                tr__hmap_put(&method_names, c->methods[i].id, (void *)c->methods[i].name);
    }
    pthread_mutex_unlock(&reg_lock);
    if (st != TR_OK) class_free(c);
    return st;
}
