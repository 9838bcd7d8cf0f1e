/* pullback: tearing a backup down, and cleaning up after a crash.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The order is mandatory: an export must be gone (BLOCK_EXPORT_DELETED)
 * before its job is cancelled, or the export would serve live data.
 * Every step tolerates objects that are already gone, so the same code
 * ends a healthy backup, undoes a half-made one and removes what a crash
 * left behind.
 */

#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "names.h"
#include "nbd.h"

/* How long a connected client may keep a "safe" export delete waiting
 * before we cut it off.
 */
#define EXPORT_GRACE_MS 2000
#define EVENT_WAIT_MS 10000

static const char *
str (const json_t *o, const char *key)
{
  return json_string_value (json_object_get (o, key));
}

/* Delete export ID and wait until QEMU says it is gone.  Returns true if
 * it is gone (or never existed).
 */
static bool
delete_export (struct vm *vm, const char *id)
{
  int64_t grace = deadline_after (EXPORT_GRACE_MS);
  struct qmp_error err;
  json_t *ret, *ev;
  bool hard = false;

  for (;;)
    {
      ret = vm_qmp (
          vm, "block-export-del",
          json_pack ("{s:s, s:s}", "id", id, "mode", hard ? "hard" : "safe"),
          &err);
      if (ret)
        break;
      if (qmp_error_is_not_found (&err))
        return true;
      /* An earlier delete is still closing it: the event will come. */
      if (err.kind == QMP_ERR_QEMU
          && strstr (err.desc, "already shutting down"))
        break;
      /* "still in use": a client is connected.  Give it a moment, then
       * cut it off once.
       */
      if (err.kind != QMP_ERR_QEMU || !strstr (err.desc, "in use") || hard)
        {
          log_warnx ("VM %s: deleting export %s: %s", vm->name, id, err.desc);
          return false;
        }
      if (deadline_remaining (grace) == 0)
        hard = true;
      else
        usleep (50 * 1000);
    }
  json_decref (ret);
  ev = qmp_wait_event (vm->qmp, "BLOCK_EXPORT_DELETED", qmp_event_data_id_is,
                       (void *)id, EVENT_WAIT_MS, &err);
  if (ev == NULL)
    {
      log_warnx ("VM %s: export %s: no BLOCK_EXPORT_DELETED: %s", vm->name, id,
                 err.desc);
      return false;
    }
  json_decref (ev);
  return true;
}

/* Cancel JOB and wait for it to end.  Returns true if it is gone. */
static bool
cancel_job (struct vm *vm, const char *job)
{
  struct qmp_error err;
  json_t *ret, *ev;

  ret = vm_qmp (vm, "block-job-cancel",
                json_pack ("{s:s, s:b}", "device", job, "force", 1), &err);
  if (ret == NULL)
    {
      if (qmp_error_is_not_found (&err))
        return true;
      log_warnx ("VM %s: cancelling job %s: %s", vm->name, job, err.desc);
      return false;
    }
  json_decref (ret);
  ev = qmp_wait_event (vm->qmp, "BLOCK_JOB_CANCELLED",
                       qmp_event_data_device_is, (void *)job, EVENT_WAIT_MS,
                       &err);
  if (ev == NULL)
    {
      log_warnx ("VM %s: job %s: no BLOCK_JOB_CANCELLED: %s", vm->name, job,
                 err.desc);
      return false;
    }
  json_decref (ev);
  return true;
}

int
teardown_backup (struct vm *vm, struct backup *b, bool drop_checkpoint)
{
  bool connected = vm->qmp && qmp_is_connected (vm->qmp);
  int rc = connected ? 0 : -1;
  size_t i;

  /* The delta views first: their clients get a clean end. */
  delta_stop (vm, b);

  /* Exports first, all of them; "gone" marks the disks whose export is
   * confirmed deleted.
   */
  for (i = 0; i < b->ndisks; i++)
    {
      char id[64];

      backup_disk_object (&b->disks[i], PB_EXPORT_PREFIX, id, sizeof id);
      b->disks[i].gone = connected && delete_export (vm, id);
    }

  for (i = 0; i < b->ndisks && connected; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      char job[64], fleece[64], scratch[64], tmp[NAME_MAX_LEN + 16];

      backup_disk_object (d, PB_JOB_PREFIX, job, sizeof job);
      backup_disk_object (d, PB_FLEECE_PREFIX, fleece, sizeof fleece);
      backup_disk_object (d, PB_SCRATCH_PREFIX, scratch, sizeof scratch);
      backup_disk_tmp_bitmap (d, tmp, sizeof tmp);
      if (!d->gone)
        {
          /* Never cancel the job under a live export. */
          log_warnx ("VM %s: leaving job %s: its export is still there",
                     vm->name, job);
          rc = -1;
          continue;
        }
      if (!cancel_job (vm, job)
          || vm_qmp_quietly (vm, "blockdev-del",
                             json_pack ("{s:s}", "node-name", fleece))
                 == -1
          || vm_qmp_quietly (vm, "blockdev-del",
                             json_pack ("{s:s}", "node-name", scratch))
                 == -1)
        {
          rc = -1;
          continue;
        }
      scratch_remove_file (d->scratch);
      if (b->txn_done && d->mode == DISK_INCREMENTAL
          && vm_qmp_quietly (
                 vm, "block-dirty-bitmap-remove",
                 json_pack ("{s:s, s:s}", "node", d->node, "name", tmp))
                 == -1)
        rc = -1;
      if (b->txn_done && drop_checkpoint && b->checkpoint
          && d->checkpoint_bitmap
          && vm_qmp_quietly (vm, "block-dirty-bitmap-remove",
                             json_pack ("{s:s, s:s}", "node", d->node, "name",
                                        b->checkpoint))
                 == -1)
        rc = -1;
    }

  /* Without QEMU (it died, or its QMP socket broke, perhaps during the
   * steps above) the nodes cannot be removed now, but the files are
   * ours: QEMU keeps what it has open.
   */
  if (!vm->qmp || !qmp_is_connected (vm->qmp))
    {
      for (i = 0; i < b->ndisks; i++)
        scratch_remove_file (b->disks[i].scratch);
      return -1;
    }
  nbd_stop_if_idle (vm);
  return rc;
}

/* After a retry that left something, the next waits this long (but for
 * a new connection): a stuck export must not hold up every request.
 */
#define CLEANUP_RETRY_MS 30000

static bool
cleanup_listed (struct vm *vm, const struct backup *b)
{
  for (size_t i = 0; i < vm->cleanup.len; i++)
    if (strcmp (vm->cleanup.ptr[i]->id, b->id) == 0)
      return true;
  return false;
}

void
backup_retire (struct vm *vm, struct backup *b, bool drop_checkpoint)
{
  struct backup *copy;

  if (teardown_backup (vm, b, drop_checkpoint) == 0)
    return;
  log_warnx ("VM %s: backup %s is not fully removed from QEMU yet; "
             "pullbackd retries at the next connection and before the next "
             "backup",
             vm->name, b->id);
  if (cleanup_listed (vm, b))
    return; /* already listed (a failed backup torn down again) */
  copy = backup_copy (b);
  if (copy == NULL || backup_vector_append (&vm->cleanup, copy) == -1)
    {
      log_warnx ("VM %s: out of memory: backup %s is left to the next start",
                 vm->name, b->id);
      backup_free (copy);
      return;
    }
  copy->drop_checkpoint = drop_checkpoint;
}

size_t
cleanup_retry (struct vm *vm)
{
  size_t i = 0, n = vm->cleanup.len, left;

  if (monotonic_ms () < vm->cleanup_next_ms)
    return n + (vm->cps.pending != NULL) + vm->cps.deleting;
  while (i < vm->cleanup.len)
    {
      struct backup *b = vm->cleanup.ptr[i];

      if (teardown_backup (vm, b, b->drop_checkpoint) == 0)
        {
          log_info ("VM %s: removed what was left of backup %s", vm->name,
                    b->id);
          backup_free (b);
          backup_vector_remove (&vm->cleanup, i);
        }
      else
        i++;
    }
  if (vm->cleanup.len != n)
    vm_save (vm);
  left = vm->cleanup.len + (checkpoint_settle_pending (vm) == -1)
         + (checkpoint_settle_deleting (vm) == -1);
  vm->cleanup_next_ms = left ? monotonic_ms () + CLEANUP_RETRY_MS : 0;
  return left;
}

/* Is export pb-exp-INDEX among EXPORTS? */
static bool
export_left (const json_t *exports, const char *index)
{
  size_t i;
  json_t *e;

  json_array_foreach (exports, i, e)
    {
      const char *id = str (e, "id");

      if (id && strncmp (id, PB_EXPORT_PREFIX, strlen (PB_EXPORT_PREFIX)) == 0
          && strcmp (id + strlen (PB_EXPORT_PREFIX), index) == 0)
        return true;
    }
  return false;
}

/* Leftovers without a record (a lost or hand-edited state file): our
 * exports, jobs and overlay nodes by their names.
 */
static void
remove_by_name (struct vm *vm)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *exports
      = vm_qmp (vm, "query-block-exports", NULL, &err);
  CLEANUP_JSON json_t *jobs = NULL;
  CLEANUP_JSON json_t *nodes = NULL;
  size_t i;
  int pass;
  json_t *e;

  json_array_foreach (exports, i, e)
    {
      const char *id = str (e, "id");
      if (id && strncmp (id, PB_EXPORT_PREFIX, strlen (PB_EXPORT_PREFIX)) == 0)
        {
          log_info ("VM %s: removing leftover export %s", vm->name, id);
          delete_export (vm, id);
        }
    }
  /* An export that would not go keeps its job (and so its overlay): the
   * export would serve live data without it.
   */
  json_decref (exports);
  exports = vm_qmp (vm, "query-block-exports", NULL, &err);
  if (exports == NULL)
    return;
  jobs = vm_qmp (vm, "query-block-jobs", NULL, &err);
  json_array_foreach (jobs, i, e)
    {
      const char *id = str (e, "device");
      if (id && strncmp (id, PB_JOB_PREFIX, strlen (PB_JOB_PREFIX)) == 0
          && !export_left (exports, id + strlen (PB_JOB_PREFIX)))
        {
          log_info ("VM %s: removing leftover job %s", vm->name, id);
          cancel_job (vm, id);
        }
    }
  json_decref (jobs);
  jobs = vm_qmp (vm, "query-jobs", NULL, &err);
  json_array_foreach (jobs, i, e)
    {
      const char *id = str (e, "id");
      if (id && strncmp (id, PB_MKJOB_PREFIX, strlen (PB_MKJOB_PREFIX)) == 0)
        {
          log_info ("VM %s: removing leftover job %s", vm->name, id);
          scratch_job_remove (vm, id);
        }
    }
  /* Overlays before the scratch file nodes under them. */
  nodes = vm_qmp (vm, "query-named-block-nodes",
                  json_pack ("{s:b}", "flat", 1), &err);
  for (pass = 0; pass < 2; pass++)
    json_array_foreach (nodes, i, e)
      {
        const char *id = str (e, "node-name");
        const char *prefix = pass ? PB_SCRATCH_PREFIX : PB_FLEECE_PREFIX;

        if (id && strncmp (id, prefix, strlen (prefix)) == 0
            && !export_left (exports, id + strlen (prefix)))
          {
            log_info ("VM %s: removing leftover node %s", vm->name, id);
            vm_qmp_quietly (vm, "blockdev-del",
                            json_pack ("{s:s}", "node-name", id));
          }
      }
}

/* Scratch files named pullback-<vm>.N.qcow2 in the scratch directory. */
static void
remove_scratch_files (struct vm *vm)
{
  char prefix[128];
  DIR *dir = opendir (vm->scratch_dir);
  struct dirent *e;

  if (dir == NULL)
    return;
  snprintf (prefix, sizeof prefix, "pullback-%s.", vm->name);
  while ((e = readdir (dir)) != NULL)
    {
      const char *rest = e->d_name + strlen (prefix);
      size_t digits;

      /* Exactly pullback-<vm>.<index>.qcow2: VM "a" must not take
       * pullback-a.b.0.qcow2 of VM "a.b".
       */
      if (strncmp (e->d_name, prefix, strlen (prefix)) != 0)
        continue;
      digits = strspn (rest, "0123456789");
      if (digits > 0 && strcmp (rest + digits, ".qcow2") == 0)
        {
          log_info ("VM %s: removing leftover scratch file %s/%s", vm->name,
                    vm->scratch_dir, e->d_name);
          unlinkat (dirfd (dir), e->d_name, 0);
        }
    }
  closedir (dir);
}

void
recovery_cleanup (struct vm *vm)
{
  struct backup *b = vm->backup;

  if (b)
    {
      bool starting = b->phase == BACKUP_STARTING;
      bool failed = b->phase == BACKUP_FAILED;

      log_info ("VM %s: cleaning up backup %s left %s", vm->name, b->id,
                backup_phase_name (b->phase));
      /* A crash may have come between the transaction and the record of
       * it; the names were checked free before, so what carries them is
       * ours.  Only a backup still starting has a checkpoint that is not
       * in the metadata yet.
       */
      b->txn_done = true;
      vm->cleanup_next_ms = 0; /* a new connection: try now */
      cleanup_retry (vm);
      /* A failed backup listed for cleanup was just tried. */
      if (!(failed && cleanup_listed (vm, b)))
        backup_retire (vm, b, starting);
      /* A failed backup stays visible, with its reason, until it is
       * deleted or expires; any other is over.
       */
      if (!failed)
        {
          backup_free (vm->backup);
          vm->backup = NULL;
        }
    }
  else
    {
      vm->cleanup_next_ms = 0;
      cleanup_retry (vm);
    }
  remove_by_name (vm);
  remove_scratch_files (vm);
  delta_recover (vm);

  nbd_recover (vm);
}

int
cleanup_require_none (struct vm *vm, struct reply *r)
{
  if (cleanup_retry (vm) == 0)
    return 0;
  return reply_error (r, 409, "cleanup-pending",
                      "VM %s: QEMU still holds parts of an earlier backup or "
                      "checkpoint that could not be removed (see the log); "
                      "retry later",
                      vm->name);
}
