/* pullback: reading the state file, checked as it is read.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state-read.h"

bool
reader_fail (struct reader *r, const char *fmt, ...)
{
  va_list ap;
  char msg[256];

  if (!r->failed && r->err && r->errlen)
    {
      va_start (ap, fmt);
      vsnprintf (msg, sizeof msg, fmt, ap);
      va_end (ap);
      if (r->where)
        snprintf (r->err, r->errlen, "%s: %s", r->where, msg);
      else
        snprintf (r->err, r->errlen, "%s", msg);
    }
  r->failed = true;
  return false;
}

static bool
absent (const json_t *v)
{
  return v == NULL || json_is_null (v);
}

bool
read_string (struct reader *r, const char *key, bool required, char **out)
{
  const json_t *v = json_object_get (r->o, key);

  if (out)
    *out = NULL;
  if (absent (v) && !required)
    return true;
  if (!json_is_string (v) || json_string_length (v) == 0
      || strlen (json_string_value (v)) != json_string_length (v))
    return reader_fail (r, "\"%s\" must be a non-empty string", key);
  if (out && (*out = strdup (json_string_value (v))) == NULL)
    return reader_fail (r, "out of memory");
  return true;
}

bool
read_name (struct reader *r, const char *key, enum name_kind kind,
           bool required, char **out)
{
  const json_t *v = json_object_get (r->o, key);
  char why[128];

  if (!read_string (r, key, required, out))
    return false;
  if (json_is_string (v)
      && !name_valid (kind, json_string_value (v), why, sizeof why))
    {
      if (out)
        {
          free (*out);
          *out = NULL;
        }
      return reader_fail (r, "\"%s\": %s", key, why);
    }
  return true;
}

bool
read_int (struct reader *r, const char *key, bool required, int64_t *out)
{
  const json_t *v = json_object_get (r->o, key);

  if (absent (v) && !required)
    return true;
  if (!json_is_integer (v) || json_integer_value (v) < 0)
    return reader_fail (r, "\"%s\" must be a non-negative integer", key);
  *out = json_integer_value (v);
  return true;
}

bool
read_bool (struct reader *r, const char *key, bool required, bool *out)
{
  const json_t *v = json_object_get (r->o, key);

  if (v == NULL && !required)
    return true;
  if (!json_is_boolean (v))
    return reader_fail (r, "\"%s\" must be true or false", key);
  *out = json_is_true (v);
  return true;
}

bool
read_exactly (struct reader *r, const char *key, const char *want,
              bool required)
{
  const json_t *v = json_object_get (r->o, key);

  if (absent (v) && !required)
    return true;
  if (!json_is_string (v) || strcmp (json_string_value (v), want) != 0)
    return reader_fail (r, "\"%s\" must be \"%s\"", key, want);
  return true;
}
