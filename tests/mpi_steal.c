/*
 * mpi_steal: work stealing between ranks (tests/run_steal.sh).
 *
 * Usage: mpi_steal MODE, every rank (TR_MODE_DRIVER, rank 0 drives):
 *
 *   on    a parent task pinned to rank 0 (hard affinity) submits 200
 *         children of about 2 ms with a soft affinity for rank 0: they all
 *         queue there, and with TASKRAY_NUM_EXECUTORS=1 the other ranks
 *         must steal part of them; every result is checked.  Then the same
 *         with hard affinity: no child may leave rank 0.  Top-level tasks
 *         of the driver (soft affinity for rank 0) are stolen too.
 *   off   TASKRAY_STEAL=0: the soft-affine children all run on rank 0.
 *   far   every rank a node of its own (tests/per_rank_node.sh): children
 *         whose argument is a 2 MiB stored object stay on rank 0
 *         (TASKRAY_STEAL_MAX_BYTES, default 1 MiB), small ones are stolen.
 *   kill  (4 ranks, under taskray-run) top-level tasks with a soft affinity
 *         for rank 1 are stolen by ranks 2 and 3 (the owner, rank 0, learns
 *         it from MOVED); the first one rank 3 runs kills it (SIGKILL): the
 *         tasks it held run again and every result is still right.
 *
 * In "on", top-level tasks with a soft affinity for rank 1 (3 ranks or
 * more) are stolen too: their owner is not the victim (MOVED).
 *
 * Exit 0 when every check holds; rank 0 prints what ran where.
 */
#include <taskray.h>

#include <inttypes.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCHILD   200
#define BIG_SIZE (2u << 20)

static void msleep(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {}
}

/* Arg i64 i (and optionally a stored object): [0] = 3 i + 1, [1] = the rank. */
static tr_status_t st_child(tr_task_h t)
{
    int64_t i;
    tr_status_t st = tr_task_arg_i64(t, 0, &i);
    if (st != TR_OK) return st;
    if (tr_task_num_args(t) > 1) {
        const void *d;
        size_t n;
        if ((st = tr_task_arg(t, 1, &d, &n)) != TR_OK) return st;
        if (n != BIG_SIZE || ((const unsigned char *)d)[n - 1] != 0x5a)
            return tr_task_fail(t, "the big argument has %zu bytes", n);
    }
    msleep(2);
    if ((st = tr_task_return_i64(t, 0, 3 * i + 1)) != TR_OK) return st;
    return tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(st_child)

/* Args i64 i, i64 k: like st_child, and rank k dies when it runs one. */
static tr_status_t st_child_kill(tr_task_h t)
{
    int64_t i, k;
    tr_status_t st;
    if ((st = tr_task_arg_i64(t, 0, &i)) != TR_OK || (st = tr_task_arg_i64(t, 1, &k)) != TR_OK) return st;
    if (tr_task_rank(t) == k) {
        fprintf(stderr, "mpi_steal: rank %d kills itself (SIGKILL) in a task it stole\n", tr_task_rank(t));
        fflush(stderr);
        kill(getpid(), SIGKILL);
    }
    msleep(2);
    if ((st = tr_task_return_i64(t, 0, 3 * i + 1)) != TR_OK) return st;
    return tr_task_return_i64(t, 1, tr_task_rank(t));
}
TR_REMOTE(st_child_kill)

/* Args: i64 n, i64 soft, [borrowed big ref].  Submits n children with an
 * affinity for its own rank; returns [0] = children that ran elsewhere,
 * [1] = wrong results. */
static tr_status_t st_parent(tr_task_h t)
{
    int64_t n, soft;
    tr_status_t st;
    if ((st = tr_task_arg_i64(t, 0, &n)) != TR_OK || (st = tr_task_arg_i64(t, 1, &soft)) != TR_OK) return st;
    if (n < 1 || n > NCHILD) return tr_task_fail(t, "bad n %" PRId64, n);
    tr_ref_h big = TR_REF_NULL;
    if (tr_task_num_args(t) > 2 && (st = tr_task_arg_ref(t, 2, &big)) != TR_OK) return st;
    int me = tr_task_rank(t);
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS | TR_TASK_FIELD_RANK,
                           .num_returns = 2, .rank = me, .soft = (int)soft };
    static __thread tr_ref_h refs[NCHILD][2];
    for (int64_t i = 0; i < n; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i), TR_ARG_REF(big) };
        if ((st = tr_task_submit(st_child, a, big ? 2 : 1, &p, refs[i])) != TR_OK)
            return tr_task_fail(t, "submit %" PRId64 ": %s", i, tr_status_string(st));
    }
    int64_t elsewhere = 0, wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = -1, r = -1;
        if (tr_get_i64(refs[i][0], 60000, &v) != TR_OK || tr_get_i64(refs[i][1], 60000, &r) != TR_OK ||
            v != 3 * i + 1 || r < 0 || r >= tr_size())
            wrong++;
        else if (r != me)
            elsewhere++;
        tr_ref_release(refs[i][0]);
        tr_ref_release(refs[i][1]);
    }
    if (big) tr_ref_release(big);
    if ((st = tr_task_return_i64(t, 0, elsewhere)) != TR_OK) return st;
    return tr_task_return_i64(t, 1, wrong);
}
TR_REMOTE(st_parent)

/* Run a parent on rank 0 (hard); *elsewhere_p: children that left rank 0. */
static int run_parent(int soft, tr_ref_h big, int64_t *elsewhere_p)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS | TR_TASK_FIELD_RANK,
                           .num_returns = 2, .rank = 0, .soft = 0 };
    tr_arg_t a[3] = { TR_ARG_I64(NCHILD), TR_ARG_I64(soft), TR_ARG_BORROW(big) };
    tr_ref_h r[2];
    int64_t wrong = -1;
    tr_status_t st = tr_task_submit(st_parent, a, big ? 3 : 2, &p, r);
    if (st == TR_OK && (st = tr_get_i64(r[0], 120000, elsewhere_p)) == TR_OK) st = tr_get_i64(r[1], 120000, &wrong);
    if (st == TR_OK) { tr_ref_release(r[0]); tr_ref_release(r[1]); }
    if (st != TR_OK || wrong != 0) {
        fprintf(stderr, "mpi_steal: parent (soft %d, big %d): %s, %" PRId64 " wrong results: %s\n", soft, big != NULL,
                tr_status_string(st), wrong, tr_last_error());
        return 1;
    }
    printf("mpi_steal: %d children (%s affinity for rank 0%s): %" PRId64 " ran on other ranks\n", NCHILD,
           soft ? "soft" : "hard", big ? ", 2 MiB argument" : "", *elsewhere_p);
    return 0;
}

/* Top-level tasks of the driver, soft affinity for rank @to; rank @kill
 * (or -1) dies when it runs one. */
static int run_top(int to, int kill_rank, int64_t *elsewhere_p)
{
    tr_task_params_t p = { .field_mask = TR_TASK_FIELD_NUM_RETURNS | TR_TASK_FIELD_RANK,
                           .num_returns = 2, .rank = to, .soft = 1 };
    static tr_ref_h refs[NCHILD][2];
    int bad = 0;
    *elsewhere_p = 0;
    for (int i = 0; i < NCHILD / 2; i++) {
        tr_arg_t a[2] = { TR_ARG_I64(i), TR_ARG_I64(kill_rank) };
        tr_status_t st = kill_rank >= 0 ? tr_task_submit(st_child_kill, a, 2, &p, refs[i])
                                        : tr_task_submit(st_child, a, 1, &p, refs[i]);
        if (st != TR_OK) { fprintf(stderr, "submit: %s\n", tr_last_error()); return 1; }
    }
    for (int i = 0; i < NCHILD / 2; i++) {
        int64_t v = -1, r = -1;
        tr_status_t st = tr_get_i64(refs[i][0], 60000, &v);
        if (st == TR_OK) st = tr_get_i64(refs[i][1], 60000, &r);
        if (st != TR_OK || v != 3 * i + 1 || r == kill_rank) {
            if (bad++ == 0) fprintf(stderr, "mpi_steal: task %d: %s (%s), value %" PRId64 " on rank %" PRId64 "\n", i,
                                    tr_status_string(st), tr_last_error(), v, r);
        } else if (r != to) {
            ++*elsewhere_p;
        }
        tr_ref_release(refs[i][0]);
        tr_ref_release(refs[i][1]);
    }
    printf("mpi_steal: %d top-level tasks (soft affinity for rank %d): %" PRId64 " ran on other ranks, %d wrong\n",
           NCHILD / 2, to, *elsewhere_p, bad);
    return bad != 0;
}

static int check(int ok, const char *what)
{
    if (!ok) fprintf(stderr, "mpi_steal: FAIL: %s\n", what);
    return !ok;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "on";
    if (strcmp(mode, "on") != 0 && strcmp(mode, "off") != 0 && strcmp(mode, "far") != 0 && strcmp(mode, "kill") != 0) {
        fprintf(stderr, "usage: mpi_steal on|off|far|kill\n");
        return 2;
    }
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_ARGC_ARGV, .argc = &argc, .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st != TR_OK) { fprintf(stderr, "tr_init: %s: %s\n", tr_status_string(st), tr_last_error()); return 1; }
    if (tr_rank() != 0) return tr_finalize() == TR_OK ? 0 : 1;
    int bad = 0, size = tr_size();
    int64_t soft = 0, hard = -1, top = 0, top1 = 0, big = -1, small = 0;
    bad += check(tr_size() >= 2, "needs at least 2 ranks");
    if (strcmp(mode, "kill") == 0) {
        bad += check(size == 4, "kill needs 4 ranks");
        if (size == 4) {
            bad += run_top(1, 3, &top1);
            bad += check(top1 > 0, "no task was stolen from rank 1");
        }
    } else if (strcmp(mode, "far") == 0) {
        unsigned char *buf = malloc(BIG_SIZE);
        tr_ref_h ref = TR_REF_NULL;
        if (buf) { memset(buf, 0x5a, BIG_SIZE); st = tr_put(buf, BIG_SIZE, &ref); free(buf); }
        bad += check(buf && st == TR_OK, "tr_put of the big argument");
        if (ref) {
            bad += run_parent(1, ref, &big);
            tr_ref_release(ref);
        }
        bad += run_parent(1, TR_REF_NULL, &small);
        bad += check(big == 0, "a child with a 2 MiB argument was stolen across nodes");
        bad += check(small > 0, "no small child was stolen across nodes");
    } else {
        bad += run_parent(1, TR_REF_NULL, &soft);
        bad += run_parent(0, TR_REF_NULL, &hard);
        bad += run_top(0, -1, &top);
        if (size >= 3) bad += run_top(1, -1, &top1);
        bad += check(hard == 0, "a child with hard affinity (no_steal) left rank 0");
        if (strcmp(mode, "on") == 0) {
            bad += check(soft >= NCHILD / 10, "fewer than 10% of the soft-affine children were stolen");
            bad += check(top > 0, "no top-level task was stolen");
            bad += check(size < 3 || top1 > 0, "no top-level task was stolen from rank 1 (MOVED)");
        } else {
            bad += check(soft == 0 && top == 0 && top1 == 0, "a task moved with TASKRAY_STEAL=0");
        }
    }
    st = tr_finalize();
    bad += check(st == TR_OK, "tr_finalize");
    printf("mpi_steal %s: %d ranks, %s\n", mode, size, bad ? "FAILED" : "passed");
    return bad ? 1 : 0;
}
