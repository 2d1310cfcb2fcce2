/* Logging, fatal errors, the per-thread error message, small helpers. */
#include "base/base.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

int tr__log_level = TR__LOG_WARN;
static int log_rank = -1;
static _Thread_local char last_error[512];

static const char *level_name[] = { "error", "warn", "info", "debug" };

void tr__log_init(void)
{
    const char *s = getenv("TASKRAY_LOG_LEVEL");
    if (s == NULL || *s == '\0') return;
    for (int i = 0; i < (int)TR__ARRAY_SIZE(level_name); i++) {
        if (strcasecmp(s, level_name[i]) == 0) { tr__log_level = i; return; }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (*end == '\0' && v >= 0 && v <= TR__LOG_DEBUG) { tr__log_level = (int)v; return; }
    fprintf(stderr, "taskray: TASKRAY_LOG_LEVEL='%s' is not one of error, warn, info, debug; using warn\n", s);
}

void tr__log_set_rank(int rank) { log_rank = rank; }

void tr__log(tr__log_level_t level, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int saved = errno;
    va_start(ap, fmt);
    errno = saved; /* so %m in fmt refers to the caller's errno */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    if (tr__log_level >= TR__LOG_DEBUG)
        fprintf(stderr, "taskray[%d] %s %s:%d: %s\n", log_rank, level_name[level],
                base ? base + 1 : file, line, msg);
    else
        fprintf(stderr, "taskray[%d] %s: %s\n", log_rank, level_name[level], msg);
    errno = saved;
}

_Noreturn void tr__fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "taskray[%d] fatal: %s\n", log_rank, msg);
    abort();
}

void tr__set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

void tr__clear_error(void) { last_error[0] = '\0'; }

const char *tr_last_error(void) { return last_error; }

bool tr__deadline(int64_t timeout_ms, struct timespec *ts)
{
    if (timeout_ms < 0) return false;
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
    return true;
}

uint64_t tr__hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 0x100000001b3ull; }
    return tr__mix64(h);
}

int64_t tr__env_i64(const char *name, int64_t def, int64_t min, int64_t max)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0') {
        tr__config_set(name, "default", "%lld", (long long)def);
        return def;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    int64_t mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1ll << 10; end++; break;
    case 'm': case 'M': mult = 1ll << 20; end++; break;
    case 'g': case 'G': mult = 1ll << 30; end++; break;
    default: break;
    }
    if (errno || end == s || *end != '\0' || v < min / mult || v > max / mult || v * mult < min) {
        tr__warn("%s='%s' is not an integer in [%lld, %lld]; using %lld", name, s,
                 (long long)min, (long long)max, (long long)def);
        tr__config_set(name, "default", "%lld", (long long)def);
        return def;
    }
    tr__config_set(name, "environment", "%lld", (long long)v * mult);
    return (int64_t)v * mult;
}

void tr__spin_yield(void) { sched_yield(); }
