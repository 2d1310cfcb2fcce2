/*
 * Generation-checked handle table.  Public handles (tr_ref_h, tr_buf_h) are
 * encoded (generation << 32 | slot + 1), so a released or forged handle is
 * detected instead of dereferenced.  Thread-safe.
 */
#ifndef TR_HANDLE_H
#define TR_HANDLE_H

#include <stdint.h>

typedef enum { TR__HANDLE_REF = 1, TR__HANDLE_BUF = 2, TR__HANDLE_OBJECT = 3, TR__HANDLE_PG = 4 } tr__handle_kind_t;

uint64_t tr__handle_alloc(tr__handle_kind_t kind, void *ptr);  /* 0 when out of memory */
void    *tr__handle_get(uint64_t h, tr__handle_kind_t kind);   /* NULL when not live */
void    *tr__handle_free(uint64_t h, tr__handle_kind_t kind);  /* the pointer, or NULL when not live */

/* Release every live handle (at finalize): @cb sees each one's kind and pointer. */
void     tr__handle_release_all(void (*cb)(tr__handle_kind_t kind, void *ptr));

#endif
