/*
 * taskray-run: start a taskray job under the launcher at hand (srun,
 * Open MPI's mpirun, MPICH's mpiexec) so that the job survives the death of
 * a rank, and exit with the driver's (rank 0's) own status.
 *
 * One program, two roles:
 *   outer        taskray-run [-n N] [--launcher PATH] [launcher options --] prog args
 *                builds the launcher's command line, runs it, and reports
 *                rank 0's status, which a status file carries back;
 *   rank wrapper taskray-run --rank-wrapper -- prog args
 *                what the launcher starts on every rank: it forks the
 *                program, forwards termination signals to it, and exits
 *                with the program's status (a signal death as 128+N).
 *
 * Why a wrapper (the facts, doc/architecture.md has the details):
 *   - MPICH's Hydra kills every rank when one dies by a signal, even with
 *     -disable-auto-cleanup, and sends SIGUSR1 to the processes it started
 *     when one fails (MPICH's MPI_Init catches SIGUSR1, a plain wrapper
 *     would die of it); a wrapper that exits 128+N and ignores SIGUSR1
 *     keeps the others alive.  The program itself never receives that
 *     SIGUSR1, so its disposition is left as the launcher gave it.
 *   - Open MPI's mpirun --enable-recovery keeps survivors alive but always
 *     exits 0, so rank 0's status travels through a file.
 *
 * Only the outer process and the wrapper use signals, and both the same
 * way: the signals of interest are blocked and taken synchronously with
 * sigwaitinfo(), so no handler runs asynchronously.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#ifndef TR_RUN_DEFAULT_LAUNCHER
#define TR_RUN_DEFAULT_LAUNCHER ""
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define TR_RUN_ENV_STATUS   "TASKRAY_RUN_STATUS_FILE"  /* rank 0 writes it */
#define TR_RUN_ENV_KIND     "TASKRAY_RUN_LAUNCHER_KIND" /* outer -> wrappers */
#define TR_RUN_ENV_LAUNCHER "TASKRAY_LAUNCHER"
#define TR_RUN_ENV_TMPDIR   "TASKRAY_RUN_TMPDIR"
#define TR_RUN_WRAPPER_OPT  "--rank-wrapper"

extern char **environ;

typedef enum {
    TR_RUN_OPENMPI,
    TR_RUN_HYDRA,
    TR_RUN_SLURM,
    TR_RUN_OTHER
} tr_run_kind_t;

static const char *const tr_run_kind_names[] = {"openmpi", "hydra", "slurm", "other"};

/* What the command line asked for. */
typedef struct {
    const char  *nranks;      /* -n N, or NULL for the launcher's default */
    const char  *launcher;    /* --launcher PATH, or NULL */
    char       **largv;       /* launcher options, in order */
    int          largc;
    char       **prog;        /* program and its arguments, NULL-terminated */
    int          verbose;
    int          dry_run;
} tr_run_opts_t;

/* A growing argv. */
typedef struct {
    char  **v;
    size_t  n, cap;
} tr_run_argv_t;

static void tr_run_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr_run_err(const char *fmt, ...)
{
    /* one write: the ranks' output shares the terminal or the log */
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "taskray-run: ");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

static void *tr_run_xalloc(size_t size)
{
    void *p = malloc(size);

    if (p == NULL) {
        tr_run_err("out of memory");
        exit(125);
    }
    return p;
}

static void tr_run_argv_push(tr_run_argv_t *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = tr_run_xalloc(cap * sizeof(*v));
        if (a->n) memcpy(v, a->v, a->n * sizeof(*v));
        free(a->v);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static char *tr_run_strdup(const char *s)
{
    size_t len = strlen(s) + 1;

    return memcpy(tr_run_xalloc(len), s, len);
}

/* Frees the vector and, when own is set, the strings in it. */
static void tr_run_argv_free(tr_run_argv_t *a, int own)
{
    if (own) {
        for (size_t i = 0; i < a->n; i++) free(a->v[i]);
    }
    free(a->v);
    *a = (tr_run_argv_t){0};
}

/* "NAME=VALUE" -> "NAME" (a new string). */
static char *tr_run_env_name(const char *entry)
{
    size_t len = strcspn(entry, "=");
    char *name = tr_run_xalloc(len + 1);

    memcpy(name, entry, len);
    name[len] = '\0';
    return name;
}

/* ---------------------------------------------------------------------
 * Running a child and passing signals on
 * ------------------------------------------------------------------- */

/* Signals passed on to the child: the termination requests. */
static const int tr_run_fwd_sigs[] = {SIGINT, SIGTERM, SIGHUP};
#define TR_RUN_NUM_FWD (sizeof(tr_run_fwd_sigs) / sizeof(tr_run_fwd_sigs[0]))

/*
 * Fork and exec argv[0] (searched in PATH), and wait for it.  SIGINT,
 * SIGTERM and SIGHUP sent to this process are passed on to the child,
 * except those the kernel sent to the whole terminal process group
 * (Ctrl-C, a hang-up), which reached the child already, and those ignored
 * on entry (nohup).  With `ignore_usr1`, this process ignores SIGUSR1 while
 * the child keeps the disposition it was given.  If this process dies, the
 * child gets `death_sig` (Linux).  Returns the wait status; exits 125 when the
 * child cannot be started, and the child exits 126/127 when exec fails.
 */
static int tr_run_child(char *const argv[], int ignore_usr1, int death_sig)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};
    struct sigaction old_usr1, old_fwd[TR_RUN_NUM_FWD];
    sigset_t wait_set, old_mask;
    pid_t pid, parent = getpid();
    int status;

    sigemptyset(&ign.sa_mask);
    sigemptyset(&dfl.sa_mask);
    /* Our caller may ignore SIGCHLD, which would reap the child for us. */
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGUSR1, ignore_usr1 ? &ign : NULL, &old_usr1);
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    for (size_t i = 0; i < TR_RUN_NUM_FWD; i++) {
        sigaction(tr_run_fwd_sigs[i], NULL, &old_fwd[i]);
        sigaddset(&wait_set, tr_run_fwd_sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &wait_set, &old_mask);
    fflush(NULL);

    pid = fork();
    if (pid < 0) {
        tr_run_err("cannot fork: %s", strerror(errno));
        exit(125);
    }
    if (pid == 0) {
        if (ignore_usr1) sigaction(SIGUSR1, &old_usr1, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
#ifdef __linux__
        if (prctl(PR_SET_PDEATHSIG, death_sig) != 0 || getppid() != parent) _exit(125);
#else
        (void)parent;
        (void)death_sig;
#endif
        execvp(argv[0], argv);
        tr_run_err("cannot run %s: %s", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        pid_t done = waitpid(pid, &status, WNOHANG);

        if (done == pid) break;
        if (done < 0 && errno != EINTR) {
            tr_run_err("cannot wait for %s: %s", argv[0], strerror(errno));
            exit(125);
        }
        if (sigwaitinfo(&wait_set, &info) < 0 || info.si_signo == SIGCHLD) continue;
        for (size_t i = 0; i < TR_RUN_NUM_FWD; i++) {
            if (tr_run_fwd_sigs[i] == info.si_signo && info.si_code <= 0 &&
                old_fwd[i].sa_handler != SIG_IGN) {
                kill(pid, info.si_signo);
            }
        }
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

/* ---------------------------------------------------------------------
 * Rank wrapper
 * ------------------------------------------------------------------- */

static tr_run_kind_t tr_run_kind_from_name(const char *name)
{
    for (int k = TR_RUN_OPENMPI; k < TR_RUN_OTHER; k++) {
        if (name != NULL && strcmp(name, tr_run_kind_names[k]) == 0) return (tr_run_kind_t)k;
    }
    return TR_RUN_OTHER;
}

/* This rank's number, as the launcher told it; -1 when unknown. */
static int tr_run_wrapper_rank(tr_run_kind_t kind)
{
    /* Inside a Slurm job, SLURM_PROCID is also set for mpirun's daemons and
     * Hydra's proxies, so it is read only when srun started the ranks. */
    static const char *const by_kind[][4] = {
        [TR_RUN_OPENMPI] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", NULL},
        [TR_RUN_HYDRA]   = {"PMI_RANK", "PMIX_RANK", NULL},
        [TR_RUN_SLURM]   = {"SLURM_PROCID", NULL},
        [TR_RUN_OTHER]   = {"PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL},
    };

    for (int i = 0; by_kind[kind][i] != NULL; i++) {
        const char *v = getenv(by_kind[kind][i]);
        char *end;
        long r;

        if (v == NULL || *v == '\0') continue;
        r = strtol(v, &end, 10);
        if (*end == '\0' && r >= 0 && r <= INT_MAX) return (int)r;
    }
    return -1;
}

/* Rank 0 leaves its program's status for the outer taskray-run: written
 * to a temporary name and renamed, so that a reader sees all or nothing. */
static void tr_run_write_status(const char *path, int status)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        tr_run_err("status file name too long: %s", path);
        return;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        tr_run_err("cannot write rank 0's status to %s: %s", tmp, strerror(errno));
        return;
    }
    if (WIFSIGNALED(status)) {
        fprintf(f, "signal %d\n", WTERMSIG(status));
    } else {
        fprintf(f, "exit %d\n", WEXITSTATUS(status));
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        tr_run_err("cannot write rank 0's status to %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

static int tr_run_wrapper(char **prog)
{
    tr_run_kind_t kind = tr_run_kind_from_name(getenv(TR_RUN_ENV_KIND));
    const char *status_file = getenv(TR_RUN_ENV_STATUS);
    int rank = tr_run_wrapper_rank(kind);
    int status, sig;

    /* Hydra signals SIGUSR1 to the ranks' processes when one fails; only
     * this process receives it, and it must not die of it.  Other
     * launchers pass SIGUSR1 on as the user's signal, so it is not
     * ignored there. */
    /* A launcher that SIGKILLs the wrapper must not leave the program. */
    status = tr_run_child(prog, kind == TR_RUN_HYDRA || kind == TR_RUN_OTHER, SIGKILL);
    if (rank == 0 && status_file != NULL && *status_file != '\0') {
        tr_run_write_status(status_file, status);
    }
    if (!WIFSIGNALED(status)) return WEXITSTATUS(status);

    /* Reported as an exit status, never re-raised: Hydra ends the whole
     * job when a rank's process dies by a signal. */
    sig = WTERMSIG(status);
    if (rank != 0) {
        tr_run_err("rank %d (%s) was killed by signal %d (%s)%s", rank, prog[0], sig,
                   strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
    }
    return 128 + sig;
}

/* ---------------------------------------------------------------------
 * Outer: choosing the launcher
 * ------------------------------------------------------------------- */

static int tr_run_is_exec(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* NAME searched in PATH (a name with a slash is taken as it is); a new
 * string, or NULL. */
static char *tr_run_which(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];

    if (strchr(name, '/') != NULL) return tr_run_is_exec(name) ? tr_run_strdup(name) : NULL;
    if (path == NULL) path = "/usr/bin:/bin";
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        int n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", name);

        if (n < (int)sizeof(buf) && tr_run_is_exec(buf)) return tr_run_strdup(buf);
        path += len + (path[len] == ':');
    }
    return NULL;
}

/* The first 4 KiB of `launcher --version` (stdout and stderr), or "". */
static void tr_run_version_text(const char *launcher, char *buf, size_t size)
{
    int fds[2];
    size_t got = 0;
    pid_t pid;

    buf[0] = '\0';
    if (pipe(fds) != 0) return;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        execl(launcher, launcher, "--version", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    while (pid > 0 && got + 1 < size) {
        ssize_t n = read(fds[0], buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fds[0]);
    if (pid > 0) {
        kill(pid, SIGKILL);   /* done reading; mpirun may linger */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
}

static tr_run_kind_t tr_run_kind_of(const char *launcher)
{
    const char *base = strrchr(launcher, '/');
    char text[4096];

    base = base ? base + 1 : launcher;
    if (strcmp(base, "srun") == 0) return TR_RUN_SLURM;
    tr_run_version_text(launcher, text, sizeof(text));
    if (strstr(text, "Open MPI") || strstr(text, "OpenRTE")) return TR_RUN_OPENMPI;
    if (strstr(text, "HYDRA") || strstr(text, "Hydra")) return TR_RUN_HYDRA;
    if (strstr(text, "slurm")) return TR_RUN_SLURM;
    return TR_RUN_OTHER;
}

/*
 * The launcher: --launcher, else $TASKRAY_LAUNCHER, else srun inside a
 * Slurm allocation, else the one configure found, else mpirun or mpiexec
 * in PATH.  A new string, or NULL with a message.
 */
static char *tr_run_find_launcher(const char *requested)
{
    static const char *const fallbacks[] = {TR_RUN_DEFAULT_LAUNCHER, "mpirun", "mpiexec"};
    char *found;

    if (requested == NULL) requested = getenv(TR_RUN_ENV_LAUNCHER);
    if (requested != NULL && *requested != '\0') {
        found = tr_run_which(requested);
        if (found == NULL) tr_run_err("launcher %s not found or not executable", requested);
        return found;
    }
    if (getenv("SLURM_JOB_ID") != NULL && (found = tr_run_which("srun")) != NULL) return found;
    for (size_t i = 0; i < sizeof(fallbacks) / sizeof(fallbacks[0]); i++) {
        if (*fallbacks[i] != '\0' && (found = tr_run_which(fallbacks[i])) != NULL) return found;
    }
    tr_run_err("no launcher found: no srun in a Slurm job, no %s%smpirun or mpiexec in PATH "
               "(use --launcher PATH or set " TR_RUN_ENV_LAUNCHER ")",
               TR_RUN_DEFAULT_LAUNCHER, *TR_RUN_DEFAULT_LAUNCHER ? ", " : "");
    return NULL;
}

/* This program's own path, for the launcher to start on every rank. */
static char *tr_run_self(const char *argv0)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char *found;

    if (n > 0) {
        buf[n] = '\0';
        return tr_run_strdup(buf);
    }
    if (strchr(argv0, '/') != NULL && realpath(argv0, buf) != NULL) return tr_run_strdup(buf);
    found = tr_run_which(argv0);
    return found ? found : tr_run_strdup(argv0);
}

/* ---------------------------------------------------------------------
 * Outer: the command line and the exit status
 * ------------------------------------------------------------------- */

/* Launcher flags that give the ranks every TASKRAY_* variable of ours:
 * Open MPI passes only what -x names to remote nodes; Hydra and srun pass
 * the whole environment unless told otherwise, and -genv makes sure.  The
 * names are new strings, also pushed on names, which the caller frees. */
static void tr_run_push_env(tr_run_argv_t *a, tr_run_argv_t *names, tr_run_kind_t kind)
{
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "TASKRAY_", 8) != 0 || strchr(*e, '=') == NULL) continue;
        if (kind == TR_RUN_OPENMPI || kind == TR_RUN_HYDRA) {
            tr_run_argv_push(names, tr_run_env_name(*e));
        }
        if (kind == TR_RUN_OPENMPI) {
            tr_run_argv_push(a, "-x");
            tr_run_argv_push(a, names->v[names->n - 1]);
        } else if (kind == TR_RUN_HYDRA) {
            tr_run_argv_push(a, "-genv");
            tr_run_argv_push(a, names->v[names->n - 1]);
            tr_run_argv_push(a, strchr(*e, '=') + 1);
        }
    }
}

static void tr_run_build(tr_run_argv_t *a, tr_run_argv_t *names, const tr_run_opts_t *o,
                         const char *launcher, tr_run_kind_t kind, const char *self)
{
    tr_run_argv_push(a, launcher);
    switch (kind) {
    case TR_RUN_OPENMPI:
        /* Without it, a rank's death (or exit without MPI_Finalize)
         * makes mpirun kill every other rank. */
        tr_run_argv_push(a, "--enable-recovery");
        break;
    case TR_RUN_HYDRA:
        tr_run_argv_push(a, "-disable-auto-cleanup");
        break;
    case TR_RUN_SLURM:
        /* Neither a task's non-zero exit nor the first task's end
         * (WaitTime) may end the step. */
        tr_run_argv_push(a, "--kill-on-bad-exit=0");
        tr_run_argv_push(a, "--wait=0");
        break;
    case TR_RUN_OTHER:
        break;
    }
    tr_run_push_env(a, names, kind);
    for (int i = 0; i < o->largc; i++) tr_run_argv_push(a, o->largv[i]);
    if (o->nranks != NULL) {
        tr_run_argv_push(a, "-n");
        tr_run_argv_push(a, o->nranks);
    }
    tr_run_argv_push(a, self);
    tr_run_argv_push(a, TR_RUN_WRAPPER_OPT);
    tr_run_argv_push(a, "--");
    for (char **p = o->prog; *p != NULL; p++) tr_run_argv_push(a, *p);
}

/* The command on stderr, quoted so that a shell could run it. */
static void tr_run_print_cmd(char *const argv[])
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_./=:,+-@%";

    fputs("taskray-run: running:", stderr);
    for (int i = 0; argv[i] != NULL; i++) {
        const char *s = argv[i];

        if (*s != '\0' && s[strspn(s, safe)] == '\0') {
            fprintf(stderr, " %s", s);
            continue;
        }
        fputs(" '", stderr);
        for (; *s != '\0'; s++) {
            if (*s == '\'') fputs("'\\''", stderr); else fputc(*s, stderr);
        }
        fputc('\'', stderr);
    }
    fputc('\n', stderr);
}

/* Rank 0's status from its file: 1 with *code set, 0 when there is none. */
static int tr_run_read_status(const char *path, int *code)
{
    FILE *f = fopen(path, "r");
    char word[16];
    int value, ok;

    if (f == NULL) return 0;
    ok = fscanf(f, "%15s %d", word, &value) == 2 && value >= 0 && value < 256;
    fclose(f);
    if (!ok) {
        tr_run_err("rank 0's status file %s is malformed", path);
        return 0;
    }
    if (strcmp(word, "signal") == 0) {
        tr_run_err("rank 0 (the driver) was killed by signal %d (%s)", value, strsignal(value));
        *code = 128 + value;
        return 1;
    }
    *code = value;
    return strcmp(word, "exit") == 0;
}

/* The driver's status when its file came back, else the launcher's. */
static int tr_run_exit_code(const char *status_file, const char *launcher, int lstatus)
{
    int code;

    if (tr_run_read_status(status_file, &code)) return code;
    if (WIFSIGNALED(lstatus)) {
        tr_run_err("%s was killed by signal %d (%s)", launcher, WTERMSIG(lstatus),
                   strsignal(WTERMSIG(lstatus)));
        return 128 + WTERMSIG(lstatus);
    }
    code = WEXITSTATUS(lstatus);
    tr_run_err("rank 0's exit status did not come back (it did not run, was killed with its "
               "wrapper, or ran on another host: set " TR_RUN_ENV_TMPDIR " to a shared "
               "directory); exiting with the launcher's status %d", code);
    return code;
}

/* A private directory for rank 0's status file; its path goes into the
 * ranks' environment.  Returns 0, or -1 with a message. */
static int tr_run_status_dir(char *dir, size_t dsize, char *file, size_t fsize)
{
    const char *base = getenv(TR_RUN_ENV_TMPDIR);

    if (base == NULL || *base == '\0') base = getenv("TMPDIR");
    if (base == NULL || *base == '\0') base = "/tmp";
    if (snprintf(dir, dsize, "%s/taskray-run.XXXXXX", base) >= (int)dsize) {
        tr_run_err("temporary directory name too long: %s", base);
        return -1;
    }
    if (mkdtemp(dir) == NULL) {
        tr_run_err("cannot create a temporary directory in %s: %s", base, strerror(errno));
        return -1;
    }
    if (snprintf(file, fsize, "%s/%s", dir, "rank0.status") >= (int)fsize) {
        tr_run_err("temporary directory name too long: %s", base);
        rmdir(dir);
        return -1;
    }
    return 0;
}

static int tr_run_outer(const tr_run_opts_t *o, const char *argv0)
{
    char dir[PATH_MAX], file[PATH_MAX];
    tr_run_argv_t cmd = {0}, names = {0};
    char *launcher, *self;
    tr_run_kind_t kind;
    int code = 0;

    launcher = tr_run_find_launcher(o->launcher);
    if (launcher == NULL) return 125;
    kind = tr_run_kind_of(launcher);
    if (kind == TR_RUN_OTHER) {
        tr_run_err("warning: %s is not Open MPI's mpirun, MPICH's mpiexec or srun; the job "
                   "may not survive the death of a rank", launcher);
    }
    self = tr_run_self(argv0);
    if (tr_run_status_dir(dir, sizeof(dir), file, sizeof(file)) != 0) {
        code = 125;
        goto out_free;
    }
    if (setenv(TR_RUN_ENV_STATUS, file, 1) != 0 ||
        setenv(TR_RUN_ENV_KIND, tr_run_kind_names[kind], 1) != 0) {
        tr_run_err("cannot set the environment: %s", strerror(errno));
        code = 125;
        goto out;
    }
    tr_run_build(&cmd, &names, o, launcher, kind, self);
    if (o->verbose || o->dry_run) tr_run_print_cmd(cmd.v);
    if (!o->dry_run) code = tr_run_exit_code(file, launcher, tr_run_child(cmd.v, 0, SIGTERM));
out:
    unlink(file);
    rmdir(dir);
out_free:
    tr_run_argv_free(&cmd, 0);
    tr_run_argv_free(&names, 1);
    free(self);
    free(launcher);
    return code;
}

/* ---------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------- */

static void tr_run_usage(FILE *out)
{
    fprintf(out,
        "Usage: taskray-run [OPTIONS] [LAUNCHER-OPTIONS --] PROGRAM [ARGS...]\n"
        "Run a taskray job under srun, Open MPI's mpirun or MPICH's mpiexec so that it\n"
        "survives the death of a rank, and exit with rank 0's status.\n"
        "\n"
        "  -n, -np N        number of ranks (default: the launcher's)\n"
        "  --launcher PATH  launcher to use (default: $" TR_RUN_ENV_LAUNCHER ", srun in a\n"
        "                   Slurm job, %s%smpirun or mpiexec)\n"
        "  -v, --verbose    print the launcher's command line\n"
        "  --dry-run        print the launcher's command line and exit\n"
        "  -h, --help       print this help\n"
        "  -V, --version    print the version\n"
        "Other options are the launcher's; they must end with --.\n"
        "See taskray-run(1).\n",
        TR_RUN_DEFAULT_LAUNCHER, *TR_RUN_DEFAULT_LAUNCHER ? ", " : "");
}

static int tr_run_check_nranks(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || n < 1 || n > INT_MAX) {
        tr_run_err("-n needs a positive number of ranks, not '%s'", s);
        return -1;
    }
    return 0;
}

/* Launcher options run from argv[i] up to a "--"; returns the index after
 * it, or -1. */
static int tr_run_take_launcher_opts(int argc, char **argv, int i, tr_run_opts_t *o)
{
    int end = i;

    while (end < argc && strcmp(argv[end], "--") != 0) end++;
    if (end == argc) {
        tr_run_err("launcher options (from '%s') must end with -- before the program", argv[i]);
        return -1;
    }
    o->largv = argv + i;
    o->largc = end - i;
    return end + 1;
}

/* Returns 0 to run, 1 when done (help, version), -1 on a usage error. */
static int tr_run_parse(int argc, char **argv, tr_run_opts_t *o)
{
    int i = 1;

    while (i < argc) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--") == 0) { i++; break; }
        if (a[0] != '-' || a[1] == '\0') break;
        if (!strcmp(a, "-n") || !strcmp(a, "-np") || !strcmp(a, "--np")) {
            if (value == NULL) { tr_run_err("%s needs a value", a); return -1; }
            if (tr_run_check_nranks(value) != 0) return -1;
            o->nranks = value;
            i += 2;
        } else if (!strcmp(a, "--launcher")) {
            if (value == NULL) { tr_run_err("%s needs a value", a); return -1; }
            o->launcher = value;
            i += 2;
        } else if (!strncmp(a, "--launcher=", 11)) {
            o->launcher = a + 11;
            i++;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1; i++;
        } else if (!strcmp(a, "--dry-run")) {
            o->dry_run = 1; i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tr_run_usage(stdout); return 1;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("taskray-run (taskray) %s\n", PACKAGE_VERSION); return 1;
        } else {
            i = tr_run_take_launcher_opts(argc, argv, i, o);
            if (i < 0) return -1;
            break;
        }
    }
    if (i >= argc) {
        tr_run_err("no program to run (taskray-run --help for usage)");
        return -1;
    }
    o->prog = argv + i;
    return 0;
}

int main(int argc, char **argv)
{
    tr_run_opts_t opts = {0};
    int rc;

    if (argc > 1 && strcmp(argv[1], TR_RUN_WRAPPER_OPT) == 0) {
        char **prog = argv + 2;

        if (*prog != NULL && strcmp(*prog, "--") == 0) prog++;
        if (*prog == NULL) {
            tr_run_err(TR_RUN_WRAPPER_OPT " needs a program");
            return 125;
        }
        return tr_run_wrapper(prog);
    }
    rc = tr_run_parse(argc, argv, &opts);
    if (rc != 0) return rc > 0 ? 0 : 125;
    return tr_run_outer(&opts, argv[0]);
}
