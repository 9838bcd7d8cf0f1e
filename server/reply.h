/* pullback: answers from the engine to the API.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The engine answers every request with a result and a JSON body.  An
 * error is reported once, where it is detected, as a kind (below), a
 * stable machine-readable code (checkpoint-not-found), a message and
 * maybe the request field it is about; the body is then
 * {"error": {"code": CODE, "message": TEXT, "field"?: FIELD}}.
 * The engine never chooses an HTTP status: api/ alone maps the kinds to
 * statuses (api/status.c, one table), and never talks to QEMU.
 */

#ifndef PULLBACK_REPLY_H
#define PULLBACK_REPLY_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "qmp.h"

struct answer;

/* What went wrong.  The HTTP status api/ answers with is in brackets. */
enum pb_errkind
{
  PB_OK = 0,           /* no error                                  [2xx] */
  PB_ERR_MALFORMED,    /* the request is wrong in itself (a path)   [400] */
  PB_ERR_NOT_FOUND,    /* the VM, checkpoint, backup, disk is not   [404] */
  PB_ERR_CONFLICT,     /* the state forbids it now (active backup)  [409] */
  PB_ERR_INVALID,      /* well-formed but cannot be done (ttl)      [422] */
  PB_ERR_INTERNAL,     /* the daemon failed (state write, memory)   [500] */
  PB_ERR_QEMU_FAILED,  /* QEMU refused or the connection broke      [502] */
  PB_ERR_UNAVAILABLE,  /* not now: QEMU not connected, stopping     [503] */
  PB_ERR_QEMU_TIMEOUT, /* QEMU did not answer in time               [504] */
  PB_ERR_NO_SPACE,     /* too little scratch space                  [507] */
};
#define PB_ERRKIND_COUNT (PB_ERR_NO_SPACE + 1)

struct reply
{
  bool answered;        /* set by every reply_* call */
  enum pb_errkind kind; /* PB_OK, or the error's kind */
  bool created;         /* PB_OK: something new was made */
  /* The HTTP status: set only by api/ (its own errors, and the kind
   * mapped when the answer is sent).
   */
  int status;
  json_t *body; /* NULL with PB_OK: nothing to say */
  /* Instead of a body: the records answered, in C types (answer.h),
   * which api/ renders as the body (api/render.c).
   */
  struct answer *answer;
  char *text; /* instead of a JSON body: plain text (GET /metrics) */
  /* Instead of a body: a JSON answer written as it is produced.
   * stream_read returns bytes, 0 at the end or -1 on error (the answer is
   * cut short); stream_free releases the stream.
   */
  ssize_t (*stream_read) (void *stream, char *buf, size_t max);
  void (*stream_free) (void *stream);
  void *stream;
};

/* Set R to an error of KIND.  Returns -1 so handlers can "return
 * reply_error".
 */
int reply_error (struct reply *r, enum pb_errkind kind, const char *code,
                 const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

/* The same with the request's FIELD named in the error object. */
int reply_error_field (struct reply *r, enum pb_errkind kind, const char *code,
                       const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

/* The error object alone (for api/'s own errors, which carry an HTTP
 * status instead of a kind): R's body.
 */
void reply_verror_body (struct reply *r, const char *code, const char *field,
                        const char *fmt, va_list ap)
    __attribute__ ((format (printf, 4, 0)));

/* Set R to success with BODY (stolen; NULL: nothing to say).  Returns 0. */
int reply_ok (struct reply *r, json_t *body);
/* The same when the request made something new. */
int reply_created (struct reply *r, json_t *body);

/* Set R to success with the typed answer A (stolen): created says
 * whether the request made something new.  Returns 0.
 */
int reply_answer (struct reply *r, struct answer *a, bool created);

void reply_clear (struct reply *r);

/* The kind of an answer that QEMU failed to give: PB_ERR_QEMU_TIMEOUT
 * when it timed out, PB_ERR_QEMU_FAILED otherwise (an error, a lost
 * connection).  The one place that makes this choice.
 */
enum pb_errkind qemu_errkind (enum qmp_error_kind kind);

#endif /* PULLBACK_REPLY_H */
