/*
 * Public entry points for tasks: argument checks, then the core.  Also the
 * functions a running task uses to read its arguments and set its returns.
 */
#include "core/core.h"
#include "comm/wire.h"

#include <stdio.h>

#define CHECK_UP()                                                             \
    do {                                                                       \
        if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;       \
    } while (0)

tr_status_t tr_task_submit(tr_remote_fn_t fn, const tr_arg_t *args, int nargs,
                           const tr_task_params_t *params, tr_ref_h *refs_p)
{
    CHECK_UP();
    tr__clear_error();
    if (fn == NULL || refs_p == NULL || nargs < 0 || nargs > UINT16_MAX || (nargs > 0 && args == NULL)) {
        tr__set_error("tr_task_submit: fn and refs_p must not be NULL, and args must hold 0..%d entries", UINT16_MAX);
        return TR_ERR_INVALID_ARG;
    }
    if (!tr_is_driver()) {
        tr__set_error("tr_task_submit: rank %d serves tasks in TR_MODE_DRIVER; only rank 0 and tasks submit "
                      "(use TR_MODE_SPMD to let every rank drive)", tr__rt->rank);
        return TR_ERR_WRONG_MODE;
    }
    const tr__fn_t *f = tr__fn_by_ptr(fn);
    if (f == NULL) {
        tr__set_error("tr_task_submit: the function was not registered (TR_REMOTE or tr_function_register before tr_init)");
        return TR_ERR_UNKNOWN_FUNCTION;
    }
    return tr__task_submit(f, args, nargs, params, refs_p);
}

tr_status_t tr_cancel(tr_ref_h ref)
{
    CHECK_UP();
    tr__obj_t *o = tr__ref_obj(ref);
    if (o == NULL) return TR_ERR_REF_RELEASED;
    return tr__task_cancel(o);
}

/* ------------------------------------------------------- inside a task */

static struct tr_task *running(tr_task_h task)
{
    return (task != NULL && task == tr__cur_task) ? task : NULL;
}

int tr_task_num_args(tr_task_h task)
{
    struct tr_task *t = running(task);
    return t ? t->nargs : -1;
}

tr_status_t tr_task_arg(tr_task_h task, int i, const void **data_p, size_t *size_p)
{
    struct tr_task *t = running(task);
    if (t == NULL || i < 0 || i >= t->nargs || data_p == NULL) return TR_ERR_INVALID_ARG;
    if (t->args[i].kind == TR__VAL_BORROW) return TR_ERR_TYPE;
    *data_p = t->args[i].data;
    if (size_p) *size_p = t->args[i].size;
    return TR_OK;
}

static tr_status_t arg8(tr_task_h task, int i, void *out)
{
    struct tr_task *t = running(task);
    if (t == NULL || i < 0 || i >= t->nargs || out == NULL) return TR_ERR_INVALID_ARG;
    if (t->args[i].kind == TR__VAL_BORROW || t->args[i].size != 8) return TR_ERR_TYPE;
    memcpy(out, t->args[i].data, 8);
    return TR_OK;
}

tr_status_t tr_task_arg_i64(tr_task_h task, int i, int64_t *value_p) { return arg8(task, i, value_p); }
tr_status_t tr_task_arg_f64(tr_task_h task, int i, double *value_p) { return arg8(task, i, value_p); }

tr_status_t tr_task_arg_ref(tr_task_h task, int i, tr_ref_h *ref_p)
{
    struct tr_task *t = running(task);
    if (t == NULL || i < 0 || i >= t->nargs || ref_p == NULL) return TR_ERR_INVALID_ARG;
    if (t->args[i].kind != TR__VAL_BORROW) {
        tr__set_error("argument %d was not passed with TR_ARG_BORROW()", i);
        return TR_ERR_TYPE;
    }
    tr__iref_t ir = { t->args[i].owner, t->args[i].id };
    tr__obj_t *o;
    tr_status_t st = tr__borrow(&ir, 1, &o);
    if (st != TR_OK) return st;
    if ((st = tr__ref_new(o, ref_p)) != TR_OK) {
        pthread_mutex_lock(&tr__rt->lock);
        tr__obj_unref_locked(o);
        pthread_mutex_unlock(&tr__rt->lock);
    }
    return st;
}

tr_status_t tr_task_return_alloc(tr_task_h task, int i, size_t size, void **data_p)
{
    struct tr_task *t = running(task);
    if (t == NULL || i < 0 || i >= t->nret || data_p == NULL) return TR_ERR_INVALID_ARG;
    tr_status_t st;
    tr__blob_t *b = tr__blob_for(size, &st);
    if (b == NULL) return st;
    if (t->rets[i]) tr__blob_unref(t->rets[i]);
    t->rets[i] = b;
    *data_p = b->data;
    return TR_OK;
}

tr_status_t tr_task_return(tr_task_h task, int i, const void *data, size_t size)
{
    void *p;
    if (data == NULL && size > 0) return TR_ERR_INVALID_ARG;
    tr_status_t st = tr_task_return_alloc(task, i, size, &p);
    if (st == TR_OK && size) memcpy(p, data, size);
    return st;
}

void tr__rinner_release(struct tr_task *t)
{
    if (t->rinner == NULL) return;
    pthread_mutex_lock(&tr__rt->lock);
    for (int i = 0; i < t->nret; i++) {
        for (int k = 0; k < t->rinner[i].n; k++) tr__obj_unref_locked(t->rinner[i].objs[k]);
        free(t->rinner[i].objs);
    }
    pthread_mutex_unlock(&tr__rt->lock);
    free(t->rinner);
    t->rinner = NULL;
}

tr_status_t tr_task_return_refs(tr_task_h task, int i, const void *data, size_t size, const tr_ref_h *refs,
                                size_t nrefs)
{
    struct tr_task *t = running(task);
    if (t == NULL || i < 0 || i >= t->nret || (data == NULL && size > 0) || (refs == NULL && nrefs > 0) ||
        nrefs > INT32_MAX)
        return TR_ERR_INVALID_ARG;
    tr__obj_t **objs = nrefs ? malloc(sizeof(*objs) * nrefs) : NULL;
    if (nrefs && objs == NULL) return TR_ERR_NO_MEMORY;
    if (t->rinner == NULL && (t->rinner = calloc((size_t)t->nret, sizeof(*t->rinner))) == NULL) {
        free(objs);
        return TR_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&tr__rt->lock);
    for (size_t k = 0; k < nrefs; k++) {
        if ((objs[k] = tr__ref_obj(refs[k])) == NULL) {
            for (size_t j = 0; j < k; j++) tr__obj_unref_locked(objs[j]);
            pthread_mutex_unlock(&tr__rt->lock);
            free(objs);
            tr__set_error("ref %zu of the return is released or invalid", k);
            return TR_ERR_REF_RELEASED;
        }
        objs[k]->refcnt++;
    }
    /* a return set twice keeps the last refs */
    for (int k = 0; k < t->rinner[i].n; k++) tr__obj_unref_locked(t->rinner[i].objs[k]);
    free(t->rinner[i].objs);
    t->rinner[i].objs = objs;
    t->rinner[i].n = (int)nrefs;
    pthread_mutex_unlock(&tr__rt->lock);
    return tr_task_return(task, i, data, size);
}

tr_status_t tr_task_return_i64(tr_task_h task, int i, int64_t v) { return tr_task_return(task, i, &v, 8); }
tr_status_t tr_task_return_f64(tr_task_h task, int i, double v) { return tr_task_return(task, i, &v, 8); }

tr_status_t tr_task_fail(tr_task_h task, const char *fmt, ...)
{
    struct tr_task *t = running(task);
    if (t == NULL || fmt == NULL) return TR_ERR_INVALID_ARG;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    tr__task_failmsg(t, "%s", buf);
    return TR_OK;
}

int tr_task_rank(tr_task_h task) { return running(task) ? tr__rt->rank : -1; }
int tr_task_attempt(tr_task_h task) { struct tr_task *t = running(task); return t ? t->attempt : -1; }

int tr_task_gpus(tr_task_h task, int *ids, int max)
{
    struct tr_task *t = running(task);
    if (t == NULL || max < 0 || (ids == NULL && max > 0)) return -1;
    for (int k = 0; k < t->ngpu_ids && k < max; k++) ids[k] = t->gpu_devs[k];
    return t->ngpu_ids;
}
