/*
 * The bootstrap watchdog: rank 1 comes to tr_init() much later than
 * TASKRAY_BOOTSTRAP_TIMEOUT allows (as a rank that hangs or never starts
 * would), so rank 0's start-up must fail with a message, and the job must
 * end, instead of hanging.  run_watchdog.sh checks the exit status and the
 * message.
 */
#include <taskray.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (r == NULL) r = getenv("PMI_RANK");
    if (r != NULL && atoi(r) != 0) sleep(120);   /* the late rank */
    tr_status_t st = tr_init(NULL);
    /* not reached on rank 0 when the watchdog works */
    printf("WATCHDOG-DID-NOT-FIRE rank %s: tr_init returned %s\n", r ? r : "?", tr_status_string(st));
    if (st == TR_OK) tr_finalize();
    return 0;
}
