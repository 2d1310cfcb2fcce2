/* Public entry points for objects and futures: argument checks, then the core. */
#include "core/core.h"
#include "comm/wire.h"
#include "base/handle.h"

#include <stdio.h>

#define CHECK_UP()                                                             \
    do {                                                                       \
        if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;       \
    } while (0)

tr_status_t tr_put(const void *data, size_t size, tr_ref_h *ref_p)
{
    CHECK_UP();
    if (ref_p == NULL || (data == NULL && size > 0)) return TR_ERR_INVALID_ARG;
    tr_status_t st;
    tr__blob_t *b = tr__blob_for(size, &st);
    if (b == NULL) return st;
    if (size) memcpy(b->data, data, size);
    return tr__put_blob(b, NULL, 0, ref_p);
}

tr_status_t tr_put_replicated(const void *data, size_t size, int replicas, tr_ref_h *ref_p)
{
    CHECK_UP();
    tr__rt_t *rt = tr__rt;
    if (ref_p == NULL || (data == NULL && size > 0) || replicas < 0 || replicas > TR__MAX_REPLICAS)
        return TR_ERR_INVALID_ARG;
    if (replicas > rt->size - 1) {
        tr__set_error("%d replicas asked for, but the job has only %d other rank%s", replicas, rt->size - 1,
                      rt->size == 2 ? "" : "s");
        return TR_ERR_INVALID_ARG;
    }
    tr_status_t st;
    tr__blob_t *b = tr__blob_for(size, &st);
    if (b == NULL) return st;
    if (size) memcpy(b->data, data, size);
    tr__obj_t *o;
    if ((st = tr__put_obj(b, NULL, 0, &o)) != TR_OK) return st;
    if (o->stored && replicas > 0) {
        /* small values travel inside the state borrowers get: only stored
         * ones need copies elsewhere */
        tr__rpc_t r;
        uint64_t tag = tr__rpc_open(&r, replicas);
        for (int k = 0; k < replicas; k++) {
            int to = tr__replica_rank(o->id, rt->rank, k);
            tr__wbuf_t w;
            tr__wbuf_init(&w, 16);
            tr__wbuf_u64(&w, tag);
            tr__wbuf_u64(&w, o->id);
            tr__rpc_peer(tag, to);
            if (tr__send(to, &w, TR__MSG_REPLICATE) != TR_OK) tr__rpc_reply(tag, -1, TR_ERR_NO_MEMORY, -1, 0, 0, 0);
        }
        if ((st = tr__rpc_wait(&r)) != TR_OK) {
            tr__set_error("a replica of the object could not be made: %s", tr_status_string(st));
            pthread_mutex_lock(&rt->lock);
            tr__obj_unref_locked(o);
            pthread_mutex_unlock(&rt->lock);
            return st;
        }
    }
    if ((st = tr__ref_new(o, ref_p)) != TR_OK) {
        pthread_mutex_lock(&rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&rt->lock);
    }
    return st;
}

tr_status_t tr_put_refs(const void *data, size_t size, const tr_ref_h *refs, size_t nrefs, tr_ref_h *ref_p)
{
    CHECK_UP();
    if (ref_p == NULL || (data == NULL && size > 0) || (refs == NULL && nrefs > 0) || nrefs > INT32_MAX)
        return TR_ERR_INVALID_ARG;
    tr__obj_t **inner = nrefs ? malloc(sizeof(*inner) * nrefs) : NULL;
    if (nrefs && inner == NULL) return TR_ERR_NO_MEMORY;
    for (size_t i = 0; i < nrefs; i++) {
        if ((inner[i] = tr__ref_obj(refs[i])) == NULL) {
            free(inner);
            tr__set_error("ref %zu of the object is released or invalid", i);
            return TR_ERR_REF_RELEASED;
        }
    }
    tr_status_t st;
    tr__blob_t *b = tr__blob_for(size, &st);
    if (b != NULL) {
        if (size) memcpy(b->data, data, size);
        st = tr__put_blob(b, inner, (int)nrefs, ref_p);
    }
    free(inner);
    return st;
}

/* An object being filled in place: its blob, until sealed. */
struct tr_object {
    tr__blob_t *blob;
};

tr_status_t tr_object_create(size_t size, void **data_p, tr_object_h *obj_p)
{
    CHECK_UP();
    if (data_p == NULL || obj_p == NULL) return TR_ERR_INVALID_ARG;
    struct tr_object *o = malloc(sizeof(*o));
    if (o == NULL) return TR_ERR_NO_MEMORY;
    tr_status_t st;
    if ((o->blob = tr__blob_for(size, &st)) == NULL) { free(o); return st; }
    uint64_t h = tr__handle_alloc(TR__HANDLE_OBJECT, o);
    if (h == 0) { tr__blob_unref(o->blob); free(o); return TR_ERR_NO_MEMORY; }
    *data_p = o->blob->data;
    *obj_p = (tr_object_h)(uintptr_t)h;
    return TR_OK;
}

tr_status_t tr_object_seal(tr_object_h obj, tr_ref_h *ref_p)
{
    CHECK_UP();
    if (ref_p == NULL) return TR_ERR_INVALID_ARG;
    struct tr_object *o = tr__handle_free((uint64_t)(uintptr_t)obj, TR__HANDLE_OBJECT);
    if (o == NULL) return TR_ERR_INVALID_ARG;
    tr__blob_t *b = o->blob;
    free(o);
    return tr__put_blob(b, NULL, 0, ref_p);
}

tr_status_t tr_object_abort(tr_object_h obj)
{
    CHECK_UP();
    struct tr_object *o = tr__handle_free((uint64_t)(uintptr_t)obj, TR__HANDLE_OBJECT);
    if (o == NULL) return TR_ERR_INVALID_ARG;
    tr__blob_unref(o->blob);
    free(o);
    return TR_OK;
}

tr_status_t tr_get_buffer(tr_ref_h ref, int64_t timeout_ms, const void **data_p, size_t *size_p, tr_buf_h *buf_p)
{
    CHECK_UP();
    if (data_p == NULL || size_p == NULL || buf_p == NULL) return TR_ERR_INVALID_ARG;
    tr_buf_h b;
    tr_status_t st = tr_get(ref, timeout_ms, &b);
    if (st != TR_OK) return st;
    *data_p = tr_buf_data(b);
    *size_p = tr_buf_size(b);
    *buf_p = b;
    return TR_OK;
}

tr_status_t tr_object_store_stats(tr_object_store_stats_t *stats_p)
{
    CHECK_UP();
    if (stats_p == NULL) return TR_ERR_INVALID_ARG;
    tr__rt_stats(stats_p);
    return TR_OK;
}

tr_status_t tr_put_i64(int64_t value, tr_ref_h *ref_p) { return tr_put(&value, sizeof(value), ref_p); }
tr_status_t tr_put_f64(double value, tr_ref_h *ref_p) { return tr_put(&value, sizeof(value), ref_p); }

/* Is @o a result of the task running on this thread?  Only that task can
 * produce it, so waiting for it there would never end. */
static int own_result(const tr__obj_t *o)
{
    const struct tr_task *t = tr__cur_task;
    if (t == NULL || o->owner != t->owner) return 0;
    for (int i = 0; i < t->nret; i++)
        if (o->id == tr__hash2(t->id, (uint64_t)i + 1)) return 1;
    return 0;
}

static tr_status_t own_result_error(const char *fn)
{
    tr__set_error("%s: a task cannot wait for its own results (only it can produce them)", fn);
    return TR_ERR_WRONG_MODE;
}

tr_status_t tr_get(tr_ref_h ref, int64_t timeout_ms, tr_buf_h *buf_p)
{
    CHECK_UP();
    if (buf_p == NULL) return TR_ERR_INVALID_ARG;
    tr__obj_t *o = tr__ref_obj(ref);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    if (own_result(o)) return own_result_error("tr_get");
    return tr__obj_get(o, timeout_ms, buf_p);
}

tr_status_t tr_get_many(const tr_ref_h *refs, size_t n, int64_t timeout_ms, tr_buf_h *bufs_p)
{
    CHECK_UP();
    if ((refs == NULL || bufs_p == NULL) && n > 0) return TR_ERR_INVALID_ARG;
    if (n > SIZE_MAX / sizeof(void *)) return TR_ERR_INVALID_ARG;   /* no array that long exists */
    if (n == 0) return TR_OK;
    tr__obj_t **objs = malloc(sizeof(*objs) * n);
    size_t *idx = malloc(sizeof(*idx) * n), nready = 0, got = 0;
    tr_buf_h *views = malloc(sizeof(*views) * n);   /* *bufs_p is written only on success */
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (objs == NULL || idx == NULL || views == NULL) goto out;
    for (size_t i = 0; i < n; i++) {
        if ((objs[i] = tr__ref_obj(refs[i])) == NULL) { st = TR_ERR_REF_RELEASED; goto out; }
        if (own_result(objs[i])) { st = own_result_error("tr_get_many"); goto out; }
    }
    if ((st = tr__wait(objs, n, n, timeout_ms, idx, &nready)) != TR_OK) goto out;
    if (nready < n) { st = TR_ERR_TIMEOUT; goto out; }
    for (; got < n; got++)
        if ((st = tr__obj_get(objs[got], 0, &views[got])) != TR_OK) goto out;
    memcpy(bufs_p, views, sizeof(*views) * n);
out:
    if (st != TR_OK)
        for (size_t j = 0; j < got; j++) tr_buf_release(views[j]);
    free(objs);
    free(idx);
    free(views);
    return st;
}

tr_status_t tr_get_copy(tr_ref_h ref, int64_t timeout_ms, void *dst, size_t capacity, size_t *size_p)
{
    CHECK_UP();
    if (dst == NULL && capacity > 0) return TR_ERR_INVALID_ARG;
    tr_buf_h b;
    tr_status_t st = tr_get(ref, timeout_ms, &b);
    if (st != TR_OK) return st;
    size_t n = tr_buf_size(b);
    if (size_p) *size_p = n;
    if (n > capacity) st = TR_ERR_BUFFER_TOO_SMALL;
    else if (n) memcpy(dst, tr_buf_data(b), n);
    tr_buf_release(b);
    return st;
}

static tr_status_t get8(tr_ref_h ref, int64_t timeout_ms, void *out)
{
    CHECK_UP();
    if (out == NULL) return TR_ERR_INVALID_ARG;
    tr_buf_h b;
    tr_status_t st = tr_get(ref, timeout_ms, &b);
    if (st != TR_OK) return st;
    if (tr_buf_size(b) != 8) st = TR_ERR_TYPE;
    else memcpy(out, tr_buf_data(b), 8);
    tr_buf_release(b);
    return st;
}

tr_status_t tr_get_i64(tr_ref_h ref, int64_t timeout_ms, int64_t *value_p) { return get8(ref, timeout_ms, value_p); }
tr_status_t tr_get_f64(tr_ref_h ref, int64_t timeout_ms, double *value_p) { return get8(ref, timeout_ms, value_p); }

tr_status_t tr_wait(const tr_ref_h *refs, size_t n, size_t k, int64_t timeout_ms, size_t *ready_idx_p,
                    size_t *num_ready_p)
{
    CHECK_UP();
    if ((refs == NULL && n > 0) || k > n || ready_idx_p == NULL || num_ready_p == NULL) return TR_ERR_INVALID_ARG;
    if (n > SIZE_MAX / sizeof(void *)) return TR_ERR_INVALID_ARG;   /* no array that long exists */
    if (n == 0) { *num_ready_p = 0; return TR_OK; }
    tr__obj_t **objs = malloc(sizeof(*objs) * n);
    if (objs == NULL) return TR_ERR_NO_MEMORY;
    tr_status_t st = TR_OK;
    size_t own = 0;
    for (size_t i = 0; i < n && st == TR_OK; i++) {
        if ((objs[i] = tr__ref_obj(refs[i])) == NULL) st = TR_ERR_REF_RELEASED;
        else own += (size_t)own_result(objs[i]);
    }
    if (st == TR_OK && k > n - own) st = own_result_error("tr_wait");   /* k can only be reached with them */
    if (st == TR_OK) st = tr__wait(objs, n, k, timeout_ms, ready_idx_p, num_ready_p);
    free(objs);
    return st;
}
