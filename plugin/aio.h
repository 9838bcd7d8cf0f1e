/* nbdkit-pullback-plugin: requests in flight on one upstream connection.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_PLUGIN_AIO_H
#define PULLBACK_PLUGIN_AIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

/* One libnbd handle shared by all of an nbdkit connection's threads:
 * they issue requests with libnbd's aio calls and wait for their own
 * replies, while one reader thread drives the socket.  Requests are
 * never serialized behind each other's round trips.
 */
struct aio
{
  struct nbd_handle *nbd;
  int kick[2]; /* a pipe: wakes the reader when there is more to send */
  pthread_t reader;
  bool reader_running;
  uint64_t max_request; /* largest read the upstream takes */
};

/* Block status as the upstream sent it: (length, flags) pairs. */
struct extent_pairs
{
  uint32_t *v;
  size_t n; /* pairs */
};

/* Start the reader on NBD, a connected handle (negotiation done).  On
 * success A owns NBD.  Errors are reported.
 */
int aio_start (struct aio *a, struct nbd_handle *nbd, uint64_t max_request);
/* Disconnect politely if the upstream is still there, stop the reader,
 * close the handle.
 */
void aio_stop (struct aio *a);

/* Read, split into requests the upstream takes.  Errors are reported,
 * errno set.
 */
int aio_pread (struct aio *a, void *buf, uint32_t count, uint64_t offset);

/* Block status for CONTEXT from OFFSET, into OUT (free OUT->v).  Errors
 * are reported, errno set.
 */
int aio_block_status (struct aio *a, const char *context, uint32_t count,
                      uint64_t offset, bool req_one, struct extent_pairs *out);

#endif /* PULLBACK_PLUGIN_AIO_H */
