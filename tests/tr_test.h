/*
 * Helpers shared by the taskray tests: status assertions that print the
 * status string and tr_last_error(), deterministic byte patterns and
 * checksums, a sleep, and a "gate" that holds tasks back until the test
 * opens it (so tests never depend on how long something takes).
 *
 * Everything here is static: each test program (and each suite file) gets
 * its own copy.  Gates are process-local, so a gated task must run in the
 * process that opens the gate (embedded mode, or a task pinned to rank 0).
 */
#ifndef TR_TEST_H
#define TR_TEST_H

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <taskray.h>

/* Per-test time limit (fork mode only): generous, a safety net, never a measurement. */
#define TT_TIMEOUT_S 60

/* How long a gated task waits before giving up (a hang guard, not a timing check). */
#define TT_GATE_LIMIT_MS 50000

/* Assert that @expr (a taskray call) returns @expect; on failure print both
 * statuses and the thread's tr_last_error(). */
#define tt_assert_status(expr, expect)                                                  \
    do {                                                                                \
        tr_status_t tt_st_ = (expr);                                                    \
        tr_status_t tt_ex_ = (expect);                                                  \
        char tt_le_[512];                                                               \
        snprintf(tt_le_, sizeof(tt_le_), "%s", tr_last_error());                        \
        ck_assert_msg(tt_st_ == tt_ex_,                                                 \
                      "%s returned %d (%s), expected %d (%s); tr_last_error: '%s'",     \
                      #expr, (int)tt_st_, tr_status_string(tt_st_), (int)tt_ex_,        \
                      tr_status_string(tt_ex_), tt_le_);                                \
    } while (0)

#define tt_ok(expr) tt_assert_status((expr), TR_OK)

/* Assert that @expr returns one of two statuses (only where the header
 * leaves the choice open, e.g. a NULL handle is both invalid and "never valid"). */
#define tt_assert_status2(expr, e1, e2)                                                 \
    do {                                                                                \
        tr_status_t tt_st_ = (expr);                                                    \
        ck_assert_msg(tt_st_ == (e1) || tt_st_ == (e2),                                 \
                      "%s returned %d (%s), expected %s or %s", #expr, (int)tt_st_,     \
                      tr_status_string(tt_st_), tr_status_string(e1),                   \
                      tr_status_string(e2));                                            \
    } while (0)

/* Assert that @hay contains @needle. */
#define tt_assert_contains(hay, needle)                                                 \
    do {                                                                                \
        const char *tt_h_ = (hay);                                                      \
        const char *tt_n_ = (needle);                                                   \
        ck_assert_msg(tt_h_ != NULL && strstr(tt_h_, tt_n_) != NULL,                    \
                      "'%s' does not contain '%s'", tt_h_ ? tt_h_ : "(null)", tt_n_);   \
    } while (0)

static inline void tt_msleep(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Fill @p with a pattern that depends on @seed and on the position, so that
 * shifted, truncated or mixed-up buffers are detected. */
static inline void tt_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)(x >> 24);
    }
}

/* Index of the first byte of @p that differs from tt_fill(@seed), or @n when all match. */
static inline size_t tt_check_pattern(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (b[i] != (unsigned char)(x >> 24)) {
            return i;
        }
    }
    return n;
}

/* FNV-1a, 64 bits; @h is the running hash (start with TT_FNV_INIT). */
#define TT_FNV_INIT 0xcbf29ce484222325ull
static inline uint64_t tt_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Hash of one argument as a task sees it: its size, then its bytes. */
static inline uint64_t tt_fnv_arg(uint64_t h, const void *p, size_t n)
{
    uint64_t sz = n;
    h = tt_fnv(h, &sz, sizeof(sz));
    return tt_fnv(h, p, n);
}

/* ---- gate: tasks wait on it until the test opens it ------------------- */

static atomic_int tt_gate_state;   /* 0 closed, 1 open */
static atomic_int tt_gate_entered; /* tasks that reached tt_gate_wait() */

static inline void tt_gate_close(void)
{
    atomic_store(&tt_gate_entered, 0);
    atomic_store(&tt_gate_state, 0);
}

static inline void tt_gate_open(void) { atomic_store(&tt_gate_state, 1); }

static inline int tt_gate_entered_count(void) { return atomic_load(&tt_gate_entered); }

/* 0 once the gate is open; -1 when it stayed closed for TT_GATE_LIMIT_MS. */
static inline int tt_gate_wait(void)
{
    atomic_fetch_add(&tt_gate_entered, 1);
    for (int waited = 0; waited < TT_GATE_LIMIT_MS; waited += 1) {
        if (atomic_load(&tt_gate_state)) {
            return 0;
        }
        tt_msleep(1);
    }
    return -1;
}

/* Wait (bounded) until at least @n tasks have entered the gate. */
static inline int tt_gate_wait_entered(int n)
{
    for (int waited = 0; waited < TT_GATE_LIMIT_MS; waited += 1) {
        if (atomic_load(&tt_gate_entered) >= n) {
            return 0;
        }
        tt_msleep(1);
    }
    return -1;
}

/* Read an i64 value, failing the test on any error. */
static inline void tt_release_all(tr_ref_h *refs, int n)
{
    for (int i = 0; i < n; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
}

/* ------------------------------------------- MPI test programs (before tr_init) */

/* The first of the environment variables @names that is set, as an int. */
static inline int tt_env_int(const char *const *names, int dflt)
{
    for (; *names != NULL; names++) {
        const char *v = getenv(*names);
        if (v != NULL && *v != '\0') {
            return atoi(v);
        }
    }
    return dflt;
}

/* This process's rank and the job's size, as the launcher (Open MPI, PMIx,
 * Hydra, Slurm) set them; 1 rank without one.  -1 (with a message naming
 * @prog) for a shape the tests do not support. */
static inline int tt_launcher_shape(const char *prog, int *rank_p, int *size_p)
{
    static const char *const rank_vars[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                             "SLURM_PROCID", NULL };
    static const char *const size_vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", NULL };
    *rank_p = tt_env_int(rank_vars, 0);
    *size_p = tt_env_int(size_vars, 1);
    if (*size_p < 1 || *size_p > 256 || *rank_p < 0 || *rank_p >= *size_p) {
        fprintf(stderr, "%s: unsupported job shape (rank %d of %d)\n", prog, *rank_p, *size_p);
        return -1;
    }
    return 0;
}

/* Tasks are pinned to a rank through a custom resource only that rank has:
 * give this rank @slots units of "<prefix><rank>" (added to whatever
 * TASKRAY_RESOURCES holds), and fill pins[r] with "<prefix><r>=1". */
static inline void tt_pin_setup(const char *prefix, int rank, int size, int slots, char (*pins)[24])
{
    for (int r = 0; r < size; r++) {
        snprintf(pins[r], sizeof(pins[r]), "%s%d=1", prefix, r);
    }
    char res[1024];
    const char *old = getenv("TASKRAY_RESOURCES");
    snprintf(res, sizeof(res), "%s%s%s%d=%d", old ? old : "", old && *old ? "," : "", prefix, rank, slots);
    setenv("TASKRAY_RESOURCES", res, 1);
}

static inline int64_t tt_get_i64(tr_ref_h ref)
{
    int64_t v = 0;
    tt_ok(tr_get_i64(ref, TR_TIMEOUT_INFINITE, &v));
    return v;
}

/* Does @msg contain "rank R" with R not followed by another digit? */
static inline int tt_mentions_rank(const char *msg, int rank)
{
    char needle[32];
    snprintf(needle, sizeof(needle), "rank %d", rank);
    for (const char *p = msg; (p = strstr(p, needle)) != NULL; p++) {
        char next = p[strlen(needle)];
        if (next < '0' || next > '9') {
            return 1;
        }
    }
    return 0;
}

#endif /* TR_TEST_H */
