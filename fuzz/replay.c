/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput on files, without libFuzzer:
 * `replay FILE|DIR...` (each file of a directory, in name order).  Built by
 * tests/Makefile.am with the normal compiler for the regression inputs
 * under fuzz/regressions/<target>/ and the seed corpus; exit 0 when every
 * input ran (a crash or abort in the target fails the test).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) { perror(path); return -1; }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) { uint8_t *b = realloc(buf, cap *= 2); if (b == NULL) { free(buf); buf = NULL; } else buf = b; }
    }
    fclose(f);
    if (buf == NULL) { fprintf(stderr, "%s: out of memory\n", path); return -1; }
    /* a copy of exactly @n bytes, so that an overread is caught under ASan */
    uint8_t *exact = malloc(n ? n : 1);
    if (exact == NULL) { free(buf); return -1; }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int only_files(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv)
{
    int ran = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { perror(argv[i]); failed++; continue; }
        if (!S_ISDIR(st.st_mode)) { failed += run_file(argv[i]) != 0; ran++; continue; }
        struct dirent **names;
        int n = scandir(argv[i], &names, only_files, alphasort);
        if (n < 0) { perror(argv[i]); failed++; continue; }
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
            failed += run_file(path) != 0;
            ran++;
            free(names[k]);
        }
        free(names);
    }
    printf("%s: %d input%s replayed, %d unreadable\n", argv[0], ran, ran == 1 ? "" : "s", failed);
    return failed ? 1 : 0;
}
