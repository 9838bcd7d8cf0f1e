/* pullback: answers from the engine to the API.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The engine answers every request with an HTTP status and a JSON body;
 * errors have the body {"error": {"code": CODE, "message": TEXT, ...}}
 * where CODE is a stable machine-readable word (checkpoint-not-found).
 * api/ turns a reply into an HTTP response and never talks to QEMU.
 */

#ifndef PULLBACK_REPLY_H
#define PULLBACK_REPLY_H

#include <sys/types.h>

#include <jansson.h>

#include "qmp.h"

struct reply
{
  int status;
  json_t *body;
  char *text; /* instead of a JSON body: plain text (GET /metrics) */
  /* Instead of a body: a JSON answer written as it is produced.
   * stream_read returns bytes, 0 at the end or -1 on error (the answer is
   * cut short); stream_free releases the stream.
   */
  ssize_t (*stream_read) (void *stream, char *buf, size_t max);
  void (*stream_free) (void *stream);
  void *stream;
};

/* Set R to an error.  Returns -1 so handlers can "return reply_error". */
int reply_error (struct reply *r, int status, const char *code,
                 const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

/* The same with an extra member (e.g. "field") in the error object. */
int reply_error_field (struct reply *r, int status, const char *code,
                       const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

/* Set R to STATUS with BODY (stolen).  Returns 0. */
int reply_ok (struct reply *r, int status, json_t *body);

void reply_clear (struct reply *r);

/* The status of an answer that QEMU failed to give: 504 when it timed
 * out, 502 otherwise (an error, a lost connection).  The one place that
 * makes this choice.
 */
int qemu_status (enum qmp_error_kind kind);

#endif /* PULLBACK_REPLY_H */
