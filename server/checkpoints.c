/* pullback: checkpoints (persistent dirty bitmaps, all-active model).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A checkpoint is a name and, per qcow2 disk, one persistent bitmap of
 * that name that always records.  "Changed since X" is a copy of X's
 * bitmap; deleting X removes X's bitmaps and nothing else.  The daemon
 * keeps the metadata in the VM's state document, in creation order,
 * which is also topological (every parent comes before its children).
 */

#include <config.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "names.h"

#define LIST_DEFAULT_LIMIT 100

static json_t *
checkpoints (const struct vm *vm)
{
  return json_object_get (vm->state, "checkpoints");
}

json_t *
checkpoint_find (const struct vm *vm, const char *name)
{
  size_t i;
  json_t *cp;

  json_array_foreach (checkpoints (vm), i, cp)
    if (strcmp (json_string_value (json_object_get (cp, "name")), name) == 0)
      return cp;
  return NULL;
}

bool
bitmap_name_taken (const json_t *bitmaps, const json_t *disks,
                   const char *name)
{
  size_t i;
  json_t *d;

  json_array_foreach (disks, i, d)
    {
      const char *node = json_string_value (json_object_get (d, "node"));
      if (json_object_get (json_object_get (bitmaps, node), name))
        return true;
    }
  return false;
}

void
checkpoint_generate_name (const struct vm *vm, char *buf, size_t len)
{
  time_t t = time (NULL);
  struct tm tm;
  char base[32];

  gmtime_r (&t, &tm);
  strftime (base, sizeof base, "cp-%Y%m%d-%H%M%S", &tm);
  snprintf (buf, len, "%s", base);
  for (int n = 2; checkpoint_find (vm, buf); n++)
    snprintf (buf, len, "%s-%d", base, n);
}

/* Mark checkpoint disk entry D broken for REASON (once). */
static void
mark_broken (struct vm *vm, const json_t *cp, json_t *d, const char *reason)
{
  if (json_is_string (json_object_get (d, "broken")))
    return;
  log_warnx ("VM %s: checkpoint %s is broken on disk %s: %s", vm->name,
             json_string_value (json_object_get (cp, "name")),
             json_string_value (json_object_get (d, "disk")), reason);
  json_object_set_new (d, "broken", json_string (reason));
}

void
checkpoints_reconcile (struct vm *vm, const json_t *bitmaps)
{
  size_t i, j;
  json_t *cp, *d;

  json_array_foreach (checkpoints (vm), i, cp)
    json_array_foreach (json_object_get (cp, "disks"), j, d)
      {
        const char *disk = json_string_value (json_object_get (d, "disk"));
        const char *name = json_string_value (json_object_get (d, "bitmap"));
        const json_t *cur = disk_find (vm->disks, disk);
        const char *node;
        const json_t *bm;
        struct qmp_error err;

        if (json_is_string (json_object_get (d, "broken")))
          continue;
        if (cur == NULL)
          {
            mark_broken (vm, cp, d, "disk-missing");
            continue;
          }
        node = json_string_value (json_object_get (cur, "node"));
        bm = json_object_get (json_object_get (bitmaps, node), name);
        if (bm == NULL)
          {
            mark_broken (vm, cp, d, "checkpoint-missing");
            continue;
          }
        if (json_is_true (json_object_get (bm, "inconsistent")))
          mark_broken (vm, cp, d, "bitmap-inconsistent");
        else if (!json_is_true (json_object_get (bm, "recording")))
          mark_broken (vm, cp, d, "bitmap-not-recording");
        else
          continue;
        /* A broken bitmap can only be removed, and it is ours. */
        json_decref (vm_qmp (
            vm, "block-dirty-bitmap-remove",
            json_pack ("{s:s, s:s}", "node", node, "name", name), &err));
      }
}

json_t *
checkpoint_to_api (const json_t *cp)
{
  json_t *disks = json_array ();
  size_t i;
  json_t *d;

  json_array_foreach (json_object_get (cp, "disks"), i, d)
    {
      json_t *broken = json_object_get (d, "broken");

      json_array_append_new (
          disks,
          json_pack ("{s:O, s:O, s:O, s:s, s:O?}", "name",
                     json_object_get (d, "disk"), "bitmap",
                     json_object_get (d, "bitmap"), "granularity",
                     json_object_get (d, "granularity"), "state",
                     json_is_string (broken) ? "broken" : "ok", "reason",
                     json_is_string (broken) ? broken : NULL));
    }
  return json_pack ("{s:O, s:O, s:O, s:o}", "name",
                    json_object_get (cp, "name"), "created",
                    json_object_get (cp, "created"), "parent",
                    json_object_get (cp, "parent"), "disks", disks);
}

/* Deleted checkpoints and the one listed before each ([name, before]):
 * a client paging with after=NAME goes on where NAME was even if it was
 * deleted between two pages.  The newest few are kept.
 */
#define DELETED_KEPT 256

static json_t *
deleted_list (struct vm *vm)
{
  return vm_state_array (vm, "deleted");
}

void
checkpoint_forget_deleted (struct vm *vm, const char *name)
{
  json_t *l = deleted_list (vm);

  for (size_t i = json_array_size (l); i-- > 0;)
    if (strcmp (json_string_value (json_array_get (json_array_get (l, i), 0)),
                name)
        == 0)
      json_array_remove (l, i);
}

static void
remember_deleted (struct vm *vm, const char *name, const char *before)
{
  json_t *l = deleted_list (vm);

  checkpoint_forget_deleted (vm, name);
  json_array_append_new (l, json_pack ("[s, s?]", name, before));
  while (json_array_size (l) > DELETED_KEPT)
    json_array_remove (l, 0);
}

/* The index of the first checkpoint after NAME, following deletions;
 * -1 if NAME was never known.
 */
static long
index_after (struct vm *vm, const char *name)
{
  json_t *l = deleted_list (vm);
  size_t n = json_array_size (checkpoints (vm)), hops = 0;

  while (name && hops++ <= DELETED_KEPT)
    {
      size_t i, k;

      for (i = 0; i < n; i++)
        if (strcmp (json_string_value (json_object_get (
                        json_array_get (checkpoints (vm), i), "name")),
                    name)
            == 0)
          return (long)i + 1;
      for (k = 0; k < json_array_size (l); k++)
        if (strcmp (
                json_string_value (json_array_get (json_array_get (l, k), 0)),
                name)
            == 0)
          break;
      if (k == json_array_size (l))
        return -1;
      name = json_string_value (json_array_get (json_array_get (l, k), 1));
    }
  return name ? -1 : 0;
}

int
checkpoint_list (struct vm *vm, const json_t *args, struct reply *r)
{
  json_int_t limit = LIST_DEFAULT_LIMIT;
  const char *after = json_string_value (json_object_get (args, "after"));
  json_t *list = json_array ();
  size_t i = 0, n = json_array_size (checkpoints (vm));
  json_t *next = json_null ();

  if (json_is_integer (json_object_get (args, "limit")))
    limit = json_integer_value (json_object_get (args, "limit"));
  if (after)
    {
      long at = index_after (vm, after);

      if (at == -1)
        {
          json_decref (list);
          return reply_error_field (r, 404, "checkpoint-not-found", "after",
                                    "VM %s has no checkpoint '%s'", vm->name,
                                    after);
        }
      i = (size_t)at;
    }
  for (; i < n && (json_int_t)json_array_size (list) < limit; i++)
    json_array_append_new (
        list, checkpoint_to_api (json_array_get (checkpoints (vm), i)));
  if (i < n && json_array_size (list) > 0)
    next = json_incref (json_object_get (
        json_array_get (list, json_array_size (list) - 1), "name"));
  return reply_ok (
      r, 200, json_pack ("{s:o, s:o}", "checkpoints", list, "next", next));
}

int
checkpoint_get (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *name = json_string_value (json_object_get (args, "name"));
  json_t *cp = checkpoint_find (vm, name);

  if (cp == NULL)
    return reply_error (r, 404, "checkpoint-not-found",
                        "VM %s has no checkpoint '%s'", vm->name, name);
  return reply_ok (r, 200, checkpoint_to_api (cp));
}

json_t *
checkpoint_disk (const char *disk, const char *node, const char *bitmap)
{
  return json_pack ("{s:s, s:s, s:s, s:n}", "disk", disk, "node", node,
                    "bitmap", bitmap, "broken");
}

json_t *
checkpoint_append (struct vm *vm, const char *name, json_int_t created,
                   json_t *disks)
{
  json_t *list = checkpoints (vm);
  size_t n = json_array_size (list), i;
  json_t *last = n ? json_array_get (list, n - 1) : NULL;
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  json_t *cp, *d;

  /* Granularity as QEMU chose it. */
  bitmaps = bitmaps_query (vm, &err);
  json_array_foreach (disks, i, d)
    {
      json_t *bm = json_object_get (
          json_object_get (bitmaps,
                           json_string_value (json_object_get (d, "node"))),
          name);

      json_object_set (d, "granularity",
                       bm ? json_object_get (bm, "granularity")
                          : json_null ());
    }
  cp = json_pack ("{s:s, s:I, s:O?, s:o}", "name", name, "created", created,
                  "parent", last ? json_object_get (last, "name") : NULL,
                  "disks", disks);
  json_array_append_new (list, cp);
  checkpoint_forget_deleted (vm, name);
  return cp;
}

int
checkpoint_create (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *want = json_string_value (json_object_get (args, "name"));
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  struct qmp_txn *t;
  json_t *cp, *disks, *d;
  char name[NAME_MAX_LEN + 16];
  size_t i;
  int rc;

  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    return reply_error (r, 503, "qemu-unavailable",
                        "QEMU of VM %s is not connected", vm->name);
  if (vm_require_active (vm, r) == -1 || cleanup_require_none (vm, r) == -1)
    return -1;
  if (want)
    snprintf (name, sizeof name, "%s", want);
  else
    checkpoint_generate_name (vm, name, sizeof name);
  if (checkpoint_find (vm, name))
    return reply_error_field (r, 409, "checkpoint-exists", "name",
                              "VM %s already has a checkpoint '%s'", vm->name,
                              name);
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL)
    return reply_error (r, 502, "qemu-error", "%s", err.desc);
  if (bitmap_name_taken (bitmaps, vm->disks, name))
    return reply_error_field (r, 409, "bitmap-exists", "name",
                              "a bitmap named '%s' already exists on a disk "
                              "of VM %s",
                              name, vm->name);

  t = qmp_txn_new ();
  disks = json_array ();
  json_array_foreach (vm->disks, i, d)
    {
      if (strcmp (json_string_value (json_object_get (d, "format")), "qcow2")
              != 0
          || json_is_true (json_object_get (d, "ro")))
        continue;
      qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:O, s:s, s:b}", "node",
                    json_object_get (d, "node"), "name", name, "persistent",
                    1);
      json_array_append_new (
          disks, checkpoint_disk (
                     json_string_value (json_object_get (d, "name")),
                     json_string_value (json_object_get (d, "node")), name));
    }
  if (qmp_txn_len (t) == 0)
    {
      qmp_txn_free (t);
      json_decref (disks);
      return reply_error (r, 422, "no-checkpointable-disks",
                          "VM %s has no writable qcow2 disk to hold a "
                          "checkpoint",
                          vm->name);
    }
  /* Recorded as pending before QEMU is touched: a crash, a timeout or a
   * lost connection from here on leaves bitmaps that cleanup_retry
   * removes (the name was checked free), never an unknown checkpoint.
   */
  json_object_set_new (vm->state, "checkpoint_pending",
                       json_pack ("{s:s, s:O}", "name", name, "disks", disks));
  if (vm_save (vm) == -1)
    {
      qmp_txn_free (t);
      json_decref (disks);
      json_object_del (vm->state, "checkpoint_pending");
      return reply_error (r, 500, "state-write-failed",
                          "cannot record the checkpoint in the state "
                          "directory");
    }
  rc = qmp_txn_execute (vm->qmp, t, vm->ctx->qmp_timeout_ms, &err);
  qmp_txn_free (t);
  if (rc == -1)
    {
      json_decref (disks);
      if (err.kind == QMP_ERR_QEMU)
        {
          /* Refused: nothing was applied. */
          json_object_del (vm->state, "checkpoint_pending");
          vm_save (vm);
        }
      else
        checkpoint_settle_pending (vm);
      return reply_error (r, qemu_status (err.kind), "qemu-error",
                          "creating checkpoint %s: %s", name, err.desc);
    }

  json_incref (disks); /* kept for the undo below */
  cp = checkpoint_append (vm, name, (json_int_t)now_seconds (), disks);
  json_object_del (vm->state, "checkpoint_pending");
  if (vm_save (vm) == -1)
    {
      /* Not recorded, so it must not exist: the pending record on disk
       * says what to remove.
       */
      json_array_remove (checkpoints (vm),
                         json_array_size (checkpoints (vm)) - 1);
      json_object_set_new (
          vm->state, "checkpoint_pending",
          json_pack ("{s:s, s:o}", "name", name, "disks", disks));
      checkpoint_settle_pending (vm);
      return reply_error (r, 500, "state-write-failed",
                          "cannot record the checkpoint in the state "
                          "directory");
    }
  json_decref (disks);
  return reply_ok (r, 201, checkpoint_to_api (cp));
}

int
checkpoint_settle_pending (struct vm *vm)
{
  json_t *p = json_object_get (vm->state, "checkpoint_pending");
  const char *name = json_string_value (json_object_get (p, "name"));
  size_t i;
  json_t *d;
  int rc = 0;

  if (!json_is_object (p) || name == NULL)
    return 0;
  json_array_foreach (json_object_get (p, "disks"), i, d)
    if (vm_qmp_quietly (vm, "block-dirty-bitmap-remove",
                        json_pack ("{s:O, s:s}", "node",
                                   json_object_get (d, "node"), "name", name))
        == -1)
      rc = -1;
  if (rc == 0)
    {
      log_info ("VM %s: removed the bitmaps of checkpoint %s, whose "
                "creation was not recorded",
                vm->name, name);
      json_object_del (vm->state, "checkpoint_pending");
      vm_save (vm);
    }
  return rc;
}

/* The node of checkpoint disk D now (the disks may have been found
 * again since it was made), else the one it was made on: the caller
 * looks for the bitmap there before it removes anything.  (At connect,
 * leftovers are settled before the disks are discovered.)
 */
static const char *
checkpoint_disk_node (const struct vm *vm, const json_t *d)
{
  const json_t *disk
      = disk_find (vm->disks, json_string_value (json_object_get (d, "disk")));

  return json_string_value (json_object_get (disk ?: d, "node"));
}

static bool
in_names (const json_t *names, const char *name)
{
  size_t i;
  json_t *n;

  json_array_foreach (names, i, n)
    if (strcmp (json_string_value (n), name) == 0)
      return true;
  return false;
}

/* Remove from QEMU the bitmaps of the checkpoints NAMES that are there
 * (in BITMAPS), all in one transaction.  Where a checkpoint is broken
 * its bitmap is gone already (we removed it, or someone did): a bitmap
 * of that name there now is someone else's.
 */
static int
remove_bitmaps (struct vm *vm, const json_t *names, const json_t *bitmaps,
                struct qmp_error *err)
{
  struct qmp_txn *t = qmp_txn_new ();
  size_t i, k;
  json_t *cp, *d;
  int rc = 0;

  json_array_foreach (checkpoints (vm), i, cp)
    {
      const char *name = json_string_value (json_object_get (cp, "name"));

      if (!in_names (names, name))
        continue;
      json_array_foreach (json_object_get (cp, "disks"), k, d)
        {
          const char *node = checkpoint_disk_node (vm, d);

          if (json_is_string (json_object_get (d, "broken")))
            continue;
          if (node && json_object_get (json_object_get (bitmaps, node), name))
            qmp_txn_addf (t, "block-dirty-bitmap-remove", "{s:s, s:s}", "node",
                          node, "name", name);
        }
    }
  if (qmp_txn_len (t) > 0)
    rc = qmp_txn_execute (vm->qmp, t, vm->ctx->qmp_timeout_ms, err);
  qmp_txn_free (t);
  return rc;
}

/* Drop the records of the checkpoints NAMES: their children descend
 * from their parents, and paging remembers where each stood.
 */
static void
drop_records (struct vm *vm, const json_t *names)
{
  json_t *list = checkpoints (vm);
  size_t i = 0;

  while (i < json_array_size (list))
    {
      json_t *cp = json_array_get (list, i), *c;
      const char *name = json_string_value (json_object_get (cp, "name"));
      size_t k;

      if (!in_names (names, name))
        {
          i++;
          continue;
        }
      json_array_foreach (list, k, c)
        {
          const char *p = json_string_value (json_object_get (c, "parent"));

          if (c != cp && p && strcmp (p, name) == 0)
            json_object_set (c, "parent", json_object_get (cp, "parent"));
        }
      remember_deleted (vm, name,
                        i > 0 ? json_string_value (json_object_get (
                            json_array_get (list, i - 1), "name"))
                              : NULL);
      json_array_remove (list, i);
    }
}

/* Delete the checkpoints NAMES (stolen).  The intent is written first:
 * a crash or a failed write after QEMU removed the bitmaps leaves a
 * state that says so, and the deletion is finished at the next start
 * (checkpoint_settle_deleting) instead of the checkpoints coming back
 * as broken.
 */
static int
delete_checkpoints (struct vm *vm, json_t *names, struct reply *r)
{
  CLEANUP_JSON json_t *owned = names;
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;

  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    return reply_error (r, 503, "qemu-unavailable",
                        "QEMU of VM %s is not connected", vm->name);
  /* Before an incoming migration arrives its bitmaps are invisible:
   * they would be left behind.
   */
  if (vm_require_active (vm, r) == -1)
    return -1;
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL)
    return reply_error (r, 502, "qemu-error", "%s", err.desc);

  json_object_set_new (vm->state, "checkpoint_deleting",
                       json_pack ("{s:O}", "names", names));
  if (vm_save (vm) == -1)
    {
      json_object_del (vm->state, "checkpoint_deleting");
      return reply_error (r, 500, "state-write-failed",
                          "cannot record the deletion in the state "
                          "directory; nothing was deleted");
    }
  if (remove_bitmaps (vm, names, bitmaps, &err) == -1)
    {
      /* Refused: nothing was removed.  Timed out: unknown, and the
       * next reconcile marks what went missing as broken.
       */
      json_object_del (vm->state, "checkpoint_deleting");
      vm_save (vm);
      return reply_error (r, qemu_status (err.kind), "qemu-error",
                          "deleting checkpoints: %s", err.desc);
    }
  drop_records (vm, names);
  json_object_del (vm->state, "checkpoint_deleting");
  if (vm_save (vm) == -1)
    return reply_error (r, 500, "state-write-failed",
                        "the bitmaps were removed from QEMU but the state "
                        "directory cannot be written; pullbackd writes it "
                        "as soon as it can, and finishes the deletion at "
                        "its next start if it cannot");
  return 0;
}

int
checkpoint_delete (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *name = json_string_value (json_object_get (args, "name"));

  if (checkpoint_find (vm, name) == NULL)
    return reply_error (r, 404, "checkpoint-not-found",
                        "VM %s has no checkpoint '%s'", vm->name, name);
  if (delete_checkpoints (vm, json_pack ("[s]", name), r) == -1)
    return -1;
  return reply_ok (r, 204, NULL);
}

int
checkpoint_delete_all (struct vm *vm, struct reply *r)
{
  json_t *names = json_array ();
  size_t i;
  json_t *cp;

  json_array_foreach (checkpoints (vm), i, cp)
    json_array_append (names, json_object_get (cp, "name"));
  if (delete_checkpoints (vm, names, r) == -1)
    return -1;
  /* Nothing is left to page through. */
  json_object_del (vm->state, "deleted");
  return 0;
}

int
checkpoint_settle_deleting (struct vm *vm)
{
  json_t *p = json_object_get (vm->state, "checkpoint_deleting");
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  json_t *names = json_object_get (p, "names");

  if (!json_is_object (p))
    return 0;
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL || remove_bitmaps (vm, names, bitmaps, &err) == -1)
    {
      log_warnx ("VM %s: finishing the deletion of checkpoints: %s", vm->name,
                 err.desc);
      return -1;
    }
  log_info ("VM %s: finished deleting checkpoints a crash or a failed "
            "write interrupted",
            vm->name);
  drop_records (vm, names);
  json_object_del (vm->state, "checkpoint_deleting");
  vm_save (vm);
  return 0;
}
