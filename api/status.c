/* pullback: HTTP statuses, chosen here only.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The engine reports the kind of an error (server/reply.h); the one
 * table below turns kinds into statuses.  api/'s own refusals (a bad
 * header, a missing token, an unknown endpoint) carry their status.
 */

#include <config.h>

#include <stdarg.h>

#include "status.h"

static const int kind_status[PB_ERRKIND_COUNT] = {
  [PB_OK] = 200,
  [PB_ERR_MALFORMED] = 400,
  [PB_ERR_NOT_FOUND] = 404,
  [PB_ERR_CONFLICT] = 409,
  [PB_ERR_INVALID] = 422,
  [PB_ERR_INTERNAL] = 500,
  [PB_ERR_QEMU_FAILED] = 502,
  [PB_ERR_UNAVAILABLE] = 503,
  [PB_ERR_QEMU_TIMEOUT] = 504,
  [PB_ERR_NO_SPACE] = 507,
};

int
http_status (const struct reply *r)
{
  if (r->status)
    return r->status;
  if (!r->answered)
    return 0;
  if (r->kind != PB_OK)
    return (unsigned)r->kind < PB_ERRKIND_COUNT ? kind_status[r->kind] : 500;
  if (r->created)
    return 201;
  return r->body || r->answer || r->text || r->stream ? 200 : 204;
}

int
http_error (struct reply *r, int status, const char *code, const char *fmt,
            ...)
{
  va_list ap;

  va_start (ap, fmt);
  reply_verror_body (r, code, NULL, fmt, ap);
  va_end (ap);
  r->status = status;
  return -1;
}

int
http_error_field (struct reply *r, int status, const char *code,
                  const char *field, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  reply_verror_body (r, code, field, fmt, ap);
  va_end (ap);
  r->status = status;
  return -1;
}
