/*
 * What the wire and argument fuzzers share: a stand-in for the runtime
 * (tr__rt with only rank and size set; no MPI, UCX or threads) and one
 * registered remote function that TASK messages can name.  The decoders
 * under test read nothing else of the runtime.
 */
#ifndef TR_FUZZ_RT_H
#define TR_FUZZ_RT_H

#include "core/core.h"
#include "comm/wire.h"

#include <stdlib.h>

#define FUZZ_NRANKS 4
#define FUZZ_JOB    UINT64_C(0x0123456789abcdef)
#define FUZZ_FN     "fuzz.fn"

static inline tr_status_t fuzz_fn(tr_task_h task) { (void)task; return TR_OK; }

static inline void fuzz_rt_init(void)
{
    static tr__rt_t rt;
    if (tr__rt != NULL) return;
    rt.rank = 0;
    rt.size = FUZZ_NRANKS;
    rt.boot.job_id = FUZZ_JOB;
    tr__rt = &rt;
    tr__log_level = TR__LOG_ERROR;   /* decoders that warn: keep the fuzzer fast and quiet */
    (void)tr_function_register(FUZZ_FN, fuzz_fn);
}

static inline uint64_t fuzz_fn_id(void) { return tr__hash_str(FUZZ_FN); }

#endif
