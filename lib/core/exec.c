/*
 * The executor pool: threads that run task functions.  The queue is LIFO so
 * nested work runs depth-first.  A task blocked in tr_get()/tr_wait() lends
 * its cpus to the pool, and a new thread is started when no idle one can
 * take the work, so a rank never starves behind its own blocked tasks.
 */
#include "core/core.h"

#include <math.h>
#include <stdio.h>

_Thread_local struct tr_task *tr__cur_task;
_Thread_local int tr__on_executor;

#define MAX_THREADS 8192

void tr__task_failmsg(struct tr_task *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(t->fail_msg);
    t->fail_msg = strdup(buf);
}

/*
 * Resources are drawn from a "view": the pool's free resources, or the
 * reservation of the placement-group bundle a task runs in.  GPUs are
 * handed out by device: whole ones for num_gpus >= 1, a share of one for
 * less.
 */
typedef struct {
    double       *cpus;
    tr__req_t    *avail;
    tr__gpuset_t *gpus;
} view_t;

static tr__bundle_t *bundle_find(tr__pool_t *p, uint64_t pg, int idx)
{
    for (tr__bundle_t *b = p->bundles; b; b = b->next)
        if (b->pg == pg && b->idx == idx) return b;
    return NULL;
}

/* The view @r draws from; 0 when its bundle is not (or no longer) here. */
static int view_of(tr__pool_t *p, const tr__req_t *r, view_t *v)
{
    if (r->pg == 0) { *v = (view_t){ &p->cpus_avail, &p->avail, &p->gpus }; return 1; }
    tr__bundle_t *b = bundle_find(p, r->pg, r->bundle);
    if (b == NULL || b->state != TR__BUNDLE_RESERVED) return 0;
    *v = (view_t){ &b->cpus_avail, &b->avail, &b->gpus };
    return 1;
}

/* Which GPUs of @g would serve @amount: whole free ones, then one with
 * enough left for a fraction.  0 when they are not free. */
static int gpu_choose(const tr__gpuset_t *g, double amount, int *ids, int *n, double *last)
{
    *n = 0;
    *last = 0;
    if (!(amount > 1e-9)) return 1;
    int whole = (int)floor(amount + 1e-9);
    double frac = amount - whole;
    for (int i = 0; i < g->n && *n < whole; i++)
        if (g->free[i] >= 1 - 1e-9) ids[(*n)++] = i;
    if (*n < whole) return 0;
    *last = 1;
    if (frac > 1e-9) {
        int best = -1;
        for (int i = 0; i < g->n; i++) {   /* the fullest one that fits: shares pack */
            int used = 0;
            for (int k = 0; k < *n; k++) used |= ids[k] == i;
            if (!used && g->free[i] + 1e-9 >= frac && (best < 0 || g->free[i] < g->free[best])) best = i;
        }
        if (best < 0) return 0;
        ids[(*n)++] = best;
        *last = frac;
    }
    return 1;
}

static int view_fits(const view_t *v, const tr__req_t *r)
{
    if (r->cpus > 0 && *v->cpus + 1e-9 < r->cpus) return 0;
    for (int i = 0; i < r->nres; i++)
        if (r->res[i].amount > 0 && tr__req_get(v->avail, r->res[i].name) + 1e-9 < r->res[i].amount)
            return 0;
    double g = tr__req_get(r, "gpus");
    if (g > 0 && v->gpus->n > 0) {
        int ids[TR__MAX_GPUS], n;
        double last;
        if (!gpu_choose(v->gpus, g, ids, &n, &last)) return 0;
    }
    return 1;
}

static void view_take(const view_t *v, const tr__req_t *r, double sign)
{
    *v->cpus -= sign * r->cpus;
    for (int i = 0; i < r->nres; i++)
        for (int j = 0; j < v->avail->nres; j++)
            if (strcmp(v->avail->res[j].name, r->res[i].name) == 0) v->avail->res[j].amount -= sign * r->res[i].amount;
}

static int fits_locked(tr__pool_t *p, const struct tr_task *t)
{
    view_t v;
    if (!view_of(p, &t->req, &v)) {   /* a removed bundle's tasks are picked to fail */
        tr__bundle_t *b = bundle_find(p, t->req.pg, t->req.bundle);
        return b == NULL || b->state == TR__BUNDLE_REMOVED;
    }
    return view_fits(&v, &t->req);
}

static void take_locked(tr__pool_t *p, const tr__req_t *r, double sign)
{
    view_t v;
    if (view_of(p, r, &v)) view_take(&v, r, sign);
}

/* A task's resources and its GPUs, taken (@sign 1) or given back (-1). */
static void task_take_locked(tr__pool_t *p, struct tr_task *t, double sign)
{
    view_t v;
    if (!view_of(p, &t->req, &v)) return;
    view_take(&v, &t->req, sign);
    if (t->req.pg) bundle_find(p, t->req.pg, t->req.bundle)->running += sign > 0 ? 1 : -1;
    if (v.gpus->n == 0) return;
    if (sign > 0) {
        double g = tr__req_get(&t->req, "gpus");
        if (!gpu_choose(v.gpus, g, t->gpu_ids, &t->ngpu_ids, &t->gpu_last)) t->ngpu_ids = 0;
        for (int k = 0; k < t->ngpu_ids; k++) {
            v.gpus->free[t->gpu_ids[k]] -= k == t->ngpu_ids - 1 ? t->gpu_last : 1;
            t->gpu_devs[k] = v.gpus->id[t->gpu_ids[k]];
        }
    } else {
        for (int k = 0; k < t->ngpu_ids; k++) v.gpus->free[t->gpu_ids[k]] += k == t->ngpu_ids - 1 ? t->gpu_last : 1;
    }
}

/* An actor holds its resources for its life: tasks see them taken. */
void tr__pool_hold(tr__pool_t *p, const tr__req_t *r, int hold)
{
    pthread_mutex_lock(&p->mu);
    take_locked(p, r, hold ? 1.0 : -1.0);
    if (!hold && p->nidle > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static struct tr_task *pick_locked(tr__pool_t *p)
{
    for (struct tr_task **pp = &p->head, *t; (t = *pp) != NULL; pp = &t->next) {
        if (!fits_locked(p, t)) continue;
        *pp = t->next;
        t->next = NULL;
        __atomic_sub_fetch(&p->queued, 1, __ATOMIC_RELAXED);
        return t;
    }
    return NULL;
}

static int runnable_locked(tr__pool_t *p)
{
    for (struct tr_task *t = p->head; t; t = t->next)
        if (fits_locked(p, t)) return 1;
    return 0;
}

static void *exec_main(void *arg);
static void kick_locked(tr__pool_t *p);

/* ----------------------------------------------- placement-group bundles */

static int bundle_try_locked(tr__pool_t *p, tr__bundle_t *b)
{
    view_t v = { &p->cpus_avail, &p->avail, &p->gpus };
    if (!view_fits(&v, &b->size)) return 0;
    view_take(&v, &b->size, 1);
    b->cpus_avail = b->size.cpus;
    b->avail = b->size;
    b->gpus.n = 0;
    int ids[TR__MAX_GPUS], n;
    double last;
    /* the bundle's GPUs are whole devices (a share of one keeps the device) */
    double g = tr__req_get(&b->size, "gpus");
    if (p->gpus.n > 0 && gpu_choose(&p->gpus, g, ids, &n, &last)) {
        for (int k = 0; k < n; k++) {
            double share = k == n - 1 ? last : 1;
            p->gpus.free[ids[k]] -= share;
            b->gpus.id[b->gpus.n] = p->gpus.id[ids[k]];
            b->gshare[b->gpus.n] = share;
            b->gpus.free[b->gpus.n++] = share;
        }
    }
    b->state = TR__BUNDLE_RESERVED;
    return 1;
}

static void bundle_release_locked(tr__pool_t *p, tr__bundle_t *b)
{
    view_t v = { &p->cpus_avail, &p->avail, &p->gpus };
    view_take(&v, &b->size, -1);
    for (int k = 0; k < b->gpus.n; k++)
        for (int i = 0; i < p->gpus.n; i++)
            if (p->gpus.id[i] == b->gpus.id[k]) p->gpus.free[i] += b->gshare[k];
}

/* After resources came back: removed bundles whose tasks ended give their
 * reservation back, and pending ones may now be reserved (reported to
 * their owner with the pool unlocked). */
static void bundles_settle_locked(tr__pool_t *p)
{
    struct ready { uint64_t pg; int idx, owner; } ready[16];
    int nready = 0, again = 1;
    while (again) {
        again = 0;
        for (tr__bundle_t **pp = &p->bundles, *b; (b = *pp) != NULL;) {
            if (b->state == TR__BUNDLE_REMOVED && b->running == 0) {
                *pp = b->next;
                if (b->cpus_avail != -1) bundle_release_locked(p, b);
                free(b);
                again = 1;
                continue;
            }
            if (b->state == TR__BUNDLE_PENDING && nready < 16 && bundle_try_locked(p, b))
                ready[nready++] = (struct ready){ b->pg, b->idx, b->owner };
            pp = &b->next;
        }
    }
    if (nready == 0) return;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nready; i++) tr__pg_reserved(ready[i].pg, ready[i].idx, ready[i].owner);
    pthread_mutex_lock(&p->mu);
}

int tr__pool_bundle_reserve(tr__pool_t *p, uint64_t pg, int idx, int owner, const tr__req_t *size)
{
    pthread_mutex_lock(&p->mu);
    tr__bundle_t *b = bundle_find(p, pg, idx);
    int ok = b != NULL && b->state == TR__BUNDLE_RESERVED;
    if (b == NULL && (b = calloc(1, sizeof(*b))) != NULL) {
        b->pg = pg; b->idx = idx; b->owner = owner;
        b->size = *size;
        b->size.pg = 0;
        b->state = TR__BUNDLE_PENDING;
        b->next = p->bundles;
        p->bundles = b;
        ok = bundle_try_locked(p, b);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void bundle_drop_locked(tr__bundle_t *b)
{
    if (b->state == TR__BUNDLE_PENDING) b->cpus_avail = -1;   /* nothing to give back */
    b->state = TR__BUNDLE_REMOVED;
}

void tr__pool_bundle_remove(tr__pool_t *p, uint64_t pg)
{
    pthread_mutex_lock(&p->mu);
    for (tr__bundle_t *b = p->bundles; b; b = b->next)
        if (b->pg == pg && b->state != TR__BUNDLE_REMOVED) bundle_drop_locked(b);
    bundles_settle_locked(p);
    kick_locked(p);
    if (p->nidle > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void tr__pool_bundles_owner_died(tr__pool_t *p, int owner)
{
    pthread_mutex_lock(&p->mu);
    for (tr__bundle_t *b = p->bundles; b; b = b->next)
        if (b->owner == owner && b->state != TR__BUNDLE_REMOVED) bundle_drop_locked(b);
    bundles_settle_locked(p);
    kick_locked(p);
    if (p->nidle > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void spawn_locked(tr__pool_t *p)
{
    if (p->nthreads >= MAX_THREADS) {
        static int warned;
        if (!warned++) tr__warn("%d executor threads are blocked in tr_get(); not starting more", p->nthreads);
        return;
    }
    if (p->nthreads == p->cap_threads) {
        int cap = p->cap_threads ? p->cap_threads * 2 : 16;
        pthread_t *t = realloc(p->threads, sizeof(*t) * (size_t)cap);
        if (t == NULL) return;
        p->threads = t; p->cap_threads = cap;
    }
    if (pthread_create(&p->threads[p->nthreads], NULL, exec_main, p) != 0) {
        tr__warn("cannot start an executor thread: %m");
        return;
    }
    p->nthreads++;
    p->nstarting++;
}

/*
 * Make sure someone will run queued work while fewer than target threads run
 * tasks: a spinning thread will see it, else wake an idle one, else start
 * one.  Every thread that picks a task kicks again, so a burst of work
 * recruits threads one after another and no wake-up has to be counted.
 */
static void kick_locked(tr__pool_t *p)
{
    if (p->queued == 0 || p->stop || p->nspin > 0 || p->active >= p->target) return;
    if (!runnable_locked(p)) return;
    if (p->nidle > 0) pthread_cond_signal(&p->cv);
    else if (p->nstarting == 0) spawn_locked(p);
}

static void run_task(struct tr_task *t)
{
    tr_status_t st;
    if (t->actor_op == TR__AOP_REPLICATE) {   /* not a task: a replica of a put object */
        st = tr__replica_fetch(t->owner, t->id);
        pthread_mutex_lock(&tr__rt->lock);
        tr__reply_to_locked(t->owner, t->aseq, st, tr__rt->rank, 0, 0, 0);
        pthread_mutex_unlock(&tr__rt->lock);
        tr__task_free(t);
        return;
    }
    atomic_fetch_add_explicit(&tr__rt->tasks_run, 1, memory_order_relaxed);
    if (t->actor_op != TR__AOP_NONE) { tr__actor_run(t); return; }
    tr__task_resolve_args(t);
    if (t->fetch_status != TR_OK) {
        st = t->fetch_status;
    } else {
        tr__cur_task = t;
        st = t->fn->fn(t);
        tr__cur_task = NULL;
    }
    tr__task_finish(t, st);
}

static void *exec_main(void *arg)
{
    tr__pool_t *p = arg;
    tr__on_executor = 1;
    pthread_mutex_lock(&p->mu);
    p->nstarting--;
    for (int i = 0; i < p->nthreads; i++)   /* one core each, in the rank's share */
        if (pthread_equal(p->threads[i], pthread_self())) { tr__topo_bind_thread(&tr__rt->topo, i); break; }
    while (!p->stop) {
        struct tr_task *t = pick_locked(p);
        if (t == NULL && p->spin_ns && p->nspin < (p->target + 3) / 4) {
            /* a quarter of the executors (at least one) spin briefly: the
             * next task often comes within microseconds, and waking a
             * sleeping thread costs more than a tiny task; the others
             * sleep, so spinners do not crowd the cores that the loop and
             * the driver need */
            uint64_t until = tr__now_ns() + p->spin_ns;
            p->nspin++;
            pthread_mutex_unlock(&p->mu);
            while (__atomic_load_n(&p->queued, __ATOMIC_RELAXED) == 0 && !__atomic_load_n(&p->stop, __ATOMIC_RELAXED) && tr__now_ns() < until)
                tr__spin_yield();
            pthread_mutex_lock(&p->mu);
            p->nspin--;
            t = pick_locked(p);
        }
        if (t == NULL) {
            if (p->stop) break;   /* the stop broadcast may have come while we spun */
            tr__steal_kick();     /* takes no pool lock: only the stealer's */
            p->nidle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->nidle--;
            continue;
        }
        view_t v;
        if (t->req.pg && !view_of(p, &t->req, &v)) {   /* its bundle was removed */
            pthread_mutex_unlock(&p->mu);
            tr__task_failmsg(t, "its placement group was removed before it ran");
            tr__task_finish(t, TR_ERR_UNSCHEDULABLE);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        task_take_locked(p, t, 1);
        p->active++;
        kick_locked(p);
        pthread_mutex_unlock(&p->mu);
        struct tr_task held;   /* what to give back: the task is freed when it ends */
        held.req = t->req;
        held.ngpu_ids = t->ngpu_ids;
        held.gpu_last = t->gpu_last;
        memcpy(held.gpu_ids, t->gpu_ids, sizeof(held.gpu_ids));
        run_task(t);
        pthread_mutex_lock(&p->mu);
        p->active--;
        task_take_locked(p, &held, -1);
        if (p->bundles) bundles_settle_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tr_status_t tr__pool_start(tr__pool_t *p, int nexec, const tr__req_t *have, uint64_t spin_ns)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->target = nexec;
    p->spin_ns = spin_ns;
    p->cpus_avail = have->cpus;
    p->avail = *have;
    /* the rank's GPUs, as the process sees them (CUDA_VISIBLE_DEVICES lists only them) */
    double g = tr__req_get(have, "gpus");
    p->gpus.n = g > TR__MAX_GPUS ? TR__MAX_GPUS : (int)floor(g + 1e-9);
    for (int i = 0; i < p->gpus.n; i++) { p->gpus.id[i] = i; p->gpus.free[i] = 1; }
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < nexec; i++) spawn_locked(p);
    int n = p->nthreads;
    pthread_mutex_unlock(&p->mu);
    if (n < nexec) { tr__pool_stop(p); return TR_ERR_SYSTEM; }
    return TR_OK;
}

void tr__pool_stop(tr__pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* nthreads only grows while a task blocks; none run now */
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    for (struct tr_task *t = p->head, *n; t; t = n) { n = t->next; tr__task_free(t); }
    p->head = NULL;
    for (tr__bundle_t *b = p->bundles, *n; b; b = n) { n = b->next; free(b); }
    p->bundles = NULL;
    free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

void tr__pool_push(tr__pool_t *p, struct tr_task *t)
{
    pthread_mutex_lock(&p->mu);
    t->next = p->head;
    p->head = t;
    int surplus = __atomic_add_fetch(&p->queued, 1, __ATOMIC_RELAXED) > p->target - p->active &&
                  !t->no_steal && t->actor_op == TR__AOP_NONE;
    kick_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (surplus) tr__steal_surplus();   /* ranks that found nothing here may ask again */
}

struct tr_task *tr__pool_steal(tr__pool_t *p, int (*ok)(const struct tr_task *t, void *arg), void *arg)
{
    struct tr_task **oldest = NULL;
    pthread_mutex_lock(&p->mu);
    /* queued work counts whether or not it fits the resources free at this
     * moment (the running tasks hold them) */
    int free_slots = p->target - p->active;
    if (p->queued <= (free_slots > 0 ? free_slots : 0)) { pthread_mutex_unlock(&p->mu); return NULL; }
    for (struct tr_task **pp = &p->head, *t; (t = *pp) != NULL; pp = &t->next)
        if (ok(t, arg)) oldest = pp;   /* the list is newest first: keep the last */
    struct tr_task *t = NULL;
    if (oldest != NULL) {
        t = *oldest;
        *oldest = t->next;
        t->next = NULL;
        __atomic_sub_fetch(&p->queued, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&p->mu);
    return t;
}

int tr__pool_busy(tr__pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->queued + p->active;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int tr__pool_idle(tr__pool_t *p, tr__req_t *free_p)
{
    pthread_mutex_lock(&p->mu);
    int idle = !p->stop && p->active < p->target && !runnable_locked(p);
    memset(free_p, 0, sizeof(*free_p));   /* no placement group: pg 0 */
    free_p->cpus = p->cpus_avail > 0 ? p->cpus_avail : 0;
    free_p->nres = p->avail.nres;
    memcpy(free_p->res, p->avail.res, sizeof(free_p->res[0]) * (size_t)p->avail.nres);
    for (int i = 0; i < free_p->nres; i++)
        if (!(free_p->res[i].amount >= 0)) free_p->res[i].amount = 0;
    pthread_mutex_unlock(&p->mu);
    return idle;
}

int tr__pool_remove(tr__pool_t *p, uint64_t id, struct tr_task **t_p)
{
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (struct tr_task **pp = &p->head, *t; (t = *pp) != NULL; pp = &t->next) {
        if (t->id != id) continue;
        *pp = t->next;
        t->next = NULL;
        __atomic_sub_fetch(&p->queued, 1, __ATOMIC_RELAXED);
        *t_p = t;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

void tr__pool_block_enter(void)
{
    tr__pool_t *p = &tr__rt->pool;
    struct tr_task *t = tr__cur_task;
    pthread_mutex_lock(&p->mu);
    p->active--;
    if (t) take_locked(p, &t->req, -1);
    kick_locked(p);
    pthread_mutex_unlock(&p->mu);
    tr__steal_kick();   /* a free slot: the rank may steal */
}

void tr__pool_block_leave(void)
{
    tr__pool_t *p = &tr__rt->pool;
    struct tr_task *t = tr__cur_task;
    pthread_mutex_lock(&p->mu);
    p->active++;
    if (t) take_locked(p, &t->req, 1);
    pthread_mutex_unlock(&p->mu);
}
