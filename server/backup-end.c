/* pullback: the end of a backup, one transition with a reason.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * However a backup ends (its DELETE, its TTL, a failure, the daemon's
 * shutdown, a begin undone), backup_finish runs the same teardown:
 *   1. the delta views (nbdkit) stop: their clients get a clean end;
 *   2. the exports go, then the jobs under them (export.c keeps the
 *      rule: never a job under a live export);
 *   3. the fleece overlay and scratch nodes, the scratch file, the
 *      temporary bitmap, and for a begin undone its new checkpoint;
 *   4. what QEMU did not confirm gone joins the cleanup list, retried
 *      at every connect and before every change (cleanup_retry).
 * A failed backup stays visible with its reason; any other is forgotten.
 */

#include <config.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "nbd.h"
#include "stats.h"

/* Steps 1 to 3: 0 when everything is confirmed gone, -1 when something
 * may be left (logged).
 */
static int
teardown (struct vm *vm, struct backup *b, bool drop_checkpoint)
{
  CLEANUP_FREE bool *job_gone = calloc (b->ndisks, sizeof *job_gone);
  int rc;

  delta_stop (vm, b);
  if (job_gone == NULL)
    return -1;
  rc = exports_then_jobs_remove (vm, b, job_gone);
  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects o;

      if (!job_gone[i])
        continue;
      backup_disk_objects (d, &o);
      /* A nested scratch node goes with its overlay. */
      if (vm_qmp_quietly (vm, "blockdev-del",
                          json_pack ("{s:s}", "node-name", o.fleece))
              == -1
          || (!b->scratch_nested
              && vm_qmp_quietly (
                     vm, "blockdev-del",
                     json_pack ("{s:s}", "node-name", o.scratch_node))
                     == -1))
        {
          rc = -1;
          continue;
        }
      scratch_remove_file (d->scratch);
      if (b->txn_done && d->mode == DISK_INCREMENTAL
          && vm_qmp_quietly (vm, "block-dirty-bitmap-remove",
                             json_pack ("{s:s, s:s}", "node", d->node, "name",
                                        o.tmp_bitmap))
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
      for (size_t i = 0; i < b->ndisks; i++)
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

/* Steps 1 to 4. */
static void
retire (struct vm *vm, struct backup *b, bool drop_checkpoint)
{
  struct backup *copy;

  if (teardown (vm, b, drop_checkpoint) == 0)
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

      if (teardown (vm, b, b->drop_checkpoint) == 0)
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

int
cleanup_require_none (struct vm *vm, struct reply *r)
{
  if (cleanup_retry (vm) == 0)
    return 0;
  return reply_error (r, PB_ERR_CONFLICT, "cleanup-pending",
                      "VM %s: QEMU still holds parts of an earlier backup or "
                      "checkpoint that could not be removed (see the log); "
                      "retry later",
                      vm->name);
}

/* The backup is over: forget it, and say whether that was written. */
static int
forget (struct vm *vm)
{
  backup_free (vm->backup);
  vm->backup = NULL;
  return vm_save (vm);
}

int
backup_finish (struct vm *vm, enum backup_end how, enum backup_failure why)
{
  struct backup *b = vm->backup;
  bool ready;

  if (b == NULL)
    return 0;
  ready = b->phase == BACKUP_READY;
  switch (how)
    {
    case BACKUP_END_ENDED:
    case BACKUP_END_EXPIRED:
    case BACKUP_END_SHUTDOWN:
      /* A failed backup has nothing left in QEMU; only its record goes. */
      if (ready)
        {
          log_info ("VM %s: backup %s %s", vm->name, b->id,
                    how == BACKUP_END_ENDED     ? "ended"
                    : how == BACKUP_END_EXPIRED ? "expired"
                                                : "ended for shutdown");
          retire (vm, b, false);
          if (how == BACKUP_END_ENDED)
            atomic_fetch_add (&pb_stats.backups_ended, 1);
          else if (how == BACKUP_END_EXPIRED)
            atomic_fetch_add (&pb_stats.backups_expired, 1);
        }
      else if (how == BACKUP_END_EXPIRED)
        log_info ("VM %s: backup %s expired", vm->name, b->id);
      /* QEMU is torn down already; what is in memory is the truth and
       * is written as soon as it can be.  Until then a restart finds the
       * old record and cleans up by it, which finds nothing left.
       */
      return forget (vm);

    case BACKUP_END_FAILED:
      if (b->phase == BACKUP_FAILED)
        return 0;
      log_warnx ("VM %s: backup %s failed: %s", vm->name, b->id,
                 backup_failure_name (why));
      atomic_fetch_add (&pb_stats.backups_failed, 1);
      b->phase = BACKUP_FAILED;
      b->failure = why;
      /* QEMU may live on (-no-shutdown, as under libvirt; a full
       * scratch): tear down now.  Without a connection, what QEMU holds
       * is remembered and removed at the next connect; the scratch files
       * go now.  Our NBD socket stays: it tells the next connect that
       * the server is ours.
       */
      retire (vm, b, false);
      return vm_save (vm);

    case BACKUP_END_UNDONE:
      /* Nothing of a backup that is not to be, not even its new
       * checkpoint (when recorded, it is the newest).
       */
      if (b->phase == BACKUP_FAILED)
        return 0;
      log_info ("VM %s: undoing backup %s", vm->name, b->id);
      if (b->checkpoint)
        checkpoint_free (checkpoint_take_newest (vm, b->checkpoint));
      retire (vm, b, true);
      return forget (vm);
    }
  return 0;
}

void
backup_recover (struct vm *vm)
{
  struct backup *b = vm->backup;
  bool starting, failed;

  vm->cleanup_next_ms = 0; /* a new connection: try now */
  if (b == NULL)
    {
      cleanup_retry (vm);
      return;
    }
  starting = b->phase == BACKUP_STARTING;
  failed = b->phase == BACKUP_FAILED;
  log_info ("VM %s: cleaning up backup %s left %s", vm->name, b->id,
            backup_phase_name (b->phase));
  /* A crash may have come between the transaction and the record of
   * it; the names were checked free before, so what carries them is
   * ours.  Only a backup still starting has a checkpoint that is not in
   * the metadata yet.
   */
  b->txn_done = true;
  cleanup_retry (vm);
  /* A failed backup listed for cleanup was just tried. */
  if (!(failed && cleanup_listed (vm, b)))
    retire (vm, b, starting);
  /* A failed backup stays visible, with its reason, until it is deleted
   * or expires; any other is over.
   */
  if (!failed)
    {
      backup_free (vm->backup);
      vm->backup = NULL;
    }
}
