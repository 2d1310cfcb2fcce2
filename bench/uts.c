/*
 * uts: Unbalanced Tree Search on taskray, with parallel efficiency against
 * a serial traversal measured in the same run.  See bench/README.md.
 *
 *   mpirun -n N bench/uts [--json] [--depth D] [--seed R] [--b0 B] [--chunk K] [--split W]
 *                         [--runs M]
 *
 * The tree is UTS's geometric tree with a fixed branching factor (T1's
 * shape: -t 1 -a 3): every node above depth D has a number of children drawn
 * from a geometric distribution of mean B (capped at 100), nodes at depth D
 * have none.  A node is a 20-byte SHA-1 state: the root's is SHA-1(16 zero
 * bytes, R as 4 big-endian bytes), child i's is SHA-1(parent's state, i as 4
 * big-endian bytes) (OpenSSL libcrypto), and the number of children comes
 * from the state's last 31 bits.  The defaults (D 10, B 4, R 19) are UTS's
 * T1 tree: 4,130,071 nodes.
 *
 * Rank 0 first traverses the tree serially (one thread: the same walk code
 * with splitting off), then in parallel with taskray tasks: a task walks its
 * nodes depth-first with an explicit stack; every K nodes, when the stack
 * holds at least 2 nodes, it submits the shallowest half of the stack as a
 * new task (nested submission).  It returns its counts with the refs of the
 * tasks it spawned (tr_task_return_refs); the driver tr_waits on the
 * growing set of refs (whatever is ready every few milliseconds), reads each
 * result with tr_get_buffer and adds the spawned refs with tr_buf_refs.  Both traversals must count the same nodes.
 *
 *   efficiency = serial_s / (parallel_s * workers)
 *
 * where workers is the job's executors (tr_rank_info), one per rank when
 * each rank has a core of its own (the default when ranks share a node:
 * taskray splits its cores among them).  --json prints one JSON object on rank 0's
 * stdout; otherwise a few lines of text.  Exit status 1 when anything fails,
 * the counts included.
 */
#define _POSIX_C_SOURCE 200809L
#include <taskray.h>

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define UTS_MAX_CHILDREN 100
#define WAIT_MS          600000

/* One tree node: its SHA-1 state and depth (the stack's element, and the
 * bytes a spawned task receives). */
typedef struct uts_node {
    unsigned char state[20];
    int32_t       height;
} uts_node_t;

/* What a walk counted; also a task's return value (then followed by refs). */
typedef struct uts_count {
    int64_t nodes;
    int64_t leaves;
    int64_t max_height;
    int64_t spawned;  /* tasks it submitted */
    int64_t rank;     /* a task's: where it ran */
    double  busy_s;   /* a task's: how long it ran */
} uts_count_t;

/* The tree, and how often a task splits. */
typedef struct uts_params {
    int64_t depth;
    double  b0;
    int64_t chunk;  /* K; 0: never split (the serial walk) */
    int64_t split;  /* W: the shallowest half of the stack goes out as up to W tasks */
} uts_params_t;

/* A walk in progress: its stack, its SHA-1 context, the tasks it spawned. */
typedef struct uts_walk {
    uts_params_t  p;
    double        log_q;    /* log(1 - 1/(1 + b0)) */
    EVP_MD_CTX   *ctx;
    const EVP_MD *md;
    uts_node_t   *stack;
    size_t        sp, cap;
    tr_ref_h     *kids;
    size_t        nkids, kcap;
    uts_count_t   c;
} uts_walk_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int sha1(uts_walk_t *w, const unsigned char *a, size_t na, const unsigned char be[4],
                unsigned char out[20])
{
    unsigned int len = 0;
    if (EVP_DigestInit_ex(w->ctx, w->md, NULL) != 1 || EVP_DigestUpdate(w->ctx, a, na) != 1 ||
        EVP_DigestUpdate(w->ctx, be, 4) != 1 || EVP_DigestFinal_ex(w->ctx, out, &len) != 1 || len != 20)
        return -1;
    return 0;
}

static void be32(uint32_t v, unsigned char b[4])
{
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

/* Children of @n: geometric of mean b0 above the depth limit, none at it. */
static int num_children(const uts_walk_t *w, const uts_node_t *n)
{
    if (n->height >= w->p.depth) return 0;
    const unsigned char *s = n->state;
    uint32_t r = ((uint32_t)s[16] << 24 | (uint32_t)s[17] << 16 | (uint32_t)s[18] << 8 | s[19]) & 0x7fffffffu;
    double u = (double)r / 2147483648.0;
    int k = (int)floor(log(1.0 - u) / w->log_q);
    return k > UTS_MAX_CHILDREN ? UTS_MAX_CHILDREN : k;
}

static int walk_init(uts_walk_t *w, const uts_params_t *p, const EVP_MD *md)
{
    memset(w, 0, sizeof(*w));
    w->p = *p;
    w->log_q = log(1.0 - 1.0 / (1.0 + p->b0));
    w->md = md;
    w->ctx = EVP_MD_CTX_new();
    w->cap = 1024;
    w->stack = malloc(w->cap * sizeof(*w->stack));
    return w->ctx != NULL && w->stack != NULL ? 0 : -1;
}

static void walk_fini(uts_walk_t *w)
{
    for (size_t i = 0; i < w->nkids; i++) tr_ref_release(w->kids[i]);
    free(w->kids);
    free(w->stack);
    EVP_MD_CTX_free(w->ctx);
}

static int walk_push(uts_walk_t *w, const uts_node_t *nodes, size_t n)
{
    if (w->sp + n > w->cap) {
        size_t cap = w->cap;
        while (w->sp + n > cap) cap *= 2;
        uts_node_t *s = realloc(w->stack, cap * sizeof(*s));
        if (s == NULL) return -1;
        w->stack = s, w->cap = cap;
    }
    memcpy(w->stack + w->sp, nodes, n * sizeof(*nodes));
    w->sp += n;
    return 0;
}

static tr_status_t fn_uts_walk(tr_task_h t);

/* Submit the shallowest half of the stack (its bottom) as up to W new
 * tasks.  One task per split makes about one child per task (the half
 * left behind is small and done soon): the number of live tasks then
 * stays near constant, too few for many ranks.  W tasks per split let it
 * grow. */
static tr_status_t walk_split(uts_walk_t *w)
{
    size_t half = w->sp / 2;
    size_t ways = (size_t)w->p.split < half ? (size_t)w->p.split : half, off = 0;
    for (size_t j = 0; j < ways; j++) {
        size_t n = half / ways + (j < half % ways);
        if (w->nkids == w->kcap) {
            size_t cap = w->kcap ? 2 * w->kcap : 16;
            tr_ref_h *k = realloc(w->kids, cap * sizeof(*k));
            if (k == NULL) return TR_ERR_NO_MEMORY;
            w->kids = k, w->kcap = cap;
        }
        tr_arg_t a[5] = { TR_ARG_BYTES(w->stack + off, n * sizeof(*w->stack)), TR_ARG_I64(w->p.depth),
                          TR_ARG_F64(w->p.b0), TR_ARG_I64(w->p.chunk), TR_ARG_I64(w->p.split) };
        tr_status_t st = tr_task_submit(fn_uts_walk, a, 5, NULL, &w->kids[w->nkids]);
        if (st != TR_OK) return st;
        w->nkids++;
        w->c.spawned++;
        off += n;
    }
    memmove(w->stack, w->stack + half, (w->sp - half) * sizeof(*w->stack));
    w->sp -= half;
    return TR_OK;
}

/* Depth-first walk of everything on the stack; splits every chunk nodes. */
static tr_status_t walk_run(uts_walk_t *w)
{
    int64_t since = 0;
    while (w->sp > 0) {
        uts_node_t n = w->stack[--w->sp];
        w->c.nodes++;
        if (n.height > w->c.max_height) w->c.max_height = n.height;
        int k = num_children(w, &n);
        if (k == 0) w->c.leaves++;
        for (int i = 0; i < k; i++) {
            uts_node_t child = { .height = n.height + 1 };
            unsigned char b[4];
            be32((uint32_t)i, b);
            if (sha1(w, n.state, sizeof(n.state), b, child.state) != 0) return TR_ERR_SYSTEM;
            if (walk_push(w, &child, 1) != 0) return TR_ERR_NO_MEMORY;
        }
        if (w->p.chunk > 0 && ++since >= w->p.chunk) {
            since = 0;
            if (w->sp >= 2) {
                tr_status_t st = walk_split(w);
                if (st != TR_OK) return st;
            }
        }
    }
    return TR_OK;
}

static const EVP_MD *sha1_md(void)
{
    static const EVP_MD *md;  /* EVP_sha1() is a static table: thread-safe */
    if (md == NULL) md = EVP_sha1();
    return md;
}

/* uts_walk(nodes as bytes, depth, b0, chunk): counts + refs of the spawned. */
static tr_status_t fn_uts_walk(tr_task_h t)
{
    const void *data = NULL;
    size_t size = 0;
    uts_params_t p = { 0, 0, 0, 1 };
    if (tr_task_arg(t, 0, &data, &size) != TR_OK || size % sizeof(uts_node_t) != 0 ||
        tr_task_arg_i64(t, 1, &p.depth) != TR_OK || tr_task_arg_f64(t, 2, &p.b0) != TR_OK ||
        tr_task_arg_i64(t, 3, &p.chunk) != TR_OK || tr_task_arg_i64(t, 4, &p.split) != TR_OK || p.split < 1) {
        tr_task_fail(t, "uts_walk: malformed arguments");
        return TR_ERR_TASK_FAILED;
    }
    double t0 = mono_s();
    uts_walk_t w;
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (walk_init(&w, &p, sha1_md()) != 0 || walk_push(&w, data, size / sizeof(uts_node_t)) != 0) goto out;
    st = walk_run(&w);
    w.c.rank = tr_task_rank(t);
    w.c.busy_s = mono_s() - t0;
    if (st == TR_OK) st = tr_task_return_refs(t, 0, &w.c, sizeof(w.c), w.kids, w.nkids);
out:
    if (st != TR_OK) tr_task_fail(t, "uts_walk on rank %d: %s", tr_task_rank(t), tr_status_string(st));
    walk_fini(&w);
    return st == TR_OK ? TR_OK : TR_ERR_TASK_FAILED;
}
TR_REMOTE(fn_uts_walk)

static int serial(const uts_params_t *p, const uts_node_t *root, uts_count_t *c_p);

/* uts_serial(root as bytes, depth, b0): the whole serial walk on one rank,
 * for the limit (every rank at once); returns the node count. */
static tr_status_t fn_uts_serial(tr_task_h t)
{
    const void *data = NULL;
    size_t size = 0;
    uts_params_t p = { 0, 0, 0, 1 };
    uts_count_t c;
    if (tr_task_arg(t, 0, &data, &size) != TR_OK || size != sizeof(uts_node_t) ||
        tr_task_arg_i64(t, 1, &p.depth) != TR_OK || tr_task_arg_f64(t, 2, &p.b0) != TR_OK) {
        tr_task_fail(t, "uts_serial: malformed arguments");
        return TR_ERR_TASK_FAILED;
    }
    if (serial(&p, data, &c) != 0) {
        tr_task_fail(t, "uts_serial on rank %d failed", tr_task_rank(t));
        return TR_ERR_TASK_FAILED;
    }
    return tr_task_return_i64(t, 0, c.nodes);
}
TR_REMOTE(fn_uts_serial)

static int root_node(int64_t seed, uts_node_t *root)
{
    unsigned char zero[16] = { 0 }, b[4];
    unsigned int len = 0;
    be32((uint32_t)seed, b);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, sha1_md(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, zero, sizeof(zero)) == 1 && EVP_DigestUpdate(ctx, b, 4) == 1 &&
             EVP_DigestFinal_ex(ctx, root->state, &len) == 1 && len == 20;
    EVP_MD_CTX_free(ctx);
    root->height = 0;
    return ok ? 0 : -1;
}

static int serial(const uts_params_t *p, const uts_node_t *root, uts_count_t *c_p)
{
    uts_params_t sp = *p;
    sp.chunk = 0;
    uts_walk_t w;
    int rc = -1;
    if (walk_init(&w, &sp, sha1_md()) == 0 && walk_push(&w, root, 1) == 0 && walk_run(&w) == TR_OK) {
        *c_p = w.c;
        rc = 0;
    }
    walk_fini(&w);
    return rc;
}

/* The refs the driver waits on: grows as tasks report their children. */
typedef struct pending {
    tr_ref_h *refs;
    size_t   *idx;
    size_t    n, cap;
} pending_t;

static int pending_reserve(pending_t *p, size_t more)
{
    if (p->n + more <= p->cap) return 0;
    size_t cap = p->cap ? p->cap : 1024;
    while (p->n + more > cap) cap *= 2;
    tr_ref_h *r = realloc(p->refs, cap * sizeof(*r));
    if (r == NULL) return -1;
    p->refs = r;
    size_t *i = realloc(p->idx, cap * sizeof(*i));
    if (i == NULL) return -1;
    p->idx = i, p->cap = cap;
    return 0;
}

/* One finished task: add its counts to @c and its children's refs to @p. */
static tr_status_t collect(tr_ref_h r, pending_t *p, uts_count_t *c, double *busy)
{
    const void *data = NULL;
    size_t size = 0;
    tr_buf_h buf = TR_BUF_NULL;
    tr_status_t st = tr_get_buffer(r, WAIT_MS, &data, &size, &buf);
    if (st != TR_OK) return st;
    uts_count_t tc;
    size_t nk = tr_buf_num_refs(buf);
    if (size != sizeof(tc)) st = TR_ERR_PROTOCOL;
    else if (pending_reserve(p, nk) != 0) st = TR_ERR_NO_MEMORY;
    else if (nk > 0) st = tr_buf_refs(buf, p->refs + p->n, nk);
    if (st == TR_OK) {
        memcpy(&tc, data, sizeof(tc));
        p->n += nk;
        c->nodes += tc.nodes, c->leaves += tc.leaves, c->spawned += tc.spawned;
        if (tc.max_height > c->max_height) c->max_height = tc.max_height;
        if (tc.rank >= 0 && tc.rank < tr_size()) busy[tc.rank] += tc.busy_s;
    }
    tr_buf_release(buf);
    return st;
}

/* The parallel traversal: submit the root task, then gather every task's
 * counts and the refs it spawned until none is pending.  The driver wakes
 * for every ready result at most each GATHER_MS, not once per task, so that
 * it takes little CPU from rank 0's executors; the tasks run meanwhile
 * (their children were submitted by the tasks, not by the driver). */
#define GATHER_MS 5
static int parallel(const uts_params_t *p, const uts_node_t *root, uts_count_t *c_p, int64_t *tasks_p,
                    double *busy, char *fail, size_t flen)
{
    pending_t pend = { NULL, NULL, 0, 0 };
    tr_ref_h *ready = NULL;
    uts_count_t c = { 0, 0, 0, 0, 0, 0 };
    int64_t tasks = 0;
    tr_status_t st = TR_ERR_NO_MEMORY;
    if (pending_reserve(&pend, 1) != 0) goto out;
    tr_arg_t a[5] = { TR_ARG_BYTES(root, sizeof(*root)), TR_ARG_I64(p->depth), TR_ARG_F64(p->b0),
                      TR_ARG_I64(p->chunk), TR_ARG_I64(p->split) };
    st = tr_task_submit(fn_uts_walk, a, 5, NULL, &pend.refs[0]);
    if (st != TR_OK) goto out;
    pend.n = 1;
    double deadline = mono_s() + WAIT_MS / 1000.0;
    while (pend.n > 0) {
        size_t nready = 0;
        st = tr_wait(pend.refs, pend.n, pend.n, GATHER_MS, pend.idx, &nready);
        if (st != TR_OK) goto out;
        if (nready == 0 && mono_s() > deadline) {
            st = TR_ERR_TIMEOUT;
            goto out;
        }
        /* take the ready ones out (indices in input order), then collect */
        tr_ref_h *rd = realloc(ready, (nready ? nready : 1) * sizeof(*rd));
        if (rd == NULL) {
            st = TR_ERR_NO_MEMORY;
            goto out;
        }
        ready = rd;
        size_t w = 0, k = 0;
        for (size_t i = 0; i < pend.n; i++) {
            if (k < nready && pend.idx[k] == i) ready[k++] = pend.refs[i];
            else pend.refs[w++] = pend.refs[i];
        }
        pend.n = w;
        for (k = 0; k < nready; k++) {
            if (st == TR_OK) st = collect(ready[k], &pend, &c, busy);
            tr_ref_release(ready[k]);
            tasks++;
        }
        if (st != TR_OK) goto out;
    }
    *c_p = c;
    *tasks_p = tasks;
out:
    if (st != TR_OK) snprintf(fail, flen, "parallel traversal: %s (%s)", tr_status_string(st), tr_last_error());
    for (size_t i = 0; i < pend.n; i++) tr_ref_release(pend.refs[i]);
    free(pend.refs);
    free(pend.idx);
    free(ready);
    return st == TR_OK ? 0 : -1;
}

/* The limit: one serial walk per rank, all at once (each pinned with the
 * resource uts_rank<r>); the wall time from the first submission to the
 * last result.  serial_s over it is the best efficiency the cores give the
 * job now: 1 when every rank has a core of its own and nothing else runs. */
static int limit(const uts_params_t *p, const uts_node_t *root, int64_t nodes, double *secs_p, char *fail,
                 size_t flen)
{
    int n = tr_size();
    tr_ref_h *refs = calloc((size_t)n, sizeof(*refs));
    tr_status_t st = TR_ERR_NO_MEMORY;
    int sent = 0;
    if (refs == NULL) goto out;
    double t0 = mono_s();
    for (; sent < n; sent++) {
        char res[64];
        snprintf(res, sizeof(res), "uts_rank%d=1", sent);
        tr_task_params_t tp = { .field_mask = TR_TASK_FIELD_RESOURCES, .resources = res };
        tr_arg_t a[3] = { TR_ARG_BYTES(root, sizeof(*root)), TR_ARG_I64(p->depth), TR_ARG_F64(p->b0) };
        st = tr_task_submit(fn_uts_serial, a, 3, &tp, &refs[sent]);
        if (st != TR_OK) goto out;
    }
    for (int r = 0; r < n; r++) {
        int64_t v = 0;
        st = tr_get_i64(refs[r], WAIT_MS, &v);
        if (st != TR_OK) goto out;
        if (v != nodes) {
            snprintf(fail, flen, "the limit's walk on rank %d counted %" PRId64 " nodes, not %" PRId64, r, v,
                     nodes);
            st = TR_ERR_TASK_FAILED;
            goto out;
        }
    }
    *secs_p = mono_s() - t0;
out:
    if (st != TR_OK && fail[0] == '\0')
        snprintf(fail, flen, "limit: %s (%s)", tr_status_string(st), tr_last_error());
    for (int r = 0; r < sent; r++) tr_ref_release(refs[r]);
    free(refs);
    return st == TR_OK ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: uts [--json] [--depth D] [--seed R] [--b0 B] [--chunk K] [--split W] [--runs M]\n"
                    "  defaults: depth 10, seed 19, b0 4 (UTS T1: 4,130,071 nodes), chunk 2000, split 4, runs 1\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    uts_params_t p = { .depth = 10, .b0 = 4.0, .chunk = 2000, .split = 4 };
    int64_t seed = 19;
    int json = 0, runs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (v == NULL) goto usage;
        if (strcmp(a, "--depth") == 0) p.depth = atoll(v);
        else if (strcmp(a, "--seed") == 0) seed = atoll(v);
        else if (strcmp(a, "--b0") == 0) p.b0 = atof(v);
        else if (strcmp(a, "--chunk") == 0) p.chunk = atoll(v);
        else if (strcmp(a, "--split") == 0) p.split = atoll(v);
        else if (strcmp(a, "--runs") == 0) runs = atoi(v);
        else goto usage;
        i++;
    }
    if (p.depth < 0 || p.depth > 100000 || !(p.b0 > 0) || p.chunk < 1 || p.split < 1 || p.split > 64 || runs < 1 || runs > 100) goto usage;

    /* resource uts_rank<r>=1 on rank r, for the limit's pinned walks (added to
     * what TASKRAY_RESOURCES holds) */
    const char *rk = getenv("OMPI_COMM_WORLD_RANK");
    if (rk == NULL) rk = getenv("PMIX_RANK");
    if (rk == NULL) rk = getenv("PMI_RANK");
    if (rk == NULL) rk = getenv("SLURM_PROCID");
    const char *old = getenv("TASKRAY_RESOURCES");
    char res[512];
    snprintf(res, sizeof(res), "%s%suts_rank%s=1", old && *old ? old : "", old && *old ? "," : "",
             rk ? rk : "0");
    setenv("TASKRAY_RESOURCES", res, 1);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_MODE, .mode = TR_MODE_DRIVER };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) {
        fprintf(stderr, "uts: tr_init: %s (%s)\n", tr_status_string(st), tr_last_error());
        return 1;
    }
    if (tr_rank() != 0) return tr_finalize() == TR_OK ? 0 : 1;

    int ranks = tr_size(), executors = 0;
    for (int r = 0; r < ranks && executors >= 0; r++) {
        tr_rank_info_t ri;
        executors = tr_rank_info(r, &ri) == TR_OK ? executors + ri.num_executors : -1;
    }
    int workers = executors > 0 ? executors : ranks;
    char fail[512] = "";
    uts_node_t root;
    uts_count_t sc = { 0, 0, 0, 0, 0, 0 }, pc = { 0, 0, 0, 0, 0, 0 };
    int64_t tasks = 0;
    double ser[100], par[100], lim[100];
    double *busy = calloc((size_t)ranks, sizeof(*busy)); /* task time per rank, all runs */
    if (busy == NULL) snprintf(fail, sizeof(fail), "out of memory");
    if (root_node(seed, &root) != 0) snprintf(fail, sizeof(fail), "sha-1 of the root failed");
    /* runs alternate serial traversal, limit and parallel traversal, so that both see the
     * same machine (other jobs on shared cores); medians of each */
    for (int k = 0; k < runs && fail[0] == '\0'; k++) {
        double t0 = mono_s();
        if (serial(&p, &root, &sc) != 0) {
            snprintf(fail, sizeof(fail), "serial traversal failed");
            break;
        }
        ser[k] = mono_s() - t0;
        if (limit(&p, &root, sc.nodes, &lim[k], fail, sizeof(fail)) != 0) break;
        t0 = mono_s();
        if (parallel(&p, &root, &pc, &tasks, busy, fail, sizeof(fail)) != 0) break;
        par[k] = mono_s() - t0;
        if (pc.nodes != sc.nodes || pc.leaves != sc.leaves || pc.max_height != sc.max_height)
            snprintf(fail, sizeof(fail),
                     "the traversals disagree: serial %" PRId64 " nodes %" PRId64 " leaves depth %" PRId64
                     ", parallel %" PRId64 " nodes %" PRId64 " leaves depth %" PRId64,
                     sc.nodes, sc.leaves, sc.max_height, pc.nodes, pc.leaves, pc.max_height);
    }
    st = tr_finalize();
    if (st != TR_OK && fail[0] == '\0') snprintf(fail, sizeof(fail), "tr_finalize: %s", tr_status_string(st));
    if (fail[0] != '\0') {
        fprintf(stderr, "uts: FAIL: %s\n", fail);
        return 1;
    }
    double serial_s = median(ser, runs), parallel_s = median(par, runs), limit_s = median(lim, runs);
    double limit_eff = serial_s / limit_s;
    /* where the time went: task time over serial time (> 1: tasks ran slower
     * than the serial walk, contention or overhead), and the balance of the
     * task time over the ranks (mean / max; < 1: some rank ran out of work) */
    double busy_sum = 0, busy_max = 0;
    for (int r = 0; r < ranks; r++) {
        busy_sum += busy[r];
        if (busy[r] > busy_max) busy_max = busy[r];
    }
    double busy_s = busy_sum / runs, balance = busy_max > 0 ? busy_sum / ranks / busy_max : 0;
    free(busy);
    double eff = serial_s / (parallel_s * workers);
    double nps = (double)pc.nodes / parallel_s;
    if (json) {
        printf("{\"ranks\": %d, \"executors\": %d, \"depth\": %" PRId64 ", \"b0\": %g, \"seed\": %" PRId64
               ", \"chunk\": %" PRId64 ", \"split\": %" PRId64 ", \"runs\": %d, \"nodes\": %" PRId64 ", \"leaves\": %" PRId64
               ", \"max_depth\": %" PRId64 ", \"tasks\": %" PRId64 ", \"serial_s\": %.4f, \"parallel_s\": %.4f"
               ", \"serial_nodes_per_s\": %.0f, \"nodes_per_s\": %.0f, \"efficiency\": %.3f, \"task_s\": %.4f"
               ", \"balance\": %.3f, \"limit_s\": %.4f, \"limit_efficiency\": %.3f, \"relative_efficiency\": %.3f}\n",
               ranks, executors, p.depth, p.b0, seed, p.chunk, p.split, runs, pc.nodes, pc.leaves, pc.max_height, tasks,
               serial_s, parallel_s, (double)sc.nodes / serial_s, nps, eff, busy_s, balance, limit_s, limit_eff, eff / limit_eff);
    } else {
        printf("uts: geometric tree, depth %" PRId64 ", b0 %g, seed %" PRId64 ": %" PRId64 " nodes, %" PRId64
               " leaves, depth %" PRId64 "\n",
               p.depth, p.b0, seed, pc.nodes, pc.leaves, pc.max_height);
        printf("uts: serial   %.4f s  %.0f nodes/s (one thread on rank 0)\n", serial_s,
               (double)sc.nodes / serial_s);
        printf("uts: parallel %.4f s  %.0f nodes/s (%d ranks, %d executors, %" PRId64 " tasks, chunk %" PRId64
               ")\n",
               parallel_s, nps, ranks, executors, tasks, p.chunk);
        if (runs > 1) printf("uts: times are medians of %d runs, serial and parallel alternating\n", runs);
        printf("uts: efficiency serial_s / (parallel_s * workers) = %.3f (%d workers)\n", eff, workers);
        printf("uts: limit %.4f s: every rank walks the whole tree at once; serial_s / limit_s = %.3f,"
               " efficiency / that = %.3f\n", limit_s, limit_eff, eff / limit_eff);
        printf("uts: task time %.4f s (%.3f x serial), balance over ranks (mean / max) %.3f\n", busy_s,
               busy_s / serial_s, balance);
    }
    return 0;

usage:
    usage();
    return 2;
}
