/* pullback: feature detection from query-qmp-schema.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The schema is a list of SchemaInfo entries keyed by "name".  Type names
 * other than builtins are mangled ("123"), so every question is answered
 * by following names through an index built once.
 */

#include <config.h>

#include <string.h>

#include "cleanup.h"
#include "qmp.h"

struct qmp_schema
{
  json_t *by_name; /* name -> SchemaInfo */
};

/* Unions nest only a few levels deep in practice; the limit guards
 * against a malformed schema that refers to itself.
 */
#define MAX_DEPTH 8

struct qmp_schema *
qmp_schema_from_json (const json_t *schema, struct qmp_error *err)
{
  struct qmp_schema *s;
  size_t i;
  json_t *entry;

  if (!json_is_array (schema))
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "query-qmp-schema did not return an array");
      return NULL;
    }
  s = calloc (1, sizeof *s);
  if (s == NULL || (s->by_name = json_object ()) == NULL)
    {
      free (s);
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      return NULL;
    }
  json_array_foreach (schema, i, entry)
    {
      const char *name = json_string_value (json_object_get (entry, "name"));

      if (name == NULL)
        {
          qmp_error_set (err, QMP_ERR_PROTOCOL,
                         "query-qmp-schema entry %zu has no name", i);
          qmp_schema_free (s);
          return NULL;
        }
      json_object_set (s->by_name, name, entry);
    }
  return s;
}

struct qmp_schema *
qmp_schema_query (struct qmp *q, int timeout_ms, struct qmp_error *err)
{
  CLEANUP_JSON json_t *ret = NULL;

  ret = qmp_execute (q, "query-qmp-schema", NULL, timeout_ms, err);
  if (ret == NULL)
    return NULL;
  return qmp_schema_from_json (ret, err);
}

void
qmp_schema_free (struct qmp_schema *s)
{
  if (s == NULL)
    return;
  json_decref (s->by_name);
  free (s);
}

static const json_t *
lookup (const struct qmp_schema *s, const char *name, const char *meta)
{
  const json_t *e = json_object_get (s->by_name, name);
  const char *m = json_string_value (json_object_get (e, "meta-type"));

  if (e == NULL || m == NULL || (meta && strcmp (m, meta) != 0))
    return NULL;
  return e;
}

bool
qmp_schema_has_command (const struct qmp_schema *s, const char *cmd)
{
  return lookup (s, cmd, "command") != NULL;
}

bool
qmp_schema_has_event (const struct qmp_schema *s, const char *event)
{
  return lookup (s, event, "event") != NULL;
}

/* The type name of member ARG of object type TYPE, looking into union
 * branches too, or NULL.
 */
static const char *
member_type (const struct qmp_schema *s, const char *type, const char *arg,
             int depth)
{
  const json_t *obj = lookup (s, type, "object");
  const json_t *m;
  size_t i;

  if (obj == NULL || depth > MAX_DEPTH)
    return NULL;

  json_array_foreach (json_object_get (obj, "members"), i, m)
    {
      const char *n = json_string_value (json_object_get (m, "name"));

      if (n && strcmp (n, arg) == 0)
        return json_string_value (json_object_get (m, "type"));
    }

  json_array_foreach (json_object_get (obj, "variants"), i, m)
    {
      const char *vt = json_string_value (json_object_get (m, "type"));
      const char *found = vt ? member_type (s, vt, arg, depth + 1) : NULL;

      if (found)
        return found;
    }
  return NULL;
}

/* An array type stands for its elements when a path descends into it. */
static const char *
element_type (const struct qmp_schema *s, const char *type)
{
  const json_t *t = lookup (s, type, "array");

  return t ? json_string_value (json_object_get (t, "element-type")) : type;
}

/* The type of argument ARG of CMD.  ARG may be a dotted path into nested
 * objects and arrays ("actions.type" of transaction).
 */
static const char *
command_arg_type (const struct qmp_schema *s, const char *cmd, const char *arg)
{
  const json_t *c = lookup (s, cmd, "command");
  const char *type;
  char part[256];

  if (c == NULL || *arg == '\0')
    return NULL;
  type = json_string_value (json_object_get (c, "arg-type"));
  while (type && *arg)
    {
      size_t n = strcspn (arg, ".");

      if (n == 0 || n >= sizeof part)
        return NULL;
      memcpy (part, arg, n);
      part[n] = '\0';
      type = member_type (s, element_type (s, type), part, 0);
      arg += n + (arg[n] == '.');
    }
  return type;
}

bool
qmp_schema_command_has_arg (const struct qmp_schema *s, const char *cmd,
                            const char *arg)
{
  return command_arg_type (s, cmd, arg) != NULL;
}

/* Does TYPE (an enum, an alternate with an enum branch, or an array of
 * either) accept VALUE?
 */
static bool
type_has_value (const struct qmp_schema *s, const char *type,
                const char *value, int depth)
{
  const json_t *t = json_object_get (s->by_name, type);
  const char *meta = json_string_value (json_object_get (t, "meta-type"));
  const json_t *m;
  size_t i;

  if (meta == NULL || depth > MAX_DEPTH)
    return false;

  if (strcmp (meta, "enum") == 0)
    {
      /* 7.2 lists "values"; newer QEMU also has "members": [{name}]. */
      json_array_foreach (json_object_get (t, "values"), i, m)
        if (json_is_string (m) && strcmp (json_string_value (m), value) == 0)
          return true;
      json_array_foreach (json_object_get (t, "members"), i, m)
        {
          const char *n = json_string_value (json_object_get (m, "name"));
          if (n && strcmp (n, value) == 0)
            return true;
        }
      return false;
    }

  if (strcmp (meta, "array") == 0)
    {
      const char *et = json_string_value (json_object_get (t, "element-type"));
      return et && type_has_value (s, et, value, depth + 1);
    }

  if (strcmp (meta, "alternate") == 0)
    json_array_foreach (json_object_get (t, "members"), i, m)
      {
        const char *mt = json_string_value (json_object_get (m, "type"));
        if (mt && type_has_value (s, mt, value, depth + 1))
          return true;
      }
  return false;
}

bool
qmp_schema_arg_has_value (const struct qmp_schema *s, const char *cmd,
                          const char *arg, const char *value)
{
  const char *type = command_arg_type (s, cmd, arg);

  return type && type_has_value (s, type, value, 0);
}
