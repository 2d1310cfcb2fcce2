/*
 * leftover_app: a job for run_leftovers.sh.  Every rank writes its pid to
 * DIR/pid.<rank> once started; the driver puts objects until some spill to
 * disk (run with a small TASKRAY_OBJECT_STORE_BYTES), writes DIR/ready, stays
 * alive SECONDS seconds (so that the script can kill the job, or start
 * another job beside it), then ends normally.
 *
 *   leftover_app DIR SECONDS
 */
#include <taskray.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPUT 8
#define SIZE (400u << 10)

static void write_file(const char *dir, const char *name, long value)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) { perror(path); exit(1); }
    fprintf(f, "%ld\n", value);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: leftover_app DIR SECONDS\n"); return 2; }
    const char *dir = argv[1];
    int secs = atoi(argv[2]);
    tr_status_t st = tr_init(NULL);
    if (st != TR_OK) { fprintf(stderr, "leftover_app: tr_init: %s\n", tr_last_error()); return 1; }
    char name[32];
    snprintf(name, sizeof(name), "pid.%d", tr_rank());
    write_file(dir, name, (long)getpid());
    if (tr_rank() == 0) {
        tr_ref_h refs[NPUT];
        char *data = malloc(SIZE);
        if (data == NULL) return 1;
        for (int i = 0; i < NPUT; i++) {
            memset(data, 'a' + i, SIZE);
            if ((st = tr_put(data, SIZE, &refs[i])) != TR_OK) {
                fprintf(stderr, "leftover_app: tr_put: %s\n", tr_last_error());
                return 1;
            }
        }
        free(data);
        write_file(dir, "ready", (long)getpid());
        sleep((unsigned)secs);
        for (int i = 0; i < NPUT; i++) tr_ref_release(refs[i]);
    }
    st = tr_finalize();
    if (st != TR_OK) { fprintf(stderr, "leftover_app: tr_finalize: %s\n", tr_last_error()); return 1; }
    printf("leftover_app: rank %s ok\n", name + 4);
    return 0;
}
