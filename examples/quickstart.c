/*
 * quickstart: a tour of taskray, Ray's programming model in C.
 *
 *   ./quickstart                  one rank, tasks run on executor threads
 *   mpirun -n 4 ./quickstart      four ranks: rank 0 drives, 1..3 serve
 *
 * Every rank runs this same program.  tr_init() starts the runtime on every
 * rank and returns on every rank.  Rank 0 is the driver: it runs the tour
 * below.  The other ranks go straight to tr_finalize(), where they run the
 * tasks the driver (and its tasks) send them until the driver finalizes.
 *
 * The tour:
 *   1. a remote function and a future
 *   2. many tasks at once, and where they ran
 *   3. futures passed to other tasks
 *   4. tasks that submit tasks
 *   5. tr_put(): sharing a large value by reference
 *   6. tr_wait(): the first results of many
 *   7. errors: a failed task, and a task that depended on it
 *
 * Exit status: 0 when every check passed, 1 otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <taskray.h>

/* --------------------------------------------------------------- helpers */

/* Every taskray call returns a tr_status_t; tr_status_string() names it and
 * tr_last_error() tells the details.  TRY() prints both and abandons the
 * current step.  (Handles the step still holds are released by
 * tr_finalize().) */
#define TRY(call)                                                              \
    do {                                                                       \
        tr_status_t try_st_ = (call);                                          \
        if (try_st_ != TR_OK) {                                                \
            fprintf(stderr, "quickstart:%d: %s: %s (%s)\n", __LINE__, #call,   \
                    tr_status_string(try_st_), tr_last_error());               \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* CHECK() verifies a result and abandons the step when it is wrong. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "quickstart:%d: check failed: %s: ", __LINE__,     \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* --------------------------------------------------------- remote functions
 *
 * A remote function receives the running task.  It reads its arguments with
 * tr_task_arg*(), sets its results with tr_task_return*(), and returns TR_OK
 * (or an error status: the task then fails).  TR_REMOTE(fn) registers it
 * under its own name when the program loads, on every rank, so that any rank
 * can run it.
 */

/* square(x) = x * x */
static tr_status_t square(tr_task_h task)
{
    int64_t x;
    tr_status_t st = tr_task_arg_i64(task, 0, &x);

    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(task, 0, x * x);
}
TR_REMOTE(square)

/* square_where(x) = (x * x, the rank that computed it): two returns. */
static tr_status_t square_where(tr_task_h task)
{
    int64_t x;
    tr_status_t st = tr_task_arg_i64(task, 0, &x);

    if (st == TR_OK) {
        st = tr_task_return_i64(task, 0, x * x);
    }
    if (st == TR_OK) {
        st = tr_task_return_i64(task, 1, tr_task_rank(task));
    }
    return st;
}
TR_REMOTE(square_where)

/* add(a, b) = a + b.  Each argument may be a plain value or a future: a
 * future argument is replaced by its value before the task runs. */
static tr_status_t add(tr_task_h task)
{
    int64_t a, b;
    tr_status_t st = tr_task_arg_i64(task, 0, &a);

    if (st == TR_OK) {
        st = tr_task_arg_i64(task, 1, &b);
    }
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(task, 0, a + b);
}
TR_REMOTE(add)

/* sum_squares(n) = 1*1 + 2*2 + ... + n*n, computed by n square() tasks that
 * this task submits itself.  While it waits in tr_get_i64(), its executor
 * runs other tasks, so this works even with a single executor thread. */
#define SUM_SQUARES_MAX 64

static tr_status_t sum_squares(tr_task_h task)
{
    tr_ref_h refs[SUM_SQUARES_MAX];
    int64_t n, i, value, sum = 0;
    int submitted = 0;
    tr_status_t st = tr_task_arg_i64(task, 0, &n);

    if (st != TR_OK) {
        return st;
    }
    if (n < 0 || n > SUM_SQUARES_MAX) {
        tr_task_fail(task, "n must be in 0..%d, got %" PRId64, SUM_SQUARES_MAX, n);
        return TR_ERR_TASK_FAILED;
    }
    for (i = 1; i <= n && st == TR_OK; i++) {
        st = tr_task_submit(square, &TR_ARG_I64(i), 1, NULL, &refs[submitted]);
        submitted += (st == TR_OK);
    }
    for (i = 0; i < submitted; i++) {
        if (st == TR_OK) {
            st = tr_get_i64(refs[i], TR_TIMEOUT_INFINITE, &value);
            sum += value;
        }
        tr_ref_release(refs[i]); /* we own what we submitted */
    }
    if (st != TR_OK) {
        return st;
    }
    return tr_task_return_i64(task, 0, sum);
}
TR_REMOTE(sum_squares)

/* array_sum(array) = the sum of an array of int64 passed by reference.  The
 * argument points at the object's bytes (on the same node: straight into
 * shared memory, no copy), valid until the task returns. */
static tr_status_t array_sum(tr_task_h task)
{
    const void *data;
    size_t size, i;
    int64_t x, sum = 0;
    tr_status_t st = tr_task_arg(task, 0, &data, &size);

    if (st != TR_OK) {
        return st;
    }
    for (i = 0; i + sizeof(x) <= size; i += sizeof(x)) {
        memcpy(&x, (const char *)data + i, sizeof(x));
        sum += x;
    }
    return tr_task_return_i64(task, 0, sum);
}
TR_REMOTE(array_sum)

/* nap(ms): sleep @ms milliseconds, return @ms. */
static tr_status_t nap(tr_task_h task)
{
    int64_t ms;
    tr_status_t st = tr_task_arg_i64(task, 0, &ms);
    struct timespec ts;

    if (st != TR_OK) {
        return st;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    return tr_task_return_i64(task, 0, ms);
}
TR_REMOTE(nap)

/* int_sqrt(x) = floor(sqrt(x)), and a failure for negative x: the task
 * records why with tr_task_fail() and returns TR_ERR_TASK_FAILED.  Whoever
 * gets the result then sees the status and the message. */
static tr_status_t int_sqrt(tr_task_h task)
{
    int64_t x, r = 0;
    tr_status_t st = tr_task_arg_i64(task, 0, &x);

    if (st != TR_OK) {
        return st;
    }
    if (x < 0) {
        tr_task_fail(task, "cannot take the square root of %lld", (long long)x);
        return TR_ERR_TASK_FAILED;
    }
    while ((r + 1) * (r + 1) <= x) {
        r++;
    }
    return tr_task_return_i64(task, 0, r);
}
TR_REMOTE(int_sqrt)

/* ------------------------------------------------------------- the tour */

/* 1. Submitting a task returns a future (a tr_ref_h) at once; tr_get_i64()
 *    waits for its value.  The submitter owns the ref and releases it.
 *    Arguments are an array of tr_arg_t; &TR_ARG_I64(7) is an array of one. */
static int step_first_task(void)
{
    tr_ref_h ref;
    int64_t value;

    TRY(tr_task_submit(square, &TR_ARG_I64(7), 1, NULL, &ref));
    TRY(tr_get_i64(ref, TR_TIMEOUT_INFINITE, &value));
    TRY(tr_ref_release(ref));
    printf("1. square(7) = %" PRId64 "\n", value);
    CHECK(value == 49, "got %" PRId64, value);
    return 0;
}

/* 2. Submit 100 tasks before getting any result: they run in parallel on
 *    every rank.  Each returns two values, so each submission gives two
 *    refs; tr_get_many() waits for a whole array of refs at once. */
#define NUM_SQUARES 100

static int step_many_tasks(void)
{
    const tr_task_params_t two_returns = {
        .field_mask  = TR_TASK_FIELD_NUM_RETURNS,
        .num_returns = 2,
    };
    tr_ref_h squares[NUM_SQUARES], ranks[NUM_SQUARES], pair[2];
    tr_buf_h bufs[NUM_SQUARES];
    int64_t value, sum = 0, rank;
    int *count, i, size = tr_size();

    for (i = 0; i < NUM_SQUARES; i++) {
        TRY(tr_task_submit(square_where, &TR_ARG_I64(i), 1, &two_returns, pair));
        squares[i] = pair[0];
        ranks[i] = pair[1];
    }

    /* Views into the values: no copy when the value is on this node. */
    TRY(tr_get_many(squares, NUM_SQUARES, TR_TIMEOUT_INFINITE, bufs));
    for (i = 0; i < NUM_SQUARES; i++) {
        CHECK(tr_buf_size(bufs[i]) == sizeof(value), "size %zu", tr_buf_size(bufs[i]));
        memcpy(&value, tr_buf_data(bufs[i]), sizeof(value));
        sum += value;
        TRY(tr_buf_release(bufs[i]));
        TRY(tr_ref_release(squares[i]));
    }
    printf("2. sum of squares 0..%d = %" PRId64 "\n", NUM_SQUARES - 1, sum);
    CHECK(sum == 328350, "got %" PRId64, sum);

    /* Where did they run? */
    count = calloc((size_t)size, sizeof(*count));
    CHECK(count != NULL, "out of memory");
    for (i = 0; i < NUM_SQUARES; i++) {
        TRY(tr_get_i64(ranks[i], TR_TIMEOUT_INFINITE, &rank));
        TRY(tr_ref_release(ranks[i]));
        if (rank >= 0 && rank < size) {
            count[rank]++;
        }
    }
    printf("   rank  tasks\n");
    for (i = 0; i < size; i++) {
        printf("   %4d  %5d\n", i, count[i]);
    }
    free(count);
    return 0;
}

/* 3. Pass futures to other tasks: add() starts once both squares are done,
 *    and their values go from rank to rank without passing through the
 *    driver.  The driver can release its refs right after submitting add():
 *    a pending task keeps its arguments alive. */
static int step_futures_as_args(void)
{
    tr_ref_h a, b, c;
    tr_arg_t args[2];
    int64_t value;

    TRY(tr_task_submit(square, &TR_ARG_I64(3), 1, NULL, &a));
    TRY(tr_task_submit(square, &TR_ARG_I64(4), 1, NULL, &b));
    args[0] = TR_ARG_REF(a);
    args[1] = TR_ARG_REF(b);
    TRY(tr_task_submit(add, args, 2, NULL, &c));
    TRY(tr_ref_release(a));
    TRY(tr_ref_release(b));

    TRY(tr_get_i64(c, TR_TIMEOUT_INFINITE, &value));
    TRY(tr_ref_release(c));
    printf("3. add(square(3), square(4)) = %" PRId64 "\n", value);
    CHECK(value == 25, "got %" PRId64, value);
    return 0;
}

/* 4. Tasks may submit tasks: sum_squares(10) runs ten square() tasks. */
static int step_nested(void)
{
    tr_ref_h ref;
    int64_t value;

    TRY(tr_task_submit(sum_squares, &TR_ARG_I64(10), 1, NULL, &ref));
    TRY(tr_get_i64(ref, TR_TIMEOUT_INFINITE, &value));
    TRY(tr_ref_release(ref));
    printf("4. sum_squares(10) = %" PRId64 " (from 10 nested tasks)\n", value);
    CHECK(value == 385, "got %" PRId64, value);
    return 0;
}

/* 5. tr_put() copies a value into the object store once; any number of tasks
 *    can then take it by reference instead of copying it into each task. */
#define ARRAY_LEN 100000

static int step_put(void)
{
    int64_t *array, value, expected = (int64_t)ARRAY_LEN * (ARRAY_LEN + 1) / 2;
    tr_ref_h array_ref, sums[2];
    int i;

    array = malloc(ARRAY_LEN * sizeof(*array));
    CHECK(array != NULL, "out of memory");
    for (i = 0; i < ARRAY_LEN; i++) {
        array[i] = i + 1;
    }
    TRY(tr_put(array, ARRAY_LEN * sizeof(*array), &array_ref));
    free(array); /* the store has its own copy */

    for (i = 0; i < 2; i++) {
        TRY(tr_task_submit(array_sum, &TR_ARG_REF(array_ref), 1, NULL, &sums[i]));
    }
    TRY(tr_ref_release(array_ref));
    for (i = 0; i < 2; i++) {
        TRY(tr_get_i64(sums[i], TR_TIMEOUT_INFINITE, &value));
        TRY(tr_ref_release(sums[i]));
        CHECK(value == expected, "task %d got %" PRId64, i, value);
    }
    printf("5. two tasks summed the same %d-element object: %" PRId64 "\n", ARRAY_LEN,
           value);
    return 0;
}

/* 6. tr_wait() returns as soon as k of n refs are ready, like ray.wait():
 *    here the first 10 of 50 tasks of different lengths. */
#define NUM_NAPS  50
#define NUM_FIRST 10

static int step_wait(void)
{
    tr_ref_h naps[NUM_NAPS];
    size_t ready[NUM_NAPS], num_ready, i;
    int64_t ms;

    for (i = 0; i < NUM_NAPS; i++) {
        TRY(tr_task_submit(nap, &TR_ARG_I64(1 + (int64_t)(i * 7 % 20)), 1, NULL, &naps[i]));
    }
    TRY(tr_wait(naps, NUM_NAPS, NUM_FIRST, TR_TIMEOUT_INFINITE, ready, &num_ready));
    CHECK(num_ready == NUM_FIRST, "%zu ready", num_ready);

    printf("6. the first %d of %d tasks to finish:", NUM_FIRST, NUM_NAPS);
    for (i = 0; i < num_ready; i++) {
        CHECK(ready[i] < NUM_NAPS && (i == 0 || ready[i] > ready[i - 1]),
              "bad index %zu", ready[i]);
        /* A ready ref's value is there: a zero timeout is enough. */
        TRY(tr_get_i64(naps[ready[i]], 0, &ms));
        CHECK(ms == 1 + (int64_t)(ready[i] * 7 % 20), "got %" PRId64, ms);
        printf(" %zu", ready[i]);
    }
    printf("\n");

    for (i = 0; i < NUM_NAPS; i++) {
        TRY(tr_ref_release(naps[i])); /* the other 40 finish on their own */
    }
    return 0;
}

/* 7. A task that fails returns its error as a status, not a crash: tr_get()
 *    returns TR_ERR_TASK_FAILED and tr_last_error() has the task's message.
 *    A task that takes a failed future as an argument fails too, without
 *    running. */
static int step_errors(void)
{
    tr_ref_h bad, dependent;
    tr_arg_t args[2];
    int64_t value;
    tr_status_t st, why;
    int rank;
    char msg[256];

    TRY(tr_task_submit(int_sqrt, &TR_ARG_I64(-4), 1, NULL, &bad));
    st = tr_get_i64(bad, TR_TIMEOUT_INFINITE, &value);
    printf("7. int_sqrt(-4): %s: %s\n", tr_status_string(st), tr_last_error());
    CHECK(st == TR_ERR_TASK_FAILED, "got %s", tr_status_string(st));
    CHECK(strstr(tr_last_error(), "cannot take the square root of -4") != NULL,
          "message \"%s\"", tr_last_error());

    /* The failure is also kept with the object itself. */
    TRY(tr_ref_error(bad, &why, &rank, msg, sizeof(msg)));
    printf("   tr_ref_error: %s on rank %d: %s\n", tr_status_string(why), rank, msg);
    CHECK(why == TR_ERR_TASK_FAILED, "got %s", tr_status_string(why));

    args[0] = TR_ARG_REF(bad);
    args[1] = TR_ARG_I64(1);
    TRY(tr_task_submit(add, args, 2, NULL, &dependent));
    st = tr_get_i64(dependent, TR_TIMEOUT_INFINITE, &value);
    printf("   add(int_sqrt(-4), 1): %s: %s\n", tr_status_string(st), tr_last_error());
    CHECK(st == TR_ERR_TASK_FAILED, "got %s", tr_status_string(st));

    TRY(tr_ref_release(dependent));
    TRY(tr_ref_release(bad));
    return 0;
}

static int tour(void)
{
    int failed = 0;

    printf("taskray %s, %d rank(s)\n", tr_version(), tr_size());
    failed += step_first_task();
    failed += step_many_tasks();
    failed += step_futures_as_args();
    failed += step_nested();
    failed += step_put();
    failed += step_wait();
    failed += step_errors();
    return failed;
}

int main(void)
{
    tr_status_t st;
    int failed = 0, driver;

    st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "quickstart: tr_init: %s (%s)\n", tr_status_string(st),
                tr_last_error());
        return 1;
    }

    driver = tr_is_driver();
    if (driver) {
        failed = tour();
    }

    /* The driver waits here for what it owns and then stops every rank; the
     * other ranks serve tasks in here until then. */
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "quickstart: tr_finalize: %s\n", tr_status_string(st));
        failed++;
    }

    if (failed) {
        fprintf(stderr, "quickstart: %d step(s) failed\n", failed);
        return 1;
    }
    if (driver) {
        printf("quickstart: all checks passed\n");
    }
    return 0;
}
