/* pullback: pull backups: begin, inspect, extend, end, expire, fail.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Begin follows the recipe of DESIGN section 4: a qcow2 scratch overlay
 * backed by each disk, then one transaction holding, for every disk, the
 * copy-before-write job (blockdev-backup sync=none), the new checkpoint's
 * persistent bitmap and, for incremental disks, a disabled temporary
 * bitmap merged from the base checkpoint; then the NBD exports.  The
 * backup is recorded in the state file before QEMU is touched, so a crash
 * at any point leaves enough to clean up on the next start.
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "answer.h"
#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "names.h"
#include "nbd.h"
#include "nbdnet.h"
#include "stats.h"

struct pb_stats pb_stats;

static void
new_backup_id (char *buf, size_t len)
{
  uint32_t r[2] = { 0, 0 };

  if (getrandom (r, sizeof r, 0) != (ssize_t)sizeof r)
    r[0] = (uint32_t)monotonic_ms ();
  snprintf (buf, len, "bk-%08x%08x", r[0], r[1]);
}

/* What the answer about B holds: the phase, the disks with their NBD
 * URIs while ready, the TLS a client needs; with SECRET the generated
 * PSK key (the begin answer only), with CLIENT the credentials of
 * pullbackd's own reads.  Answers R: 0, or -1 with R set.
 */
static int
answer_backup (struct vm *vm, const struct backup *b, bool secret, bool client,
               bool created, struct reply *r)
{
  struct answer *a = answer_new (ANSWER_BACKUP);
  struct backup_answer *ba = a ? &a->backup : NULL;
  bool ready = b->phase == BACKUP_READY;

  if (a == NULL || (ba->b = backup_copy (b)) == NULL
      || (ba->vm = strdup (vm->name)) == NULL
      || (ba->disks = calloc (b->ndisks ? b->ndisks : 1, sizeof *ba->disks))
             == NULL)
    goto oom;
  ba->scratch_bytes = scratch_allocated (b);
  for (size_t i = 0; ready && i < b->ndisks; i++)
    {
      ba->disks[i].uri = nbd_uri (vm, b->disks[i].name);
      ba->disks[i].delta_uri = delta_uri (vm, &b->disks[i]);
      ba->disks[i].delta_tcp = b->disks[i].delta_port > 0;
      if (ba->disks[i].uri == NULL)
        goto oom;
    }
  if ((ready && nbdnet_describe (vm, ba) == -1)
      || (secret && nbdnet_add_secret (vm, ba) == -1)
      || (client && nbdnet_add_client (vm, ba) == -1))
    goto oom;
  return reply_answer (r, a, created);

oom:
  answer_free (a);
  return reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
}

/* Why disk D must be full though an incremental from BASE was asked:
 * REASON_NONE when it can be incremental.
 */
static enum disk_reason
full_because (const struct vm_disk *d, const struct checkpoint *base)
{
  const struct checkpoint_disk *cd = NULL;

  /* QEMU takes a persistent bitmap on a read-only image but can never
   * store it: such a disk is exported, full, and holds no checkpoint.
   */
  if (strcmp (d->format, "qcow2") != 0)
    return REASON_DISK_NOT_QCOW2;
  if (d->ro)
    return REASON_DISK_READ_ONLY;
  for (size_t m = 0; m < base->ndisks; m++)
    if (strcmp (base->disks[m].disk, d->name) == 0)
      cd = &base->disks[m];
  if (cd == NULL)
    return REASON_DISK_ADDED;
  return cd->broken;
}

/* Parse and check the request against the VM: the backup record to be,
 * or NULL with R set.
 */
static struct backup *
plan_backup (struct vm *vm, const json_t *args, const json_t *bitmaps,
             struct reply *r)
{
  const json_t *cparg = json_object_get (args, "checkpoint");
  const char *since = json_str (args, "since");
  const json_t *want = json_object_get (args, "disks");
  const struct checkpoint *base = NULL;
  char cpname[NAME_MAX_LEN + 16] = "";
  json_int_t ttl = vm->ctx->backup_ttl;
  CLEANUP_BACKUP struct backup *b = NULL;
  size_t i, n = 0;
  json_t *d;
  char id[32];

  if (json_is_integer (json_object_get (args, "ttl")))
    ttl = json_integer_value (json_object_get (args, "ttl"));
  if (ttl > vm->ctx->backup_ttl_max)
    {
      reply_error_field (r, PB_ERR_INVALID, "ttl-too-large", "ttl",
                         "ttl %lld is above the maximum of %d seconds",
                         (long long)ttl, vm->ctx->backup_ttl_max);
      return NULL;
    }

  if (since && (base = checkpoint_find (vm, since)) == NULL)
    {
      reply_error_field (r, PB_ERR_NOT_FOUND, "checkpoint-not-found", "since",
                         "VM %s has no checkpoint '%s'", vm->name, since);
      return NULL;
    }

  if (json_is_string (cparg))
    snprintf (cpname, sizeof cpname, "%s", json_string_value (cparg));
  else if (cparg == NULL)
    checkpoint_generate_name (vm, cpname, sizeof cpname);
  if (cpname[0] && checkpoint_find (vm, cpname))
    {
      reply_error_field (r, PB_ERR_CONFLICT, "checkpoint-exists", "checkpoint",
                         "VM %s already has a checkpoint '%s'", vm->name,
                         cpname);
      return NULL;
    }
  if (cpname[0] && bitmap_name_taken (bitmaps, &vm->disks, cpname))
    {
      reply_error_field (r, PB_ERR_CONFLICT, "bitmap-exists", "checkpoint",
                         "a bitmap named '%s' already exists on a disk of "
                         "VM %s",
                         cpname, vm->name);
      return NULL;
    }

  if (want)
    json_array_foreach (want, i, d)
      if (vm_disk_find (&vm->disks, json_string_value (d)) == NULL)
        {
          reply_error_field (r, PB_ERR_INVALID, "disk-not-found", "disks",
                             "VM %s has no disk '%s'", vm->name,
                             json_string_value (d));
          return NULL;
        }

  b = backup_new (want ? json_array_size (want) : vm->disks.len);
  if (b == NULL)
    {
      reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
      return NULL;
    }
  for (i = 0; i < vm->disks.len; i++)
    {
      const struct vm_disk *vd = &vm->disks.ptr[i];
      const char *name = vd->name;
      struct backup_disk *bd;
      bool selected = want == NULL, qcow2, ro;
      char tmp[NAME_MAX_LEN + 16];
      size_t k;
      json_t *w;

      json_array_foreach (want, k, w)
        if (strcmp (json_string_value (w), name) == 0)
          selected = true;
      if (!selected)
        continue;

      bd = &b->disks[n];
      bd->index = (int)n++;
      qcow2 = strcmp (vd->format, "qcow2") == 0;
      ro = vd->ro;
      bd->mode = DISK_FULL;
      if (base)
        {
          bd->reason = full_because (vd, base);
          if (bd->reason == REASON_NONE)
            bd->mode = DISK_INCREMENTAL;
        }
      snprintf (tmp, sizeof tmp, PB_TMP_BITMAP_PREFIX "%s", name);
      if (bd->mode == DISK_INCREMENTAL
          && json_object_get (json_object_get (bitmaps, vd->node), tmp))
        {
          reply_error (r, PB_ERR_CONFLICT, "bitmap-exists",
                       "a bitmap named '%s' already exists on disk %s of "
                       "VM %s",
                       tmp, name, vm->name);
          return NULL;
        }
      bd->checkpoint_bitmap = qcow2 && !ro && cpname[0];
      bd->size = vd->size;
      bd->name = strdup (name);
      bd->node = strdup (vd->node);
      bd->format = strdup (vd->format);
      if (asprintf (&bd->scratch, "%s/pullback-%s.%d.qcow2", vm->scratch_dir,
                    vm->name, bd->index)
          == -1)
        bd->scratch = NULL;
      if (bd->name == NULL || bd->node == NULL || bd->format == NULL
          || bd->scratch == NULL)
        {
          reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
          return NULL;
        }
    }
  b->ndisks = n;
  if (n == 0)
    {
      reply_error (r, PB_ERR_INVALID, "no-disks",
                   "VM %s has no disks to back up", vm->name);
      return NULL;
    }

  new_backup_id (id, sizeof id);
  b->id = strdup (id);
  b->checkpoint = cpname[0] ? strdup (cpname) : NULL;
  b->since = since ? strdup (since) : NULL;
  if (b->id == NULL || (cpname[0] && b->checkpoint == NULL)
      || (since && b->since == NULL))
    {
      reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
      return NULL;
    }
  b->phase = BACKUP_STARTING;
  b->created = now_seconds ();
  b->ttl = ttl;
  /* What scratch_add_all will do, recorded before it runs. */
  b->scratch_nested = !vm->ctx->scratch_via_qemu;
  b->expires = b->created + ttl;
  return TAKE_PTR (b);
}

static int
qemu_failed (struct reply *r, const char *what, const struct qmp_error *err)
{
  return reply_error (r, qemu_errkind (err->kind), "qemu-error", "%s: %s",
                      what, err->desc);
}

static int
run_transaction (struct vm *vm, struct backup *b, struct reply *r)
{
  struct qmp_error err;
  struct qmp_txn *t = qmp_txn_new ();
  int rc;

  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects o;

      backup_disk_objects (d, &o);
      qmp_txn_addf (t, "blockdev-backup", "{s:s, s:s, s:s, s:s, s:s}",
                    "job-id", o.job, "device", d->node, "target", o.fleece,
                    "sync", "none", "filter-node-name", o.cbw);
      if (d->checkpoint_bitmap)
        qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}", "node",
                      d->node, "name", b->checkpoint, "persistent", 1);
      if (d->mode == DISK_INCREMENTAL)
        {
          qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}", "node",
                        d->node, "name", o.tmp_bitmap, "disabled", 1);
          qmp_txn_addf (t, "block-dirty-bitmap-merge", "{s:s, s:s, s:[s]}",
                        "node", d->node, "target", o.tmp_bitmap, "bitmaps",
                        b->since);
        }
    }
  rc = qmp_txn_execute (vm->qmp, t, vm->ctx->qmp_timeout_ms, &err);
  qmp_txn_free (t);
  /* Done, or unknown (a timeout, a lost connection): QEMU may have
   * applied it, and the names were checked free, so undo removes the
   * bitmaps too.
   */
  if (rc == 0 || err.kind != QMP_ERR_QEMU)
    b->txn_done = true;
  if (rc == -1)
    return qemu_failed (r, "backup transaction", &err);
  return 0;
}

/* Record the checkpoint B made: 0, or -1 if out of memory. */
static int
add_checkpoint_record (struct vm *vm, const struct backup *b)
{
  struct checkpoint *cp;
  size_t n = 0;

  for (size_t i = 0; i < b->ndisks; i++)
    n += b->disks[i].checkpoint_bitmap;
  cp = checkpoint_new (n);
  if (cp == NULL || (cp->name = strdup (b->checkpoint)) == NULL)
    {
      checkpoint_free (cp);
      return -1;
    }
  cp->created = b->created;
  n = 0;
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->disks[i].checkpoint_bitmap
        && checkpoint_disk_init (&cp->disks[n++], b->disks[i].name,
                                 b->disks[i].node, b->checkpoint)
               == -1)
      {
        checkpoint_free (cp);
        return -1;
      }
  return checkpoint_append (vm, cp);
}

int
backup_begin (struct vm *vm, const json_t *args, struct reply *r)
{
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  struct backup *old = vm->backup, *b;
  struct qga *g = NULL;
  int64_t t_begin = monotonic_us (), t_freeze = 0, t_txn;

  if (old && old->phase != BACKUP_FAILED)
    return reply_error (r, PB_ERR_CONFLICT, "backup-active",
                        "VM %s already has an active backup %s", vm->name,
                        old->id);
  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    return reply_error (r, PB_ERR_UNAVAILABLE, "qemu-unavailable",
                        "QEMU of VM %s is not connected", vm->name);
  if (vm_require_active (vm, r) == -1 || cleanup_require_none (vm, r) == -1)
    return -1;

  /* The disks and bitmaps as they are now; broken checkpoints found
   * here make their disks full below.
   */
  if (disks_discover (vm, &vm->disks, &bitmaps, &err) == -1)
    return qemu_failed (r, "discovering disks", &err);
  checkpoints_reconcile (vm, bitmaps);

  b = plan_backup (vm, args, bitmaps, r);
  if (b == NULL)
    {
      vm_save (vm);
      return -1;
    }

  /* From here on, a crash is cleaned up from this record. */
  backup_free (vm->backup);
  vm->backup = b;
  if (vm_save (vm) == -1)
    {
      backup_free (vm->backup);
      vm->backup = NULL;
      vm_save (vm);
      return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                          "cannot record the backup in the state directory");
    }

  if (scratch_add_all (vm, b, r) == -1 || scratch_arm (vm, b, r) == -1)
    goto undo;

  if (json_is_true (json_object_get (args, "quiesce")))
    {
      g = quiesce_freeze (vm, b->id, &t_freeze, r);
      if (g == NULL)
        goto undo;
      test_pause ("after-freeze");
    }
  t_txn = monotonic_us ();
  if (run_transaction (vm, b, r) == -1)
    {
      if (g)
        quiesce_thaw (vm, g, NULL);
      goto undo;
    }
  t_txn = monotonic_us () - t_txn;
  if (g)
    {
      b->freeze_ms = monotonic_ms () - t_freeze;
      /* A guest left frozen fails the begin (502 thaw-failed), although
       * the snapshot is good: a 2xx says that all that was asked for
       * happened, and "quiesce" is freeze, snapshot, thaw; clients
       * that only read the status must see it, and a frozen guest
       * needs its operator now, not after the copy.  The backup is
       * undone; the thaw is retried until it succeeds (guest_frozen
       * in GET /v1/vms/VM), and the begin can be repeated after.
       * The marker's removal is saved with the record below.
       */
      if (quiesce_thaw (vm, g, r) == -1)
        goto undo;
    }
  /* No save here: recovery treats a backup still "starting" as past its
   * transaction anyway (the names were checked free), so the record
   * written before the transaction is enough, and one fsync less.
   */

  if (nbd_ensure_server (vm, r) == -1 || exports_add (vm, b, r) == -1)
    goto undo;

  if (b->checkpoint && add_checkpoint_record (vm, b) == -1)
    {
      reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
      goto undo;
    }
  delta_start (vm, b);
  b->phase = BACKUP_READY;
  b->expires = now_seconds () + b->ttl;
  if (vm_save (vm) == -1)
    {
      /* On disk it is still "starting": recovery would drop the
       * checkpoint, so it must not be announced.
       */
      if (b->checkpoint)
        checkpoint_free (checkpoint_take_newest (vm, b->checkpoint));
      b->phase = BACKUP_STARTING;
      reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                   "cannot record the backup in the state directory");
      goto undo;
    }
  atomic_fetch_add (&pb_stats.backups_begun, 1);
  log_info ("VM %s: backup %s ready: %zu disks in %.2f ms (transaction "
            "%.2f ms)",
            vm->name, b->id, b->ndisks,
            (double)(monotonic_us () - t_begin) / 1000.0,
            (double)t_txn / 1000.0);
  /* The PSK key: once, here only. */
  return answer_backup (vm, b, true, false, true, r);

undo:
  /* Nothing of a backup that never became readable may stay, not even
   * its new checkpoint.
   */
  log_warnx ("VM %s: backup %s failed to start: %s", vm->name, b->id,
             json_str (json_object_get (r->body, "error"), "message"));
  backup_finish (vm, BACKUP_END_UNDONE, FAILURE_NONE);
  atomic_fetch_add (&pb_stats.backups_begin_failed, 1);
  return -1;
}

static struct backup *
find_backup (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *id = json_str (args, "id");
  struct backup *b = vm->backup;

  if (b == NULL || id == NULL || strcmp (b->id, id) != 0)
    {
      reply_error (r, PB_ERR_NOT_FOUND, "backup-not-found",
                   "VM %s has no backup '%s'", vm->name, id ? id : "");
      return NULL;
    }
  return b;
}

int
backup_get (struct vm *vm, const json_t *args, struct reply *r)
{
  struct backup *b = find_backup (vm, args, r);

  if (b == NULL)
    return -1;
  /* "internal": GET .../extents only (api/routes.c sets it, never a
   * client).
   */
  return answer_backup (vm, b, false,
                        json_is_true (json_object_get (args, "internal")),
                        false, r);
}

int
backup_patch (struct vm *vm, const json_t *args, struct reply *r)
{
  struct backup *b = find_backup (vm, args, r);
  json_int_t ttl = json_integer_value (json_object_get (args, "ttl"));
  int64_t old_ttl, old_expires;

  if (b == NULL)
    return -1;
  if (b->phase != BACKUP_READY)
    return reply_error (r, PB_ERR_CONFLICT, "backup-not-ready",
                        "backup %s is %s", b->id,
                        backup_phase_name (b->phase));
  if (ttl > vm->ctx->backup_ttl_max)
    return reply_error_field (r, PB_ERR_INVALID, "ttl-too-large", "ttl",
                              "ttl %lld is above the maximum of %d seconds",
                              (long long)ttl, vm->ctx->backup_ttl_max);
  old_ttl = b->ttl;
  old_expires = b->expires;
  b->ttl = ttl;
  b->expires = now_seconds () + ttl;
  if (vm_save (vm) == -1)
    {
      /* Nothing but the record changed: put it back. */
      b->ttl = old_ttl;
      b->expires = old_expires;
      return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                          "cannot record the new ttl in the state "
                          "directory; the backup keeps its old expiry");
    }
  return answer_backup (vm, b, false, false, false, r);
}

int
backup_end (struct vm *vm, const json_t *args, struct reply *r)
{
  struct backup *b = find_backup (vm, args, r);

  if (b == NULL)
    return -1;
  if (backup_finish (vm, BACKUP_END_ENDED, FAILURE_NONE) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                        "the backup was ended, but the state directory "
                        "cannot be written; pullbackd writes it as soon as "
                        "it can");
  return reply_ok (r, NULL);
}

/* How often a ready backup's scratch use is checked from the files. */
#define SCRATCH_CHECK_MS 1000

int
backup_tick (struct vm *vm)
{
  struct backup *b = vm->backup;
  int64_t left;
  char why[512];

  if (b == NULL || b->phase == BACKUP_STARTING)
    return -1;
  left = b->expires - now_seconds ();
  if (left > 0)
    {
      bool ready = b->phase == BACKUP_READY;

      if (ready && scratch_used_up (vm, b, why, sizeof why))
        {
          log_warnx ("VM %s: backup %s: %s; ending it before the guest's "
                     "writes fail",
                     vm->name, b->id, why);
          backup_finish (vm, BACKUP_END_FAILED, FAILURE_SCRATCH_FULL);
          return backup_tick (vm);
        }
      if (ready)
        return SCRATCH_CHECK_MS;
      return left > 3600 ? 3600 * 1000 : (int)left * 1000;
    }
  backup_finish (vm, BACKUP_END_EXPIRED, FAILURE_NONE);
  return -1;
}

void
backup_on_write_threshold (struct vm *vm, const json_t *ev)
{
  struct backup *b = vm->backup;
  char why[512];

  if (b == NULL || b->phase != BACKUP_READY
      || scratch_threshold_reached (vm, b, ev, why, sizeof why) == 0)
    return;
  log_warnx ("VM %s: backup %s: %s; ending it before the guest's writes "
             "fail",
             vm->name, b->id, why);
  backup_finish (vm, BACKUP_END_FAILED, FAILURE_SCRATCH_FULL);
}

void
backup_on_block_event (struct vm *vm, const json_t *ev)
{
  const char *name = qmp_event_name (ev);
  const json_t *data = json_object_get (ev, "data");
  bool export = strcmp (name, "BLOCK_EXPORT_DELETED") == 0;
  const char *id = json_str (data, export ? "id" : "device");
  struct backup *b = vm->backup;
  const struct backup_disk *hit = NULL;
  size_t i;

  if (b == NULL || id == NULL || b->phase != BACKUP_READY)
    return;
  for (i = 0; i < b->ndisks; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      if (strcmp (export ? o.export_id : o.job, id) == 0)
        hit = &b->disks[i];
    }
  if (hit == NULL)
    return;
  /* QEMU deletes exports and cancels jobs when it exits, too: then the
   * connection is about to go, and that is the reason to report.  And
   * ids are reused by every backup: an event late from an earlier one
   * names an object that exists again.
   */
  if (strcmp (name, "BLOCK_JOB_ERROR") != 0)
    {
      struct qmp_error err;
      CLEANUP_JSON json_t *now = vm_qmp (
          vm, export ? "query-block-exports" : "query-block-jobs", NULL, &err);
      json_t *o;

      if (now == NULL)
        return;
      json_array_foreach (now, i, o)
        if (strcmp (json_str (o, export ? "id" : "device") ?: "", id) == 0)
          return;
    }
  log_warnx ("VM %s: backup %s: %s for %s of disk %s, not by pullbackd; "
             "ending the backup",
             vm->name, b->id, name, id, hit->name);
  /* Without its job, an export serves the live disk, not the snapshot:
   * cut every export off now, before the slower teardown.
   */
  if (!export)
    exports_cut_off (vm, b);
  backup_finish (vm, BACKUP_END_FAILED,
                 export ? FAILURE_EXPORT_DELETED
                 : strcmp (name, "BLOCK_JOB_ERROR") == 0 ? FAILURE_JOB_ERROR
                                                         : FAILURE_JOB_ENDED);
}
