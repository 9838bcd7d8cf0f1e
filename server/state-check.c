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

static bool
want_boolean (struct checker *c, const json_t *o, const char *where,
              const char *key, enum opt opt)
{
  const json_t *v = json_object_get (o, key);

  if (v == NULL && opt == OPTIONAL)
    return true;
  if (!json_is_boolean (v))
    return fail (c, "%s: \"%s\" must be true or false", where, key);
  return true;
}

static bool
want_one_of (struct checker *c, const json_t *o, const char *where,
             const char *key, const char *const *values)
{
  const char *s = json_string_value (json_object_get (o, key));

  for (; s && *values; values++)
    if (strcmp (s, *values) == 0)
      return true;
  return fail (c, "%s: \"%s\" has an unknown value", where, key);
}

/* The string KEY of O is exactly PREFIX followed by INDEX. */
static bool
want_indexed (struct checker *c, const json_t *o, const char *where,
              const char *key, const char *prefix, json_int_t index)
{
  char buf[64];

  snprintf (buf, sizeof buf, "%s%lld", prefix, (long long)index);
  if (!want_string (c, o, where, key, REQUIRED))
    return false;
  if (strcmp (json_string_value (json_object_get (o, key)), buf) != 0)
    return fail (c, "%s: \"%s\" must be \"%s\"", where, key, buf);
  return true;
}

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

/* One disk of a backup record.  The QEMU object names are the ones the
 * engine gives (engine.h): teardown deletes what they name.
 */
static bool
check_backup_disk (struct checker *c, const json_t *d, const char *vm,
                   const char *where)
{
  static const char *const modes[] = { "full", "incremental", NULL };
  const char *name, *scratch, *base;
  json_int_t idx;
  char expect[NAME_MAX_LEN * 2 + 32];

  if (!json_is_object (d))
    return fail (c, "%s: a disk must be an object", where);
  if (!want_string (c, d, where, "name", REQUIRED)
      || !want_string (c, d, where, "node", REQUIRED)
      || !want_one_of (c, d, where, "mode", modes)
      || !want_string (c, d, where, "reason", OPTIONAL)
      || !want_integer (c, d, where, "index", REQUIRED)
      || !want_integer (c, d, where, "size", OPTIONAL)
      || !want_string (c, d, where, "format", OPTIONAL)
      || !want_boolean (c, d, where, "checkpoint_bitmap", REQUIRED)
      || !want_boolean (c, d, where, "gone", OPTIONAL)
      || !want_string (c, d, where, "scratch", REQUIRED))
    return false;
  name = json_string_value (json_object_get (d, "name"));
  idx = json_integer_value (json_object_get (d, "index"));
  if (!want_indexed (c, d, where, "fleece", PB_FLEECE_PREFIX, idx)
      || !want_indexed (c, d, where, "cbw", PB_CBW_PREFIX, idx)
      || !want_indexed (c, d, where, "job", PB_JOB_PREFIX, idx)
      || !want_indexed (c, d, where, "export_id", PB_EXPORT_PREFIX, idx)
      || !want_indexed (c, d, where, "scratch_node", PB_SCRATCH_PREFIX, idx)
      || !want_indexed (c, d, where, "mkfile_job", PB_MKJOB_PREFIX "file-",
                        idx)
      || !want_indexed (c, d, where, "mkqcow2_job", PB_MKJOB_PREFIX "qcow2-",
                        idx))
    return false;

  /* The temporary bitmap is backup-<disk>, and only for incrementals. */
  snprintf (expect, sizeof expect, PB_TMP_BITMAP_PREFIX "%s", name);
  if (strcmp (json_string_value (json_object_get (d, "mode")), "incremental")
      == 0)
    {
      if (!want_string (c, d, where, "tmp_bitmap", REQUIRED))
        return false;
      if (strcmp (json_string_value (json_object_get (d, "tmp_bitmap")),
                  expect)
          != 0)
        return fail (c, "%s: \"tmp_bitmap\" must be \"%s\"", where, expect);
    }
  else if (!json_is_null (json_object_get (d, "tmp_bitmap"))
           && json_object_get (d, "tmp_bitmap") != NULL)
    return fail (c, "%s: a full disk has no \"tmp_bitmap\"", where);

  /* The scratch file is an absolute path ending in our own file name:
   * teardown unlinks it.
   */
  snprintf (expect, sizeof expect, "pullback-%s.%lld.qcow2", vm,
            (long long)idx);
  scratch = json_string_value (json_object_get (d, "scratch"));
  base = strrchr (scratch, '/');
  if (scratch[0] != '/' || base == NULL || strcmp (base + 1, expect) != 0
      || strstr (scratch, "/../") || strstr (scratch, "/./"))
    return fail (c, "%s: \"scratch\" must be an absolute path to %s", where,
                 expect);
  return true;
}

static bool
check_backup (struct checker *c, const json_t *b, const char *vm,
              const char *where)
{
  static const char *const phases[] = { "starting", "ready", "failed", NULL };
  const json_t *disks = json_object_get (b, "disks");
  char dwhere[192];
  size_t i;
  json_t *d;

  if (!json_is_object (b))
    return fail (c, "%s must be an object", where);
  if (!want_name (c, b, where, "id", NAME_BACKUP, REQUIRED)
      || !want_one_of (c, b, where, "phase", phases)
      || !want_name (c, b, where, "checkpoint", NAME_CHECKPOINT, OPTIONAL)
      || !want_name (c, b, where, "since", NAME_CHECKPOINT, OPTIONAL)
      || !want_integer (c, b, where, "created", REQUIRED)
      || !want_integer (c, b, where, "expires", REQUIRED)
      || !want_integer (c, b, where, "ttl", REQUIRED)
      || !want_integer (c, b, where, "freeze_ms", OPTIONAL)
      || !want_string (c, b, where, "reason", OPTIONAL)
      || !want_boolean (c, b, where, "txn_done", OPTIONAL)
      || !want_boolean (c, b, where, "drop_checkpoint", OPTIONAL))
    return false;
  if (!json_is_array (disks) || json_array_size (disks) == 0)
    return fail (c, "%s: \"disks\" must be a non-empty array", where);
  json_array_foreach (disks, i, d)
    {
      snprintf (dwhere, sizeof dwhere, "%s, disk %zu", where, i);
      if (!check_backup_disk (c, d, vm, dwhere))
        return false;
      if (json_integer_value (json_object_get (d, "index")) != (json_int_t)i)
        return fail (c, "%s: \"index\" must be %zu", dwhere, i);
    }
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
