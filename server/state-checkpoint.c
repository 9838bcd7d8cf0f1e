/* pullback: checkpoint records in the state file.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The format of version 1, unchanged:
 *   "checkpoints": [{name, created, parent, disks: [{disk, node, bitmap,
 *                    granularity, broken}]}]       in creation order
 *   "deleted": [[name, before-or-null]]             oldest first
 *   "checkpoint_pending": {name, disks}             creation not recorded
 *   "checkpoint_deleting": {names: [...]}           deletion begun
 * Reading checks every value the engine later relies on.
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "names.h"
#include "records.h"
#include "state-read.h"
#include "state.h"

static json_t *
disks_to_json (const struct checkpoint *cp, bool pending)
{
  json_t *disks = json_array ();

  for (size_t i = 0; disks && i < cp->ndisks; i++)
    {
      const struct checkpoint_disk *d = &cp->disks[i];
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s?}", "disk", d->disk, "node",
                             d->node, "bitmap", d->bitmap, "broken",
                             disk_reason_name (d->broken));

      if (o && !pending)
        json_object_set_new (o, "granularity",
                             d->granularity >= 0
                                 ? json_integer (d->granularity)
                                 : json_null ());
      if (o == NULL || json_array_append_new (disks, o) == -1)
        {
          json_decref (disks);
          return NULL;
        }
    }
  return disks;
}

static json_t *
checkpoint_to_json (const struct checkpoint *cp)
{
  return json_pack ("{s:s, s:I, s:s?, s:o}", "name", cp->name, "created",
                    (json_int_t)cp->created, "parent", cp->parent, "disks",
                    disks_to_json (cp, false));
}

int
state_checkpoints_to_json (json_t *doc, const struct checkpoint_set *s)
{
  json_t *list = json_array (), *deleted = json_array ();
  json_t *pending = json_null (), *deleting = json_null ();
  int rc = 0;

  for (size_t i = 0; list && i < s->list.len; i++)
    if (json_array_append_new (list, checkpoint_to_json (s->list.ptr[i]))
        == -1)
      rc = -1;
  for (size_t i = 0; deleted && i < s->deleted.len; i++)
    if (json_array_append_new (deleted,
                               json_pack ("[s, s?]", s->deleted.ptr[i].name,
                                          s->deleted.ptr[i].before))
        == -1)
      rc = -1;
  if (s->pending)
    pending = json_pack ("{s:s, s:o}", "name", s->pending->name, "disks",
                         disks_to_json (s->pending, true));
  if (s->deleting)
    {
      json_t *names = json_array ();

      for (size_t i = 0; names && i < s->deleting_names.len; i++)
        if (json_array_append_new (names,
                                   json_string (s->deleting_names.ptr[i]))
            == -1)
          rc = -1;
      deleting = json_pack ("{s:o}", "names", names);
    }
  if (list == NULL || deleted == NULL || pending == NULL || deleting == NULL)
    rc = -1;
  if (json_object_set_new (doc, "checkpoints", list) == -1)
    rc = -1;
  if (s->deleted.len > 0)
    {
      if (json_object_set_new (doc, "deleted", deleted) == -1)
        rc = -1;
    }
  else
    json_decref (deleted);
  /* Absent when there is none, as before. */
  if (s->pending)
    {
      if (json_object_set_new (doc, "checkpoint_pending", pending) == -1)
        rc = -1;
    }
  else
    json_decref (pending);
  if (s->deleting)
    {
      if (json_object_set_new (doc, "checkpoint_deleting", deleting) == -1)
        rc = -1;
    }
  else
    json_decref (deleting);
  return rc;
}

/* ---------------------------------------------------------------- */

static bool
read_checkpoint_disk (struct reader *r, struct checkpoint_disk *d)
{
  const char *broken = json_string_value (json_object_get (r->o, "broken"));

  if (!json_is_object (r->o))
    return reader_fail (r, "a disk must be an object");
  if (!read_string (r, "disk", true, &d->disk)
      || !read_string (r, "node", true, &d->node)
      || !read_name (r, "bitmap", NAME_CHECKPOINT, true, &d->bitmap)
      || !read_string (r, "broken", false, NULL)
      || !read_int (r, "granularity", false, &d->granularity))
    return false;
  if (broken && disk_reason_parse (broken, &d->broken) == -1)
    return reader_fail (r, "\"broken\" has an unknown value");
  return true;
}

/* The checkpoint O; a pending one has only a name and its (non-empty)
 * disks.
 */
static struct checkpoint *
read_checkpoint (const json_t *o, bool pending, const char *where, char *err,
                 size_t errlen)
{
  struct reader r = { .o = o, .where = where, .err = err, .errlen = errlen };
  const json_t *disks = json_object_get (o, "disks");
  CLEANUP_CHECKPOINT struct checkpoint *cp = NULL;
  char named[128];

  if (!json_is_object (o))
    return reader_fail (&r, "must be an object"), NULL;
  if (!read_name (&r, "name", NAME_CHECKPOINT, true, NULL))
    return NULL;
  snprintf (named, sizeof named, "%s%s", pending ? "" : "checkpoint ",
            pending ? where : json_string_value (json_object_get (o, "name")));
  r.where = named;
  if (!json_is_array (disks) || (pending && json_array_size (disks) == 0))
    return reader_fail (&r, "\"disks\" must be a%s array",
                        pending ? " non-empty" : "n"),
           NULL;
  cp = checkpoint_new (json_array_size (disks));
  if (cp == NULL)
    return reader_fail (&r, "out of memory"), NULL;
  if (!read_name (&r, "name", NAME_CHECKPOINT, true, &cp->name))
    return NULL;
  if (!pending
      && (!read_int (&r, "created", true, &cp->created)
          || !read_name (&r, "parent", NAME_CHECKPOINT, false, &cp->parent)))
    return NULL;
  for (size_t i = 0; i < cp->ndisks; i++)
    {
      struct reader rd = { .o = json_array_get (disks, i),
                           .where = named,
                           .err = err,
                           .errlen = errlen };

      if (!read_checkpoint_disk (&rd, &cp->disks[i]))
        return NULL;
    }
  return TAKE_PTR (cp);
}

static int
read_list (const json_t *list, struct checkpoint_set *s, char *err,
           size_t errlen)
{
  struct reader r = { .err = err, .errlen = errlen };
  size_t i;
  json_t *o;

  if (!json_is_array (list))
    return reader_fail (&r, "\"checkpoints\" must be an array"), -1;
  json_array_foreach (list, i, o)
    {
      char where[64];
      struct checkpoint *cp;

      snprintf (where, sizeof where, "checkpoint %zu", i);
      cp = read_checkpoint (o, false, where, err, errlen);
      if (cp == NULL)
        return -1;
      for (size_t j = 0; j < s->list.len; j++)
        if (strcmp (s->list.ptr[j]->name, cp->name) == 0)
          {
            reader_fail (&r, "checkpoint %s: listed twice", cp->name);
            checkpoint_free (cp);
            return -1;
          }
      if (checkpoint_vector_append (&s->list, cp) == -1)
        {
          checkpoint_free (cp);
          return reader_fail (&r, "out of memory"), -1;
        }
    }
  return 0;
}

static int
read_deleted (const json_t *list, struct checkpoint_set *s, char *err,
              size_t errlen)
{
  struct reader r = { .err = err, .errlen = errlen };
  size_t i;
  json_t *e;

  if (!json_is_array (list))
    return reader_fail (&r, "\"deleted\" must be an array"), -1;
  json_array_foreach (list, i, e)
    {
      const json_t *before = json_array_get (e, 1);
      struct deleted_checkpoint d = { 0 };

      if (!json_is_array (e) || json_array_size (e) != 2
          || !json_is_string (json_array_get (e, 0))
          || !(json_is_string (before) || json_is_null (before)))
        return reader_fail (&r,
                            "\"deleted\" entry %zu must be [name, name or "
                            "null]",
                            i),
               -1;
      d.name = strdup (json_string_value (json_array_get (e, 0)));
      d.before = json_is_string (before) ? strdup (json_string_value (before))
                                         : NULL;
      if (d.name == NULL || (json_is_string (before) && d.before == NULL)
          || deleted_vector_append (&s->deleted, d) == -1)
        {
          free (d.name);
          free (d.before);
          return reader_fail (&r, "out of memory"), -1;
        }
    }
  return 0;
}

static int
read_deleting (const json_t *v, struct checkpoint_set *s, char *err,
               size_t errlen)
{
  struct reader r = { .err = err, .errlen = errlen };
  const json_t *names = json_object_get (v, "names");
  size_t i;
  json_t *n;

  if (!json_is_object (v) || !json_is_array (names))
    return reader_fail (&r, "\"checkpoint_deleting\" must be {names: [...]}"),
           -1;
  s->deleting = true;
  json_array_foreach (names, i, n)
    {
      char *c;

      if (!json_is_string (n)
          || !name_valid (NAME_CHECKPOINT, json_string_value (n), NULL, 0))
        return reader_fail (&r, "\"checkpoint_deleting\": names must be "
                                "checkpoint names"),
               -1;
      c = strdup (json_string_value (n));
      if (c == NULL || name_vector_append (&s->deleting_names, c) == -1)
        {
          free (c);
          return reader_fail (&r, "out of memory"), -1;
        }
    }
  return 0;
}

int
state_checkpoints_from_json (const json_t *doc, struct checkpoint_set *s,
                             char *err, size_t errlen)
{
  const json_t *v;
  int rc = 0;

  if ((v = json_object_get (doc, "checkpoints")))
    rc = read_list (v, s, err, errlen);
  if (rc == 0 && (v = json_object_get (doc, "deleted")))
    rc = read_deleted (v, s, err, errlen);
  v = json_object_get (doc, "checkpoint_pending");
  if (rc == 0 && v && !json_is_null (v)
      && (s->pending
          = read_checkpoint (v, true, "\"checkpoint_pending\"", err, errlen))
             == NULL)
    rc = -1;
  v = json_object_get (doc, "checkpoint_deleting");
  if (rc == 0 && v && !json_is_null (v))
    rc = read_deleting (v, s, err, errlen);
  if (rc == -1)
    checkpoint_set_clear (s);
  return rc;
}
