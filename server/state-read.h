/* pullback: reading the state file, checked as it is read.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The one set of getters of the state-file code (state-backup.c,
 * state-checkpoint.c, state-check.c).  Each reads the member KEY of the
 * object R->o; a value that is not what is required sets the first
 * problem in R->err, "WHERE: what is wrong", and returns false.
 * Optional values may be absent or null (but for booleans: absent).
 */

#ifndef PULLBACK_STATE_READ_H
#define PULLBACK_STATE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "names.h"

struct reader
{
  const json_t *o;
  const char *where; /* prefixes the message, unless NULL */
  char *err;
  size_t errlen;
  bool failed;
};

/* Report a problem (the first one is kept).  Returns false. */
bool reader_fail (struct reader *r, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* A non-empty string without NUL; a copy in *OUT unless OUT is NULL
 * (then only checked).  *OUT is NULL when it is optional and absent.
 */
bool read_string (struct reader *r, const char *key, bool required,
                  char **out);
/* The same, and a valid name of KIND. */
bool read_name (struct reader *r, const char *key, enum name_kind kind,
                bool required, char **out);
/* A non-negative integer; *OUT is left alone when optional and absent. */
bool read_int (struct reader *r, const char *key, bool required, int64_t *out);
bool read_bool (struct reader *r, const char *key, bool required, bool *out);
/* The string KEY is exactly WANT. */
bool read_exactly (struct reader *r, const char *key, const char *want,
                   bool required);

#endif /* PULLBACK_STATE_READ_H */
