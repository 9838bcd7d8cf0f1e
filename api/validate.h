/* pullback: validation of REST request bodies and query strings.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Each endpoint declares the fields it accepts; a body is checked against
 * that list before anything is done: it must be a JSON object without
 * duplicate keys, every field must be known and of the right type, names
 * must follow the name rules.  The first problem becomes a 400 that names
 * the field.
 */

#ifndef PULLBACK_VALIDATE_H
#define PULLBACK_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "names.h"
#include "reply.h"

enum field_type
{
  FIELD_NAME,        /* a string following the name rules of .kind */
  FIELD_NAME_OR_OFF, /* the same, or null/false for "none" */
  FIELD_NAME_LIST,   /* a non-empty array of distinct names of .kind */
  FIELD_PATH,        /* an absolute path */
  FIELD_NBD_ADDR,    /* unix:PATH or HOST:PORT */
  FIELD_INT,         /* an integer in [min, max] */
  FIELD_BOOL,
  FIELD_NBD_NET, /* an nbd_* network setting (server/nbdconf.h) */
};

struct field
{
  const char *name;
  enum field_type type;
  bool required;
  enum name_kind kind;
  long long min, max;
};

/* Parse BODY (LEN bytes) and check it against FIELDS (terminated by a
 * NULL name).  Returns the object, or NULL with R set.  An empty body is
 * an empty object.
 */
json_t *validate_body (const char *body, size_t len,
                       const struct field *fields, struct reply *r);

/* Check a path parameter of KIND; LABEL names it in the error. */
bool validate_path_name (enum name_kind kind, const char *label,
                         const char *value, struct reply *r);

/* Parse a decimal integer in [MIN, MAX] from a query parameter. */
bool validate_query_int (const char *label, const char *value, long long min,
                         long long max, long long *out, struct reply *r);

#endif /* PULLBACK_VALIDATE_H */
