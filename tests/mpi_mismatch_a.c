/* One half of the mismatch test (see mismatch_main.h): registers mm_alpha. */
#include "mismatch_main.h"

static tr_status_t mm_alpha(tr_task_h t) { return tr_task_return_i64(t, 0, 'a'); }
TR_REMOTE(mm_alpha)

int main(int argc, char **argv) { return mismatch_main(argc, argv, "mpi_mismatch_a"); }
