/*
 * Base utilities shared by every layer: logging, asserts, time, hashing,
 * the per-thread error message.  Nothing here knows about MPI, UCX or hwloc.
 */
#ifndef TR_BASE_H
#define TR_BASE_H

#include <taskray.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TR__LIKELY(x)   __builtin_expect(!!(x), 1)
#define TR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TR__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TR__ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))

/* ------------------------------------------------------------ logging */
typedef enum { TR__LOG_ERROR = 0, TR__LOG_WARN, TR__LOG_INFO, TR__LOG_DEBUG } tr__log_level_t;

extern int tr__log_level;
void tr__log_init(void);
void tr__log_set_rank(int rank);
void tr__log(tr__log_level_t level, const char *file, int line, const char *fmt, ...)
    TR_PRINTF(4, 5);

#define tr__log_at(lvl, ...)                                                   \
    do {                                                                       \
        if (TR__UNLIKELY((int)(lvl) <= tr__log_level))                         \
            tr__log((lvl), __FILE__, __LINE__, __VA_ARGS__);                   \
    } while (0)
#define tr__error(...) tr__log_at(TR__LOG_ERROR, __VA_ARGS__)
#define tr__warn(...)  tr__log_at(TR__LOG_WARN, __VA_ARGS__)
#define tr__info(...)  tr__log_at(TR__LOG_INFO, __VA_ARGS__)
#define tr__debug(...) tr__log_at(TR__LOG_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------ asserts */
#ifdef TR_DEBUG
#define tr__assert(c)                                                          \
    do {                                                                       \
        if (!(c)) tr__fatal("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); \
    } while (0)
#else
#define tr__assert(c) ((void)0)
#endif
_Noreturn void tr__fatal(const char *fmt, ...) TR_PRINTF(1, 2);

/* ------------------------------------------------ per-thread last error */
void tr__set_error(const char *fmt, ...) TR_PRINTF(1, 2);
void tr__clear_error(void);

/* --------------------------------------------------------------- time */
static inline uint64_t tr__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
/* Absolute CLOCK_REALTIME deadline for pthread_cond_timedwait, or false for infinite. */
bool tr__deadline(int64_t timeout_ms, struct timespec *ts);

/* Spin-waits yield the core on every step, so that a spinner never holds a
 * core the thread it waits for needs (ranks are often oversubscribed).
 * Pausing on the CPU instead was measured: no faster on 2 cores, nor on 16
 * cores with ranks unbound (bench/README.md). */
void tr__spin_yield(void);

/* ------------------------------------------------------------ hashing */
static inline uint64_t tr__mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}
static inline uint64_t tr__hash2(uint64_t a, uint64_t b)
{
    return tr__mix64(a ^ tr__mix64(b + 0x9e3779b97f4a7c15ull));
}
uint64_t tr__hash_str(const char *s); /* FNV-1a, then mixed */

/* ---------------------------------------------------------- env knobs */
/* Parse an integer with an optional k/m/g suffix; @def when unset or bad (warns). */
int64_t tr__env_i64(const char *name, int64_t def, int64_t min, int64_t max);

/* ------------------------------------------- configuration in force (config.c) */
/* Record @name = printf(@fmt) with @source ("environment", "default",
 * "topology", "tr_init_params"; static storage, kept as a pointer),
 * replacing an earlier value of @name.  tr__env_i64() records its variable. */
void tr__config_set(const char *name, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record the string variable @name with source "environment" when it is set. */
void tr__config_env_str(const char *name);
/* Copy up to @max items (names and sources stay valid until
 * tr__config_clear()); returns how many there are. */
int  tr__config_copy(tr_config_item_t *items, int max);
void tr__config_clear(void);
/* The source recorded for @name, NULL when none. */
const char *tr__config_source(const char *name);

#endif
