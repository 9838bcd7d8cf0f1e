/* pullback: answers from the engine to the API.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "reply.h"
#include "utf8.h"

/* The message may quote anything (a client's name, QEMU's words) and
 * may be cut by the buffer inside a character: it is made valid UTF-8
 * first, so the body is always the documented error object and never
 * "{}" (json_string refuses invalid UTF-8).
 */
static int
verror (struct reply *r, int status, const char *code, const char *field,
        const char *fmt, va_list ap)
{
  char raw[1024], msg[1024], fld[256];
  json_t *e;

  vsnprintf (raw, sizeof raw, fmt, ap);
  utf8_sanitize (raw, msg, sizeof msg);
  e = json_pack ("{s:s, s:s}", "code", code, "message", msg);
  if (field && e)
    json_object_set_new (e, "field",
                         json_string (utf8_sanitize (field, fld, sizeof fld)));
  json_decref (r->body);
  r->status = status;
  r->body = e ? json_pack ("{s:o}", "error", e) : NULL;
  return -1;
}

int
reply_error (struct reply *r, int status, const char *code, const char *fmt,
             ...)
{
  va_list ap;

  va_start (ap, fmt);
  verror (r, status, code, NULL, fmt, ap);
  va_end (ap);
  return -1;
}

int
reply_error_field (struct reply *r, int status, const char *code,
                   const char *field, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  verror (r, status, code, field, fmt, ap);
  va_end (ap);
  return -1;
}

int
reply_ok (struct reply *r, int status, json_t *body)
{
  json_decref (r->body);
  r->status = status;
  r->body = body;
  return 0;
}

void
reply_clear (struct reply *r)
{
  json_decref (r->body);
  r->body = NULL;
  free (r->text);
  r->text = NULL;
  if (r->stream && r->stream_free)
    r->stream_free (r->stream);
  r->stream = NULL;
  r->status = 0;
}

int
qemu_status (enum qmp_error_kind kind)
{
  return kind == QMP_ERR_TIMEOUT ? 504 : 502;
}
