/* pullback: changed-block and allocation extents of a backup's export,
 * read with libnbd block status and written as JSON while they are read.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * context=zero reports base:allocation as {start, length, zero, hole};
 * context=dirty combines qemu:dirty-bitmap:backup-<disk> with
 * base:allocation as {start, length, dirty, zero}.  Adjacent items with
 * the same flags are merged and the items cover the requested range
 * exactly.  Memory does not grow with the number of extents: block status
 * is asked for a bounded range at a time and every finished item is
 * written out at once.
 */

#ifndef PULLBACK_EXTENTS_H
#define PULLBACK_EXTENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct extents;

/* Connect to URI and prepare to report [OFFSET, OFFSET+LENGTH) (LENGTH 0:
 * to the end of the disk).  DIRTY_CONTEXT is the dirty-bitmap context for
 * context=dirty, or NULL for context=zero.  LIMIT > 0 stops after that
 * many items.  Connecting, and each block-status request, may take at
 * most TIMEOUT_MS.  Returns NULL with a message in ERR; *STATUS is the
 * HTTP status to answer with (400 for an offset beyond the disk, 502 for
 * NBD failures, 504 for a timeout).  For an nbds:// URI, TLS_PSK_FILE
 * (a keys file) or TLS_CERTIFICATES (a directory with ca-cert.pem,
 * client-cert.pem, client-key.pem) are the credentials, or NULL.
 */
struct extents *extents_open (const char *uri, const char *tls_psk_file,
                              const char *tls_certificates,
                              const char *dirty_context, uint64_t offset,
                              uint64_t length, long limit, int timeout_ms,
                              char *err, size_t errlen, int *status);
void extents_close (struct extents *x);

/* Copy up to MAX bytes of the JSON answer into BUF.  Returns the number
 * of bytes, 0 at the end, or -1 on an NBD error (the answer is then cut
 * short; the message is in extents_error).
 */
ssize_t extents_read (struct extents *x, char *buf, size_t max);
const char *extents_error (const struct extents *x);

#endif /* PULLBACK_EXTENTS_H */
