/* pullback: checks of a request head before libmicrohttpd parses it.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * libmicrohttpd answers some malformed requests by itself, in HTML (a bad
 * request line, a header line without a colon, a Content-Length that is
 * not a number, a head larger than its buffer, an unknown HTTP version),
 * and takes others as it pleases (the first of two Content-Lengths).  The
 * first request of every connection is looked at here first (api/door.c)
 * and refused in the documented JSON instead.
 */

#ifndef PULLBACK_HEAD_H
#define PULLBACK_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"

/* The largest request head taken (libmicrohttpd's buffer is larger). */
#define HEAD_MAX (32 * 1024)

/* If BUF (LEN bytes) holds a whole head, its length up to and including
 * the empty line; otherwise 0.
 */
size_t head_length (const char *buf, size_t len);

/* Check the head HEAD (LEN bytes, from head_length).  Returns true if it
 * may go on to libmicrohttpd; otherwise sets R to the error (400, 413 or
 * 505).
 */
bool head_check (const char *head, size_t len, struct reply *r);

#endif /* PULLBACK_HEAD_H */
