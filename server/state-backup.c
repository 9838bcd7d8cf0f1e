/* pullback: backup records in the state file.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The file keeps the format of version 1: every QEMU object name of a
 * disk is written out (pb-fleece-I, ...), though the engine derives them
 * from the index; reading checks that they are exactly those names, so a
 * hand-edited file can never make teardown delete a node, job or export
 * that is not the daemon's own, or unlink a file that is not its scratch
 * file.
 */

#include <config.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "names.h"
#include "records.h"
#include "state-read.h"
#include "state.h"

json_t *
state_backup_to_json (const struct backup *b, bool cleanup)
{
  json_t *disks = json_array ();
  json_t *o;

  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects obj;

      backup_disk_objects (d, &obj);
      o = json_pack (
          "{s:s, s:s, s:s?, s:I, s:s, s:s?, s:i, s:s?, s:b, s:s, "
          "s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
          "name", d->name, "node", d->node, "format", d->format, "size",
          (json_int_t)d->size, "mode", disk_mode_name (d->mode), "reason",
          disk_reason_name (d->reason), "index", d->index, "tmp_bitmap",
          d->mode == DISK_INCREMENTAL ? obj.tmp_bitmap : NULL,
          "checkpoint_bitmap", d->checkpoint_bitmap, "scratch", d->scratch,
          "fleece", obj.fleece, "cbw", obj.cbw, "job", obj.job, "export_id",
          obj.export_id, "scratch_node", obj.scratch_node, "mkfile_job",
          obj.mkfile_job, "mkqcow2_job", obj.mkqcow2_job);
      if (o && d->gone)
        json_object_set_new (o, "gone", json_true ());
      json_array_append_new (disks, o);
    }
  o = json_pack ("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:o, s:s?, s:b, "
                 "s:o}",
                 "id", b->id, "phase", backup_phase_name (b->phase),
                 "checkpoint", b->checkpoint, "since", b->since, "created",
                 (json_int_t)b->created, "expires", (json_int_t)b->expires,
                 "ttl", (json_int_t)b->ttl, "freeze_ms",
                 b->freeze_ms >= 0 ? json_integer (b->freeze_ms)
                                   : json_null (),
                 "reason", backup_failure_name (b->failure), "txn_done",
                 b->txn_done, "disks", disks);
  if (o && cleanup)
    json_object_set_new (o, "drop_checkpoint",
                         json_boolean (b->drop_checkpoint));
  if (o && b->scratch_nested)
    json_object_set_new (o, "scratch_nested", json_true ());
  return o;
}

/* ---------------------------------------------------------------- */

static bool
read_disk (struct reader *r, const char *vm, size_t i, struct backup_disk *d)
{
  static const struct
  {
    const char *key;
    size_t offset;
  } objects[] = {
    { "fleece", offsetof (struct disk_objects, fleece) },
    { "cbw", offsetof (struct disk_objects, cbw) },
    { "job", offsetof (struct disk_objects, job) },
    { "export_id", offsetof (struct disk_objects, export_id) },
    { "scratch_node", offsetof (struct disk_objects, scratch_node) },
    { "mkfile_job", offsetof (struct disk_objects, mkfile_job) },
    { "mkqcow2_job", offsetof (struct disk_objects, mkqcow2_job) },
  };
  struct disk_objects obj;
  const char *mode = json_string_value (json_object_get (r->o, "mode"));
  const char *reason = json_string_value (json_object_get (r->o, "reason"));
  const char *base;
  char buf[NAME_MAX_LEN * 2 + 32];
  int64_t index = -1;

  if (!json_is_object (r->o))
    return reader_fail (r, "a disk must be an object");
  if (!read_string (r, "name", true, &d->name)
      || !read_string (r, "node", true, &d->node)
      || !read_string (r, "format", false, &d->format)
      || !read_int (r, "size", false, &d->size)
      || !read_int (r, "index", true, &index)
      || !read_bool (r, "checkpoint_bitmap", true, &d->checkpoint_bitmap)
      || !read_bool (r, "gone", false, &d->gone)
      || !read_string (r, "scratch", true, &d->scratch))
    return false;
  if (disk_mode_parse (mode, &d->mode) == -1)
    return reader_fail (r, "\"mode\" has an unknown value");
  if (reason && disk_reason_parse (reason, &d->reason) == -1)
    return reader_fail (r, "\"reason\" has an unknown value");
  if (index != (int64_t)i)
    return reader_fail (r, "\"index\" must be %zu", i);
  d->index = (int)i;
  backup_disk_objects (d, &obj);
  for (size_t k = 0; k < sizeof objects / sizeof objects[0]; k++)
    if (!read_exactly (r, objects[k].key,
                       (const char *)&obj + objects[k].offset, true))
      return false;
  /* The temporary bitmap is backup-<disk>, and only for incrementals. */
  if (d->mode == DISK_INCREMENTAL
          ? !read_exactly (r, "tmp_bitmap", obj.tmp_bitmap, true)
          : !json_is_null (json_object_get (r->o, "tmp_bitmap"))
                && json_object_get (r->o, "tmp_bitmap") != NULL)
    return reader_fail (
        r,
        "\"tmp_bitmap\" must be \"%s\" for an incremental disk "
        "and null for a full one",
        obj.tmp_bitmap);

  /* The scratch file is an absolute path ending in our own file name:
   * teardown unlinks it.
   */
  snprintf (buf, sizeof buf, "pullback-%s.%d.qcow2", vm, d->index);
  base = strrchr (d->scratch, '/');
  if (d->scratch[0] != '/' || base == NULL || strcmp (base + 1, buf) != 0
      || strstr (d->scratch, "/../") || strstr (d->scratch, "/./"))
    return reader_fail (r, "\"scratch\" must be an absolute path to %s", buf);
  return true;
}

struct backup *
state_backup_from_json (const json_t *o, const char *vm, const char *where,
                        char *err, size_t errlen)
{
  struct reader r = { .o = o, .where = where, .err = err, .errlen = errlen };
  const json_t *disks = json_object_get (o, "disks");
  CLEANUP_BACKUP struct backup *b = NULL;
  char dwhere[192];
  const char *s;

  if (!json_is_object (o))
    return reader_fail (&r, "must be an object"), NULL;
  if (!json_is_array (disks) || json_array_size (disks) == 0)
    return reader_fail (&r, "\"disks\" must be a non-empty array"), NULL;
  b = backup_new (json_array_size (disks));
  if (b == NULL)
    return reader_fail (&r, "out of memory"), NULL;
  if (!read_name (&r, "id", NAME_BACKUP, true, &b->id)
      || !read_name (&r, "checkpoint", NAME_CHECKPOINT, false, &b->checkpoint)
      || !read_name (&r, "since", NAME_CHECKPOINT, false, &b->since)
      || !read_int (&r, "created", true, &b->created)
      || !read_int (&r, "expires", true, &b->expires)
      || !read_int (&r, "ttl", true, &b->ttl)
      || !read_int (&r, "freeze_ms", false, &b->freeze_ms)
      || !read_bool (&r, "txn_done", false, &b->txn_done)
      || !read_bool (&r, "scratch_nested", false, &b->scratch_nested)
      || !read_bool (&r, "drop_checkpoint", false, &b->drop_checkpoint))
    return NULL;
  if (backup_phase_parse (json_string_value (json_object_get (o, "phase")),
                          &b->phase)
      == -1)
    return reader_fail (&r, "\"phase\" has an unknown value"), NULL;
  s = json_string_value (json_object_get (o, "reason"));
  if (s && backup_failure_parse (s, &b->failure) == -1)
    return reader_fail (&r, "\"reason\" has an unknown value"), NULL;
  for (size_t i = 0; i < b->ndisks; i++)
    {
      struct reader rd = { .o = json_array_get (disks, i),
                           .where = dwhere,
                           .err = err,
                           .errlen = errlen };

      snprintf (dwhere, sizeof dwhere, "%s, disk %zu", where, i);
      if (!read_disk (&rd, vm, i, &b->disks[i]))
        return NULL;
    }
  return TAKE_PTR (b);
}
