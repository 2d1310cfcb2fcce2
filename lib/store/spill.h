/*
 * Spilling objects to files: when the arena is full, an object's bytes go to
 * a file of this rank's spill directory and come back, checked, on restore.
 * Optionally encrypted (AES-256-GCM, a per-job key that never leaves the
 * process).  Spill files are scratch: they are never fsync'ed, and they die
 * with the job (tr__spill_close removes them).
 *
 * Layout on disk:
 *
 *   <base>/taskray-<job %016llx>/           0700, shared by the ranks of a node
 *   <base>/taskray-<job %016llx>/rank-<r>/  0700, this rank's spill dir
 *       <object id %016llx>.spill           0600, one per spilled object
 *
 * A spill file is a TR__SPILL_HDR_SIZE-byte header followed by exactly
 * @size bytes of data (the plaintext, or the ciphertext of the same length).
 * Header fields, little-endian:
 *
 *   off  len  field
 *     0    8  magic "TRSPILL1"
 *     8    4  format version (TR__SPILL_VERSION = 1)
 *    12    4  flags: bit 0 = encrypted; other bits zero
 *    16    8  object id
 *    24    8  data size in bytes
 *    32    8  digest chunk size (TR__SPILL_CHUNK)
 *    40   32  data digest (plain files; zero in encrypted files, see below)
 *    72   12  GCM IV (encrypted files; zero otherwise)
 *    84   16  GCM tag (encrypted files; zero otherwise)
 *   100   28  reserved, zero
 *   128   32  header digest: SHA-256 of bytes 0..127
 *
 * Data digest of a plain file (a digest of chunk digests, so that two
 * threads can hash one object):
 *
 *   leaf[i] = SHA-256(data[i*C .. min((i+1)*C, size)))   C = TR__SPILL_CHUNK,
 *                                                        i = 0 .. ceil(size/C)-1
 *   digest  = SHA-256(leaf[0] || leaf[1] || ... )        (SHA-256("") when size = 0)
 *
 * Encrypted files: the data is AES-256-GCM(key, IV) of the plaintext, with
 * header bytes 0..71 (magic to digest) as additional authenticated data, so
 * the tag covers the header fields and every data byte.  The IV is drawn at
 * random for every file (RAND_bytes); the key is drawn at tr__spill_open.
 * No plaintext digest is stored: an unkeyed SHA-256 of the plaintext next to
 * the ciphertext would let anyone who reads the file confirm a guess of its
 * content, and the GCM tag already detects any change.
 *
 * Thread safety: after tr__spill_open, several threads may write, read and
 * remove different objects at once; one object's calls must not overlap.
 * tr__spill_open and tr__spill_close are not concurrent with anything.
 * Large objects are hashed/encrypted on the calling thread and one helper
 * thread (created per call) that overlaps the file I/O.
 */
#ifndef TR_STORE_SPILL_H
#define TR_STORE_SPILL_H

#include <taskray.h>
#include <stddef.h>
#include <stdint.h>

#define TR__SPILL_MAGIC    "TRSPILL1"
#define TR__SPILL_VERSION  1u
#define TR__SPILL_HDR_SIZE 160
#define TR__SPILL_CHUNK    (1u << 20)  /* digest leaf size, bytes */
#define TR__SPILL_F_ENCRYPTED 0x1u

typedef struct tr__spill {
    char     dir[4096];       /* this rank's spill directory (created 0700) */
    char     job_dir[4096];   /* the job's directory that holds rank dirs (removed at close when empty) */
    int      encrypt;         /* AES-256-GCM on */
    unsigned char key[32];    /* per-job key, drawn with RAND_bytes at open; never written anywhere */
    uint64_t job_id;
    int      rank;
    int      open;
} tr__spill_t;

/* Create this rank's spill directory and draw the key.
 * @base: TASKRAY_SPILL_DIR, or NULL (or "") for the default: $TMPDIR, else /tmp.
 * The base must exist.  Creates <base>/taskray-<job>/rank-<rank>/ with mode
 * 0700; an existing job dir is accepted when it is a real directory owned by
 * this user with no group/other permissions (the ranks of a node share it).
 * @encrypt: 1 = AES-256-GCM with a fresh random key, a random 96-bit IV per file.
 * On failure *@s is left zeroed (not open).
 * Errors: TR_ERR_INVALID_ARG (NULL @s, @rank < 0, path too long),
 * TR_ERR_SYSTEM (mkdir, ownership or permissions, RAND_bytes; logged). */
tr_status_t tr__spill_open(tr__spill_t *s, const char *base, uint64_t job_id, int rank, int encrypt);

/* Write @size bytes of @data as the spill file of @obj_id,
 * <dir>/<obj_id %016llx>.spill, created O_CREAT|O_EXCL mode 0600 (a stale
 * file of that name is replaced).  The data goes first and the header last,
 * so a file cut short by a crash never passes tr__spill_read.
 * On any failure (ENOSPC, EIO, EFBIG...) the partial file is removed; the
 * caller still holds the object in memory, so nothing is lost.
 * Errors: TR_ERR_INVALID_ARG (not open, NULL @data with @size > 0, too
 * large), TR_ERR_SYSTEM (the file could not be written; logged as a warning,
 * message in tr_last_error), TR_ERR_NO_MEMORY. */
tr_status_t tr__spill_write(tr__spill_t *s, uint64_t obj_id, const void *data, size_t size);

/* Read object @obj_id back into @dst (@size bytes, the size recorded at
 * write time), checking it while reading.
 * On any status but TR_OK, @dst is zero-filled: it never holds bytes that
 * failed their check.  The message (tr_last_error) names the file and what
 * failed.
 * Errors: TR_ERR_OBJECT_LOST (no such file), TR_ERR_OBJECT_CORRUPT (wrong
 * magic, version, flags, id or size; truncated or extended file; header or
 * data digest mismatch; GCM tag failure), TR_ERR_SYSTEM (open or read failed
 * for another reason, e.g. EIO or EACCES), TR_ERR_INVALID_ARG, TR_ERR_NO_MEMORY. */
tr_status_t tr__spill_read(tr__spill_t *s, uint64_t obj_id, void *dst, size_t size);

/* Remove the file of @obj_id (no error when it is missing). */
void        tr__spill_remove(tr__spill_t *s, uint64_t obj_id);

/* The path of @obj_id's file into @buf (truncated to @len; for tests and logs). */
void        tr__spill_path(const tr__spill_t *s, uint64_t obj_id, char *buf, size_t len);

/* Remove every *.spill file of this rank, the rank dir, and the job dir if it
 * is then empty (other ranks of the node may still use it); wipe the key.
 * Harmless on a spill that is not open. */
void        tr__spill_close(tr__spill_t *s);
/* Remove the spill directory rank @rank of job @job_id would use under
 * @base (as tr__spill_open() picks it), with its spill files. */
void        tr__spill_reap(const char *base, uint64_t job_id, int rank);
/* "<host> <boot id> <pid> <start time>\n" of this process (lib/store/reap.c),
 * written to each rank directory's "owner" file. */
void        tr__owner_line(char *buf, size_t len);

#endif
