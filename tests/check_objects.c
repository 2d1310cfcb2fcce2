/*
 * The object store in embedded mode (one rank): objects written in place
 * (tr_object_create/seal/abort), zero-copy reads (tr_get_buffer), refs
 * inside objects (tr_put_refs, tr_buf_refs), freeing (tr_object_store_stats
 * back to its baseline), spilling under a small TASKRAY_OBJECT_STORE_BYTES
 * (plain and encrypted), corrupted and truncated spill files, a full store,
 * large task arguments and returns, TR_ARG_BORROW, and TASKRAY_SUMMARY.
 *
 * Each test runs in its own process (libcheck fork mode), so setenv()
 * before tr_init() configures that test only.  The cap tests use 8 MiB
 * stores and 3 MiB objects: two fit in memory, a third needs a spill.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "suites.h"
#include "tr_test.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

#define OB_CAP      "8m"
#define OB_CAP_B    (8 * MIB)
#define OB_BIG      (3 * MIB) /* two fit in an 8 MiB store, three do not */
#define OB_NSPILL   6
#define OB_HDR      160 /* TR__SPILL_HDR_SIZE, lib/store/spill.h */
#define OB_SEED0    1000

/* ------------------------------------------------------------- helpers */

static tr_object_store_stats_t ob_stats(void)
{
    tr_object_store_stats_t s;
    memset(&s, 0xEE, sizeof(s));
    tt_ok(tr_object_store_stats(&s));
    return s;
}

/* Asynchronous cleanup (a task's argument copies, a finished task's pins)
 * may trail the result by a moment: wait (bounded, a hang guard) until
 * used_bytes is back at @base.  Returns the last value seen. */
static uint64_t ob_wait_used(uint64_t base)
{
    uint64_t used = 0;
    for (int waited = 0; waited < 20000; waited++) {
        used = ob_stats().used_bytes;
        if (used == base) {
            break;
        }
        tt_msleep(1);
    }
    return used;
}

static unsigned char *ob_pattern(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    tt_fill(p, n, seed);
    return p;
}

static tr_ref_h ob_put_pattern(size_t n, uint64_t seed)
{
    unsigned char *p = ob_pattern(n, seed);
    tr_ref_h ref;
    tt_ok(tr_put(p, n, &ref));
    free(p);
    return ref;
}

/* tr_get @ref and check its size and every byte against tt_fill(@seed). */
static void ob_verify(tr_ref_h ref, size_t n, uint64_t seed)
{
    tr_buf_h buf;
    tt_ok(tr_get(ref, TR_TIMEOUT_INFINITE, &buf));
    ck_assert_uint_eq(tr_buf_size(buf), n);
    size_t bad = tt_check_pattern(tr_buf_data(buf), n, seed);
    ck_assert_msg(bad == n, "object of seed %llu differs at byte %zu of %zu",
                  (unsigned long long)seed, bad, n);
    tt_ok(tr_buf_release(buf));
}

static char *ob_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(PATH_MAX);
    ck_assert_ptr_nonnull(dir);
    snprintf(dir, PATH_MAX, "%s/tr-objects-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp(%s): %s", dir, strerror(errno));
    return dir;
}

/* Small store, spills into a fresh directory (returned). */
static char *ob_spill_env(int encrypt)
{
    char *dir = ob_tmpdir();
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", OB_CAP, 1), 0);
    ck_assert_int_eq(setenv("TASKRAY_SPILL_DIR", dir, 1), 0);
    ck_assert_int_eq(setenv("TASKRAY_SPILL_ENCRYPT", encrypt ? "1" : "0", 1), 0);
    return dir;
}

/* The spill files of rank 0 under @dir (globfree the result). */
static size_t ob_spill_files(const char *dir, glob_t *g)
{
    char pat[PATH_MAX];
    snprintf(pat, sizeof(pat), "%s/taskray-*/rank-0/*.spill", dir);
    memset(g, 0, sizeof(*g));
    int rc = glob(pat, 0, NULL, g);
    ck_assert_msg(rc == 0 || rc == GLOB_NOMATCH, "glob(%s) failed: %d", pat, rc);
    return rc == 0 ? g->gl_pathc : 0;
}

static size_t ob_count_spill_files(const char *dir)
{
    glob_t g;
    size_t n = ob_spill_files(dir, &g);
    globfree(&g);
    return n;
}

/* Read a whole file. */
static unsigned char *ob_read_file(const char *path, size_t *size_p)
{
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "stat(%s): %s", path, strerror(errno));
    unsigned char *p = malloc((size_t)sb.st_size + 1);
    ck_assert_ptr_nonnull(p);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen(%s): %s", path, strerror(errno));
    size_t got = fread(p, 1, (size_t)sb.st_size, f);
    fclose(f);
    ck_assert_uint_eq(got, (size_t)sb.st_size);
    *size_p = got;
    return p;
}

/* The seed (OB_SEED0 + i, i < n) whose pattern a plain spill file holds, or -1. */
static int ob_file_seed(const char *path, int n)
{
    size_t size;
    unsigned char *p = ob_read_file(path, &size);
    int found = -1;
    if (size == OB_HDR + OB_BIG) {
        for (int i = 0; i < n && found < 0; i++) {
            if (tt_check_pattern(p + OB_HDR, OB_BIG, OB_SEED0 + (uint64_t)i) == OB_BIG) {
                found = i;
            }
        }
    }
    free(p);
    return found;
}

/* Assert that @dir is empty: no spill file, no taskray-* directory left. */
static void ob_assert_dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir(%s): %s", dir, strerror(errno));
    struct dirent *e;
    char left[512] = "";
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        n++;
        strncat(left, e->d_name, sizeof(left) - strlen(left) - 2);
        strncat(left, " ", sizeof(left) - strlen(left) - 1);
    }
    closedir(d);
    ck_assert_msg(n == 0, "%s still holds: %s", dir, left);
}

/* Remove what a failed test may leave (best effort, the test result is decided). */
static void ob_rmtree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        /* nothing to do */
    }
}

/* Put OB_NSPILL patterned OB_BIG objects (seeds OB_SEED0 + i): each must
 * succeed, the older ones being spilled. */
/* tr_finalize(), then nothing of the job may be left in the spill dir
 * @dir (from ob_spill_env()); removes and frees it. */
static void ob_finalize_clean(char *dir)
{
    tt_ok(tr_finalize());
    ob_assert_dir_empty(dir);
    ob_rmtree(dir);
    free(dir);
}

static void ob_put_spilling(tr_ref_h *refs)
{
    unsigned char *src = malloc(OB_BIG);
    ck_assert_ptr_nonnull(src);
    for (int i = 0; i < OB_NSPILL; i++) {
        tt_fill(src, OB_BIG, OB_SEED0 + (uint64_t)i);
        tt_ok(tr_put(src, OB_BIG, &refs[i]));
    }
    free(src);
}

/* ------------------------------------------- create / seal / abort */

START_TEST(test_create_seal_zero_copy)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n = 1 * MIB + 123; /* well above TASKRAY_INLINE_MAX (64 KiB) */
    void *data = NULL;
    tr_object_h obj = TR_OBJECT_NULL;
    tt_ok(tr_object_create(n, &data, &obj));
    ck_assert_ptr_nonnull(data);
    ck_assert_ptr_nonnull(obj);
    ck_assert_uint_ge(ob_stats().used_bytes, b0.used_bytes + n);
    tt_fill(data, n, 77);
    tr_ref_h ref;
    tt_ok(tr_object_seal(obj, &ref));

    tr_buf_h buf;
    tt_ok(tr_get(ref, TR_TIMEOUT_INFINITE, &buf));
    ck_assert_uint_eq(tr_buf_size(buf), n);
    ck_assert_ptr_eq(tr_buf_data(buf), data); /* the very bytes the caller wrote */
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(buf), n, 77), n);
    tt_ok(tr_buf_release(buf));

    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, b0.num_objects + 1);
    ck_assert_uint_eq(s.num_primary, b0.num_primary + 1);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects + 1);

    /* consumed: sealing or aborting it again is refused */
    tt_assert_status(tr_object_seal(obj, &ref), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_abort(obj), TR_ERR_INVALID_ARG);

    tt_ok(tr_ref_release(ref));
    s = ob_stats();
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_create_seal_small)
{
    /* an inline-sized object written in place reads back the same */
    tt_ok(tr_init(NULL));
    void *data;
    tr_object_h obj;
    tt_ok(tr_object_create(100, &data, &obj));
    tt_fill(data, 100, 5);
    tr_ref_h ref;
    tt_ok(tr_object_seal(obj, &ref));
    ob_verify(ref, 100, 5);
    tt_ok(tr_ref_release(ref));

    /* and an empty one */
    tt_ok(tr_object_create(0, &data, &obj));
    tt_ok(tr_object_seal(obj, &ref));
    ob_verify(ref, 0, 0);
    tt_ok(tr_ref_release(ref));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_create_abort)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    void *data;
    tr_object_h obj;
    tt_ok(tr_object_create(2 * MIB, &data, &obj));
    memset(data, 0x5A, 2 * MIB);
    ck_assert_uint_ge(ob_stats().used_bytes, b0.used_bytes + 2 * MIB);
    tt_ok(tr_object_abort(obj));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    tt_assert_status(tr_object_abort(obj), TR_ERR_INVALID_ARG);
    tr_ref_h ref;
    tt_assert_status(tr_object_seal(obj, &ref), TR_ERR_INVALID_ARG);

    /* small ones too */
    tt_ok(tr_object_create(10, &data, &obj));
    tt_ok(tr_object_abort(obj));
    tt_assert_status(tr_object_abort(obj), TR_ERR_INVALID_ARG);
    ck_assert_uint_eq(ob_stats().used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_create_bad_args)
{
    tt_ok(tr_init(NULL));
    void *data;
    tr_object_h obj;
    tr_ref_h ref;
    tt_assert_status(tr_object_create(1024, NULL, &obj), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_create(1024, &data, NULL), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_create(1 * MIB, NULL, &obj), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_seal(TR_OBJECT_NULL, &ref), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_abort(TR_OBJECT_NULL), TR_ERR_INVALID_ARG);
    /* a handle that is no object (a ref) */
    tr_ref_h other;
    tt_ok(tr_put_i64(3, &other));
    tt_assert_status(tr_object_seal((tr_object_h)other, &ref), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_abort((tr_object_h)other), TR_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_get_i64(other), 3);
    tt_ok(tr_ref_release(other));

    tt_ok(tr_object_create(1 * MIB, &data, &obj));
    tt_assert_status(tr_object_seal(obj, NULL), TR_ERR_INVALID_ARG);
    /* the failed seal wrote nothing; the object is still the caller's to end */
    tt_assert_status2(tr_object_abort(obj), TR_OK, TR_ERR_INVALID_ARG);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_store_api_before_init)
{
    void *data = NULL;
    tr_object_h obj = TR_OBJECT_NULL;
    tr_ref_h ref = TR_REF_NULL;
    tr_buf_h buf = TR_BUF_NULL;
    const void *p = NULL;
    size_t n = 0;
    tr_object_store_stats_t s;
    tt_assert_status(tr_object_create(1 * MIB, &data, &obj), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_object_create(10, &data, &obj), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_object_seal(obj, &ref), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_object_abort(obj), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_put_refs("x", 1, NULL, 0, &ref), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_get_buffer(ref, 0, &p, &n, &buf), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_object_store_stats(&s), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_buf_refs(buf, &ref, 0), TR_ERR_NOT_INITIALIZED);
    ck_assert_uint_eq(tr_buf_num_refs(buf), 0);

    /* and after tr_finalize() */
    tt_ok(tr_init(NULL));
    tt_ok(tr_finalize());
    tt_assert_status(tr_object_create(1 * MIB, &data, &obj), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_object_store_stats(&s), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_put_refs("x", 1, NULL, 0, &ref), TR_ERR_NOT_INITIALIZED);
}
END_TEST

/* ---------------------------------------------------------- get_buffer */

START_TEST(test_get_buffer)
{
    tt_ok(tr_init(NULL));
    size_t n = 512 * KIB;
    tr_ref_h ref = ob_put_pattern(n, 9);
    const void *p1 = NULL, *p2 = NULL;
    size_t n1 = 0, n2 = 0;
    tr_buf_h b1, b2;
    tt_ok(tr_get_buffer(ref, TR_TIMEOUT_INFINITE, &p1, &n1, &b1));
    tt_ok(tr_get_buffer(ref, 0, &p2, &n2, &b2));
    ck_assert_uint_eq(n1, n);
    ck_assert_uint_eq(n2, n);
    ck_assert_ptr_nonnull(p1);
    ck_assert_ptr_eq(p1, p2); /* the stored copy itself, not copies of it */
    ck_assert_ptr_eq(p1, tr_buf_data(b1));
    ck_assert_uint_eq(tt_check_pattern(p1, n, 9), n);
    ck_assert_uint_ge(ob_stats().pinned_bytes, n);
    tt_ok(tr_buf_release(b1));
    tt_ok(tr_buf_release(b2));
    ck_assert_uint_eq(ob_stats().pinned_bytes, 0);

    tt_assert_status(tr_get_buffer(ref, 0, NULL, &n1, &b1), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_get_buffer(ref, 0, &p1, NULL, &b1), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_get_buffer(ref, 0, &p1, &n1, NULL), TR_ERR_INVALID_ARG);

    /* a small value */
    tr_ref_h small;
    tt_ok(tr_put("hello", 6, &small));
    tt_ok(tr_get_buffer(small, 0, &p1, &n1, &b1));
    ck_assert_uint_eq(n1, 6);
    ck_assert_str_eq((const char *)p1, "hello");
    tt_ok(tr_buf_release(b1));

    tt_ok(tr_ref_release(ref));
    tt_assert_status(tr_get_buffer(ref, 0, &p1, &n1, &b1), TR_ERR_REF_RELEASED);
    tt_ok(tr_ref_release(small));
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------ refs in objects */

START_TEST(test_refs_in_object)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n1 = 256 * KIB, n2 = 1 * MIB;
    tr_ref_h in[3];
    tt_ok(tr_put_i64(42, &in[0]));
    in[1] = ob_put_pattern(n1, 1);
    in[2] = ob_put_pattern(n2, 2);
    tr_ref_h box;
    tt_ok(tr_put_refs("hdr", 4, in, 3, &box));
    for (int i = 0; i < 3; i++) {
        tt_ok(tr_ref_release(in[i]));
    }
    /* the container keeps all three alive */
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects + 4);
    ck_assert_uint_eq(s.num_objects, b0.num_objects + 2);
    ck_assert_uint_ge(s.used_bytes, b0.used_bytes + n1 + n2);

    tr_buf_h view;
    tt_ok(tr_get(box, TR_TIMEOUT_INFINITE, &view));
    ck_assert_uint_eq(tr_buf_size(view), 4);
    ck_assert_str_eq((const char *)tr_buf_data(view), "hdr");
    ck_assert_uint_eq(tr_buf_num_refs(view), 3);

    tr_ref_h out[4] = { TR_REF_NULL, TR_REF_NULL, TR_REF_NULL, TR_REF_NULL };
    tt_assert_status(tr_buf_refs(view, out, 4), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_buf_refs(view, NULL, 1), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_buf_refs(TR_BUF_NULL, out, 1), TR_ERR_INVALID_ARG);
    tt_ok(tr_buf_refs(view, out, 0));
    tt_ok(tr_buf_refs(view, out, 3));
    ck_assert_int_eq(tt_get_i64(out[0]), 42);
    ob_verify(out[1], n1, 1);
    ob_verify(out[2], n2, 2);

    /* the first n only */
    tr_ref_h first;
    tt_ok(tr_buf_refs(view, &first, 1));
    ck_assert_int_eq(tt_get_i64(first), 42);
    tt_ok(tr_ref_release(first));

    /* container gone, extracted handles still hold the inner objects */
    tt_ok(tr_buf_release(view));
    tt_ok(tr_ref_release(box));
    s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects + 3);
    ck_assert_uint_eq(s.num_objects, b0.num_objects + 2);
    ck_assert_int_eq(tt_get_i64(out[0]), 42);
    ob_verify(out[1], n1, 1);
    ob_verify(out[2], n2, 2);

    for (int i = 0; i < 3; i++) {
        tt_ok(tr_ref_release(out[i]));
    }
    s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_refs_freed_with_container)
{
    /* nobody extracts the refs: releasing the container frees everything */
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h in[2];
    in[0] = ob_put_pattern(300 * KIB, 3);
    in[1] = ob_put_pattern(100, 4);
    tr_ref_h box;
    tt_ok(tr_put_refs(NULL, 0, in, 2, &box));
    tt_ok(tr_ref_release(in[0]));
    tt_ok(tr_ref_release(in[1]));
    ck_assert_uint_eq(ob_stats().owned_objects, b0.owned_objects + 3);
    tt_ok(tr_ref_release(box));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_refs_nested_large_container)
{
    /* a large container (in the store) holding a container holding a large
     * object; only the outer handle is kept */
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h leaf = ob_put_pattern(700 * KIB, 11);
    tr_ref_h mid;
    tt_ok(tr_put_refs("mid", 4, &leaf, 1, &mid));
    tt_ok(tr_ref_release(leaf));
    unsigned char *hdr = ob_pattern(200 * KIB, 12);
    tr_ref_h outer;
    tr_ref_h both[2];
    tt_ok(tr_ref_dup(mid, &both[0]));
    both[1] = mid;
    tt_ok(tr_put_refs(hdr, 200 * KIB, both, 2, &outer)); /* the same ref twice */
    free(hdr);
    tt_ok(tr_ref_release(both[0]));
    tt_ok(tr_ref_release(mid));

    tr_buf_h vo;
    tt_ok(tr_get(outer, TR_TIMEOUT_INFINITE, &vo));
    ck_assert_uint_eq(tr_buf_size(vo), 200 * KIB);
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(vo), 200 * KIB, 12), 200 * KIB);
    ck_assert_uint_eq(tr_buf_num_refs(vo), 2);
    tr_ref_h mids[2];
    tt_ok(tr_buf_refs(vo, mids, 2));
    tt_ok(tr_buf_release(vo));
    tt_ok(tr_ref_release(outer));
    for (int k = 0; k < 2; k++) {
        tr_buf_h vm;
        tt_ok(tr_get(mids[k], TR_TIMEOUT_INFINITE, &vm));
        ck_assert_str_eq((const char *)tr_buf_data(vm), "mid");
        ck_assert_uint_eq(tr_buf_num_refs(vm), 1);
        tr_ref_h l;
        tt_ok(tr_buf_refs(vm, &l, 1));
        tt_ok(tr_buf_release(vm));
        ob_verify(l, 700 * KIB, 11);
        tt_ok(tr_ref_release(l));
    }
    tt_ok(tr_ref_release(mids[0]));
    tt_ok(tr_ref_release(mids[1]));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

/* The failure API in one rank: nothing dies, replicas need other ranks. */
START_TEST(test_failure_api_single_rank)
{
    tr_failure_stats_t fs;
    tr_ref_h r;
    ck_assert_int_eq(tr_rank_alive(0), -1);
    tt_assert_status(tr_failure_stats(&fs), TR_ERR_NOT_INITIALIZED);
    tt_assert_status(tr_put_replicated("x", 1, 0, &r), TR_ERR_NOT_INITIALIZED);
    tt_ok(tr_init(NULL));
    ck_assert_int_eq(tr_rank_alive(0), 1);
    ck_assert_int_eq(tr_rank_alive(1), -1);
    ck_assert_int_eq(tr_rank_alive(-1), -1);
    tt_assert_status(tr_failure_stats(NULL), TR_ERR_INVALID_ARG);
    tt_ok(tr_failure_stats(&fs));
    ck_assert_uint_eq(fs.ranks_died, 0);
    ck_assert_uint_eq(fs.tasks_retried + fs.objects_rebuilt + fs.actors_restarted + fs.calls_retried, 0);
    ck_assert(fs.detected_at == 0.0);
    tt_assert_status(tr_put_replicated("x", 1, -1, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_replicated("x", 1, 4, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_replicated("x", 1, 1, &r), TR_ERR_INVALID_ARG);   /* no other rank */
    tt_assert_status(tr_put_replicated(NULL, 1, 0, &r), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_replicated("x", 1, 0, NULL), TR_ERR_INVALID_ARG);
    static char big[1 << 20];
    memset(big, 7, sizeof(big));
    tt_ok(tr_put_replicated(big, sizeof(big), 0, &r));
    tr_buf_h b;
    tt_ok(tr_get(r, 0, &b));
    ck_assert_uint_eq(tr_buf_size(b), sizeof(big));
    ck_assert(memcmp(tr_buf_data(b), big, sizeof(big)) == 0);
    tt_ok(tr_buf_release(b));
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_put_refs_bad_args)
{
    tt_ok(tr_init(NULL));
    tr_ref_h r, box;
    tt_ok(tr_put_i64(1, &r));
    tt_assert_status(tr_put_refs("x", 1, NULL, 1, &box), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_refs(NULL, 1, &r, 1, &box), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_put_refs("x", 1, &r, 1, NULL), TR_ERR_INVALID_ARG);
    tr_ref_h two[2] = { r, TR_REF_NULL };
    tt_assert_status2(tr_put_refs("x", 1, two, 2, &box), TR_ERR_REF_RELEASED, TR_ERR_INVALID_ARG);
    tr_ref_h gone;
    tt_ok(tr_put_i64(2, &gone));
    tt_ok(tr_ref_release(gone));
    two[1] = gone;
    tt_assert_status(tr_put_refs("x", 1, two, 2, &box), TR_ERR_REF_RELEASED);

    /* no refs: an ordinary object, and its view has none */
    tt_ok(tr_put_refs("x", 2, NULL, 0, &box));
    tr_buf_h v;
    tt_ok(tr_get(box, 0, &v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 0);
    tr_ref_h out;
    tt_assert_status(tr_buf_refs(v, &out, 1), TR_ERR_INVALID_ARG);
    tt_ok(tr_buf_release(v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 0); /* released view */
    tt_ok(tr_ref_release(box));

    /* a plain tr_put has no refs either */
    tt_ok(tr_get(r, 0, &v));
    ck_assert_uint_eq(tr_buf_num_refs(v), 0);
    tt_assert_status(tr_buf_refs(v, &out, 1), TR_ERR_INVALID_ARG);
    tt_ok(tr_buf_release(v));
    tt_ok(tr_ref_release(r));
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------------------ GC */

START_TEST(test_gc_put_release)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    ck_assert_uint_eq(b0.num_objects, 0);
    ck_assert_uint_eq(b0.owned_objects, 0);
    size_t n = 2 * MIB;
    tr_ref_h ref = ob_put_pattern(n, 21);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_ge(s.used_bytes, b0.used_bytes + n);
    ck_assert_uint_eq(s.num_objects, 1);
    ck_assert_uint_eq(s.num_primary, 1);
    ck_assert_uint_eq(s.num_secondary, 0);
    ck_assert_uint_eq(s.owned_objects, 1);
    ck_assert_uint_eq(s.pinned_bytes, 0);
    ck_assert_uint_le(s.used_bytes, s.capacity_bytes);
    tt_ok(tr_ref_release(ref));
    s = ob_stats();
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.num_objects, 0);
    ck_assert_uint_eq(s.num_primary, 0);
    ck_assert_uint_eq(s.owned_objects, 0);

    /* a small value lives with its metadata, not in shared memory */
    tr_ref_h small;
    tt_ok(tr_put("tiny", 5, &small));
    s = ob_stats();
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.owned_objects, 1);
    tt_ok(tr_ref_release(small));
    ck_assert_uint_eq(ob_stats().owned_objects, 0);

    /* a dup keeps it alive */
    ref = ob_put_pattern(n, 22);
    tr_ref_h dup;
    tt_ok(tr_ref_dup(ref, &dup));
    tt_ok(tr_ref_release(ref));
    ck_assert_uint_ge(ob_stats().used_bytes, b0.used_bytes + n);
    ob_verify(dup, n, 22);
    tt_ok(tr_ref_release(dup));
    ck_assert_uint_eq(ob_stats().used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_gc_view_outlives_ref)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n = 3 * MIB;
    tr_ref_h ref = ob_put_pattern(n, 31);
    tr_buf_h view;
    tt_ok(tr_get(ref, TR_TIMEOUT_INFINITE, &view));
    const void *p = tr_buf_data(view);
    tt_ok(tr_ref_release(ref));
    ck_assert_uint_ge(ob_stats().used_bytes, b0.used_bytes + n);
    /* fill the store with other objects meanwhile: the view's bytes stay */
    for (int i = 0; i < 4; i++) {
        tr_ref_h r = ob_put_pattern(n, 40 + (uint64_t)i);
        tt_ok(tr_ref_release(r));
    }
    ck_assert_ptr_eq(tr_buf_data(view), p);
    ck_assert_uint_eq(tr_buf_size(view), n);
    ck_assert_uint_eq(tt_check_pattern(p, n, 31), n);
    tt_ok(tr_buf_release(view));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------------ spilling */

static void spill_roundtrip(int encrypt)
{
    char *dir = ob_spill_env(encrypt);
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);

    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_gt(s.spills, 0);
    ck_assert_uint_gt(s.spilled_bytes, 0);
    ck_assert_uint_gt(s.spilled_objects, 0);
    ck_assert_uint_eq(s.spilled_bytes, s.spilled_objects * OB_BIG);
    ck_assert_uint_ge(s.spill_bytes_total, s.spilled_bytes);
    ck_assert_uint_eq(s.num_objects, OB_NSPILL);
    ck_assert_uint_le(s.used_bytes, s.capacity_bytes);
    ck_assert_uint_eq(s.restores, 0);

    /* the files: <dir>/taskray-<job>/rank-0/<id>.spill, 0600, dirs 0700 */
    glob_t g;
    size_t nfiles = ob_spill_files(dir, &g);
    ck_assert_uint_eq(nfiles, s.spilled_objects);
    for (size_t i = 0; i < nfiles; i++) {
        struct stat sb;
        ck_assert_int_eq(stat(g.gl_pathv[i], &sb), 0);
        ck_assert_msg(S_ISREG(sb.st_mode), "%s is not a regular file", g.gl_pathv[i]);
        ck_assert_msg((sb.st_mode & 07777) == 0600, "%s has mode %04o", g.gl_pathv[i],
                      (unsigned)(sb.st_mode & 07777));
        ck_assert_uint_eq((uint64_t)sb.st_size, OB_HDR + OB_BIG);
        size_t fsize;
        unsigned char *f = ob_read_file(g.gl_pathv[i], &fsize);
        ck_assert_msg(memcmp(f, "TRSPILL1", 8) == 0, "%s: bad magic", g.gl_pathv[i]);
        uint32_t flags = (uint32_t)f[12] | (uint32_t)f[13] << 8 | (uint32_t)f[14] << 16 |
                         (uint32_t)f[15] << 24;
        ck_assert_uint_eq(flags & 1u, encrypt ? 1u : 0u);
        if (encrypt) {
            /* no piece of any object's plaintext is in the file */
            for (int k = 0; k < OB_NSPILL; k++) {
                unsigned char *pat = ob_pattern(OB_BIG, OB_SEED0 + (uint64_t)k);
                size_t offs[3] = { 0, OB_BIG / 2, OB_BIG - 64 };
                for (int j = 0; j < 3; j++) {
                    ck_assert_msg(memmem(f, fsize, pat + offs[j], 64) == NULL,
                                  "%s holds plaintext of object %d at +%zu", g.gl_pathv[i], k,
                                  offs[j]);
                }
                free(pat);
            }
        } else {
            ck_assert_msg(ob_file_seed(g.gl_pathv[i], OB_NSPILL) >= 0,
                          "%s holds none of the objects' bytes", g.gl_pathv[i]);
        }
        free(f);
    }
    if (nfiles > 0) {
        char rank_dir[PATH_MAX], job_dir[PATH_MAX];
        snprintf(rank_dir, sizeof(rank_dir), "%s", g.gl_pathv[0]);
        *strrchr(rank_dir, '/') = '\0';
        snprintf(job_dir, sizeof(job_dir), "%s", rank_dir);
        *strrchr(job_dir, '/') = '\0';
        struct stat sb;
        ck_assert_int_eq(stat(rank_dir, &sb), 0);
        ck_assert_msg((sb.st_mode & 07777) == 0700, "%s has mode %04o", rank_dir,
                      (unsigned)(sb.st_mode & 07777));
        ck_assert_int_eq(stat(job_dir, &sb), 0);
        ck_assert_msg((sb.st_mode & 07777) == 0700, "%s has mode %04o", job_dir,
                      (unsigned)(sb.st_mode & 07777));
    }
    globfree(&g);

    /* every object reads back, every byte (twice: restores spill others) */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < OB_NSPILL; i++) {
            ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
        }
    }
    s = ob_stats();
    ck_assert_uint_gt(s.restores, 0);
    ck_assert_uint_eq(s.restore_bytes_total, s.restores * OB_BIG);
    ck_assert_uint_eq(s.num_objects, OB_NSPILL);
    ck_assert_uint_eq(ob_count_spill_files(dir), s.spilled_objects);

    /* releasing half of them removes their files (the rest stay for finalize) */
    for (int i = 0; i < OB_NSPILL / 2; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    s = ob_stats();
    ck_assert_uint_eq(s.num_objects, OB_NSPILL - OB_NSPILL / 2);
    ck_assert_uint_eq(ob_count_spill_files(dir), s.spilled_objects);
    ck_assert_uint_eq(s.spilled_bytes, s.spilled_objects * OB_BIG);
    ck_assert_uint_gt(s.used_bytes, b0.used_bytes);
    /* refs[3..] are still held: tr_finalize releases them and removes files */
    ob_finalize_clean(dir);
}

START_TEST(test_spill_plain)
{
    spill_roundtrip(0);
}
END_TEST

START_TEST(test_spill_encrypted)
{
    spill_roundtrip(1);
}
END_TEST

START_TEST(test_spill_release_all)
{
    /* releasing every object leaves no file, nothing on disk or in memory */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    ck_assert_uint_gt(ob_count_spill_files(dir), 0);
    for (int i = 0; i < OB_NSPILL; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(ob_count_spill_files(dir), 0);
    ck_assert_uint_eq(s.spilled_objects, 0);
    ck_assert_uint_eq(s.spilled_bytes, 0);
    ck_assert_uint_eq(s.num_objects, 0);
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(s.owned_objects, 0);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_never_pinned)
{
    /* a view held across the spills: its object stays in memory, in place */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h first = ob_put_pattern(OB_BIG, 7);
    const void *p;
    size_t n;
    tr_buf_h view;
    tt_ok(tr_get_buffer(first, TR_TIMEOUT_INFINITE, &p, &n, &view));
    ck_assert_uint_ge(ob_stats().pinned_bytes, OB_BIG);
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs); /* one 3 MiB slot is pinned: the rest rotate */
    ck_assert_uint_gt(ob_stats().spills, 0);
    ck_assert_uint_eq(tt_check_pattern(p, OB_BIG, 7), OB_BIG);
    for (int i = 0; i < OB_NSPILL; i++) {
        ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
    }
    ck_assert_ptr_eq(tr_buf_data(view), p);
    ck_assert_uint_eq(tt_check_pattern(p, OB_BIG, 7), OB_BIG);
    tt_ok(tr_buf_release(view));
    ob_verify(first, OB_BIG, 7);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_dir_refused)
{
    /* the spill directory does not exist: a full store reports out of
     * memory, and keeps what it has */
    char *dir = ob_tmpdir();
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/does/not/exist", dir);
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", OB_CAP, 1), 0);
    ck_assert_int_eq(setenv("TASKRAY_SPILL_DIR", missing, 1), 0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[3];
    refs[0] = ob_put_pattern(OB_BIG, 50);
    refs[1] = ob_put_pattern(OB_BIG, 51);
    unsigned char *src = ob_pattern(OB_BIG, 52);
    tt_assert_status(tr_put(src, OB_BIG, &refs[2]), TR_ERR_OUT_OF_MEMORY);
    ck_assert_str_ne(tr_last_error(), "");
    free(src);
    ob_verify(refs[0], OB_BIG, 50);
    ob_verify(refs[1], OB_BIG, 51);
    ck_assert_uint_eq(ob_stats().spills, 0);
    /* freeing one makes room again */
    tt_ok(tr_ref_release(refs[0]));
    refs[0] = ob_put_pattern(OB_BIG, 53);
    ob_verify(refs[0], OB_BIG, 53);
    tt_ok(tr_ref_release(refs[0]));
    tt_ok(tr_ref_release(refs[1]));
    ob_finalize_clean(dir);
}
END_TEST

/* ---------------------------------------------------------- corruption */

START_TEST(test_spill_corrupt_plain)
{
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);

    glob_t g;
    size_t nfiles = ob_spill_files(dir, &g);
    ck_assert_msg(nfiles >= 3, "only %zu spill files", nfiles);
    int flipped = ob_file_seed(g.gl_pathv[0], OB_NSPILL);
    int truncated = ob_file_seed(g.gl_pathv[1], OB_NSPILL);
    int header = ob_file_seed(g.gl_pathv[2], OB_NSPILL);
    ck_assert_int_ge(flipped, 0);
    ck_assert_int_ge(truncated, 0);
    ck_assert_int_ge(header, 0);

    /* one byte in the middle of the data of file 0 */
    int fd = open(g.gl_pathv[0], O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t mid = OB_HDR + OB_BIG / 2;
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, mid), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, mid), 1);
    close(fd);
    /* file 1 cut in half */
    ck_assert_int_eq(truncate(g.gl_pathv[1], OB_HDR + OB_BIG / 2), 0);
    /* one byte of the header of file 2 (the size field) */
    fd = open(g.gl_pathv[2], O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, 26), 1);
    c ^= 0x80;
    ck_assert_int_eq(pwrite(fd, &c, 1, 26), 1);
    close(fd);
    globfree(&g);

    for (int round = 0; round < 2; round++) { /* the failure sticks */
        for (int i = 0; i < OB_NSPILL; i++) {
            if (i == flipped || i == truncated || i == header) {
                tr_buf_h buf = TR_BUF_NULL;
                tr_status_t st = tr_get(refs[i], TR_TIMEOUT_INFINITE, &buf);
                char le[512];
                snprintf(le, sizeof(le), "%s", tr_last_error());
                ck_assert_msg(st == TR_ERR_OBJECT_CORRUPT,
                              "tr_get of corrupted object %d returned %s (%s)", i,
                              tr_status_string(st), le);
                ck_assert_msg(le[0] != '\0', "tr_last_error is empty after TR_ERR_OBJECT_CORRUPT");
                ck_assert_ptr_eq(buf, TR_BUF_NULL);
                unsigned char small[16];
                size_t got;
                tt_assert_status(tr_get_copy(refs[i], 0, small, sizeof(small), &got),
                                 TR_ERR_OBJECT_CORRUPT);
            } else {
                ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
            }
        }
    }
    for (int i = 0; i < OB_NSPILL; i++) {
        tt_ok(tr_ref_release(refs[i]));
    }
    ck_assert_uint_eq(ob_count_spill_files(dir), 0);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, 0);
    ck_assert_uint_eq(s.spilled_objects, 0);
    ck_assert_uint_eq(s.spilled_bytes, 0);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_corrupt_encrypted)
{
    /* one flipped ciphertext byte: that object fails, the others read */
    char *dir = ob_spill_env(1);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    glob_t g;
    size_t nfiles = ob_spill_files(dir, &g);
    ck_assert_uint_ge(nfiles, 2);
    int fd = open(g.gl_pathv[0], O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t mid = OB_HDR + OB_BIG / 2;
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, mid), 1);
    c ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &c, 1, mid), 1);
    close(fd);
    ck_assert_int_eq(truncate(g.gl_pathv[1], OB_HDR + 100), 0);
    globfree(&g);

    int corrupt = 0;
    for (int i = 0; i < OB_NSPILL; i++) {
        tr_buf_h buf;
        tr_status_t st = tr_get(refs[i], TR_TIMEOUT_INFINITE, &buf);
        if (st == TR_ERR_OBJECT_CORRUPT) {
            ck_assert_str_ne(tr_last_error(), "");
            corrupt++;
            continue;
        }
        ck_assert_msg(st == TR_OK, "tr_get of object %d: %s (%s)", i, tr_status_string(st),
                      tr_last_error());
        size_t bad = tt_check_pattern(tr_buf_data(buf), OB_BIG, OB_SEED0 + (uint64_t)i);
        ck_assert_msg(bad == OB_BIG, "object %d read back wrong at byte %zu", i, bad);
        tt_ok(tr_buf_release(buf));
    }
    ck_assert_int_eq(corrupt, 2);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_file_deleted)
{
    /* a spill file removed behind the store's back: that object fails with
     * a status (corrupt or lost), never with wrong bytes, and no crash */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    glob_t g;
    ck_assert_uint_ge(ob_spill_files(dir, &g), 1);
    int gone = ob_file_seed(g.gl_pathv[0], OB_NSPILL);
    ck_assert_int_ge(gone, 0);
    ck_assert_int_eq(unlink(g.gl_pathv[0]), 0);
    globfree(&g);
    for (int i = 0; i < OB_NSPILL; i++) {
        if (i == gone) {
            tr_buf_h buf;
            tt_assert_status2(tr_get(refs[i], TR_TIMEOUT_INFINITE, &buf), TR_ERR_OBJECT_CORRUPT,
                              TR_ERR_OBJECT_LOST);
        } else {
            ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
        }
    }
    ob_finalize_clean(dir);
}
END_TEST

/* ------------------------------------------------------- out of memory */

START_TEST(test_out_of_memory_pinned)
{
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[8];
    tr_buf_h views[8];
    unsigned char *src = malloc(OB_BIG);
    ck_assert_ptr_nonnull(src);
    int held = 0;
    tr_status_t st = TR_OK;
    for (; held < 8; held++) {
        tt_fill(src, OB_BIG, 60 + (uint64_t)held);
        st = tr_put(src, OB_BIG, &refs[held]);
        if (st != TR_OK) {
            break;
        }
        tt_ok(tr_get(refs[held], TR_TIMEOUT_INFINITE, &views[held]));
    }
    ck_assert_msg(st == TR_ERR_OUT_OF_MEMORY, "put %d returned %s (%s), expected out of memory",
                  held, tr_status_string(st), tr_last_error());
    ck_assert_str_ne(tr_last_error(), "");
    ck_assert_int_ge(held, 1);
    ck_assert_int_le(held, 2); /* at most 3 puts: 8 MiB hold two 3 MiB objects */
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_ge(s.pinned_bytes, (uint64_t)held * OB_BIG);
    ck_assert_uint_eq(s.spills, 0); /* nothing pinned was spilled */
    ck_assert_uint_le(s.used_bytes, s.capacity_bytes);
    /* tr_object_create fails the same way */
    void *data;
    tr_object_h obj;
    tt_assert_status(tr_object_create(OB_BIG, &data, &obj), TR_ERR_OUT_OF_MEMORY);

    /* the held views are intact */
    for (int i = 0; i < held; i++) {
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(views[i]), OB_BIG, 60 + (uint64_t)i), OB_BIG);
        tt_ok(tr_buf_release(views[i]));
    }
    /* unpinned: a put succeeds now (spilling an older object) */
    tr_ref_h more;
    tt_fill(src, OB_BIG, 99);
    tt_ok(tr_put(src, OB_BIG, &more));
    ob_verify(more, OB_BIG, 99);
    for (int i = 0; i < held; i++) {
        ob_verify(refs[i], OB_BIG, 60 + (uint64_t)i);
    }
    free(src);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_object_too_large)
{
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t s = ob_stats();
    size_t n = (size_t)s.capacity_bytes + 1;
    unsigned char *src = calloc(1, n);
    ck_assert_ptr_nonnull(src);
    tr_ref_h ref;
    tt_assert_status(tr_put(src, n, &ref), TR_ERR_OBJECT_TOO_LARGE);
    ck_assert_str_ne(tr_last_error(), "");
    void *data;
    tr_object_h obj;
    tt_assert_status(tr_object_create(n, &data, &obj), TR_ERR_OBJECT_TOO_LARGE);
    tt_assert_status(tr_object_create(64 * OB_CAP_B, &data, &obj), TR_ERR_OBJECT_TOO_LARGE);
    tt_assert_status(tr_put_refs(src, n, NULL, 0, &ref), TR_ERR_OBJECT_TOO_LARGE);
    /* nothing was spilled to try */
    ck_assert_uint_eq(ob_stats().spills, 0);
    /* exactly the capacity fits */
    tt_ok(tr_put(src, (size_t)s.capacity_bytes, &ref));
    tt_ok(tr_ref_release(ref));
    free(src);
    tt_ok(tr_finalize());
    ob_rmtree(dir);
    free(dir);
}
END_TEST

/* --------------------------------------------------------------- tasks */

static tr_ref_h ob_kept; /* a borrowed ref a task keeps past its return */

/* Args: i64 size, i64 seed.  Returns a patterned value written in place. */
static tr_status_t ob_make(tr_task_h t)
{
    int64_t size, seed;
    void *p;
    tr_status_t st = tr_task_arg_i64(t, 0, &size);
    if (st == TR_OK) {
        st = tr_task_arg_i64(t, 1, &seed);
    }
    if (st == TR_OK) {
        st = tr_task_return_alloc(t, 0, (size_t)size, &p);
    }
    if (st == TR_OK) {
        tt_fill(p, (size_t)size, (uint64_t)seed);
    }
    return st;
}
TR_REMOTE(ob_make)

/* Hash of all (value) arguments, tt_fnv_arg over each, as an i64. */
static tr_status_t ob_cksum(tr_task_h t)
{
    uint64_t h = TT_FNV_INIT;
    for (int i = 0; i < tr_task_num_args(t); i++) {
        const void *p;
        size_t n;
        tr_status_t st = tr_task_arg(t, i, &p, &n);
        if (st != TR_OK) {
            return st;
        }
        h = tt_fnv_arg(h, p, n);
    }
    return tr_task_return_i64(t, 0, (int64_t)h);
}
TR_REMOTE(ob_cksum)

/* Arg 0 borrowed, arg 1 an i64 (keep the borrowed handle past the return
 * when non-zero).  Checks the argument kinds, then returns tt_fnv of the
 * borrowed object's value. */
static tr_status_t ob_borrow(tr_task_h t)
{
    const void *p;
    size_t n;
    int64_t keep;
    tr_ref_h r;
    tr_status_t st;
    if (tt_gate_wait() != 0) {
        tr_task_fail(t, "gate never opened");
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_arg(t, 0, &p, &n)) != TR_ERR_TYPE) {
        tr_task_fail(t, "tr_task_arg on a borrow arg returned %d, not TR_ERR_TYPE", (int)st);
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_arg_ref(t, 1, &r)) != TR_ERR_TYPE) {
        tr_task_fail(t, "tr_task_arg_ref on an i64 arg returned %d, not TR_ERR_TYPE", (int)st);
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_arg_ref(t, 2, &r)) != TR_ERR_INVALID_ARG) {
        tr_task_fail(t, "tr_task_arg_ref out of range returned %d, not TR_ERR_INVALID_ARG", (int)st);
        return TR_ERR_TASK_FAILED;
    }
    if ((st = tr_task_arg_i64(t, 1, &keep)) != TR_OK) {
        return st;
    }
    if ((st = tr_task_arg_ref(t, 0, &r)) != TR_OK) {
        tr_task_fail(t, "tr_task_arg_ref: %s (%s)", tr_status_string(st), tr_last_error());
        return TR_ERR_TASK_FAILED;
    }
    tr_buf_h buf;
    if ((st = tr_get(r, TR_TIMEOUT_INFINITE, &buf)) != TR_OK) {
        tr_task_fail(t, "tr_get of the borrowed ref: %s (%s)", tr_status_string(st), tr_last_error());
        tr_ref_release(r);
        return TR_ERR_TASK_FAILED;
    }
    uint64_t h = tt_fnv(TT_FNV_INIT, tr_buf_data(buf), tr_buf_size(buf));
    tr_buf_release(buf);
    if (keep) {
        ob_kept = r;
    } else {
        tr_ref_release(r);
    }
    return tr_task_return_i64(t, 0, (int64_t)h);
}
TR_REMOTE(ob_borrow)

START_TEST(test_task_large_return)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n = 1 * MIB;
    tr_arg_t a[2] = { TR_ARG_I64((int64_t)n), TR_ARG_I64(5) };
    tr_ref_h ref;
    tt_ok(tr_task_submit(ob_make, a, 2, NULL, &ref));
    const void *p1, *p2;
    size_t n1, n2;
    tr_buf_h v1, v2;
    tt_ok(tr_get_buffer(ref, TR_TIMEOUT_INFINITE, &p1, &n1, &v1));
    tt_ok(tr_get_buffer(ref, TR_TIMEOUT_INFINITE, &p2, &n2, &v2));
    ck_assert_uint_eq(n1, n);
    ck_assert_ptr_eq(p1, p2);
    ck_assert_uint_eq(tt_check_pattern(p1, n, 5), n);
    tt_ok(tr_buf_release(v1));
    tt_ok(tr_buf_release(v2));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, b0.num_objects + 1);
    ck_assert_uint_ge(s.used_bytes, b0.used_bytes + n);
    tt_ok(tr_ref_release(ref));
    ck_assert_uint_eq(ob_wait_used(b0.used_bytes), b0.used_bytes);
    ck_assert_uint_eq(ob_stats().num_objects, b0.num_objects);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_task_large_args)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n = 1 * MIB;
    unsigned char *bytes = ob_pattern(n, 71);
    tr_ref_h obj = ob_put_pattern(n, 72);
    tr_arg_t a[2] = { TR_ARG_BYTES(bytes, n), TR_ARG_REF(obj) };
    tr_ref_h sum;
    tt_ok(tr_task_submit(ob_cksum, a, 2, NULL, &sum));
    memset(bytes, 0, n); /* copied at submission */
    tt_ok(tr_ref_release(obj)); /* the pending task keeps it */
    unsigned char *ref_val = ob_pattern(n, 72);
    tt_fill(bytes, n, 71);
    uint64_t want = tt_fnv_arg(tt_fnv_arg(TT_FNV_INIT, bytes, n), ref_val, n);
    ck_assert_uint_eq((uint64_t)tt_get_i64(sum), want);
    tt_ok(tr_ref_release(sum));

    /* a task's large result passed straight on as a ref argument */
    tr_arg_t mk[2] = { TR_ARG_I64((int64_t)n), TR_ARG_I64(73) };
    tr_ref_h made;
    tt_ok(tr_task_submit(ob_make, mk, 2, NULL, &made));
    tr_arg_t a2[1] = { TR_ARG_REF(made) };
    tt_ok(tr_task_submit(ob_cksum, a2, 1, NULL, &sum));
    tt_ok(tr_ref_release(made));
    tt_fill(ref_val, n, 73);
    ck_assert_uint_eq((uint64_t)tt_get_i64(sum), tt_fnv_arg(TT_FNV_INIT, ref_val, n));
    tt_ok(tr_ref_release(sum));

    ck_assert_uint_eq(ob_wait_used(b0.used_bytes), b0.used_bytes);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    free(bytes);
    free(ref_val);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_task_borrow)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    size_t n = 1 * MIB;
    unsigned char *val = ob_pattern(n, 81);
    uint64_t want = tt_fnv(TT_FNV_INIT, val, n);

    /* the caller drops its handle before the task runs: the pending task
     * keeps the object for the borrow */
    tt_gate_close();
    tr_ref_h obj = ob_put_pattern(n, 81);
    tr_arg_t a[2] = { TR_ARG_BORROW(obj), TR_ARG_I64(0) };
    tr_ref_h res;
    tt_ok(tr_task_submit(ob_borrow, a, 2, NULL, &res));
    tt_ok(tr_ref_release(obj));
    tt_gate_open();
    ck_assert_uint_eq((uint64_t)tt_get_i64(res), want);
    tt_ok(tr_ref_release(res));
    ck_assert_uint_eq(ob_wait_used(b0.used_bytes), b0.used_bytes);
    ck_assert_uint_eq(ob_stats().owned_objects, b0.owned_objects);

    /* the task keeps its borrowed handle past its return: the object lives
     * until that handle is released too */
    obj = ob_put_pattern(n, 82);
    tr_arg_t b[2] = { TR_ARG_BORROW(obj), TR_ARG_I64(1) };
    tt_ok(tr_task_submit(ob_borrow, b, 2, NULL, &res));
    tt_fill(val, n, 82);
    ck_assert_uint_eq((uint64_t)tt_get_i64(res), tt_fnv(TT_FNV_INIT, val, n));
    tt_ok(tr_ref_release(res));
    tt_ok(tr_ref_release(obj));
    ck_assert_ptr_nonnull(ob_kept);
    ck_assert_uint_ge(ob_stats().used_bytes, b0.used_bytes + n);
    ob_verify(ob_kept, n, 82);
    tt_ok(tr_ref_release(ob_kept));
    ck_assert_uint_eq(ob_wait_used(b0.used_bytes), b0.used_bytes);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, b0.num_objects);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);

    /* a small object borrowed */
    tr_ref_h small;
    tt_ok(tr_put("borrowed", 9, &small));
    tr_arg_t c[2] = { TR_ARG_BORROW(small), TR_ARG_I64(0) };
    tt_ok(tr_task_submit(ob_borrow, c, 2, NULL, &res));
    ck_assert_uint_eq((uint64_t)tt_get_i64(res), tt_fnv(TT_FNV_INIT, "borrowed", 9));
    tt_ok(tr_ref_release(res));
    tt_ok(tr_ref_release(small));

    /* a released ref cannot be lent */
    tt_assert_status(tr_task_submit(ob_borrow, c, 2, NULL, &res), TR_ERR_REF_RELEASED);
    free(val);
    tt_ok(tr_finalize());
}
END_TEST


/* ------------------------------------------------ spilling, harder cases */

START_TEST(test_spill_restore_needs_room)
{
    /* restoring needs room: with every resident object pinned, the get of a
     * spilled object fails with out of memory (and is not marked corrupt) */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = ob_put_pattern(OB_BIG, 110 + (uint64_t)i);
    }
    ck_assert_uint_eq(ob_stats().spilled_objects, 1); /* r[0] */
    tr_buf_h v1, v2, v0;
    tt_ok(tr_get(r[1], TR_TIMEOUT_INFINITE, &v1));
    tt_ok(tr_get(r[2], TR_TIMEOUT_INFINITE, &v2));
    tt_assert_status(tr_get(r[0], TR_TIMEOUT_INFINITE, &v0), TR_ERR_OUT_OF_MEMORY);
    ck_assert_str_ne(tr_last_error(), "");
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(v1), OB_BIG, 111), OB_BIG);
    tt_ok(tr_buf_release(v1));
    ob_verify(r[0], OB_BIG, 110); /* now r[1] goes to disk instead */
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(v2), OB_BIG, 112), OB_BIG);
    tt_ok(tr_buf_release(v2));
    ob_verify(r[1], OB_BIG, 111);
    ob_verify(r[2], OB_BIG, 112);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_get_many)
{
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    /* two spilled objects at once fit (6 of 8 MiB) */
    tr_buf_h views[3];
    tt_ok(tr_get_many(refs, 2, TR_TIMEOUT_INFINITE, views));
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(tt_check_pattern(tr_buf_data(views[i]), OB_BIG, OB_SEED0 + (uint64_t)i),
                          OB_BIG);
        tt_ok(tr_buf_release(views[i]));
    }
    /* three (9 MiB) cannot all be pinned: a status, no views left behind */
    tt_assert_status(tr_get_many(refs + 2, 3, TR_TIMEOUT_INFINITE, views), TR_ERR_OUT_OF_MEMORY);
    ck_assert_uint_eq(ob_stats().pinned_bytes, 0);
    for (int i = 0; i < OB_NSPILL; i++) {
        ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
    }
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_write_fails)
{
    /* the disk refuses the spill file part way (RLIMIT_FSIZE, EFBIG): the
     * put fails with out of memory, no partial file stays, nothing is lost */
    char *dir = ob_spill_env(0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_cur = 1 * MIB; /* the soft limit only, so it can be raised again */
    small.rlim_max = old.rlim_max;
    tt_ok(tr_init(NULL));
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    tr_ref_h r[3];
    r[0] = ob_put_pattern(OB_BIG, 120);
    r[1] = ob_put_pattern(OB_BIG, 121);
    unsigned char *src = ob_pattern(OB_BIG, 122);
    tt_assert_status(tr_put(src, OB_BIG, &r[2]), TR_ERR_OUT_OF_MEMORY);
    ck_assert_str_ne(tr_last_error(), "");
    ck_assert_uint_eq(ob_count_spill_files(dir), 0);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.spilled_objects, 0);
    ck_assert_uint_eq(s.spills, 0);
    ob_verify(r[0], OB_BIG, 120);
    ob_verify(r[1], OB_BIG, 121);
    /* the disk accepts again: the same put spills and succeeds */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    tt_ok(tr_put(src, OB_BIG, &r[2]));
    ck_assert_uint_gt(ob_stats().spills, 0);
    for (int i = 0; i < 3; i++) {
        ob_verify(r[i], OB_BIG, 120 + (uint64_t)i);
    }
    free(src);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_task_args)
{
    /* ref arguments that are on disk are restored for the task */
    char *dir = ob_spill_env(0);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 2 };
    tt_ok(tr_init(&ip));
    tr_ref_h refs[OB_NSPILL], sums[OB_NSPILL];
    ob_put_spilling(refs);
    for (int i = 0; i < OB_NSPILL; i++) {
        tr_arg_t a = TR_ARG_REF(refs[i]);
        tt_ok(tr_task_submit(ob_cksum, &a, 1, NULL, &sums[i]));
    }
    unsigned char *val = malloc(OB_BIG);
    ck_assert_ptr_nonnull(val);
    for (int i = 0; i < OB_NSPILL; i++) {
        tt_fill(val, OB_BIG, OB_SEED0 + (uint64_t)i);
        int64_t got;
        tr_status_t st = tr_get_i64(sums[i], TR_TIMEOUT_INFINITE, &got);
        ck_assert_msg(st == TR_OK, "task %d: %s (%s)", i, tr_status_string(st), tr_last_error());
        ck_assert_uint_eq((uint64_t)got, tt_fnv_arg(TT_FNV_INIT, val, OB_BIG));
        tt_ok(tr_ref_release(sums[i]));
    }
    ck_assert_uint_gt(ob_stats().restores, 0);
    free(val);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_task_returns)
{
    /* large task results beyond the cap: older results go to disk */
    char *dir = ob_spill_env(0);
    tr_init_params_t ip = { .field_mask = TR_INIT_FIELD_NUM_EXECUTORS, .num_executors = 1 };
    tt_ok(tr_init(&ip));
    tr_ref_h res[OB_NSPILL];
    for (int i = 0; i < OB_NSPILL; i++) {
        tr_arg_t a[2] = { TR_ARG_I64((int64_t)OB_BIG), TR_ARG_I64(OB_SEED0 + i) };
        tt_ok(tr_task_submit(ob_make, a, 2, NULL, &res[i]));
    }
    size_t idx[OB_NSPILL], nready = 0;
    tt_ok(tr_wait(res, OB_NSPILL, OB_NSPILL, TR_TIMEOUT_INFINITE, idx, &nready));
    ck_assert_uint_eq(nready, OB_NSPILL);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, OB_NSPILL);
    ck_assert_uint_gt(s.spilled_objects, 0);
    for (int i = 0; i < OB_NSPILL; i++) {
        ob_verify(res[i], OB_BIG, OB_SEED0 + (uint64_t)i);
    }
    s = ob_stats();
    ck_assert_uint_gt(s.spills, 0);
    ck_assert_uint_gt(s.restores, 0);
    for (int i = 0; i < OB_NSPILL; i++) {
        tt_ok(tr_ref_release(res[i]));
    }
    ck_assert_uint_eq(ob_count_spill_files(dir), 0);
    ob_finalize_clean(dir);
}
END_TEST

#define OB_THREADS 3
#define OB_ROUNDS  12
static atomic_int ob_thread_failures;

static void *ob_thread(void *arg)
{
    int me = (int)(intptr_t)arg;
    size_t n = 1 * MIB;
    tr_ref_h keep[OB_ROUNDS];
    unsigned char *src = malloc(n);
    for (int k = 0; k < OB_ROUNDS; k++) {
        uint64_t seed = (uint64_t)(me * 1000 + k);
        tt_fill(src, n, seed);
        if (tr_put(src, n, &keep[k]) != TR_OK) {
            atomic_fetch_add(&ob_thread_failures, 1);
            keep[k] = TR_REF_NULL;
            continue;
        }
        /* read back an older one (maybe from disk) */
        int j = k / 2;
        tr_buf_h b;
        if (keep[j] != TR_REF_NULL) {
            if (tr_get(keep[j], TR_TIMEOUT_INFINITE, &b) != TR_OK) {
                atomic_fetch_add(&ob_thread_failures, 1);
            } else {
                if (tt_check_pattern(tr_buf_data(b), n, (uint64_t)(me * 1000 + j)) != n) {
                    atomic_fetch_add(&ob_thread_failures, 100);
                }
                tr_buf_release(b);
            }
        }
    }
    for (int k = 0; k < OB_ROUNDS; k++) {
        if (keep[k] == TR_REF_NULL) {
            continue;
        }
        tr_buf_h b;
        if (tr_get(keep[k], TR_TIMEOUT_INFINITE, &b) != TR_OK) {
            atomic_fetch_add(&ob_thread_failures, 1);
        } else {
            if (tt_check_pattern(tr_buf_data(b), n, (uint64_t)(me * 1000 + k)) != n) {
                atomic_fetch_add(&ob_thread_failures, 100);
            }
            tr_buf_release(b);
        }
        if (k % 2 == 0) {
            tr_ref_release(keep[k]);
        }
    }
    free(src);
    return NULL;
}

START_TEST(test_spill_concurrent)
{
    /* several threads put, read back (restoring) and release at once; at
     * most one view per thread is pinned, so every call must succeed */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    pthread_t th[OB_THREADS];
    for (int i = 0; i < OB_THREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, ob_thread, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < OB_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    ck_assert_int_eq(atomic_load(&ob_thread_failures), 0);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_gt(s.spills, 0);
    ck_assert_uint_eq(s.num_objects, OB_THREADS * OB_ROUNDS / 2);
    ck_assert_uint_eq(ob_count_spill_files(dir), s.spilled_objects);
    tt_ok(tr_finalize()); /* releases the odd ones */
    ob_assert_dir_empty(dir);
    ob_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_finalize_with_live_objects)
{
    /* tr_finalize with a view held, an unsealed object, refs inside objects
     * and spilled files: it succeeds and leaves no file */
    char *dir = ob_spill_env(1);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    tr_buf_h view;
    tt_ok(tr_get(refs[5], TR_TIMEOUT_INFINITE, &view));
    tr_ref_h box;
    tt_ok(tr_put_refs("b", 2, refs, 3, &box));
    tr_buf_h bview;
    tt_ok(tr_get(box, 0, &bview));
    tr_ref_h inner;
    tt_ok(tr_buf_refs(bview, &inner, 1));
    void *data;
    tr_object_h obj;
    tt_ok(tr_object_create(100 * KIB, &data, &obj));
    ck_assert_uint_gt(ob_count_spill_files(dir), 0);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_container_with_refs)
{
    /* a large container and the large objects it holds all go to disk and
     * come back; the refs survive the round trip */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h in[2];
    in[0] = ob_put_pattern(2 * MIB, 130);
    in[1] = ob_put_pattern(2 * MIB, 131);
    unsigned char *hdr = ob_pattern(2 * MIB, 132);
    tr_ref_h box;
    tt_ok(tr_put_refs(hdr, 2 * MIB, in, 2, &box));
    free(hdr);
    tt_ok(tr_ref_release(in[0]));
    tt_ok(tr_ref_release(in[1]));
    /* push all three out: 4 more of 2 MiB fill the 8 MiB store */
    tr_ref_h filler[4];
    for (int i = 0; i < 4; i++) {
        filler[i] = ob_put_pattern(2 * MIB, 133 + (uint64_t)i);
    }
    ck_assert_uint_eq(ob_stats().spilled_objects, 3);
    tr_buf_h v;
    tt_ok(tr_get(box, TR_TIMEOUT_INFINITE, &v));
    ck_assert_uint_eq(tt_check_pattern(tr_buf_data(v), 2 * MIB, 132), 2 * MIB);
    ck_assert_uint_eq(tr_buf_num_refs(v), 2);
    tt_ok(tr_ref_release(box)); /* the view keeps the container and its refs */
    tr_ref_h out[2];
    tt_ok(tr_buf_refs(v, out, 2));
    tt_ok(tr_buf_release(v));
    ob_verify(out[0], 2 * MIB, 130);
    ob_verify(out[1], 2 * MIB, 131);
    tt_ok(tr_ref_release(out[0]));
    tt_ok(tr_ref_release(out[1]));
    for (int i = 0; i < 4; i++) {
        ob_verify(filler[i], 2 * MIB, 133 + (uint64_t)i);
        tt_ok(tr_ref_release(filler[i]));
    }
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.num_objects, 0);
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    ck_assert_uint_eq(s.used_bytes, b0.used_bytes);
    ck_assert_uint_eq(ob_count_spill_files(dir), 0);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_create_makes_room)
{
    /* tr_object_create spills unpinned objects to make room too */
    char *dir = ob_spill_env(0);
    tt_ok(tr_init(NULL));
    tr_ref_h r0 = ob_put_pattern(OB_BIG, 140);
    tr_ref_h r1 = ob_put_pattern(OB_BIG, 141);
    void *data;
    tr_object_h obj;
    tt_ok(tr_object_create(OB_BIG, &data, &obj));
    ck_assert_uint_eq(ob_stats().spills, 1);
    tt_fill(data, OB_BIG, 142);
    tr_ref_h r2;
    tt_ok(tr_object_seal(obj, &r2));
    const void *p;
    size_t n;
    tr_buf_h v;
    tt_ok(tr_get_buffer(r2, 0, &p, &n, &v));
    ck_assert_ptr_eq(p, data);
    tt_ok(tr_buf_release(v));
    ob_verify(r0, OB_BIG, 140);
    ob_verify(r1, OB_BIG, 141);
    ob_verify(r2, OB_BIG, 142);
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_spill_dir_default_tmpdir)
{
    /* without TASKRAY_SPILL_DIR, spill files go under $TMPDIR */
    char *dir = ob_tmpdir();
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", OB_CAP, 1), 0);
    unsetenv("TASKRAY_SPILL_DIR");
    ck_assert_int_eq(setenv("TMPDIR", dir, 1), 0);
    tt_ok(tr_init(NULL));
    tr_ref_h refs[OB_NSPILL];
    ob_put_spilling(refs);
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_gt(s.spilled_objects, 0);
    ck_assert_uint_eq(ob_count_spill_files(dir), s.spilled_objects);
    for (int i = 0; i < OB_NSPILL; i++) {
        ob_verify(refs[i], OB_BIG, OB_SEED0 + (uint64_t)i);
    }
    ob_finalize_clean(dir);
}
END_TEST

START_TEST(test_stale_handles_after_reinit)
{
    /* handles from a finalized runtime mean nothing to the next one */
    tt_ok(tr_init(NULL));
    void *data;
    tr_object_h obj;
    tt_ok(tr_object_create(1 * MIB, &data, &obj));
    tr_ref_h ref = ob_put_pattern(1 * MIB, 150);
    tr_buf_h view;
    tt_ok(tr_get(ref, 0, &view));
    tt_ok(tr_finalize());
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    ck_assert_uint_eq(b0.num_objects, 0);
    ck_assert_uint_eq(b0.owned_objects, 0);
    tr_ref_h r2;
    tt_assert_status(tr_object_seal(obj, &r2), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_object_abort(obj), TR_ERR_INVALID_ARG);
    tt_assert_status(tr_get(ref, 0, &view), TR_ERR_REF_RELEASED);
    ck_assert_ptr_null(tr_buf_data(view));
    ck_assert_uint_eq(tr_buf_num_refs(view), 0);
    tt_assert_status(tr_buf_release(view), TR_ERR_INVALID_ARG);
    ck_assert_uint_eq(ob_stats().used_bytes, b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

/* --------------------------------------------------------------- stats */

START_TEST(test_stats_args_and_capacity)
{
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", "24m", 1), 0);
    tt_ok(tr_init(NULL));
    tt_assert_status(tr_object_store_stats(NULL), TR_ERR_INVALID_ARG);
    tr_object_store_stats_t s = ob_stats();
    struct statvfs sv;
    ck_assert_int_eq(statvfs("/dev/shm", &sv), 0);
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (avail > 64 * MIB) { /* one rank gets the whole cap */
        ck_assert_uint_eq(s.capacity_bytes, 24 * MIB);
    }
    ck_assert_uint_eq(s.num_objects, 0);
    ck_assert_uint_eq(s.num_secondary, 0);
    ck_assert_uint_eq(s.spills, 0);
    ck_assert_uint_eq(s.restores, 0);
    ck_assert_uint_eq(s.evictions, 0);
    ck_assert_uint_eq(s.fetches, 0);
    ck_assert_uint_eq(s.borrowed_objects, 0);
    ck_assert_uint_eq(s.pinned_bytes, 0);
    ck_assert_uint_le(s.used_bytes, s.capacity_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_stats_capacity_suffixes)
{
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", "8m", 1), 0);
    tt_ok(tr_init(NULL));
    ck_assert_uint_eq(ob_stats().capacity_bytes, 8 * MIB);
    tt_ok(tr_finalize());
    ck_assert_int_eq(setenv("TASKRAY_OBJECT_STORE_BYTES", "12582912", 1), 0);
    tt_ok(tr_init(NULL));
    ck_assert_uint_eq(ob_stats().capacity_bytes, 12 * MIB);
    tt_ok(tr_finalize());
}
END_TEST

/* ------------------------------------------------------------- summary */

/* Lineage: a finished task's spec is kept while its result lives
 * (lineage_bytes > 0), dropped with it, and capped by
 * TASKRAY_MAX_LINEAGE_BYTES (oldest evicted first). */
START_TEST(test_lineage_kept_and_capped)
{
    setenv("TASKRAY_MAX_LINEAGE_BYTES", "4k", 1);
    tt_ok(tr_init(NULL));
    ck_assert_uint_eq(ob_stats().lineage_bytes, 0);
    char arg[512];
    memset(arg, 'x', sizeof(arg));
    tr_ref_h refs[64];
    for (int i = 0; i < 64; i++) {
        tr_arg_t a[3] = { TR_ARG_I64(64), TR_ARG_I64(i), TR_ARG_BYTES(arg, sizeof(arg)) };
        tt_ok(tr_task_submit(ob_make, a, 3, NULL, &refs[i]));   /* the third arg is only lineage */
        tr_buf_h v;
        tt_ok(tr_get(refs[i], TR_TIMEOUT_INFINITE, &v));
        tt_ok(tr_buf_release(v));
        uint64_t lb = ob_stats().lineage_bytes;
        ck_assert_uint_gt(lb, 0);
        ck_assert_uint_le(lb, 4096);   /* never past the cap */
    }
    for (int i = 0; i < 64; i++) tt_ok(tr_ref_release(refs[i]));
    ck_assert_uint_eq(ob_stats().lineage_bytes, 0);
    tt_ok(tr_finalize());

    /* TASKRAY_MAX_LINEAGE_BYTES=0: nothing kept */
    setenv("TASKRAY_MAX_LINEAGE_BYTES", "0", 1);
    tt_ok(tr_init(NULL));
    tr_arg_t a[2] = { TR_ARG_I64(64), TR_ARG_I64(1) };
    tt_ok(tr_task_submit(ob_make, a, 2, NULL, &refs[0]));
    tr_buf_h v;
    tt_ok(tr_get(refs[0], TR_TIMEOUT_INFINITE, &v));
    tt_ok(tr_buf_release(v));
    ck_assert_uint_eq(ob_stats().lineage_bytes, 0);
    tt_ok(tr_ref_release(refs[0]));
    tt_ok(tr_finalize());
}
END_TEST

/* A task's result that contains refs (tr_task_return_refs): objects the
 * task put, plus a ref it borrowed; all read back; all freed afterwards. */
static tr_status_t ob_return_refs(tr_task_h t)
{
    tr_ref_h r[3];
    tr_status_t st = tr_put_i64(11, &r[0]);
    unsigned char *buf = malloc(256 * KIB);
    if (buf == NULL) return TR_ERR_NO_MEMORY;
    tt_fill(buf, 256 * KIB, 9);
    if (st == TR_OK) st = tr_put(buf, 256 * KIB, &r[1]);
    free(buf);
    if (st == TR_OK) st = tr_task_arg_ref(t, 0, &r[2]);
    if (st != TR_OK) return st;
    /* bad input first: each refused with its status, nothing kept */
    tr_ref_h gone;
    if (tr_put_i64(1, &gone) != TR_OK || tr_ref_release(gone) != TR_OK ||
        tr_task_return_refs(t, 0, "x", 2, NULL, 1) != TR_ERR_INVALID_ARG ||
        tr_task_return_refs(t, 1, "x", 2, r, 1) != TR_ERR_INVALID_ARG ||
        tr_task_return_refs(t, 0, "x", 2, &gone, 1) != TR_ERR_REF_RELEASED) {
        tr_task_fail(t, "tr_task_return_refs accepted bad input");
        for (int i = 0; i < 3; i++) tr_ref_release(r[i]);
        return TR_ERR_TASK_FAILED;
    }
    st = tr_task_return_refs(t, 0, "abc", 4, r, 3);
    for (int i = 0; i < 3; i++) tr_ref_release(r[i]);
    return st;
}
TR_REMOTE(ob_return_refs)

START_TEST(test_task_return_refs)
{
    tt_ok(tr_init(NULL));
    tr_object_store_stats_t b0 = ob_stats();
    tr_ref_h x, c;
    tt_ok(tr_put_i64(99, &x));
    tr_arg_t a = TR_ARG_BORROW(x);
    tt_ok(tr_task_submit(ob_return_refs, &a, 1, NULL, &c));
    tt_ok(tr_ref_release(x));
    tr_buf_h v;
    tt_ok(tr_get(c, TR_TIMEOUT_INFINITE, &v));
    ck_assert_str_eq(tr_buf_data(v), "abc");
    ck_assert_uint_eq(tr_buf_num_refs(v), 3);
    tr_ref_h in[3];
    tt_ok(tr_buf_refs(v, in, 3));
    tt_ok(tr_buf_release(v));
    ck_assert_int_eq(tt_get_i64(in[0]), 11);
    ob_verify(in[1], 256 * KIB, 9);
    ck_assert_int_eq(tt_get_i64(in[2]), 99);
    tt_ok(tr_ref_release(c));   /* the extracted handles keep their objects */
    ck_assert_int_eq(tt_get_i64(in[2]), 99);
    for (int i = 0; i < 3; i++) tt_ok(tr_ref_release(in[i]));
    tr_object_store_stats_t s = ob_stats();
    ck_assert_uint_eq(s.owned_objects, b0.owned_objects);
    ck_assert_uint_eq(ob_wait_used(b0.used_bytes), b0.used_bytes);
    tt_ok(tr_finalize());
}
END_TEST

START_TEST(test_summary_line)
{
    char *dir = ob_spill_env(0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/stderr.txt", dir);
    ck_assert_int_eq(setenv("TASKRAY_SUMMARY", "1", 1), 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, 2), 0);
    close(fd);

    tr_status_t st = tr_init(NULL);
    tr_ref_h refs[OB_NSPILL];
    if (st == TR_OK) {
        ob_put_spilling(refs);
        ob_verify(refs[0], OB_BIG, OB_SEED0);
        st = tr_finalize();
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    tt_ok(st);

    size_t n;
    unsigned char *text = ob_read_file(path, &n);
    text[n] = '\0';
    unlink(path);
    const char *line = NULL;
    for (char *p = (char *)text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "taskray summary: rank 0", 23) == 0) {
            line = p;
            break;
        }
    }
    ck_assert_msg(line != NULL, "no 'taskray summary: rank 0' line in: %s", (char *)text);
    char *end = strchr(line, '\n');
    if (end) {
        *end = '\0';
    }
    tt_assert_contains(line, "spills");
    tt_assert_contains(line, "restores");
    tt_assert_contains(line, "capacity 8388608");
    ck_assert_msg(strstr(line, "spills 0 ") == NULL, "no spill counted: %s", line);
    free(text);
    ob_assert_dir_empty(dir);
    ob_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_no_summary_by_default)
{
    char *dir = ob_tmpdir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/stderr.txt", dir);
    unsetenv("TASKRAY_SUMMARY");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    tr_status_t st = tr_init(NULL);
    if (st == TR_OK) {
        st = tr_finalize();
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    tt_ok(st);
    size_t n;
    unsigned char *text = ob_read_file(path, &n);
    text[n] = '\0';
    ck_assert_msg(strstr((char *)text, "taskray summary") == NULL, "unasked summary: %s", (char *)text);
    free(text);
    unlink(path);
    ob_rmtree(dir);
    free(dir);
}
END_TEST

Suite *tr_suite_objects(void)
{
    Suite *s = suite_create("objects");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, TT_TIMEOUT_S);
    tcase_add_test(tc, test_create_seal_zero_copy);
    tcase_add_test(tc, test_create_seal_small);
    tcase_add_test(tc, test_create_abort);
    tcase_add_test(tc, test_create_bad_args);
    tcase_add_test(tc, test_store_api_before_init);
    tcase_add_test(tc, test_get_buffer);
    tcase_add_test(tc, test_refs_in_object);
    tcase_add_test(tc, test_refs_freed_with_container);
    tcase_add_test(tc, test_refs_nested_large_container);
    tcase_add_test(tc, test_put_refs_bad_args);
    tcase_add_test(tc, test_failure_api_single_rank);
    tcase_add_test(tc, test_gc_put_release);
    tcase_add_test(tc, test_gc_view_outlives_ref);
    tcase_add_test(tc, test_task_large_return);
    tcase_add_test(tc, test_task_large_args);
    tcase_add_test(tc, test_task_borrow);
    tcase_add_test(tc, test_stats_args_and_capacity);
    tcase_add_test(tc, test_stats_capacity_suffixes);
    tcase_add_test(tc, test_no_summary_by_default);
    tcase_add_test(tc, test_stale_handles_after_reinit);
    suite_add_tcase(s, tc);

    TCase *sp = tcase_create("spill");
    tcase_set_timeout(sp, TT_TIMEOUT_S);
    tcase_add_test(sp, test_spill_plain);
    tcase_add_test(sp, test_spill_encrypted);
    tcase_add_test(sp, test_spill_release_all);
    tcase_add_test(sp, test_spill_never_pinned);
    tcase_add_test(sp, test_spill_dir_refused);
    tcase_add_test(sp, test_spill_corrupt_plain);
    tcase_add_test(sp, test_spill_corrupt_encrypted);
    tcase_add_test(sp, test_spill_file_deleted);
    tcase_add_test(sp, test_out_of_memory_pinned);
    tcase_add_test(sp, test_object_too_large);
    tcase_add_test(sp, test_summary_line);
    tcase_add_test(sp, test_lineage_kept_and_capped);
    tcase_add_test(sp, test_task_return_refs);
    tcase_add_test(sp, test_spill_restore_needs_room);
    tcase_add_test(sp, test_spill_get_many);
    tcase_add_test(sp, test_spill_write_fails);
    tcase_add_test(sp, test_spill_task_args);
    tcase_add_test(sp, test_spill_task_returns);
    tcase_add_test(sp, test_spill_concurrent);
    tcase_add_test(sp, test_finalize_with_live_objects);
    tcase_add_test(sp, test_spill_container_with_refs);
    tcase_add_test(sp, test_spill_create_makes_room);
    tcase_add_test(sp, test_spill_dir_default_tmpdir);
    suite_add_tcase(s, sp);
    return s;
}
