/* One half of the mismatch test (see mismatch_main.h): registers mm_beta. */
#include "mismatch_main.h"

static tr_status_t mm_beta(tr_task_h t) { return tr_task_return_i64(t, 0, 'b'); }
TR_REMOTE(mm_beta)

int main(int argc, char **argv) { return mismatch_main(argc, argv, "mpi_mismatch_b"); }
