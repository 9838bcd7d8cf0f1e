/* pullback: checks of a request before it is routed: the URL, the
 * headers that frame the body, the token, the media type, the query
 * parameters.  Each returns false with R set to the error.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_CHECK_H
#define PULLBACK_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "reply.h"

/* libmicrohttpd's unescaper (MHD_OPTION_UNESCAPE_CALLBACK), for the path
 * and for each query key and value: %XX decoded, except that a decoded
 * NUL becomes DEL, a control character that check_url refuses (strings
 * are handed on NUL-terminated: a real NUL would cut
 * "vm2%00/checkpoints/c1" to "vm2").
 */
size_t check_unescape (void *cls, struct MHD_Connection *c, char *s);

/* The path URL and every query key and value are UTF-8 without control
 * characters: else 400 invalid-url naming "path", the key, or "query".
 */
bool check_url (struct MHD_Connection *c, const char *url, struct reply *r);

/* How many headers NAME (any case) there are; the last one's value in
 * *VALUE (may be NULL).
 */
unsigned check_header_count (struct MHD_Connection *c, const char *name,
                             const char **value);

/* The body's framing is unambiguous: one Content-Length at most, not
 * with Transfer-Encoding, which can only be "chunked".
 */
bool check_framing (struct MHD_Connection *c, struct reply *r);

/* One "Authorization: Bearer TOKEN" (the scheme in any case), TOKEN one
 * of TOKENS[0..N): each is compared, in constant time, whatever matched.
 */
bool check_token (struct MHD_Connection *c, char *const *tokens, size_t n);

/* CTYPE is application/json, in any case, with or without parameters. */
bool check_media_type_json (const char *ctype);

/* Every query parameter is in ALLOWED (NULL-terminated), given once, with
 * a value.
 */
bool check_query (struct MHD_Connection *c, const char *const *allowed,
                  struct reply *r);

#endif /* PULLBACK_CHECK_H */
