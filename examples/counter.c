/*
 * counter: Ray's canonical actor example, a counter that lives on one rank.
 *
 *   ./counter                          one rank
 *   mpirun -n 3 ./counter [-n N] [-t TASKS] [-k K] [-s START]
 *
 * An actor is state that lives on one rank, with methods that run there,
 * one at a time (by default) and, for the calls made through one handle, in
 * the order they were made.  Its class is registered on every rank before
 * tr_init(), like a remote function:
 *
 *   Counter(START = 0)       the constructor; START is optional
 *   increment([BY = 1])      adds BY, returns the new value
 *   get()                    returns the value
 *
 * The driver
 *   1. creates a counter (with START only when -s is given),
 *   2. calls increment() N times (default 100) without waiting: each call
 *      returns a future at once, and the calls run in the order they were
 *      made, so the futures hold START + 1, ..., START + N in order,
 *   3. passes the counter to TASKS tasks (default 4) with TR_ARG_ACTOR():
 *      each task gets its own handle and calls increment(1) K times (default
 *      50), checking that the values it sees go up,
 *   4. waits for the tasks, then checks get() == START + N + TASKS * K.
 *
 * Exit status 0 when every check passed, 1 otherwise, 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <taskray.h>

/* ------------------------------------------------------ the Counter class
 *
 * The constructor builds the state from its arguments; each method gets the
 * state and reads its arguments and sets its returns with the same
 * tr_task_arg*() / tr_task_return*() calls as a remote function.  With the
 * default max_concurrency of 1 the methods never run at the same time, so
 * the state needs no lock.
 */

typedef struct counter {
    int64_t value;
} counter_t;

static tr_status_t counter_init(tr_task_h task, void **state_p)
{
    counter_t *c;
    int64_t start = 0;
    int nargs = tr_task_num_args(task);

    if (nargs > 1) {
        tr_task_fail(task, "Counter takes at most one argument (the start value), got %d", nargs);
        return TR_ERR_TASK_FAILED;
    }
    if (nargs == 1 && tr_task_arg_i64(task, 0, &start) != TR_OK) {
        tr_task_fail(task, "Counter: the start value must be an i64");
        return TR_ERR_TASK_FAILED;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        return TR_ERR_NO_MEMORY;
    }
    c->value = start;
    *state_p = c;
    return TR_OK;
}

static void counter_fini(void *state)
{
    free(state);
}

/* increment([by]) -> the new value */
static tr_status_t counter_increment(tr_task_h task, void *state)
{
    counter_t *c = state;
    int64_t by = 1;

    if (tr_task_num_args(task) > 0 && tr_task_arg_i64(task, 0, &by) != TR_OK) {
        tr_task_fail(task, "increment: the argument must be an i64");
        return TR_ERR_TASK_FAILED;
    }
    c->value += by;
    return tr_task_return_i64(task, 0, c->value);
}

/* get() -> the value */
static tr_status_t counter_get(tr_task_h task, void *state)
{
    const counter_t *c = state;

    return tr_task_return_i64(task, 0, c->value);
}

static const tr_actor_method_t counter_methods[] = {
    { "increment", counter_increment },
    { "get", counter_get },
};

static const tr_actor_class_t counter_class = {
    .name = "Counter",
    .init = counter_init,
    .fini = counter_fini,
    .methods = counter_methods,
    .num_methods = (int)(sizeof(counter_methods) / sizeof(counter_methods[0])),
};

/* -------------------------------------------------------- remote function */

/* bump(counter, k) -> the rank it ran on.  Calls counter.increment(1) k
 * times through its own handle, without waiting, then checks the values:
 * calls made through one handle run in order, so they must go up by at
 * least 1 each (other tasks' increments may come in between). */
static tr_status_t bump(tr_task_h task)
{
    tr_actor_h counter;
    tr_ref_h *refs;
    tr_arg_t one = TR_ARG_I64(1);
    int64_t k, i, made = 0, value, prev = INT64_MIN;
    tr_status_t st = tr_task_arg_i64(task, 1, &k);

    if (st != TR_OK || k < 0) {
        tr_task_fail(task, "bump: argument 1 must be a non-negative i64");
        return TR_ERR_TASK_FAILED;
    }
    /* Argument 0 came with TR_ARG_ACTOR(): this makes a handle of our own. */
    st = tr_task_arg_actor(task, 0, &counter);
    if (st != TR_OK) {
        tr_task_fail(task, "bump: tr_task_arg_actor: %s (%s)", tr_status_string(st), tr_last_error());
        return st;
    }
    refs = calloc((size_t)k + 1, sizeof(*refs));
    if (refs == NULL) {
        tr_actor_release(counter);
        return TR_ERR_NO_MEMORY;
    }
    for (i = 0; i < k && st == TR_OK; i++) {
        st = tr_actor_call(counter, "increment", &one, 1, NULL, &refs[i]);
        made += (st == TR_OK);
    }
    if (st != TR_OK) {
        tr_task_fail(task, "bump: tr_actor_call: %s (%s)", tr_status_string(st), tr_last_error());
    }
    for (i = 0; i < made; i++) {
        if (st == TR_OK) {
            st = tr_get_i64(refs[i], TR_TIMEOUT_INFINITE, &value);
            if (st != TR_OK) {
                tr_task_fail(task, "bump: increment %" PRId64 ": %s (%s)", i + 1,
                             tr_status_string(st), tr_last_error());
            } else if (value <= prev) {
                tr_task_fail(task, "bump: increment %" PRId64 " returned %" PRId64
                             " after %" PRId64 ": calls ran out of order", i + 1, value, prev);
                st = TR_ERR_TASK_FAILED;
            }
            prev = value;
        }
        tr_ref_release(refs[i]);
    }
    free(refs);
    /* Releasing our handle does not destroy the counter: the driver's
     * handle keeps it alive. */
    tr_actor_release(counter);
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(task, 0, tr_task_rank(task));
}
TR_REMOTE(bump)

/* ----------------------------------------------------------------- driver */

#define TRY(call)                                                              \
    do {                                                                       \
        tr_status_t try_st_ = (call);                                          \
        if (try_st_ != TR_OK) {                                                \
            fprintf(stderr, "counter:%d: %s: %s (%s)\n", __LINE__, #call,      \
                    tr_status_string(try_st_), tr_last_error());               \
            goto out;                                                          \
        }                                                                      \
    } while (0)

static int parse_int(const char *text, int64_t min, int64_t max, int64_t *value_p)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *value_p = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: counter [-n N] [-t TASKS] [-k K] [-s START]\n"
               "  -n N      increments made by the driver (default 100)\n"
               "  -t TASKS  tasks that share the counter (default 4)\n"
               "  -k K      increments made by each task (default 50)\n"
               "  -s START  the counter's start value (default: none given, 0)\n");
}

/* The driver's part; returns the exit status. */
static int run(int64_t n, int64_t num_tasks, int64_t k, int has_start, int64_t start)
{
    tr_actor_h counter = TR_ACTOR_NULL;
    tr_ref_h *refs = NULL, *task_refs = NULL;
    tr_arg_t args[2];
    int64_t i, made = 0, tasks_made = 0, value, expected;
    int rc = 1;

    refs = calloc((size_t)n + 1, sizeof(*refs));
    task_refs = calloc((size_t)num_tasks + 1, sizeof(*task_refs));
    if (refs == NULL || task_refs == NULL) {
        fprintf(stderr, "counter: out of memory\n");
        goto out;
    }

    /* 1. Create the actor.  This returns at once; the constructor runs on
     * the rank chosen for the actor, and calls made meanwhile wait for it. */
    args[0] = TR_ARG_I64(start);
    TRY(tr_actor_create("Counter", args, has_start ? 1 : 0, NULL, &counter));

    /* 2. N calls, no waiting: each returns a future at once. */
    for (i = 0; i < n; i++) {
        TRY(tr_actor_call(counter, "increment", NULL, 0, NULL, &refs[i]));
        made++;
    }
    /* The calls ran in order: future i holds START + i + 1. */
    for (i = 0; i < n; i++) {
        TRY(tr_get_i64(refs[i], TR_TIMEOUT_INFINITE, &value));
        if (value != start + i + 1) {
            fprintf(stderr, "counter: increment %" PRId64 " returned %" PRId64 ", expected %" PRId64 "\n",
                    i + 1, value, start + i + 1);
            goto out;
        }
    }
    printf("driver: %" PRId64 " increments returned %" PRId64 "..%" PRId64 " in order\n", n,
           start + 1, start + n);

    /* 3. Share the counter: TR_ARG_ACTOR() passes the handle itself (the
     * task borrows it, and the counter stays alive while the task runs). */
    for (i = 0; i < num_tasks; i++) {
        args[0] = TR_ARG_ACTOR(counter);
        args[1] = TR_ARG_I64(k);
        TRY(tr_task_submit(bump, args, 2, NULL, &task_refs[i]));
        tasks_made++;
    }
    printf("tasks:");
    for (i = 0; i < num_tasks; i++) {
        TRY(tr_get_i64(task_refs[i], TR_TIMEOUT_INFINITE, &value));
        printf(" %" PRId64 "@rank%" PRId64, i, value);
    }
    printf(" (%" PRId64 " increments each)\n", k);

    /* 4. Every task has finished, so every increment has been applied. */
    expected = start + n + num_tasks * k;
    TRY(tr_actor_call(counter, "get", NULL, 0, NULL, &refs[n]));
    made++;
    TRY(tr_get_i64(refs[n], TR_TIMEOUT_INFINITE, &value));
    printf("get() = %" PRId64 " (expected %" PRId64 " = %" PRId64 " + %" PRId64 " + %" PRId64
           " x %" PRId64 ") on %d rank(s)\n",
           value, expected, start, n, num_tasks, k, tr_size());
    if (value != expected) {
        fprintf(stderr, "counter: get() returned %" PRId64 ", expected %" PRId64 "\n", value, expected);
        goto out;
    }
    printf("counter: ok\n");
    rc = 0;
out:
    for (i = 0; i < made; i++) {
        tr_ref_release(refs[i]);
    }
    for (i = 0; i < tasks_made; i++) {
        tr_ref_release(task_refs[i]);
    }
    free(refs);
    free(task_refs);
    /* The last handle destroys the actor (its destructor frees the state). */
    if (counter != TR_ACTOR_NULL) {
        tr_actor_release(counter);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int64_t n = 100, num_tasks = 4, k = 50, start = 0;
    int has_start = 0, opt, rc = 0;
    tr_status_t st;

    while ((opt = getopt(argc, argv, "n:t:k:s:h")) != -1) {
        switch (opt) {
        case 'n':
            if (parse_int(optarg, 0, 10000000, &n) != 0) {
                fprintf(stderr, "counter: bad N '%s' (0..10000000)\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_int(optarg, 0, 10000, &num_tasks) != 0) {
                fprintf(stderr, "counter: bad task count '%s' (0..10000)\n", optarg);
                return 2;
            }
            break;
        case 'k':
            if (parse_int(optarg, 0, 10000000, &k) != 0) {
                fprintf(stderr, "counter: bad K '%s' (0..10000000)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (parse_int(optarg, -((int64_t)1 << 60), (int64_t)1 << 60, &start) != 0) {
                fprintf(stderr, "counter: bad start value '%s'\n", optarg);
                return 2;
            }
            has_start = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Actor classes, like remote functions, are registered on every rank
     * before tr_init(), which checks that all ranks agree. */
    st = tr_actor_class_register(&counter_class);
    if (st != TR_OK) {
        fprintf(stderr, "counter: tr_actor_class_register: %s (%s)\n", tr_status_string(st),
                tr_last_error());
        return 1;
    }
    st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "counter: tr_init: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_is_driver()) {
        rc = run(n, num_tasks, k, has_start, start);
    }
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "counter: tr_finalize: %s\n", tr_status_string(st));
        rc = 1;
    }
    return rc;
}
