/* pullback: a streamed answer produced off libmicrohttpd's threads.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A stream's read may block (extents: an NBD block-status request may
 * take up to its deadline), so it must not run on one of MHD's few
 * event-loop threads, which serve every other connection.  A pump runs
 * the stream on the request's worker thread into a bounded buffer; MHD's
 * content reader takes from the buffer, and when the buffer is empty it
 * suspends the connection until the producer adds more or ends.
 */

#ifndef PULLBACK_PUMP_H
#define PULLBACK_PUMP_H

#include <sys/types.h>

#include <microhttpd.h>

struct pump;

/* A pump for the answer to connection C; STREAM (read with READ, freed
 * with FREE on the producer's thread) is now the pump's.  NULL if out of
 * memory (STREAM is then freed).
 */
struct pump *pump_new (struct MHD_Connection *c,
                       ssize_t (*read) (void *stream, char *buf, size_t max),
                       void (*free) (void *stream), void *stream);

/* The response reading from the pump (it holds a reference that MHD
 * drops when it is done with the response).  NULL if out of memory.
 */
struct MHD_Response *pump_response (struct pump *p);

/* Produce until the stream ends or fails, the client is gone, or
 * pump_cancel; then free the stream.  Call once, on the worker thread,
 * after the response is queued.
 */
void pump_run (struct pump *p);

/* Make pump_run end soon (a read in progress finishes first); the client
 * sees the answer cut short.  Safe from any thread while the caller holds
 * a reference.
 */
void pump_cancel (struct pump *p);

void pump_unref (struct pump *p);

#endif /* PULLBACK_PUMP_H */
