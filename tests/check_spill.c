/*
 * check_spill: the object-store spill files (lib/store/spill.c), on real
 * files in a fresh mkdtemp directory per test.  The library's internal
 * symbols are hidden, so this program compiles spill.c and the base files it
 * needs itself (tests/Makefile.am).
 *
 * Loop tests run once plain (_i = 0) and once encrypted (_i = 1).
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/base.h"
#include "store/spill.h"
#include "tr_test.h"

#define HDR  TR__SPILL_HDR_SIZE
#define MIB  ((size_t)1 << 20)
#define JOB  UINT64_C(0x0123456789abcdef)

static char base_dir[PATH_MAX];

/* ------------------------------------------------------------ helpers */

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    umask(022);
    snprintf(base_dir, sizeof(base_dir), "%s/check_spill.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_msg(mkdtemp(base_dir) != NULL, "mkdtemp(%s): %s", base_dir, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    chmod(path, 0700); /* a test may have left a directory read-only */
    remove(path);
    return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void teardown(void) { rm_rf(base_dir); }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0) return 0;
    return 1;
}

static int path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat(%s): %s", path, strerror(errno));
    return st.st_size;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat(%s): %s", path, strerror(errno));
    return (unsigned)(st.st_mode & 07777);
}

static void flip_byte(const char *path, off_t off, unsigned char mask)
{
    unsigned char c;
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, off), 1);
    c ^= mask;
    ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* The whole file into a malloc'ed buffer. */
static unsigned char *slurp(const char *path, size_t *len_p)
{
    size_t len = (size_t)file_size(path);
    unsigned char *b = xmalloc(len);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, b, len, 0), (ssize_t)len);
    close(fd);
    *len_p = len;
    return b;
}

static void spill_open(tr__spill_t *s, uint64_t job, int rank, int encrypt)
{
    tt_ok(tr__spill_open(s, base_dir, job, rank, encrypt));
    ck_assert_int_eq(s->open, 1);
}

/* Write @size bytes of pattern @seed as @id and return the buffer. */
static unsigned char *put_pattern(tr__spill_t *s, uint64_t id, size_t size, uint64_t seed)
{
    unsigned char *b = xmalloc(size);
    tt_fill(b, size, seed);
    tt_ok(tr__spill_write(s, id, b, size));
    return b;
}

/* Read @id and assert the pattern. */
static void get_pattern(tr__spill_t *s, uint64_t id, size_t size, uint64_t seed)
{
    unsigned char *d = xmalloc(size);
    memset(d, 0xAA, size);
    tt_ok(tr__spill_read(s, id, d, size));
    size_t bad = tt_check_pattern(d, size, seed);
    ck_assert_msg(bad == size, "object %llx: byte %zu of %zu differs", (unsigned long long)id, bad, size);
    free(d);
}

/* Read @id, expect @expect, and check that the destination holds no data. */
static void get_fails(tr__spill_t *s, uint64_t id, size_t size, tr_status_t expect)
{
    unsigned char *d = xmalloc(size);
    memset(d, 0xAA, size);
    tt_assert_status(tr__spill_read(s, id, d, size), expect);
    ck_assert_msg(is_zero(d, size), "a failed read left bytes in the destination");
    free(d);
}

/* --------------------------------------------------------------- tests */

START_TEST(test_roundtrip)
{
    static const size_t sizes[] = { 0, 1, 4095, 64 * MIB + 3 };
    tr__spill_t s;
    char path[8192];
    spill_open(&s, JOB, 3, _i);
    ck_assert_uint_eq(mode_of(s.dir), 0700);
    ck_assert_uint_eq(mode_of(s.job_dir), 0700);
    ck_assert_ptr_nonnull(strstr(s.dir, "/taskray-0123456789abcdef/rank-3"));
    for (size_t i = 0; i < TR__ARRAY_SIZE(sizes); i++) {
        uint64_t id = 0x1000 + i;
        free(put_pattern(&s, id, sizes[i], sizes[i] + 7 * (unsigned)_i));
        tr__spill_path(&s, id, path, sizeof(path));
        ck_assert_ptr_nonnull(strstr(path, "/000000000000100"));
        ck_assert_uint_eq(mode_of(path), 0600);
        ck_assert_int_eq(file_size(path), HDR + (off_t)sizes[i]);
        get_pattern(&s, id, sizes[i], sizes[i] + 7 * (unsigned)_i);
        get_pattern(&s, id, sizes[i], sizes[i] + 7 * (unsigned)_i); /* reading does not consume */
    }
    tr__spill_close(&s);
}
END_TEST

/* Every byte of the header, flipped (low bit, then all bits), is caught. */
START_TEST(test_header_flips)
{
    tr__spill_t s;
    char path[8192];
    const size_t size = 5000;
    spill_open(&s, JOB, 0, _i);
    free(put_pattern(&s, 42, size, 1));
    tr__spill_path(&s, 42, path, sizeof(path));
    static const unsigned char masks[] = { 0x01, 0xff };
    for (off_t off = 0; off < HDR; off++) {
        for (size_t m = 0; m < TR__ARRAY_SIZE(masks); m++) {
            flip_byte(path, off, masks[m]);
            unsigned char *d = xmalloc(size);
            memset(d, 0xAA, size);
            tr_status_t st = tr__spill_read(&s, 42, d, size);
            ck_assert_msg(st == TR_ERR_OBJECT_CORRUPT, "flip 0x%02x at header byte %lld: status %d",
                          masks[m], (long long)off, (int)st);
            ck_assert(is_zero(d, size));
            free(d);
            flip_byte(path, off, masks[m]);
        }
    }
    tt_assert_contains(tr_last_error(), path);
    get_pattern(&s, 42, size, 1); /* restored: fine again */
    tr__spill_close(&s);
}
END_TEST

/* Flips in the data: first byte, inside a later unit, last byte; small and multi-unit objects. */
START_TEST(test_data_flips)
{
    static const size_t sizes[] = { 100, 9 * MIB + 5 };
    tr__spill_t s;
    char path[8192];
    spill_open(&s, JOB, 0, _i);
    for (size_t i = 0; i < TR__ARRAY_SIZE(sizes); i++) {
        size_t size = sizes[i];
        off_t offs[] = { HDR, HDR + (off_t)(size / 2) + 1, HDR + (off_t)size - 1 };
        free(put_pattern(&s, 7, size, 3));
        tr__spill_path(&s, 7, path, sizeof(path));
        for (size_t k = 0; k < TR__ARRAY_SIZE(offs); k++) {
            flip_byte(path, offs[k], 0x20);
            get_fails(&s, 7, size, TR_ERR_OBJECT_CORRUPT);
            tt_assert_contains(tr_last_error(), path);
            tt_assert_contains(tr_last_error(), _i ? "GCM tag" : "digest");
            flip_byte(path, offs[k], 0x20);
            get_pattern(&s, 7, size, 3);
        }
    }
    tr__spill_close(&s);
}
END_TEST

/* Header fields changed and the header digest recomputed: each field check on its own. */
static void reseal_and_expect(tr__spill_t *s, const char *path, const unsigned char *orig,
                              size_t at, unsigned char mask, size_t size, const char *why)
{
    unsigned char h[HDR];
    memcpy(h, orig, HDR);
    h[at] ^= mask;
    ck_assert_int_eq(EVP_Digest(h, 128, h + 128, NULL, EVP_sha256(), NULL), 1);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, h, HDR, 0), HDR);
    get_fails(s, 1, size, TR_ERR_OBJECT_CORRUPT);
    ck_assert_msg(strstr(tr_last_error(), why) != NULL, "byte %zu ^ 0x%02x: '%s' does not say '%s'",
                  at, mask, tr_last_error(), why);
    ck_assert_int_eq(pwrite(fd, orig, HDR, 0), HDR);
    close(fd);
}

START_TEST(test_resealed_header)
{
    tr__spill_t s;
    char path[8192];
    unsigned char orig[HDR];
    const size_t size = 6 * MIB + 1;
    spill_open(&s, JOB, 0, _i);
    free(put_pattern(&s, 1, size, 21));
    tr__spill_path(&s, 1, path, sizeof(path));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, orig, HDR, 0), HDR);
    close(fd);
    ck_assert(memcmp(orig, TR__SPILL_MAGIC, 8) == 0);
    reseal_and_expect(&s, path, orig, 8, 0x03, size, "version");           /* version 1 -> 2 */
    reseal_and_expect(&s, path, orig, 12, 0x02, size, "unknown flags");
    reseal_and_expect(&s, path, orig, 12, 0x01, size, _i ? "plain file" : "encrypted file");
    reseal_and_expect(&s, path, orig, 16, 0x01, size, "another object");
    reseal_and_expect(&s, path, orig, 24, 0x01, size, "size differs");
    reseal_and_expect(&s, path, orig, 34, 0x01, size, "chunk size");
    reseal_and_expect(&s, path, orig, 100, 0x01, size, "reserved");
    reseal_and_expect(&s, path, orig, 127, 0x80, size, "reserved");
    if (_i) {
        reseal_and_expect(&s, path, orig, 40, 0x01, size, "other mode");  /* digest field set */
        reseal_and_expect(&s, path, orig, 72, 0x01, size, "GCM tag");     /* IV */
        reseal_and_expect(&s, path, orig, 99, 0x01, size, "GCM tag");     /* tag */
    } else {
        reseal_and_expect(&s, path, orig, 40, 0x01, size, "data digest"); /* digest */
        reseal_and_expect(&s, path, orig, 71, 0x01, size, "data digest");
        reseal_and_expect(&s, path, orig, 72, 0x01, size, "other mode");  /* IV set */
        reseal_and_expect(&s, path, orig, 99, 0x01, size, "other mode");  /* tag set */
    }
    get_pattern(&s, 1, size, 21);
    tr__spill_close(&s);
}
END_TEST

START_TEST(test_truncate_extend)
{
    const size_t size = 9 * MIB + 5;
    static const off_t cut[] = { 1, (HDR + 9 * MIB + 5) / 2, 9 * MIB + 5, 9 * MIB + 6, HDR + 9 * MIB + 5 };
    tr__spill_t s;
    char path[8192];
    spill_open(&s, JOB, 0, _i);
    tr__spill_path(&s, 9, path, sizeof(path));
    unsigned char *b = put_pattern(&s, 9, size, 4);
    for (size_t k = 0; k < TR__ARRAY_SIZE(cut); k++) {
        ck_assert_int_eq(truncate(path, HDR + (off_t)size - cut[k]), 0);
        get_fails(&s, 9, size, TR_ERR_OBJECT_CORRUPT);
        tt_assert_contains(tr_last_error(), path);
        tt_ok(tr__spill_write(&s, 9, b, size));
    }
    /* One byte more: the file is longer than header + data. */
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    close(fd);
    get_fails(&s, 9, size, TR_ERR_OBJECT_CORRUPT);
    tt_ok(tr__spill_write(&s, 9, b, size));
    get_pattern(&s, 9, size, 4);
    free(b);
    tr__spill_close(&s);
}
END_TEST

START_TEST(test_wrong_size)
{
    tr__spill_t s;
    spill_open(&s, JOB, 0, _i);
    free(put_pattern(&s, 5, 4095, 5));
    get_fails(&s, 5, 4094, TR_ERR_OBJECT_CORRUPT);
    get_fails(&s, 5, 4096, TR_ERR_OBJECT_CORRUPT);
    get_fails(&s, 5, 0, TR_ERR_OBJECT_CORRUPT);
    free(put_pattern(&s, 6, 0, 5));
    get_fails(&s, 6, 1, TR_ERR_OBJECT_CORRUPT);
    get_pattern(&s, 5, 4095, 5);
    get_pattern(&s, 6, 0, 5);
    tr__spill_close(&s);
}
END_TEST

START_TEST(test_missing)
{
    tr__spill_t s;
    char path[8192];
    spill_open(&s, JOB, 0, _i);
    get_fails(&s, 77, 10, TR_ERR_OBJECT_LOST);
    tr__spill_path(&s, 77, path, sizeof(path));
    tt_assert_contains(tr_last_error(), path);
    free(put_pattern(&s, 77, 10, 6));
    tr__spill_remove(&s, 77);
    ck_assert(!path_exists(path));
    get_fails(&s, 77, 10, TR_ERR_OBJECT_LOST);
    tr__spill_remove(&s, 77); /* already gone: no error */
    tr__spill_close(&s);
}
END_TEST

/* The file of A under B's name: the id in the header gives it away. */
START_TEST(test_renamed)
{
    tr__spill_t s;
    char pa[8192], pb[8192];
    spill_open(&s, JOB, 0, _i);
    free(put_pattern(&s, 0xA, 3000, 8));
    free(put_pattern(&s, 0xB, 3000, 8));
    tr__spill_path(&s, 0xA, pa, sizeof(pa));
    tr__spill_path(&s, 0xB, pb, sizeof(pb));
    ck_assert_int_eq(rename(pa, pb), 0);
    get_fails(&s, 0xB, 3000, TR_ERR_OBJECT_CORRUPT);
    tt_assert_contains(tr_last_error(), "another object");
    get_fails(&s, 0xA, 3000, TR_ERR_OBJECT_LOST);
    tr__spill_close(&s);
}
END_TEST

static const char pattern[] = "taskray-known-plaintext-pattern!";

static unsigned char *pattern_data(size_t size)
{
    unsigned char *b = xmalloc(size);
    for (size_t i = 0; i < size; i++) b[i] = (unsigned char)pattern[i % (sizeof(pattern) - 1)];
    return b;
}

START_TEST(test_encrypted_hides_plaintext)
{
    const size_t size = 5 * MIB + 17;
    tr__spill_t plain, enc;
    char pp[8192], pe[8192];
    size_t lp, le;
    unsigned char *b = pattern_data(size);
    spill_open(&plain, JOB, 0, 0);
    spill_open(&enc, JOB + 1, 0, 1);
    tt_ok(tr__spill_write(&plain, 1, b, size));
    tt_ok(tr__spill_write(&enc, 1, b, size));
    tr__spill_path(&plain, 1, pp, sizeof(pp));
    tr__spill_path(&enc, 1, pe, sizeof(pe));
    unsigned char *fp = slurp(pp, &lp), *fe = slurp(pe, &le);
    ck_assert_ptr_nonnull(memmem(fp, lp, pattern, 8)); /* the search works */
    ck_assert_ptr_null(memmem(fe, le, pattern, 8));
    ck_assert_ptr_null(memmem(fe, le, pattern + 8, 8));
    /* Nor the key. */
    ck_assert_ptr_null(memmem(fe, le, enc.key, sizeof(enc.key)));
    unsigned char *d = xmalloc(size);
    tt_ok(tr__spill_read(&enc, 1, d, size));
    ck_assert(memcmp(d, b, size) == 0);
    free(d); free(fp); free(fe); free(b);
    tr__spill_close(&plain);
    tr__spill_close(&enc);
}
END_TEST

/* An encrypted file is unreadable under another key, and plain/encrypted files don't mix. */
START_TEST(test_wrong_key_or_mode)
{
    tr__spill_t a, b, p;
    char pa[8192], pb[8192], pp[8192];
    spill_open(&a, JOB, 0, 1);
    spill_open(&b, JOB + 1, 0, 1);
    spill_open(&p, JOB + 2, 0, 0);
    free(put_pattern(&a, 3, 6 * MIB, 9));
    free(put_pattern(&p, 4, 100, 9));
    tr__spill_path(&a, 3, pa, sizeof(pa));
    tr__spill_path(&b, 3, pb, sizeof(pb));
    ck_assert_int_eq(link(pa, pb), 0);
    get_fails(&b, 3, 6 * MIB, TR_ERR_OBJECT_CORRUPT);
    tt_assert_contains(tr_last_error(), "GCM tag");
    tr__spill_path(&p, 3, pp, sizeof(pp));
    ck_assert_int_eq(link(pa, pp), 0);
    get_fails(&p, 3, 6 * MIB, TR_ERR_OBJECT_CORRUPT);
    tr__spill_path(&p, 4, pp, sizeof(pp));
    tr__spill_path(&a, 4, pa, sizeof(pa));
    ck_assert_int_eq(link(pp, pa), 0);
    get_fails(&a, 4, 100, TR_ERR_OBJECT_CORRUPT);
    get_pattern(&a, 3, 6 * MIB, 9);
    tr__spill_close(&a);
    tr__spill_close(&b);
    tr__spill_close(&p);
}
END_TEST

/* Two jobs side by side; two ranks of one job share its directory. */
START_TEST(test_two_jobs)
{
    tr__spill_t j1, j2, r1;
    spill_open(&j1, JOB, 0, _i);
    spill_open(&j2, JOB + 1, 0, !_i);
    spill_open(&r1, JOB, 1, _i);
    ck_assert_str_ne(j1.dir, j2.dir);
    ck_assert_str_ne(j1.job_dir, j2.job_dir);
    ck_assert_str_eq(j1.job_dir, r1.job_dir);
    ck_assert_str_ne(j1.dir, r1.dir);
    free(put_pattern(&j1, 1, 5000, 11));
    free(put_pattern(&j2, 1, 5000, 12));
    free(put_pattern(&r1, 1, 5000, 13));
    get_pattern(&j1, 1, 5000, 11);
    get_pattern(&j2, 1, 5000, 12);
    get_pattern(&r1, 1, 5000, 13);
    char jd[4096], rd[4096];
    snprintf(jd, sizeof(jd), "%s", j1.job_dir);
    snprintf(rd, sizeof(rd), "%s", j1.dir);
    tr__spill_close(&j1);
    ck_assert(!path_exists(rd));
    ck_assert(path_exists(jd)); /* rank 1 still uses it */
    get_pattern(&j2, 1, 5000, 12);
    get_pattern(&r1, 1, 5000, 13);
    tr__spill_close(&r1);
    ck_assert(!path_exists(jd));
    get_pattern(&j2, 1, 5000, 12);
    tr__spill_close(&j2);
}
END_TEST

START_TEST(test_close_removes_everything)
{
    tr__spill_t s;
    char dir[4096], job_dir[4096], path[8192];
    spill_open(&s, JOB, 2, _i);
    for (uint64_t id = 1; id <= 5; id++) free(put_pattern(&s, id, id * 1000, id));
    free(put_pattern(&s, 6, 0, 0));
    free(put_pattern(&s, 7, 5 * MIB, 0));
    snprintf(dir, sizeof(dir), "%s", s.dir);
    snprintf(job_dir, sizeof(job_dir), "%s", s.job_dir);
    tr__spill_path(&s, 7, path, sizeof(path));
    ck_assert(path_exists(path));
    tr__spill_close(&s);
    ck_assert(!path_exists(path));
    ck_assert(!path_exists(dir));
    ck_assert(!path_exists(job_dir));
    ck_assert_int_eq(s.open, 0);
    ck_assert(is_zero(s.key, sizeof(s.key)));
    unsigned char d[4];
    tt_assert_status(tr__spill_read(&s, 1, d, sizeof(d)), TR_ERR_INVALID_ARG);
    tt_assert_status(tr__spill_write(&s, 1, d, sizeof(d)), TR_ERR_INVALID_ARG);
    tr__spill_close(&s); /* twice: harmless */
    /* The base directory itself is left alone. */
    ck_assert(path_exists(base_dir));
}
END_TEST

START_TEST(test_stale_file_replaced)
{
    tr__spill_t s;
    char path[8192];
    spill_open(&s, JOB, 0, _i);
    tr__spill_path(&s, 12, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    ck_assert_int_ge(fd, 0);
    static const char junk[] = "stale junk from an earlier life, longer than the new object";
    ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    free(put_pattern(&s, 12, 10, 14));
    ck_assert_uint_eq(mode_of(path), 0600);
    ck_assert_int_eq(file_size(path), HDR + 10);
    get_pattern(&s, 12, 10, 14);
    tr__spill_close(&s);
}
END_TEST

/* A read-only spill directory: the write fails and leaves no file.  Root
 * ignores permissions, so as root the check runs in a child that becomes
 * "nobody" first. */
static int readonly_child(int encrypt)
{
    char base[PATH_MAX], path[8192];
    const char *t = getenv("TMPDIR");
    tr__spill_t s;
    unsigned char b[8192];
    int rc = 0;
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 10;
    snprintf(base, sizeof(base), "%s/check_spill_ro.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(base) == NULL) return 11;
    if (tr__spill_open(&s, base, JOB, 0, encrypt) != TR_OK) { rmdir(base); return 12; }
    if (chmod(s.dir, 0500) != 0) rc = 13;
    memset(b, 1, sizeof(b));
    if (rc == 0 && tr__spill_write(&s, 1, b, sizeof(b)) != TR_ERR_SYSTEM) rc = 14;
    tr__spill_path(&s, 1, path, sizeof(path));
    if (rc == 0 && path_exists(path)) rc = 15;
    if (rc == 0 && strstr(tr_last_error(), s.dir) == NULL) rc = 16;
    chmod(s.dir, 0700);
    tr__spill_close(&s);
    if (rmdir(base) != 0) rc = rc ? rc : 17;
    return rc;
}

START_TEST(test_readonly_dir)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(readonly_child(_i));
    int wst;
    ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
    ck_assert_msg(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
                  "read-only check failed in the child: status %d (see readonly_child)", wst);
}
END_TEST

/* A write that fails half-way (file size limit: EFBIG) leaves no partial file. */
START_TEST(test_write_fails_midway)
{
    tr__spill_t s;
    struct rlimit old, lim;
    char path[8192];
    const size_t size = 20 * MIB;
    spill_open(&s, JOB, 0, _i);
    tr__spill_path(&s, 3, path, sizeof(path));
    unsigned char *b = xmalloc(size);
    tt_fill(b, size, 15);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 6 * MIB;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    tt_assert_status(tr__spill_write(&s, 3, b, size), TR_ERR_SYSTEM);
    ck_assert(!path_exists(path));
    tt_assert_contains(tr_last_error(), path);
    tt_ok(tr__spill_write(&s, 3, b, MIB)); /* under the limit: fine */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    get_pattern(&s, 3, MIB, 15);
    free(b);
    tr__spill_close(&s);
}
END_TEST

START_TEST(test_open_errors)
{
    tr__spill_t s;
    char p[PATH_MAX + 64], q[PATH_MAX + 64];

    tt_assert_status(tr__spill_open(NULL, base_dir, JOB, 0, 0), TR_ERR_INVALID_ARG);
    tt_assert_status(tr__spill_open(&s, base_dir, JOB, -1, 0), TR_ERR_INVALID_ARG);
    ck_assert_int_eq(s.open, 0);

    snprintf(p, sizeof(p), "%s/does/not/exist", base_dir);
    tt_assert_status(tr__spill_open(&s, p, JOB, 0, 0), TR_ERR_SYSTEM);
    ck_assert_int_eq(s.open, 0);
    ck_assert(!path_exists(p));

    char *long_base = xmalloc(5000);
    memset(long_base, 'a', 4999);
    long_base[0] = '/';
    long_base[4999] = '\0';
    tt_assert_status(tr__spill_open(&s, long_base, JOB, 0, 0), TR_ERR_INVALID_ARG);
    free(long_base);

    /* A job dir that others may enter is refused ... */
    snprintf(p, sizeof(p), "%s/taskray-%016llx", base_dir, (unsigned long long)JOB);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    chmod(p, 0755);
    tt_assert_status(tr__spill_open(&s, base_dir, JOB, 0, 0), TR_ERR_SYSTEM);
    tt_assert_contains(tr_last_error(), p);
    ck_assert_int_eq(rmdir(p), 0);
    /* ... and so is a symbolic link, even to a private directory. */
    snprintf(q, sizeof(q), "%s/elsewhere", base_dir);
    ck_assert_int_eq(mkdir(q, 0700), 0);
    ck_assert_int_eq(symlink(q, p), 0);
    tt_assert_status(tr__spill_open(&s, base_dir, JOB, 0, 0), TR_ERR_SYSTEM);
    ck_assert_int_eq(unlink(p), 0);
    /* An existing private job dir (another rank made it) is fine. */
    ck_assert_int_eq(mkdir(p, 0700), 0);
    spill_open(&s, JOB, 0, 0);
    tr__spill_close(&s);
    ck_assert(!path_exists(p));

    /* Default base: $TMPDIR (restored after, for CK_FORK=no runs). */
    char *saved = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", base_dir, 1);
    tt_ok(tr__spill_open(&s, NULL, JOB, 4, 0));
    ck_assert_int_eq(strncmp(s.dir, base_dir, strlen(base_dir)), 0);
    tr__spill_close(&s);
    tt_ok(tr__spill_open(&s, "", JOB, 4, 1));
    ck_assert_int_eq(strncmp(s.dir, base_dir, strlen(base_dir)), 0);
    tr__spill_close(&s);
    if (saved != NULL) setenv("TMPDIR", saved, 1); else unsetenv("TMPDIR");
    free(saved);
}
END_TEST

START_TEST(test_bad_args)
{
    tr__spill_t s;
    unsigned char b[16] = { 0 };
    spill_open(&s, JOB, 0, _i);
    tt_assert_status(tr__spill_write(&s, 1, NULL, 5), TR_ERR_INVALID_ARG);
    tt_assert_status(tr__spill_write(NULL, 1, b, 5), TR_ERR_INVALID_ARG);
    tt_assert_status(tr__spill_read(&s, 1, NULL, 5), TR_ERR_INVALID_ARG);
    tt_ok(tr__spill_write(&s, 1, NULL, 0));
    tt_ok(tr__spill_read(&s, 1, NULL, 0));
    tt_ok(tr__spill_write(&s, 2, b, sizeof(b)));
    tt_ok(tr__spill_read(&s, 2, b, sizeof(b)));
    tr__spill_close(&s);
}
END_TEST

/* Several threads spill and restore different objects at once. */
typedef struct { tr__spill_t *s; uint64_t id; int ok; } conc_arg_t;

static void *conc_thread(void *p)
{
    conc_arg_t *a = p;
    const size_t size = 6 * MIB + (size_t)a->id;
    unsigned char *b = malloc(size), *d = malloc(size);
    a->ok = 0;
    if (b == NULL || d == NULL) goto out;
    for (int round = 0; round < 3; round++) {
        tt_fill(b, size, a->id * 10 + (uint64_t)round);
        if (tr__spill_write(a->s, a->id, b, size) != TR_OK) goto out;
        if (tr__spill_read(a->s, a->id, d, size) != TR_OK) goto out;
        if (memcmp(b, d, size) != 0) goto out;
    }
    a->ok = 1;
out:
    free(b);
    free(d);
    return NULL;
}

START_TEST(test_concurrent)
{
    tr__spill_t s;
    pthread_t t[4];
    conc_arg_t a[4];
    spill_open(&s, JOB, 0, _i);
    for (int i = 0; i < 4; i++) {
        a[i] = (conc_arg_t){ &s, (uint64_t)i + 1, 0 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, conc_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(a[i].ok, "thread %d failed: %s", i, tr_last_error());
    }
    tr__spill_close(&s);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *spill_suite(void)
{
    Suite *s = suite_create("spill");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_loop_test(tc, test_roundtrip, 0, 2);
    tcase_add_loop_test(tc, test_header_flips, 0, 2);
    tcase_add_loop_test(tc, test_data_flips, 0, 2);
    tcase_add_loop_test(tc, test_resealed_header, 0, 2);
    tcase_add_loop_test(tc, test_truncate_extend, 0, 2);
    tcase_add_loop_test(tc, test_wrong_size, 0, 2);
    tcase_add_loop_test(tc, test_missing, 0, 2);
    tcase_add_loop_test(tc, test_renamed, 0, 2);
    tcase_add_test(tc, test_encrypted_hides_plaintext);
    tcase_add_test(tc, test_wrong_key_or_mode);
    tcase_add_loop_test(tc, test_two_jobs, 0, 2);
    tcase_add_loop_test(tc, test_close_removes_everything, 0, 2);
    tcase_add_loop_test(tc, test_stale_file_replaced, 0, 2);
    tcase_add_loop_test(tc, test_readonly_dir, 0, 2);
    tcase_add_loop_test(tc, test_write_fails_midway, 0, 2);
    tcase_add_test(tc, test_open_errors);
    tcase_add_loop_test(tc, test_bad_args, 0, 2);
    tcase_add_loop_test(tc, test_concurrent, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Quiet: the tests provoke many warnings on purpose.  TASKRAY_LOG_LEVEL shows them. */
    tr__log_level = -1;
    if (getenv("TASKRAY_LOG_LEVEL") != NULL) tr__log_init();
    SRunner *sr = srunner_create(spill_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
