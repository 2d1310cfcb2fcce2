/*
 * Leftovers of dead jobs, and how a job proves it is alive.
 *
 * Each rank holds an flock()ed owner lock, /dev/shm/taskray-<job>-<rank>.lock
 * (0600), from before its arena exists until after it is gone; the kernel
 * drops the lock when the process dies, however it dies, so "lock not held"
 * means "owner dead".  The lock file and each spill directory
 * (<base>/taskray-<job>/rank-<r>/owner) also record the owner as
 * "<host> <boot id> <pid> <start time>" (the start time from /proc/<pid>/stat
 * tells a reused pid apart).
 *
 * At start-up one rank per node (tr__leftovers_reap) removes what dead jobs
 * of this user left: the arena and spill directory of every rank whose lock
 * is free, and spill directories of this host whose recorded owner is gone.
 * A segment without a lock file (an older taskray, or one being created) and
 * a spill directory of another host are left alone.
 */
#define _GNU_SOURCE   /* O_NOFOLLOW, O_CLOEXEC with older headers */
#include "store/store.h"
#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR   "/dev/shm"
#define YOUNG_S   60   /* an empty lock file this young may be one being created */

void tr__owner_lock_name(char *buf, size_t len, uint64_t job_id, int rank)
{
    snprintf(buf, len, SHM_DIR "/taskray-%016" PRIx64 "-%d.lock", job_id, rank);
}

/* The start time of process @pid (clock ticks since boot), or 0. */
static unsigned long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold spaces and parentheses */
    unsigned long long start = 0;
    /* after ")": state, then fields 4..21, then 22: starttime */
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                            &start) != 1) return 0;
    return start;
}

static void boot_id(char *buf, size_t len)
{
    snprintf(buf, len, "-");
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f == NULL) return;
    if (fgets(buf, (int)len, f) == NULL) snprintf(buf, len, "-");
    fclose(f);
    buf[strcspn(buf, " \n")] = '\0';
}

void tr__owner_line(char *buf, size_t len)
{
    char host[128] = "localhost", boot[64];
    if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "localhost");
    host[strcspn(host, " \n")] = '\0';
    boot_id(boot, sizeof(boot));
    long pid = (long)getpid();
    snprintf(buf, len, "%s %s %ld %llu\n", host, boot, pid, proc_start(pid));
}

/* 1: the owner recorded in @line lives; 0: it is dead; -1: cannot tell
 * (another host, or not an owner line). */
static int owner_alive(const char *line)
{
    char host[128], boot[64], mhost[128] = "", mboot[64];
    long pid;
    unsigned long long start;
    if (sscanf(line, "%127s %63s %ld %llu", host, boot, &pid, &start) != 4 || pid <= 0) return -1;
    if (gethostname(mhost, sizeof(mhost) - 1) != 0) return -1;
    mhost[strcspn(mhost, " \n")] = '\0';
    if (strcmp(host, mhost) != 0) return -1;
    boot_id(mboot, sizeof(mboot));
    if (strcmp(boot, "-") != 0 && strcmp(mboot, "-") != 0 && strcmp(boot, mboot) != 0) return 0;   /* rebooted since */
    unsigned long long now = proc_start(pid);
    return now != 0 && (start == 0 || now == start);
}

int tr__owner_lock(uint64_t job_id, int rank, char *path, size_t len)
{
    char line[256];
    tr__owner_lock_name(path, len, job_id, rank);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        tr__warn("cannot create the owner lock %s: %m; what this rank leaves after a crash stays", path);
        return -1;
    }
    /* blocking: a reaper that opened the new file may hold it for a moment */
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        tr__warn("flock(%s) failed: %m; what this rank leaves after a crash stays", path);
        close(fd);
        unlink(path);
        return -1;
    }
    tr__owner_line(line, sizeof(line));
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) tr__debug("writing %s failed: %m", path);
    return fd;
}

void tr__owner_unlock(int fd, const char *path)
{
    if (fd < 0) return;
    unlink(path);   /* before the lock goes: a reaper never sees it free and ours */
    close(fd);
}

/* "taskray-<16 hex>-<rank><suffix>": the job and rank, or -1. */
static int parse_name(const char *name, const char *suffix, uint64_t *job_p, int *rank_p)
{
    char again[96];
    uint64_t job;
    int rank, n = 0;
    if (sscanf(name, "taskray-%16" SCNx64 "-%d%n", &job, &rank, &n) != 2 || rank < 0) return -1;
    snprintf(again, sizeof(again), "taskray-%016" PRIx64 "-%d%s", job, rank, suffix);
    if (strcmp(again, name) != 0) return -1;
    *job_p = job;
    *rank_p = rank;
    return 0;
}

/* Lock file @name of /dev/shm: if its owner is dead, remove its rank's
 * arena, spill directory under @spill_base and the lock; 1 when removed. */
static int reap_lock(int dfd, const char *name, const char *spill_base, uint64_t job, int rank)
{
    char line[256] = "", seg[96];
    struct stat st;
    int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        flock(fd, LOCK_EX | LOCK_NB) != 0) {   /* held: its owner lives */
        close(fd);
        return 0;
    }
    ssize_t n = pread(fd, line, sizeof(line) - 1, 0);
    line[n > 0 ? n : 0] = '\0';
    if (n <= 0 && time(NULL) - st.st_mtime < YOUNG_S) { close(fd); return 0; }   /* being created */
    tr__arena_name(seg, sizeof(seg), job, rank);
    int had_seg = shm_unlink(seg) == 0;
    tr__spill_reap(spill_base, job, rank);
    unlinkat(dfd, name, 0);
    close(fd);
    line[strcspn(line, "\n")] = '\0';
    tr__info("removed the leftovers of dead rank %d of job %016" PRIx64 " (%s%s)", rank, job,
             had_seg ? "shared memory, " : "", *line ? line : "owner unknown");
    return 1;
}

static int reap_shm(const char *spill_base, uint64_t my_job)
{
    DIR *d = opendir(SHM_DIR);
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t job;
        int rank;
        if (strncmp(e->d_name, "taskray-", 8) != 0 || parse_name(e->d_name, ".lock", &job, &rank) != 0 ||
            job == my_job) continue;
        n += reap_lock(dirfd(d), e->d_name, spill_base, job, rank);
    }
    closedir(d);
    return n;
}

/* Rank directories of job directory @jname under @base whose owner (on
 * this host, with no lock file to ask) is dead. */
static int reap_spill_job(const char *base, const char *jname, uint64_t job)
{
    char path[4200], line[256], lock[128];
    snprintf(path, sizeof(path), "%s/%s", base, jname);
    DIR *d = opendir(path);
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int rank, end = 0;
        if (sscanf(e->d_name, "rank-%d%n", &rank, &end) != 1 || e->d_name[end] != '\0' || rank < 0) continue;
        tr__owner_lock_name(lock, sizeof(lock), job, rank);
        if (access(lock, F_OK) == 0) continue;   /* the lock decides (reap_shm) */
        snprintf(path, sizeof(path), "%s/%s/%s/owner", base, jname, e->d_name);
        FILE *f = fopen(path, "re");
        if (f == NULL) continue;   /* no owner recorded: cannot tell */
        int got = fgets(line, sizeof(line), f) != NULL;
        fclose(f);
        if (!got || owner_alive(line) != 0) continue;
        tr__spill_reap(base, job, rank);
        line[strcspn(line, "\n")] = '\0';
        tr__info("removed the spill directory of dead rank %d of job %016" PRIx64 " (%s)", rank, job, line);
        n++;
    }
    closedir(d);
    return n;
}

static int reap_spill(const char *base, uint64_t my_job)
{
    if (base == NULL || *base == '\0') base = getenv("TMPDIR");
    if (base == NULL || *base == '\0') base = "/tmp";
    DIR *d = opendir(base);
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t job;
        int end = 0;
        struct stat st;
        (void)end;
        char again[32];
        if (sscanf(e->d_name, "taskray-%16" SCNx64 "%n", &job, &end) != 1 || job == my_job) continue;
        snprintf(again, sizeof(again), "taskray-%016" PRIx64, job);
        if (strcmp(again, e->d_name) != 0) continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != geteuid()) continue;
        n += reap_spill_job(base, e->d_name, job);
    }
    closedir(d);
    return n;
}

int tr__leftovers_reap(const char *spill_base, uint64_t my_job)
{
    int n = reap_shm(spill_base, my_job);
    n += reap_spill(spill_base, my_job);
    if (n) tr__info("removed the leftovers of %d dead rank(s) of earlier jobs", n);
    return n;
}
