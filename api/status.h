/* pullback: HTTP statuses, chosen in api/ only.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_STATUS_H
#define PULLBACK_STATUS_H

#include "reply.h"

/* The HTTP status of R: api/'s own (R->status), else its
 * kind's (the one table), 201 when something was made, 200 with a body,
 * 204 without; 0 if R was never answered.
 */
int http_status (const struct reply *r);
/* api/'s own errors, with their HTTP STATUS.  Return -1. */
int http_error (struct reply *r, int status, const char *code, const char *fmt,
                ...) __attribute__ ((format (printf, 4, 5)));
int http_error_field (struct reply *r, int status, const char *code,
                      const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

#endif /* PULLBACK_STATUS_H */
