/* pullback: the NBD exports of a backup and the jobs under them.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The rule: an export serves the fleece overlay, which holds the
 * snapshot only while its copy-before-write job runs.  So a job is
 * never cancelled while its export exists: exports go first, and the
 * job of a disk is cancelled only once QEMU has confirmed its export
 * deleted (BLOCK_EXPORT_DELETED).  When a job ends outside pullbackd,
 * every export is cut off at once.  Every step tolerates objects that
 * are already gone.
 */

#include <config.h>

#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"

/* How long a connected client may keep a "safe" export delete waiting
 * before we cut it off.
 */
#define EXPORT_GRACE_MS 2000
#define EVENT_WAIT_MS 10000

int
exports_add (struct vm *vm, const struct backup *b, struct reply *r)
{
  struct qmp_batch *batch = qmp_batch_new ();
  struct qmp_error err;
  size_t failed;

  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects o;
      json_t *args;

      backup_disk_objects (d, &o);
      /* Read-only is QEMU's default ("writable" absent): every byte of
       * a command costs QEMU a turn of its loop (see conn.c).
       */
      args = json_pack ("{s:s, s:s, s:s, s:s, s:b}", "type", "nbd", "id",
                        o.export_id, "node-name", o.fleece, "name", d->name,
                        "allocation-depth", 1);
      if (d->mode == DISK_INCREMENTAL)
        json_object_set_new (
            args, "bitmaps",
            json_pack ("[{s:s, s:s}]", "node", d->node, "name", o.tmp_bitmap));
      qmp_batch_add (batch, "block-export-add", args);
    }
  if (vm_qmp_batch (vm, batch, &failed, &err) == -1)
    return reply_error (r, qemu_errkind (err.kind), "qemu-error",
                        "exporting over NBD: %s", err.desc);
  return 0;
}

/* Wait for EVENT about object ID (PRED matches it): true when it came. */
static bool
gone_when (struct vm *vm, const char *event, qmp_event_pred pred,
           const char *id)
{
  struct qmp_error err;
  json_t *ev
      = qmp_wait_event (vm->qmp, event, pred, (void *)id, EVENT_WAIT_MS, &err);

  if (ev == NULL)
    {
      log_warnx ("VM %s: %s: no %s: %s", vm->name, id, event, err.desc);
      return false;
    }
  json_decref (ev);
  return true;
}

bool
export_delete (struct vm *vm, const char *id)
{
  int64_t grace = deadline_after (EXPORT_GRACE_MS);
  struct qmp_error err;
  json_t *ret;
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
  return gone_when (vm, "BLOCK_EXPORT_DELETED", qmp_event_data_id_is, id);
}

bool
job_cancel (struct vm *vm, const char *job)
{
  struct qmp_error err;
  json_t *ret;

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
  return gone_when (vm, "BLOCK_JOB_CANCELLED", qmp_event_data_device_is, job);
}

int
exports_then_jobs_remove (struct vm *vm, struct backup *b, bool *job_gone)
{
  bool connected = vm->qmp && qmp_is_connected (vm->qmp);
  int rc = connected ? 0 : -1;

  /* Exports first, all of them; "gone" marks the disks whose export is
   * confirmed deleted.
   */
  for (size_t i = 0; i < b->ndisks; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      b->disks[i].gone = connected && export_delete (vm, o.export_id);
    }
  for (size_t i = 0; i < b->ndisks; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      job_gone[i] = false;
      if (!connected)
        continue;
      if (!b->disks[i].gone)
        {
          /* Never cancel the job under a live export. */
          log_warnx ("VM %s: leaving job %s: its export is still there",
                     vm->name, o.job);
          rc = -1;
          continue;
        }
      job_gone[i] = job_cancel (vm, o.job);
      if (!job_gone[i])
        rc = -1;
    }
  return rc;
}

void
exports_cut_off (struct vm *vm, const struct backup *b)
{
  for (size_t i = 0; i < b->ndisks; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      vm_qmp_quietly (
          vm, "block-export-del",
          json_pack ("{s:s, s:s}", "id", o.export_id, "mode", "hard"));
    }
}
