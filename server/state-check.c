/* pullback: the shape of a VM's state document, checked on load.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A state file is written by pullbackd, but it lives on disk and may be
 * truncated, hand-edited or written by another version.  Everything the
 * engine later reads from it without looking (names compared with
 * strcmp, QEMU object names it deletes, files it unlinks) is checked
 * here first, so that a bad file makes its VM out of service with a
 * message naming the problem instead of crashing the daemon or making it
 * remove a node or a file that is not its own.
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "names.h"
#include "records.h"
#include "state.h"

struct checker
{
  char *err;
  size_t errlen;
  bool failed;
};

static bool fail (struct checker *c, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static bool
fail (struct checker *c, const char *fmt, ...)
{
  va_list ap;

  if (!c->failed && c->err && c->errlen)
    {
      va_start (ap, fmt);
      vsnprintf (c->err, c->errlen, fmt, ap);
      va_end (ap);
    }
  c->failed = true;
  return false;
}

enum opt
{
  REQUIRED,
  OPTIONAL, /* absent or null */
};

static bool
want_string (struct checker *c, const json_t *o, const char *where,
             const char *key, enum opt opt)
{
  const json_t *v = json_object_get (o, key);

  if ((v == NULL || json_is_null (v)) && opt == OPTIONAL)
    return true;
  if (!json_is_string (v) || json_string_length (v) == 0
      || strlen (json_string_value (v)) != json_string_length (v))
    return fail (c, "%s: \"%s\" must be a non-empty string", where, key);
  return true;
}

static bool
want_name (struct checker *c, const json_t *o, const char *where,
           const char *key, enum name_kind kind, enum opt opt)
{
  const json_t *v = json_object_get (o, key);
  char why[128];

  if (!want_string (c, o, where, key, opt))
    return false;
  if (json_is_string (v)
      && !name_valid (kind, json_string_value (v), why, sizeof why))
    return fail (c, "%s: \"%s\": %s", where, key, why);
  return true;
}

static bool
want_integer (struct checker *c, const json_t *o, const char *where,
              const char *key, enum opt opt)
{
  const json_t *v = json_object_get (o, key);

  if ((v == NULL || json_is_null (v)) && opt == OPTIONAL)
    return true;
  if (!json_is_integer (v) || json_integer_value (v) < 0)
    return fail (c, "%s: \"%s\" must be a non-negative integer", where, key);
  return true;
}

/* The string KEY of O is exactly PREFIX followed by INDEX. */

/* One disk of a checkpoint (or of a pending one). */
static bool
check_checkpoint_disk (struct checker *c, const json_t *d, const char *where)
{
  if (!json_is_object (d))
    return fail (c, "%s: a disk must be an object", where);
  return want_string (c, d, where, "disk", REQUIRED)
         && want_string (c, d, where, "node", REQUIRED)
         && want_name (c, d, where, "bitmap", NAME_CHECKPOINT, REQUIRED)
         && want_string (c, d, where, "broken", OPTIONAL)
         && want_integer (c, d, where, "granularity", OPTIONAL);
}

static bool
check_checkpoint_disks (struct checker *c, const json_t *disks,
                        const char *where, bool nonempty)
{
  size_t i;
  json_t *d;

  if (!json_is_array (disks) || (nonempty && json_array_size (disks) == 0))
    return fail (c, "%s: \"disks\" must be a%s array", where,
                 nonempty ? " non-empty" : "n");
  json_array_foreach (disks, i, d)
    if (!check_checkpoint_disk (c, d, where))
      return false;
  return true;
}

static bool
check_checkpoints (struct checker *c, const json_t *list)
{
  size_t i, j;
  json_t *cp;
  char where[128];

  if (!json_is_array (list))
    return fail (c, "\"checkpoints\" must be an array");
  json_array_foreach (list, i, cp)
    {
      const char *name;

      snprintf (where, sizeof where, "checkpoint %zu", i);
      if (!json_is_object (cp))
        return fail (c, "%s: must be an object", where);
      if (!want_name (c, cp, where, "name", NAME_CHECKPOINT, REQUIRED))
        return false;
      name = json_string_value (json_object_get (cp, "name"));
      snprintf (where, sizeof where, "checkpoint %s", name);
      if (!want_integer (c, cp, where, "created", REQUIRED)
          || !want_name (c, cp, where, "parent", NAME_CHECKPOINT, OPTIONAL)
          || !check_checkpoint_disks (c, json_object_get (cp, "disks"), where,
                                      false))
        return false;
      for (j = 0; j < i; j++)
        if (strcmp (json_string_value (
                        json_object_get (json_array_get (list, j), "name")),
                    name)
            == 0)
          return fail (c, "%s: listed twice", where);
    }
  return true;
}

static bool
check_deleted (struct checker *c, const json_t *list)
{
  size_t i;
  json_t *e;

  if (!json_is_array (list))
    return fail (c, "\"deleted\" must be an array");
  json_array_foreach (list, i, e)
    {
      const json_t *before = json_array_get (e, 1);

      if (!json_is_array (e) || json_array_size (e) != 2
          || !json_is_string (json_array_get (e, 0))
          || !(json_is_string (before) || json_is_null (before)))
        return fail (c, "\"deleted\" entry %zu must be [name, name or null]",
                     i);
    }
  return true;
}

static bool
check_backup (struct checker *c, const json_t *b, const char *vm,
              const char *where)
{
  char why[512];
  struct backup *rec = state_backup_from_json (b, vm, where, why, sizeof why);

  if (rec == NULL)
    return fail (c, "%s", why);
  backup_free (rec);
  return true;
}

static bool
check_registration (struct checker *c, const json_t *reg, const char *vm)
{
  const char *where = "\"registration\"";

  if (!json_is_object (reg))
    return fail (c, "%s must be an object", where);
  if (!want_string (c, reg, where, "qmp", REQUIRED)
      || !want_string (c, reg, where, "qga", OPTIONAL)
      || !want_string (c, reg, where, "scratch_dir", OPTIONAL)
      || !want_string (c, reg, where, "nbd", OPTIONAL)
      || !want_string (c, reg, where, "name", OPTIONAL))
    return false;
  if (json_object_get (reg, "name")
      && strcmp (json_string_value (json_object_get (reg, "name")), vm) != 0)
    return fail (c, "%s: \"name\" is not %s", where, vm);
  return true;
}

int
state_check (const json_t *doc, const char *vm, char *err, size_t errlen)
{
  struct checker c = { .err = err, .errlen = errlen };
  const json_t *v;
  size_t i;
  json_t *e;

  if (!json_is_object (doc))
    return fail (&c, "not a JSON object"), -1;

  v = json_object_get (doc, "version");
  if (v
      && (!json_is_integer (v) || json_integer_value (v) < 1
          || json_integer_value (v) > STATE_VERSION))
    return fail (&c, "\"version\" must be an integer from 1 to %d",
                 STATE_VERSION),
           -1;

  if ((v = json_object_get (doc, "checkpoints")) && !check_checkpoints (&c, v))
    return -1;
  if ((v = json_object_get (doc, "deleted")) && !check_deleted (&c, v))
    return -1;
  v = json_object_get (doc, "backup");
  if (v && !json_is_null (v) && !check_backup (&c, v, vm, "\"backup\""))
    return -1;

  v = json_object_get (doc, "cleanup");
  if (v && !json_is_array (v))
    return fail (&c, "\"cleanup\" must be an array"), -1;
  json_array_foreach (v, i, e)
    {
      char where[64];

      snprintf (where, sizeof where, "\"cleanup\" entry %zu", i);
      if (!check_backup (&c, e, vm, where))
        return -1;
    }

  v = json_object_get (doc, "checkpoint_pending");
  if (v && !json_is_null (v)
      && (!json_is_object (v)
          || !want_name (&c, v, "\"checkpoint_pending\"", "name",
                         NAME_CHECKPOINT, REQUIRED)
          || !check_checkpoint_disks (&c, json_object_get (v, "disks"),
                                      "\"checkpoint_pending\"", true)))
    return fail (&c, "\"checkpoint_pending\" must be {name, disks}"), -1;

  v = json_object_get (doc, "checkpoint_deleting");
  if (v && !json_is_null (v))
    {
      const json_t *names = json_object_get (v, "names");
      json_t *n;

      if (!json_is_object (v) || !json_is_array (names))
        return fail (&c, "\"checkpoint_deleting\" must be {names: [...]}"), -1;
      json_array_foreach (names, i, n)
        if (!json_is_string (n)
            || !name_valid (NAME_CHECKPOINT, json_string_value (n), NULL, 0))
          return fail (&c, "\"checkpoint_deleting\": names must be "
                           "checkpoint names"),
                 -1;
    }

  /* The guest was being frozen (server/quiesce.c). */
  v = json_object_get (doc, "quiesce");
  if (v && !json_is_null (v)
      && (!json_is_object (v)
          || !want_string (&c, v, "\"quiesce\"", "state", REQUIRED)
          || !want_string (&c, v, "\"quiesce\"", "backup", REQUIRED)
          || !want_string (&c, v, "\"quiesce\"", "agent", REQUIRED)
          || !want_integer (&c, v, "\"quiesce\"", "since", REQUIRED)
          || !want_string (&c, v, "\"quiesce\"", "error", OPTIONAL)))
    return fail (&c, "\"quiesce\" must be {state, backup, agent, since}"), -1;

  v = json_object_get (doc, "registration");
  if (v && !check_registration (&c, v, vm))
    return -1;
  return 0;
}
