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

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "names.h"
#include "records.h"
#include "state-read.h"
#include "state.h"

struct checker
{
  char *err;
  size_t errlen;
};

static bool
check_backup (struct checker *c, const json_t *b, const char *vm,
              const char *where)
{
  struct backup *rec
      = state_backup_from_json (b, vm, where, c->err, c->errlen);

  backup_free (rec);
  return rec != NULL;
}

static bool
check_checkpoints (struct checker *c, const json_t *doc)
{
  struct checkpoint_set s = { 0 };
  int rc = state_checkpoints_from_json (doc, &s, c->err, c->errlen);

  checkpoint_set_clear (&s);
  return rc == 0;
}

static bool
check_registration (struct checker *c, const json_t *reg, const char *vm)
{
  struct reader r = {
    .o = reg, .where = "\"registration\"", .err = c->err, .errlen = c->errlen
  };

  if (!json_is_object (reg))
    return reader_fail (&r, "must be an object");
  if (!read_string (&r, "qmp", true, NULL)
      || !read_string (&r, "qga", false, NULL)
      || !read_string (&r, "scratch_dir", false, NULL)
      || !read_string (&r, "nbd", false, NULL)
      || !read_string (&r, "name", false, NULL))
    return false;
  if (json_object_get (reg, "name")
      && strcmp (json_string_value (json_object_get (reg, "name")), vm) != 0)
    return reader_fail (&r, "\"name\" is not %s", vm);
  return true;
}

/* The guest was being frozen (server/quiesce.c). */
static bool
check_quiesce (struct checker *c, const json_t *q)
{
  struct reader r
      = { .o = q, .where = "\"quiesce\"", .err = c->err, .errlen = c->errlen };
  int64_t since;

  if (!json_is_object (q))
    return reader_fail (&r, "must be {state, backup, agent, since}");
  return read_string (&r, "state", true, NULL)
         && read_string (&r, "backup", true, NULL)
         && read_string (&r, "agent", true, NULL)
         && read_int (&r, "since", true, &since)
         && read_string (&r, "error", false, NULL);
}

int
state_check (const json_t *doc, const char *vm, char *err, size_t errlen)
{
  struct checker c = { .err = err, .errlen = errlen };
  struct reader r = { .err = err, .errlen = errlen };
  const json_t *v;
  size_t i;
  json_t *e;

  if (!json_is_object (doc))
    return reader_fail (&r, "not a JSON object"), -1;

  v = json_object_get (doc, "version");
  if (v
      && (!json_is_integer (v) || json_integer_value (v) < 1
          || json_integer_value (v) > STATE_VERSION))
    return reader_fail (&r, "\"version\" must be an integer from 1 to %d",
                        STATE_VERSION),
           -1;

  if (!check_checkpoints (&c, doc))
    return -1;
  v = json_object_get (doc, "backup");
  if (v && !json_is_null (v) && !check_backup (&c, v, vm, "\"backup\""))
    return -1;

  v = json_object_get (doc, "cleanup");
  if (v && !json_is_array (v))
    return reader_fail (&r, "\"cleanup\" must be an array"), -1;
  json_array_foreach (v, i, e)
    {
      char where[64];

      snprintf (where, sizeof where, "\"cleanup\" entry %zu", i);
      if (!check_backup (&c, e, vm, where))
        return -1;
    }

  v = json_object_get (doc, "quiesce");
  if (v && !json_is_null (v) && !check_quiesce (&c, v))
    return -1;

  v = json_object_get (doc, "registration");
  if (v && !check_registration (&c, v, vm))
    return -1;
  return 0;
}
