/* fuzz_spill and its corpus generator: the spill directories they read from. */
#ifndef TR_FUZZ_SPILL_H
#define TR_FUZZ_SPILL_H

#include "base/base.h"
#include "store/spill.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_SPILL_JOB UINT64_C(0x0123456789abcdef)
#define FUZZ_SPILL_OBJ UINT64_C(0x00000000feedf00d)

/* Input byte 0: bit 0 = encrypted, bit 1 = take the data size from the
 * header (else: the file's size less the header); the rest is the file. */
enum { FUZZ_SPILL_ENC = 1, FUZZ_SPILL_HDR_SIZE = 2 };

/* Two open spills in a fresh directory, rank 0 plain, rank 1 encrypted with
 * a fixed key (so that seeds written by tr__spill_write decrypt). */
static tr__spill_t fuzz_spill[2];
static char fuzz_spill_base[4096];

static inline void fuzz_spill_fini(void)
{
    for (int e = 0; e < 2; e++) tr__spill_close(&fuzz_spill[e]);
    rmdir(fuzz_spill_base);
}

static inline void fuzz_spill_init(void)
{
    char *base = fuzz_spill_base;
    if (fuzz_spill[0].open) return;
    const char *t = getenv("TMPDIR");
    tr__log_level = TR__LOG_ERROR;   /* every bad file warns: keep the fuzzer quiet */
    snprintf(base, sizeof(fuzz_spill_base), "%s/fuzz_spill.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(base) == NULL) { perror("mkdtemp"); abort(); }
    for (int e = 0; e < 2; e++) {
        if (tr__spill_open(&fuzz_spill[e], base, FUZZ_SPILL_JOB, e, e) != TR_OK) abort();
        for (size_t i = 0; i < sizeof(fuzz_spill[e].key); i++) fuzz_spill[e].key[i] = (unsigned char)(i * 7 + 1);
    }
    atexit(fuzz_spill_fini);
}

#endif
