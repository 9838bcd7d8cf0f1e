/* pullback: answers from the engine to the API.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "answer.h"
#include "reply.h"
#include "utf8.h"

/* The message may quote anything (a client's name, QEMU's words) and
 * may be cut by the buffer inside a character: it is made valid UTF-8
 * first, so the body is always the documented error object and never
 * "{}" (json_string refuses invalid UTF-8).
 */
void
reply_verror_body (struct reply *r, const char *code, const char *field,
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
  answer_free (r->answer);
  r->answer = NULL;
  r->answered = true;
  r->created = false;
  r->body = e ? json_pack ("{s:o}", "error", e) : NULL;
}

int
reply_error (struct reply *r, enum pb_errkind kind, const char *code,
             const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  reply_verror_body (r, code, NULL, fmt, ap);
  va_end (ap);
  r->kind = kind;
  return -1;
}

int
reply_error_field (struct reply *r, enum pb_errkind kind, const char *code,
                   const char *field, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  reply_verror_body (r, code, field, fmt, ap);
  va_end (ap);
  r->kind = kind;
  return -1;
}

int
reply_ok (struct reply *r, json_t *body)
{
  json_decref (r->body);
  answer_free (r->answer);
  r->answer = NULL;
  r->answered = true;
  r->kind = PB_OK;
  r->created = false;
  r->body = body;
  return 0;
}

int
reply_answer (struct reply *r, struct answer *a, bool created)
{
  reply_ok (r, NULL);
  r->answer = a;
  r->created = created;
  return 0;
}

int
reply_created (struct reply *r, json_t *body)
{
  reply_ok (r, body);
  r->created = true;
  return 0;
}

void
reply_clear (struct reply *r)
{
  json_decref (r->body);
  r->body = NULL;
  answer_free (r->answer);
  r->answer = NULL;
  free (r->text);
  r->text = NULL;
  if (r->stream && r->stream_free)
    r->stream_free (r->stream);
  r->stream = NULL;
  r->status = 0;
  r->kind = PB_OK;
  r->created = false;
  r->answered = false;
}

enum pb_errkind
qemu_errkind (enum qmp_error_kind kind)
{
  return kind == QMP_ERR_TIMEOUT ? PB_ERR_QEMU_TIMEOUT : PB_ERR_QEMU_FAILED;
}
