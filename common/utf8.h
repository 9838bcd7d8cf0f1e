/* pullback: UTF-8 checks for text that comes from outside (URLs, query
 * strings, messages that quote a client's or QEMU's words).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Valid means well-formed UTF-8 (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence.
 */

#ifndef PULLBACK_UTF8_H
#define PULLBACK_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the valid UTF-8 sequence at S (at most LEN bytes), or 0
 * if the bytes there are not one.
 */
size_t utf8_char_len (const unsigned char *s, size_t len);

/* True if S (LEN bytes) is valid UTF-8. */
bool utf8_valid (const char *s, size_t len);

/* True if S (LEN bytes) is valid UTF-8 without control characters (C0,
 * DEL; NUL included): what a URL path or a query key or value may be
 * once its %XX escapes are decoded.
 */
bool utf8_printable (const char *s, size_t len);

/* Copy S into OUT (OUTLEN bytes, > 0), always NUL-terminated, replacing
 * each byte that is not part of a valid sequence with U+FFFD, and cutting
 * only between characters when OUT is too small.  Returns OUT.
 */
char *utf8_sanitize (const char *s, char *out, size_t outlen);

#endif /* PULLBACK_UTF8_H */
