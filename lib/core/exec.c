/*
 * The executor pool: threads that run task functions.  The queue is LIFO so
 * nested work runs depth-first.  A task blocked in tr_get()/tr_wait() lends
 * its cpus to the pool, and a new thread is started when no idle one can
 * take the work, so a rank never starves behind its own blocked tasks.
 */
#include "core/core.h"

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

static int fits_locked(tr__pool_t *p, const struct tr_task *t)
{
    if (t->req.cpus > 0 && p->cpus_avail + 1e-9 < t->req.cpus) return 0;
    for (int i = 0; i < t->req.nres; i++)
        if (t->req.res[i].amount > 0 && tr__req_get(&p->avail, t->req.res[i].name) + 1e-9 < t->req.res[i].amount)
            return 0;
    return 1;
}

static void take_locked(tr__pool_t *p, const tr__req_t *r, double sign)
{
    p->cpus_avail -= sign * r->cpus;
    for (int i = 0; i < r->nres; i++)
        for (int j = 0; j < p->avail.nres; j++)
            if (strcmp(p->avail.res[j].name, r->res[i].name) == 0) p->avail.res[j].amount -= sign * r->res[i].amount;
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
        take_locked(p, &t->req, 1);
        p->active++;
        kick_locked(p);
        pthread_mutex_unlock(&p->mu);
        tr__req_t req = t->req;
        run_task(t);
        pthread_mutex_lock(&p->mu);
        p->active--;
        take_locked(p, &req, -1);
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
    free_p->cpus = p->cpus_avail > 0 ? p->cpus_avail : 0;
    free_p->nres = p->avail.nres;
    memcpy(free_p->res, p->avail.res, sizeof(free_p->res[0]) * (size_t)p->avail.nres);
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
