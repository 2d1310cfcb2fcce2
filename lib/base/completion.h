/*
 * A one-shot completion: one thread waits, a callback (often on the event
 * loop thread) marks it done with a status.
 */
#ifndef TR_COMPLETION_H
#define TR_COMPLETION_H

#include <taskray.h>
#include <pthread.h>

typedef struct tr__completion {
    pthread_mutex_t m;
    pthread_cond_t  cv;
    int             done;
    tr_status_t     status;
} tr__completion_t;

#define TR__COMPLETION_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, TR_OK }

/* A tr__comm_done_fn-shaped callback: @arg is the completion. */
static inline void tr__completion_done(void *arg, tr_status_t status)
{
    tr__completion_t *c = arg;
    pthread_mutex_lock(&c->m);
    c->done = 1;
    c->status = status;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->m);
}

static inline tr_status_t tr__completion_wait(tr__completion_t *c)
{
    pthread_mutex_lock(&c->m);
    while (!c->done) pthread_cond_wait(&c->cv, &c->m);
    pthread_mutex_unlock(&c->m);
    return c->status;
}

#endif
