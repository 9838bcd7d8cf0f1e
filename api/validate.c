/* pullback: validation of REST request bodies and query strings.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "nbdconf.h"
#include "safepath.h"
#include "validate.h"
#include "status.h"

static const struct field *
find_field (const struct field *fields, const char *name)
{
  for (; fields->name; fields++)
    if (strcmp (fields->name, name) == 0)
      return fields;
  return NULL;
}

static bool
check_name (const struct field *f, const json_t *v, struct reply *r)
{
  char why[256];

  if (!json_is_string (v))
    {
      http_error_field (r, 400, "invalid-type", f->name,
                        "field '%s' must be a string", f->name);
      return false;
    }
  if (!name_valid (f->kind, json_string_value (v), why, sizeof why))
    {
      http_error_field (r, 400, "invalid-name", f->name, "field '%s': %s",
                        f->name, why);
      return false;
    }
  return true;
}

static bool
check_field (const struct field *f, const json_t *v, struct reply *r)
{
  size_t i, j;
  const json_t *e, *e2;
  const char *s;
  char why[256];

  switch (f->type)
    {
    case FIELD_NAME:
      return check_name (f, v, r);

    case FIELD_NAME_OR_OFF:
      if (json_is_null (v) || json_is_false (v))
        return true;
      return check_name (f, v, r);

    case FIELD_NAME_LIST:
      if (!json_is_array (v) || json_array_size (v) == 0)
        {
          http_error_field (r, 400, "invalid-type", f->name,
                            "field '%s' must be a non-empty array of names",
                            f->name);
          return false;
        }
      json_array_foreach (v, i, e)
        {
          if (!check_name (f, e, r))
            return false;
          for (j = 0; j < i; j++)
            {
              e2 = json_array_get (v, j);
              if (strcmp (json_string_value (e), json_string_value (e2)) == 0)
                {
                  http_error_field (r, 400, "duplicate-name", f->name,
                                    "field '%s' lists '%s' twice", f->name,
                                    json_string_value (e));
                  return false;
                }
            }
        }
      return true;

    case FIELD_PATH:
      s = json_string_value (v);
      if (s == NULL || strlen (s) != json_string_length (v))
        {
          http_error_field (r, 400, "invalid-path", f->name,
                            "field '%s' must be an absolute path", f->name);
          return false;
        }
      if (!safepath_plain (s, why, sizeof why))
        {
          http_error_field (r, 400, "invalid-path", f->name, "field '%s' %s",
                            f->name, why);
          return false;
        }
      return true;

    case FIELD_NBD_NET:
      if (!nbdconf_json_check (f->name, v, why, sizeof why))
        {
          http_error_field (r, 400, "invalid-value", f->name, "%s", why);
          return false;
        }
      return true;

    case FIELD_NBD_ADDR:
      s = json_string_value (v);
      if (s == NULL
          || !((strncmp (s, "unix:/", 6) == 0)
               || (s[0] != '/' && strchr (s, ':') && s[0] != ':'))
          || strlen (s) != json_string_length (v))
        {
          http_error_field (r, 400, "invalid-address", f->name,
                            "field '%s' must be unix:PATH or HOST:PORT",
                            f->name);
          return false;
        }
      return true;

    case FIELD_INT:
      if (!json_is_integer (v) || json_integer_value (v) < f->min
          || json_integer_value (v) > f->max)
        {
          http_error_field (
              r, 400, json_is_integer (v) ? "out-of-range" : "invalid-type",
              f->name, "field '%s' must be an integer from %lld to %lld",
              f->name, f->min, f->max);
          return false;
        }
      return true;

    case FIELD_BOOL:
      if (!json_is_boolean (v))
        {
          http_error_field (r, 400, "invalid-type", f->name,
                            "field '%s' must be true or false", f->name);
          return false;
        }
      return true;
    }
  return false;
}

json_t *
validate_body (const char *body, size_t len, const struct field *fields,
               struct reply *r)
{
  json_error_t jerr;
  json_t *doc;
  const char *key;
  json_t *v;

  if (len == 0)
    doc = json_object ();
  else
    {
      doc = json_loadb (body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                        &jerr);
      if (doc == NULL)
        {
          http_error (r, 400,
                      json_error_code (&jerr) == json_error_duplicate_key
                          ? "duplicate-key"
                          : "malformed-json",
                      "request body: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
          return NULL;
        }
      if (!json_is_object (doc))
        {
          json_decref (doc);
          http_error (r, 400, "invalid-type",
                      "request body must be a JSON object");
          return NULL;
        }
    }

  json_object_foreach (doc, key, v)
    {
      const struct field *f = find_field (fields, key);

      if (f == NULL)
        {
          http_error_field (r, 400, "unknown-field", key, "unknown field '%s'",
                            key);
          json_decref (doc);
          return NULL;
        }
      if (!check_field (f, v, r))
        {
          json_decref (doc);
          return NULL;
        }
    }
  for (; fields->name; fields++)
    if (fields->required && json_object_get (doc, fields->name) == NULL)
      {
        http_error_field (r, 400, "missing-field", fields->name,
                          "field '%s' is required", fields->name);
        json_decref (doc);
        return NULL;
      }
  return doc;
}

bool
validate_path_name (enum name_kind kind, const char *label, const char *value,
                    struct reply *r)
{
  char why[256];

  if (name_valid (kind, value, why, sizeof why))
    return true;
  http_error_field (r, 400, "invalid-name", label, "%s", why);
  return false;
}

bool
validate_query_int (const char *label, const char *value, long long min,
                    long long max, long long *out, struct reply *r)
{
  char *end;
  long long v;

  errno = 0;
  v = strtoll (value ? value : "", &end, 10);
  /* Digits only (an optional '-'): strtoll alone would take " 5", "+5". */
  if (value == NULL
      || !(isdigit ((unsigned char)value[0])
           || (value[0] == '-' && isdigit ((unsigned char)value[1])))
      || *end != '\0' || errno == ERANGE || v < min || v > max)
    {
      http_error_field (r, 400, "invalid-parameter", label,
                        "parameter '%s' must be an integer from %lld to %lld",
                        label, min, max);
      return false;
    }
  *out = v;
  return true;
}
