/* pullback: the caller-supplied error buffer of library code.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_SETERR_H
#define PULLBACK_SETERR_H

#include <stddef.h>

/* Format the reason into ERR, which has room for ERRLEN bytes; nothing
 * when ERR is NULL or ERRLEN is 0.
 */
void seterr (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif /* PULLBACK_SETERR_H */
