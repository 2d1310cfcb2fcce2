/*
 * The body shared by mpi_mismatch_a and mpi_mismatch_b: two programs that
 * register different remote functions.  Started together as one MPMD job
 * (tests/run_mismatch.sh), tr_init() must refuse to start on both ranks
 * with TR_ERR_MISMATCH.  Prints "MISMATCH-DETECTED rank R" on stdout and
 * exits 0 when it did; exits 1 otherwise.  The library's own message (on
 * stderr) is checked by the script.
 */
#ifndef TR_TEST_MISMATCH_MAIN_H
#define TR_TEST_MISMATCH_MAIN_H

#include <stdio.h>
#include <stdlib.h>

#include <taskray.h>

/* Both programs register this one. */
static tr_status_t mm_common(tr_task_h t) { return tr_task_return_i64(t, 0, 1); }
TR_REMOTE(mm_common)

static int mismatch_main(int argc, char **argv, const char *program)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (r == NULL) {
        r = getenv("PMI_RANK");
    }
    if (r == NULL) {
        r = getenv("PMIX_RANK");
    }
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_ARGC_ARGV, .argc = &argc,
                            .argv = &argv };
    tr_status_t st = tr_init(&ip);
    if (st == TR_ERR_MISMATCH) {
        printf("MISMATCH-DETECTED rank %s (%s)\n", r ? r : "?", program);
        printf("%s: tr_last_error: %s\n", program, tr_last_error());
        fflush(stdout);
        return 0;
    }
    printf("%s rank %s: tr_init returned %d (%s), expected TR_ERR_MISMATCH\n", program,
           r ? r : "?", (int)st, tr_status_string(st));
    fflush(stdout);
    if (st == TR_OK) {
        tr_finalize();
    }
    return 1;
}

#endif
