/*
 * fuzz_spill: the spill-file reader (tr__spill_read) on any file contents.
 * The input (after a mode byte, see fuzz_spill.h) is written as the spill
 * file of one object and read back through the real reader, plain or
 * encrypted; on failure the destination must be all zeros (spill.h).
 */
#include "fuzz_spill.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200];
    fuzz_spill_init();
    if (size == 0) return 0;
    int mode = data[0];
    tr__spill_t *s = &fuzz_spill[mode & FUZZ_SPILL_ENC];
    const uint8_t *file = data + 1;
    size_t n = size - 1;
    size_t want = n > TR__SPILL_HDR_SIZE ? n - TR__SPILL_HDR_SIZE : 0;
    if ((mode & FUZZ_SPILL_HDR_SIZE) && n >= 32) {
        uint64_t h = get64(file + 24);
        if (h < ((uint64_t)1 << 20)) want = (size_t)h;   /* the reader checks it against the file */
    }
    tr__spill_path(s, FUZZ_SPILL_OBJ, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) abort();
    if (n > 0 && write(fd, file, n) != (ssize_t)n) abort();
    close(fd);
    unsigned char *dst = malloc(want ? want : 1);
    if (dst == NULL) abort();
    memset(dst, 0xa5, want);
    tr_status_t st = tr__spill_read(s, FUZZ_SPILL_OBJ, dst, want);
    if (st != TR_OK)
        for (size_t i = 0; i < want; i++)
            if (dst[i] != 0) { fprintf(stderr, "fuzz_spill: failed read (%d) left data in the destination\n", st); abort(); }
    free(dst);
    tr__spill_remove(s, FUZZ_SPILL_OBJ);
    return 0;
}
