/*
 * param_server: a parameter server, the actor pattern of distributed
 * training.
 *
 *   mpirun -n 4 ./param_server [-w WORKERS] [-i ITERATIONS] [-d DIM] [-l LR]
 *
 * A ParameterServer actor holds the model: DIM doubles (default 1000, so
 * each message carries 8 KB) and a version number, the count of updates
 * applied so far.  Its methods:
 *
 *   pull()                   -> (the weights as bytes, the version)
 *   push(version, gradient)  -> the new version, or 0 when refused
 *
 * A push adds -LR * gradient to the weights.  WORKERS tasks (default 4) get
 * the server with TR_ARG_ACTOR() and each make ITERATIONS updates (default
 * 50): pull the weights w, compute the gradient of the quadratic loss
 * |w - target|^2 / 2, which is w - target (the target is a fixed vector
 * every rank can compute), and push it.
 *
 * The version check.  Asynchronous SGD usually applies gradients computed
 * from weights that other workers have since changed ("stale" gradients);
 * that converges, but the result then depends on the timing.  Here push()
 * refuses a gradient computed from an old version and the worker pulls
 * again, so every applied push is exactly one step of gradient descent,
 *   w <- w - LR * (w - target),
 * which shrinks the distance to the target by exactly (1 - LR), whatever
 * worker made it.  After P = WORKERS * ITERATIONS pushes, in any order:
 *   |w_P - target| = |w_0 - target| * (1 - LR)^P.
 *
 * The driver checks that the version is P, that the weights equal the same
 * P steps replayed locally, and that the distance is positive and equals
 * that value (with room for rounding).  Exit status 0 when every check
 * passed, 1 otherwise, 2 on a usage error.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <taskray.h>

/* Workers give up after this many refused pushes per applied one. */
#define MAX_REFUSED_PER_PUSH 10000

/* -------------------------------------------------------------- the model
 *
 * Plain C, used by the actor, the workers and the driver's replay alike.
 */

/* The target and the starting weights: fixed, so every rank knows them. */
static double target_at(size_t i) { return (double)((i * 37) % 101) / 50.0 - 1.0; }
static double initial_at(size_t i) { return 2.0 - (double)((i * 13) % 17) / 8.0; }

/* The gradient of |w - target|^2 / 2. */
static void gradient(const double *w, double *g, size_t dim)
{
    size_t i;

    for (i = 0; i < dim; i++) {
        g[i] = w[i] - target_at(i);
    }
}

/* One step of gradient descent. */
static void sgd_step(double *w, const double *g, double lr, size_t dim)
{
    size_t i;

    for (i = 0; i < dim; i++) {
        w[i] -= lr * g[i];
    }
}

static double distance_to_target(const double *w, size_t dim)
{
    double sum = 0.0, e;
    size_t i;

    for (i = 0; i < dim; i++) {
        e = w[i] - target_at(i);
        sum += e * e;
    }
    return sqrt(sum);
}

/* ---------------------------------------------- the ParameterServer class */

typedef struct server {
    size_t  dim;
    double  lr;
    int64_t version; /* pushes applied */
    double *w;
} server_t;

/* ParameterServer(initial weights as bytes, learning rate) */
static tr_status_t server_init(tr_task_h task, void **state_p)
{
    const void *data;
    size_t size;
    double lr;
    server_t *s;

    if (tr_task_num_args(task) != 2 || tr_task_arg(task, 0, &data, &size) != TR_OK ||
        size == 0 || size % sizeof(double) != 0 || tr_task_arg_f64(task, 1, &lr) != TR_OK) {
        tr_task_fail(task, "ParameterServer takes (weights as bytes, learning rate as f64)");
        return TR_ERR_TASK_FAILED;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->w = malloc(size)) == NULL) {
        free(s);
        return TR_ERR_NO_MEMORY;
    }
    memcpy(s->w, data, size);
    s->dim = size / sizeof(double);
    s->lr = lr;
    *state_p = s;
    return TR_OK;
}

static void server_fini(void *state)
{
    server_t *s = state;

    free(s->w);
    free(s);
}

/* pull() -> (weights, version).  tr_task_return_alloc() gives the return's
 * memory to fill in place: one copy, from the state into the result. */
static tr_status_t server_pull(tr_task_h task, void *state)
{
    const server_t *s = state;
    void *out;
    tr_status_t st = tr_task_return_alloc(task, 0, s->dim * sizeof(double), &out);

    if (st != TR_OK) {
        return st;
    }
    memcpy(out, s->w, s->dim * sizeof(double));
    return tr_task_return_i64(task, 1, s->version);
}

/* push(version, gradient) -> the new version, or 0 when @version is not the
 * current one (the gradient was computed from old weights). */
static tr_status_t server_push(tr_task_h task, void *state)
{
    server_t *s = state;
    const void *grad;
    size_t size;
    int64_t version;

    if (tr_task_arg_i64(task, 0, &version) != TR_OK || tr_task_arg(task, 1, &grad, &size) != TR_OK ||
        size != s->dim * sizeof(double)) {
        tr_task_fail(task, "push takes (version as i64, gradient as %zu bytes)", s->dim * sizeof(double));
        return TR_ERR_TASK_FAILED;
    }
    if (version != s->version) {
        return tr_task_return_i64(task, 0, 0);
    }
    /* The argument's bytes may not be aligned for doubles: copy them out. */
    {
        double *g = malloc(size);

        if (g == NULL) {
            return TR_ERR_NO_MEMORY;
        }
        memcpy(g, grad, size);
        sgd_step(s->w, g, s->lr, s->dim);
        free(g);
    }
    s->version++;
    return tr_task_return_i64(task, 0, s->version);
}

static const tr_actor_method_t server_methods[] = {
    { "pull", server_pull },
    { "push", server_push },
};

static const tr_actor_class_t server_class = {
    .name = "ParameterServer",
    .init = server_init,
    .fini = server_fini,
    .methods = server_methods,
    .num_methods = (int)(sizeof(server_methods) / sizeof(server_methods[0])),
};

/* ---------------------------------------------------------------- workers */

/* One pull and one push: 1 when the push was applied, 0 when refused, -1
 * after tr_task_fail(). */
static int train_step(tr_task_h task, tr_actor_h ps, double *w, double *g, size_t dim, int64_t id)
{
    const tr_task_params_t two = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    tr_ref_h pulled[2], pushed;
    tr_arg_t args[2];
    int64_t version, applied;
    size_t size = 0;
    tr_status_t st;

    st = tr_actor_call(ps, "pull", NULL, 0, &two, pulled);
    if (st != TR_OK) {
        tr_task_fail(task, "worker %" PRId64 ": pull: %s (%s)", id, tr_status_string(st), tr_last_error());
        return -1;
    }
    st = tr_get_copy(pulled[0], TR_TIMEOUT_INFINITE, w, dim * sizeof(double), &size);
    if (st == TR_OK) {
        st = tr_get_i64(pulled[1], TR_TIMEOUT_INFINITE, &version);
    }
    tr_ref_release(pulled[0]);
    tr_ref_release(pulled[1]);
    if (st != TR_OK || size != dim * sizeof(double)) {
        tr_task_fail(task, "worker %" PRId64 ": pull: %s (%s), %zu bytes", id, tr_status_string(st),
                     tr_last_error(), size);
        return -1;
    }

    gradient(w, g, dim);

    /* The gradient's bytes are copied when the call is made: g can be
     * reused at once. */
    args[0] = TR_ARG_I64(version);
    args[1] = TR_ARG_BYTES(g, dim * sizeof(double));
    st = tr_actor_call(ps, "push", args, 2, NULL, &pushed);
    if (st == TR_OK) {
        st = tr_get_i64(pushed, TR_TIMEOUT_INFINITE, &applied);
        tr_ref_release(pushed);
    }
    if (st != TR_OK) {
        tr_task_fail(task, "worker %" PRId64 ": push: %s (%s)", id, tr_status_string(st), tr_last_error());
        return -1;
    }
    return applied != 0;
}

/* worker(server, id, iterations, dim) -> (pushes refused, its rank) */
static tr_status_t worker(tr_task_h task)
{
    tr_actor_h ps;
    int64_t id, iterations, dim, done = 0, refused = 0;
    double *w, *g;
    tr_status_t st = TR_OK;
    int r;

    if (tr_task_arg_i64(task, 1, &id) != TR_OK || tr_task_arg_i64(task, 2, &iterations) != TR_OK ||
        tr_task_arg_i64(task, 3, &dim) != TR_OK || dim <= 0) {
        tr_task_fail(task, "worker takes (server, id, iterations, dim)");
        return TR_ERR_TASK_FAILED;
    }
    /* Argument 0 came with TR_ARG_ACTOR(): our own handle to the server. */
    st = tr_task_arg_actor(task, 0, &ps);
    if (st != TR_OK) {
        tr_task_fail(task, "worker %" PRId64 ": tr_task_arg_actor: %s (%s)", id, tr_status_string(st),
                     tr_last_error());
        return st;
    }
    w = malloc((size_t)dim * sizeof(double));
    g = malloc((size_t)dim * sizeof(double));
    if (w == NULL || g == NULL) {
        st = TR_ERR_NO_MEMORY;
    }
    while (st == TR_OK && done < iterations) {
        r = train_step(task, ps, w, g, (size_t)dim, id);
        if (r < 0) {
            st = TR_ERR_TASK_FAILED;
        } else if (r == 1) {
            done++;
        } else if (++refused > (done + 1) * MAX_REFUSED_PER_PUSH) {
            tr_task_fail(task, "worker %" PRId64 ": %" PRId64 " pushes refused for %" PRId64 " applied",
                         id, refused, done);
            st = TR_ERR_TASK_FAILED;
        }
    }
    free(w);
    free(g);
    tr_actor_release(ps);
    if (st == TR_OK) {
        st = tr_task_return_i64(task, 0, refused);
    }
    if (st == TR_OK) {
        st = tr_task_return_i64(task, 1, tr_task_rank(task));
    }
    return st;
}
TR_REMOTE(worker)

/* ----------------------------------------------------------------- driver */

#define TRY(call)                                                              \
    do {                                                                       \
        tr_status_t try_st_ = (call);                                          \
        if (try_st_ != TR_OK) {                                                \
            fprintf(stderr, "param_server:%d: %s: %s (%s)\n", __LINE__, #call, \
                    tr_status_string(try_st_), tr_last_error());               \
            goto out;                                                          \
        }                                                                      \
    } while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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
    fprintf(f, "usage: param_server [-w WORKERS] [-i ITERATIONS] [-d DIM] [-l LR]\n"
               "  -w WORKERS     worker tasks (default 4)\n"
               "  -i ITERATIONS  pushes applied per worker (default 50)\n"
               "  -d DIM         doubles in the model (default 1000)\n"
               "  -l LR          learning rate, 0 < LR < 1 (default 0.05)\n");
}

/* The driver's part; returns the exit status. */
static int run(int64_t workers, int64_t iterations, int64_t dim, double lr)
{
    const tr_task_params_t two = { .field_mask = TR_TASK_FIELD_NUM_RETURNS, .num_returns = 2 };
    const size_t d = (size_t)dim, bytes = d * sizeof(double);
    const int64_t pushes = workers * iterations;
    tr_actor_h ps = TR_ACTOR_NULL;
    tr_ref_h (*task_refs)[2] = NULL, pulled[2] = { TR_REF_NULL, TR_REF_NULL };
    tr_arg_t args[4];
    double *w0 = NULL, *w = NULL, *replay = NULL, *g = NULL;
    double t0, elapsed, d0, dist, bound, lo, hi, tol, diff, max_diff = 0.0, scale = 0.0;
    int64_t i, made = 0, refused, rank, total_refused = 0, version;
    size_t j, size = 0;
    int rc = 1;

    w0 = malloc(bytes);
    w = malloc(bytes);
    replay = malloc(bytes);
    g = malloc(bytes);
    task_refs = calloc((size_t)workers, sizeof(*task_refs));
    if (w0 == NULL || w == NULL || replay == NULL || g == NULL || task_refs == NULL) {
        fprintf(stderr, "param_server: out of memory\n");
        goto out;
    }
    for (j = 0; j < d; j++) {
        w0[j] = initial_at(j);
    }
    d0 = distance_to_target(w0, d);

    /* The server: the weights are copied into the constructor's arguments,
     * so w0 stays ours. */
    args[0] = TR_ARG_BYTES(w0, bytes);
    args[1] = TR_ARG_F64(lr);
    TRY(tr_actor_create("ParameterServer", args, 2, NULL, &ps));

    /* The workers: each borrows the server's handle. */
    t0 = now_s();
    for (i = 0; i < workers; i++) {
        args[0] = TR_ARG_ACTOR(ps);
        args[1] = TR_ARG_I64(i);
        args[2] = TR_ARG_I64(iterations);
        args[3] = TR_ARG_I64(dim);
        TRY(tr_task_submit(worker, args, 4, &two, task_refs[i]));
        made++;
    }
    printf("workers:");
    for (i = 0; i < workers; i++) {
        TRY(tr_get_i64(task_refs[i][0], TR_TIMEOUT_INFINITE, &refused));
        TRY(tr_get_i64(task_refs[i][1], TR_TIMEOUT_INFINITE, &rank));
        printf(" %" PRId64 "@rank%" PRId64, i, rank);
        total_refused += refused;
    }
    elapsed = now_s() - t0;
    printf("\n");

    /* Every worker is done: the final weights. */
    TRY(tr_actor_call(ps, "pull", NULL, 0, &two, pulled));
    TRY(tr_get_copy(pulled[0], TR_TIMEOUT_INFINITE, w, bytes, &size));
    TRY(tr_get_i64(pulled[1], TR_TIMEOUT_INFINITE, &version));
    if (size != bytes) {
        fprintf(stderr, "param_server: pull returned %zu bytes, expected %zu\n", size, bytes);
        goto out;
    }

    /* Replay the P steps here, with the same code. */
    memcpy(replay, w0, bytes);
    for (i = 0; i < pushes; i++) {
        gradient(replay, g, d);
        sgd_step(replay, g, lr, d);
    }
    for (j = 0; j < d; j++) {
        diff = fabs(w[j] - replay[j]);
        max_diff = diff > max_diff ? diff : max_diff;
        scale = fmax(scale, fmax(fabs(w0[j]), fabs(target_at(j))));
    }

    /* Each step shrinks the distance by (1 - lr).  Each step also rounds
     * each weight (at most scale * DBL_EPSILON or so, since every weight
     * stays between its start and its target), and those errors shrink by
     * (1 - lr) too: in all at most 4 * DBL_EPSILON * scale / lr per weight.
     * The replay runs the same code, so it should match exactly; the
     * rounding allowance covers a compiler that contracts a * b + c
     * differently in the two places. */
    tol = 4.0 * DBL_EPSILON * scale / lr;
    dist = distance_to_target(w, d);
    bound = d0 * pow(1.0 - lr, (double)pushes);
    lo = bound * (1.0 - 1e-9) - sqrt((double)d) * tol;
    hi = bound * (1.0 + 1e-9) + sqrt((double)d) * tol;

    printf("%" PRId64 " workers x %" PRId64 " pushes of %zu doubles on %d rank(s): %.3f s, %.0f pushes/s,"
           " %" PRId64 " stale pushes refused\n",
           workers, iterations, d, tr_size(), elapsed, (double)pushes / elapsed, total_refused);
    printf("distance to target: %.6e -> %.6e (bound %.6e = %.6e x (1 - %g)^%" PRId64 ")\n", d0, dist,
           bound, d0, lr, pushes);

    if (version != pushes) {
        fprintf(stderr, "param_server: version %" PRId64 ", expected %" PRId64 " pushes\n", version, pushes);
        goto out;
    }
    if (!(max_diff <= tol)) {
        fprintf(stderr, "param_server: the weights differ from a local replay by up to %.3e\n", max_diff);
        goto out;
    }
    /* Two-sided: not only converged, but by exactly P steps.  (lo > 0 for
     * any reasonable P; it makes dist > 0 part of the check.) */
    if (!(dist >= lo && dist <= hi && (dist > 0.0 || lo <= 0.0))) {
        fprintf(stderr, "param_server: distance %.17g is not in [%.17g, %.17g]\n", dist, lo, hi);
        goto out;
    }
    printf("param_server: ok\n");
    rc = 0;
out:
    if (pulled[0] != TR_REF_NULL) {
        tr_ref_release(pulled[0]);
        tr_ref_release(pulled[1]);
    }
    for (i = 0; i < made; i++) {
        tr_ref_release(task_refs[i][0]);
        tr_ref_release(task_refs[i][1]);
    }
    if (ps != TR_ACTOR_NULL) {
        tr_actor_release(ps);
    }
    free(task_refs);
    free(w0);
    free(w);
    free(replay);
    free(g);
    return rc;
}

int main(int argc, char **argv)
{
    int64_t workers = 4, iterations = 50, dim = 1000;
    double lr = 0.05;
    char *end;
    tr_status_t st;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "w:i:d:l:h")) != -1) {
        switch (opt) {
        case 'w':
            if (parse_int(optarg, 1, 10000, &workers) != 0) {
                fprintf(stderr, "param_server: bad worker count '%s' (1..10000)\n", optarg);
                return 2;
            }
            break;
        case 'i':
            if (parse_int(optarg, 0, 1000000, &iterations) != 0) {
                fprintf(stderr, "param_server: bad iteration count '%s' (0..1000000)\n", optarg);
                return 2;
            }
            break;
        case 'd':
            if (parse_int(optarg, 1, 100000000, &dim) != 0) {
                fprintf(stderr, "param_server: bad dimension '%s' (1..100000000)\n", optarg);
                return 2;
            }
            break;
        case 'l':
            errno = 0;
            lr = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(lr > 0.0 && lr < 1.0)) {
                fprintf(stderr, "param_server: bad learning rate '%s' (0 < LR < 1)\n", optarg);
                return 2;
            }
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

    /* Register the class on every rank, before tr_init(). */
    st = tr_actor_class_register(&server_class);
    if (st != TR_OK) {
        fprintf(stderr, "param_server: tr_actor_class_register: %s (%s)\n", tr_status_string(st),
                tr_last_error());
        return 1;
    }
    st = tr_init(NULL);
    if (st != TR_OK) {
        fprintf(stderr, "param_server: tr_init: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_is_driver()) {
        rc = run(workers, iterations, dim, lr);
    }
    st = tr_finalize();
    if (st != TR_OK) {
        fprintf(stderr, "param_server: tr_finalize: %s\n", tr_status_string(st));
        rc = 1;
    }
    return rc;
}
