/* pullback: checkpoints (persistent dirty bitmaps, all-active model).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A checkpoint is a name and, per qcow2 disk, one persistent bitmap of
 * that name that always records.  "Changed since X" is a copy of X's
 * bitmap; deleting X removes X's bitmaps and nothing else.  The daemon
 * keeps the records (struct checkpoint_set, records.h) in creation
 * order, which is also topological (every parent comes before its
 * children); the state file holds them (state-checkpoint.c).
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "names.h"

#define LIST_DEFAULT_LIMIT 100

static long
checkpoint_index (const struct vm *vm, const char *name)
{
  for (size_t i = 0; name && i < vm->cps.list.len; i++)
    if (strcmp (vm->cps.list.ptr[i]->name, name) == 0)
      return (long)i;
  return -1;
}

struct checkpoint *
checkpoint_find (const struct vm *vm, const char *name)
{
  long i = checkpoint_index (vm, name);

  return i >= 0 ? vm->cps.list.ptr[i] : NULL;
}

bool
bitmap_name_taken (const json_t *bitmaps, const vm_disk_vector *disks,
                   const char *name)
{
  for (size_t i = 0; i < disks->len; i++)
    if (json_object_get (json_object_get (bitmaps, disks->ptr[i].node), name))
      return true;
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

/* Mark disk D of checkpoint CP broken for WHY (once). */
static void
mark_broken (struct vm *vm, const struct checkpoint *cp,
             struct checkpoint_disk *d, enum disk_reason why)
{
  if (d->broken != REASON_NONE)
    return;
  log_warnx ("VM %s: checkpoint %s is broken on disk %s: %s", vm->name,
             cp->name, d->disk, disk_reason_name (why));
  d->broken = why;
}

void
checkpoints_reconcile (struct vm *vm, const json_t *bitmaps)
{
  for (size_t i = 0; i < vm->cps.list.len; i++)
    {
      struct checkpoint *cp = vm->cps.list.ptr[i];

      for (size_t j = 0; j < cp->ndisks; j++)
        {
          struct checkpoint_disk *d = &cp->disks[j];
          const struct vm_disk *cur = vm_disk_find (&vm->disks, d->disk);
          const json_t *bm;
          struct qmp_error err;

          if (d->broken != REASON_NONE)
            continue;
          if (cur == NULL)
            {
              mark_broken (vm, cp, d, REASON_DISK_MISSING);
              continue;
            }
          bm = json_object_get (json_object_get (bitmaps, cur->node),
                                d->bitmap);
          if (bm == NULL)
            {
              mark_broken (vm, cp, d, REASON_CHECKPOINT_MISSING);
              continue;
            }
          if (json_is_true (json_object_get (bm, "inconsistent")))
            mark_broken (vm, cp, d, REASON_BITMAP_INCONSISTENT);
          else if (!json_is_true (json_object_get (bm, "recording")))
            mark_broken (vm, cp, d, REASON_BITMAP_NOT_RECORDING);
          else
            continue;
          /* A broken bitmap can only be removed, and it is ours. */
          json_decref (vm_qmp (
              vm, "block-dirty-bitmap-remove",
              json_pack ("{s:s, s:s}", "node", cur->node, "name", d->bitmap),
              &err));
        }
    }
}

/* Answer R with a copy of CP: 0, or -1 with R set. */
static int
answer_checkpoint (const struct checkpoint *cp, bool created, struct reply *r)
{
  struct answer *a = answer_new (ANSWER_CHECKPOINT);

  if (a == NULL || (a->checkpoint = checkpoint_copy (cp)) == NULL)
    {
      answer_free (a);
      return reply_error (r, PB_ERR_INTERNAL, "out-of-memory",
                          "out of memory");
    }
  return reply_answer (r, a, created);
}

/* Deleted checkpoints and the one listed before each: a client paging
 * with after=NAME goes on where NAME was even if it was deleted between
 * two pages.  The newest few are kept.
 */
#define DELETED_KEPT 256

static void
deleted_remove (struct vm *vm, size_t i)
{
  free (vm->cps.deleted.ptr[i].name);
  free (vm->cps.deleted.ptr[i].before);
  deleted_vector_remove (&vm->cps.deleted, i);
}

void
checkpoint_forget_deleted (struct vm *vm, const char *name)
{
  for (size_t i = vm->cps.deleted.len; i-- > 0;)
    if (strcmp (vm->cps.deleted.ptr[i].name, name) == 0)
      deleted_remove (vm, i);
}

static void
remember_deleted (struct vm *vm, const char *name, const char *before)
{
  struct deleted_checkpoint d
      = { .name = strdup (name), .before = before ? strdup (before) : NULL };

  checkpoint_forget_deleted (vm, name);
  if (d.name == NULL || (before && d.before == NULL)
      || deleted_vector_append (&vm->cps.deleted, d) == -1)
    {
      /* Out of memory: paging after NAME answers 404, nothing worse. */
      free (d.name);
      free (d.before);
      return;
    }
  while (vm->cps.deleted.len > DELETED_KEPT)
    deleted_remove (vm, 0);
}

/* The index of the first checkpoint after NAME, following deletions;
 * -1 if NAME was never known.
 */
static long
index_after (struct vm *vm, const char *name)
{
  size_t hops = 0;

  while (name && hops++ <= DELETED_KEPT)
    {
      long at = checkpoint_index (vm, name);
      size_t k;

      if (at >= 0)
        return at + 1;
      for (k = 0; k < vm->cps.deleted.len; k++)
        if (strcmp (vm->cps.deleted.ptr[k].name, name) == 0)
          break;
      if (k == vm->cps.deleted.len)
        return -1;
      name = vm->cps.deleted.ptr[k].before;
    }
  return name ? -1 : 0;
}

int
checkpoint_list (struct vm *vm, const json_t *args, struct reply *r)
{
  json_int_t limit = LIST_DEFAULT_LIMIT;
  const char *after = json_string_value (json_object_get (args, "after"));
  struct answer *a;
  size_t i = 0, n = vm->cps.list.len;

  if (json_is_integer (json_object_get (args, "limit")))
    limit = json_integer_value (json_object_get (args, "limit"));
  if (after)
    {
      long at = index_after (vm, after);

      if (at == -1)
        return reply_error_field (r, PB_ERR_NOT_FOUND, "checkpoint-not-found",
                                  "after", "VM %s has no checkpoint '%s'",
                                  vm->name, after);
      i = (size_t)at;
    }
  a = answer_new (ANSWER_CHECKPOINTS);
  if (a == NULL)
    goto oom;
  for (; i < n && (json_int_t)a->checkpoints.len < limit; i++)
    {
      struct checkpoint *c = checkpoint_copy (vm->cps.list.ptr[i]);

      if (c == NULL || checkpoint_vector_append (&a->checkpoints, c) == -1)
        {
          checkpoint_free (c);
          goto oom;
        }
    }
  if (i < n && a->checkpoints.len > 0
      && (a->next = strdup (vm->cps.list.ptr[i - 1]->name)) == NULL)
    goto oom;
  return reply_answer (r, a, false);

oom:
  answer_free (a);
  return reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
}

int
checkpoint_get (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *name = json_string_value (json_object_get (args, "name"));
  struct checkpoint *cp = checkpoint_find (vm, name);

  if (cp == NULL)
    return reply_error (r, PB_ERR_NOT_FOUND, "checkpoint-not-found",
                        "VM %s has no checkpoint '%s'", vm->name, name);
  return answer_checkpoint (cp, false, r);
}

int
checkpoint_append (struct vm *vm, struct checkpoint *cp)
{
  size_t n = vm->cps.list.len;
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;

  /* Granularity as QEMU chose it. */
  bitmaps = bitmaps_query (vm, &err);
  for (size_t i = 0; i < cp->ndisks; i++)
    {
      const json_t *bm = json_object_get (
          json_object_get (bitmaps, cp->disks[i].node), cp->name);

      cp->disks[i].granularity
          = bm ? json_integer_value (json_object_get (bm, "granularity")) : -1;
    }
  free (cp->parent);
  cp->parent = n ? strdup (vm->cps.list.ptr[n - 1]->name) : NULL;
  if ((n && cp->parent == NULL)
      || checkpoint_vector_append (&vm->cps.list, cp) == -1)
    {
      checkpoint_free (cp);
      return -1;
    }
  checkpoint_forget_deleted (vm, cp->name);
  return 0;
}

struct checkpoint *
checkpoint_take_newest (struct vm *vm, const char *name)
{
  size_t n = vm->cps.list.len;
  struct checkpoint *cp;

  if (n == 0 || strcmp (vm->cps.list.ptr[n - 1]->name, name) != 0)
    return NULL;
  cp = vm->cps.list.ptr[n - 1];
  checkpoint_vector_remove (&vm->cps.list, n - 1);
  return cp;
}

/* The record of a new checkpoint NAME on every writable qcow2 disk, or
 * NULL (none such, or out of memory: *OOM).
 */
static struct checkpoint *
plan_checkpoint (struct vm *vm, const char *name, bool *oom)
{
  CLEANUP_CHECKPOINT struct checkpoint *cp = NULL;
  size_t n = 0;

  *oom = false;
  for (size_t i = 0; i < vm->disks.len; i++)
    n += strcmp (vm->disks.ptr[i].format, "qcow2") == 0
         && !vm->disks.ptr[i].ro;
  if (n == 0)
    return NULL;
  cp = checkpoint_new (n);
  if (cp == NULL || (cp->name = strdup (name)) == NULL)
    {
      *oom = true;
      return NULL;
    }
  n = 0;
  for (size_t i = 0; i < vm->disks.len; i++)
    {
      const struct vm_disk *d = &vm->disks.ptr[i];

      if (strcmp (d->format, "qcow2") != 0 || d->ro)
        continue;
      if (checkpoint_disk_init (&cp->disks[n++], d->name, d->node, name) == -1)
        {
          *oom = true;
          return NULL;
        }
    }
  return TAKE_PTR (cp);
}

int
checkpoint_create (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *want = json_string_value (json_object_get (args, "name"));
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  struct qmp_txn *t;
  struct checkpoint *cp;
  char name[NAME_MAX_LEN + 16];
  bool oom;
  int rc;

  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    return reply_error (r, PB_ERR_UNAVAILABLE, "qemu-unavailable",
                        "QEMU of VM %s is not connected", vm->name);
  if (vm_require_active (vm, r) == -1 || cleanup_require_none (vm, r) == -1)
    return -1;
  if (want)
    snprintf (name, sizeof name, "%s", want);
  else
    checkpoint_generate_name (vm, name, sizeof name);
  if (checkpoint_find (vm, name))
    return reply_error_field (r, PB_ERR_CONFLICT, "checkpoint-exists", "name",
                              "VM %s already has a checkpoint '%s'", vm->name,
                              name);
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL)
    return reply_error (r, PB_ERR_QEMU_FAILED, "qemu-error", "%s", err.desc);
  if (bitmap_name_taken (bitmaps, &vm->disks, name))
    return reply_error_field (r, PB_ERR_CONFLICT, "bitmap-exists", "name",
                              "a bitmap named '%s' already exists on a disk "
                              "of VM %s",
                              name, vm->name);

  cp = plan_checkpoint (vm, name, &oom);
  if (cp == NULL && oom)
    return reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
  if (cp == NULL)
    return reply_error (r, PB_ERR_INVALID, "no-checkpointable-disks",
                        "VM %s has no writable qcow2 disk to hold a "
                        "checkpoint",
                        vm->name);
  t = qmp_txn_new ();
  for (size_t i = 0; i < cp->ndisks; i++)
    qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}", "node",
                  cp->disks[i].node, "name", name, "persistent", 1);
  /* Recorded as pending before QEMU is touched: a crash, a timeout or a
   * lost connection from here on leaves bitmaps that cleanup_retry
   * removes (the name was checked free), never an unknown checkpoint.
   */
  checkpoint_free (vm->cps.pending);
  vm->cps.pending = cp;
  if (vm_save (vm) == -1)
    {
      qmp_txn_free (t);
      checkpoint_free (vm->cps.pending);
      vm->cps.pending = NULL;
      return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                          "cannot record the checkpoint in the state "
                          "directory");
    }
  rc = qmp_txn_execute (vm->qmp, t, vm->ctx->qmp_timeout_ms, &err);
  qmp_txn_free (t);
  if (rc == -1)
    {
      if (err.kind == QMP_ERR_QEMU)
        {
          /* Refused: nothing was applied. */
          checkpoint_free (vm->cps.pending);
          vm->cps.pending = NULL;
          vm_save (vm);
        }
      else
        checkpoint_settle_pending (vm);
      return reply_error (r, qemu_errkind (err.kind), "qemu-error",
                          "creating checkpoint %s: %s", name, err.desc);
    }

  vm->cps.pending = NULL;
  cp->created = now_seconds ();
  if (checkpoint_append (vm, cp) == -1)
    {
      /* CP is freed: the bitmaps stay unrecorded until the next start
       * finds them taken; say so rather than pretend.
       */
      return reply_error (r, PB_ERR_INTERNAL, "out-of-memory",
                          "out of memory");
    }
  if (vm_save (vm) == -1)
    {
      /* Not recorded, so it must not exist: the pending record on disk
       * says what to remove.
       */
      vm->cps.pending = checkpoint_take_newest (vm, name);
      checkpoint_settle_pending (vm);
      return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                          "cannot record the checkpoint in the state "
                          "directory");
    }
  return answer_checkpoint (cp, true, r);
}

int
checkpoint_settle_pending (struct vm *vm)
{
  struct checkpoint *p = vm->cps.pending;
  int rc = 0;

  if (p == NULL)
    return 0;
  for (size_t i = 0; i < p->ndisks; i++)
    if (vm_qmp_quietly (vm, "block-dirty-bitmap-remove",
                        json_pack ("{s:s, s:s}", "node", p->disks[i].node,
                                   "name", p->name))
        == -1)
      rc = -1;
  if (rc == 0)
    {
      log_info ("VM %s: removed the bitmaps of checkpoint %s, whose "
                "creation was not recorded",
                vm->name, p->name);
      checkpoint_free (p);
      vm->cps.pending = NULL;
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
checkpoint_disk_node (const struct vm *vm, const struct checkpoint_disk *d)
{
  const struct vm_disk *disk = vm_disk_find (&vm->disks, d->disk);

  return disk ? disk->node : d->node;
}

static bool
in_names (const name_vector *names, const char *name)
{
  for (size_t i = 0; i < names->len; i++)
    if (strcmp (names->ptr[i], name) == 0)
      return true;
  return false;
}

/* Remove from QEMU the bitmaps of the checkpoints NAMES that are there
 * (in BITMAPS), all in one transaction.  Where a checkpoint is broken
 * its bitmap is gone already (we removed it, or someone did): a bitmap
 * of that name there now is someone else's.
 */
static int
remove_bitmaps (struct vm *vm, const name_vector *names, const json_t *bitmaps,
                struct qmp_error *err)
{
  struct qmp_txn *t = qmp_txn_new ();
  int rc = 0;

  for (size_t i = 0; i < vm->cps.list.len; i++)
    {
      const struct checkpoint *cp = vm->cps.list.ptr[i];

      if (!in_names (names, cp->name))
        continue;
      for (size_t k = 0; k < cp->ndisks; k++)
        {
          const char *node = checkpoint_disk_node (vm, &cp->disks[k]);

          if (cp->disks[k].broken != REASON_NONE)
            continue;
          if (json_object_get (json_object_get (bitmaps, node), cp->name))
            qmp_txn_addf (t, "block-dirty-bitmap-remove", "{s:s, s:s}", "node",
                          node, "name", cp->name);
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
drop_records (struct vm *vm, const name_vector *names)
{
  checkpoint_vector *list = &vm->cps.list;
  size_t i = 0;

  while (i < list->len)
    {
      struct checkpoint *cp = list->ptr[i];

      if (!in_names (names, cp->name))
        {
          i++;
          continue;
        }
      for (size_t k = 0; k < list->len; k++)
        {
          struct checkpoint *c = list->ptr[k];

          if (c != cp && c->parent && strcmp (c->parent, cp->name) == 0)
            {
              free (c->parent);
              c->parent = cp->parent ? strdup (cp->parent) : NULL;
            }
        }
      remember_deleted (vm, cp->name, i > 0 ? list->ptr[i - 1]->name : NULL);
      checkpoint_vector_remove (list, i);
      checkpoint_free (cp);
    }
}

/* Delete the checkpoints NAMES (stolen).  The intent is written first:
 * a crash or a failed write after QEMU removed the bitmaps leaves a
 * state that says so, and the deletion is finished at the next start
 * (checkpoint_settle_deleting) instead of the checkpoints coming back
 * as broken.
 */
static int
delete_checkpoints (struct vm *vm, name_vector names, struct reply *r)
{
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;

  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    {
      name_vector_clear (&names);
      return reply_error (r, PB_ERR_UNAVAILABLE, "qemu-unavailable",
                          "QEMU of VM %s is not connected", vm->name);
    }
  /* Before an incoming migration arrives its bitmaps are invisible:
   * they would be left behind.
   */
  if (vm_require_active (vm, r) == -1)
    {
      name_vector_clear (&names);
      return -1;
    }
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL)
    {
      name_vector_clear (&names);
      return reply_error (r, PB_ERR_QEMU_FAILED, "qemu-error", "%s", err.desc);
    }

  name_vector_clear (&vm->cps.deleting_names);
  vm->cps.deleting_names = names;
  vm->cps.deleting = true;
  if (vm_save (vm) == -1)
    {
      vm->cps.deleting = false;
      name_vector_clear (&vm->cps.deleting_names);
      return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                          "cannot record the deletion in the state "
                          "directory; nothing was deleted");
    }
  if (remove_bitmaps (vm, &vm->cps.deleting_names, bitmaps, &err) == -1)
    {
      /* Refused: nothing was removed.  Timed out: unknown, and the
       * next reconcile marks what went missing as broken.
       */
      vm->cps.deleting = false;
      name_vector_clear (&vm->cps.deleting_names);
      vm_save (vm);
      return reply_error (r, qemu_errkind (err.kind), "qemu-error",
                          "deleting checkpoints: %s", err.desc);
    }
  drop_records (vm, &vm->cps.deleting_names);
  vm->cps.deleting = false;
  name_vector_clear (&vm->cps.deleting_names);
  if (vm_save (vm) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                        "the bitmaps were removed from QEMU but the state "
                        "directory cannot be written; pullbackd writes it "
                        "as soon as it can, and finishes the deletion at "
                        "its next start if it cannot");
  return 0;
}

/* The names of the checkpoints (all, or just NAME) in NAMES: 0, or -1
 * if out of memory.
 */
static int
names_of (const struct vm *vm, const char *name, name_vector *names)
{
  for (size_t i = 0; i < vm->cps.list.len; i++)
    {
      char *c;

      if (name && strcmp (vm->cps.list.ptr[i]->name, name) != 0)
        continue;
      c = strdup (vm->cps.list.ptr[i]->name);
      if (c == NULL || name_vector_append (names, c) == -1)
        {
          free (c);
          name_vector_clear (names);
          return -1;
        }
    }
  return 0;
}

int
checkpoint_delete (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *name = json_string_value (json_object_get (args, "name"));
  name_vector names = empty_vector;

  if (checkpoint_find (vm, name) == NULL)
    return reply_error (r, PB_ERR_NOT_FOUND, "checkpoint-not-found",
                        "VM %s has no checkpoint '%s'", vm->name, name);
  if (names_of (vm, name, &names) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
  if (delete_checkpoints (vm, names, r) == -1)
    return -1;
  return reply_ok (r, NULL);
}

int
checkpoint_delete_all (struct vm *vm, struct reply *r)
{
  name_vector names = empty_vector;

  if (names_of (vm, NULL, &names) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
  if (delete_checkpoints (vm, names, r) == -1)
    return -1;
  /* Nothing is left to page through. */
  while (vm->cps.deleted.len > 0)
    deleted_remove (vm, vm->cps.deleted.len - 1);
  return 0;
}

int
checkpoint_settle_deleting (struct vm *vm)
{
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;

  if (!vm->cps.deleting)
    return 0;
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL
      || remove_bitmaps (vm, &vm->cps.deleting_names, bitmaps, &err) == -1)
    {
      log_warnx ("VM %s: finishing the deletion of checkpoints: %s", vm->name,
                 err.desc);
      return -1;
    }
  log_info ("VM %s: finished deleting checkpoints a crash or a failed "
            "write interrupted",
            vm->name);
  drop_records (vm, &vm->cps.deleting_names);
  vm->cps.deleting = false;
  name_vector_clear (&vm->cps.deleting_names);
  vm_save (vm);
  return 0;
}
