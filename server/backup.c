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

#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "names.h"
#include "nbd.h"
#include "stats.h"

struct pb_stats pb_stats;

static json_t *
active_backup (const struct vm *vm)
{
  json_t *b = json_object_get (vm->state, "backup");

  return json_is_object (b) ? b : NULL;
}

static const char *
str (const json_t *o, const char *key)
{
  return json_string_value (json_object_get (o, key));
}

/* The backup is over: forget it, and say whether that was written. */
static int
clear_backup (struct vm *vm)
{
  json_object_set_new (vm->state, "backup", json_null ());
  return vm_save (vm);
}

static void
new_backup_id (char *buf, size_t len)
{
  uint32_t r[2] = { 0, 0 };

  if (getrandom (r, sizeof r, 0) != (ssize_t)sizeof r)
    r[0] = (uint32_t)monotonic_ms ();
  snprintf (buf, len, "bk-%08x%08x", r[0], r[1]);
}

json_t *
backup_to_api (const struct vm *vm, const json_t *b)
{
  json_t *disks = json_array ();
  bool ready = strcmp (str (b, "phase"), "ready") == 0;
  size_t i;
  json_t *d;

  json_array_foreach (json_object_get (b, "disks"), i, d)
    {
      bool incr = strcmp (str (d, "mode"), "incremental") == 0;
      json_t *nbd = json_null ();

      if (ready)
        nbd = json_pack (
            "{s:o, s:s, s:o}", "uri", nbd_uri (vm, str (d, "name")), "export",
            str (d, "name"), "dirty_bitmap_context",
            incr ? json_sprintf ("qemu:dirty-bitmap:%s", str (d, "tmp_bitmap"))
                 : json_null ());
      json_array_append_new (
          disks, json_pack ("{s:O, s:O, s:O, s:O?, s:o}", "name",
                            json_object_get (d, "name"), "size",
                            json_object_get (d, "size"), "mode",
                            json_object_get (d, "mode"), "reason",
                            json_object_get (d, "reason"), "nbd", nbd));
    }
  return json_pack (
      "{s:O, s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:I, "
      "s:O?, s:o}",
      "id", json_object_get (b, "id"), "vm", vm->name, "phase",
      json_object_get (b, "phase"), "checkpoint",
      json_object_get (b, "checkpoint"), "since", json_object_get (b, "since"),
      "created", json_object_get (b, "created"), "expires",
      json_object_get (b, "expires"), "ttl", json_object_get (b, "ttl"),
      "freeze_ms", json_object_get (b, "freeze_ms"), "scratch_bytes",
      scratch_allocated (b), "reason", json_object_get (b, "reason"), "disks",
      disks);
}

/* Parse and check the request against the VM; fills PLAN (the backup
 * record to be).  Returns -1 with R set.
 */
static json_t *
plan_backup (struct vm *vm, const json_t *args, const json_t *bitmaps,
             struct reply *r)
{
  const json_t *cparg = json_object_get (args, "checkpoint");
  const char *since = str (args, "since");
  const json_t *want = json_object_get (args, "disks");
  json_t *base = NULL;
  char cpname[NAME_MAX_LEN + 16] = "";
  json_int_t ttl = vm->ctx->backup_ttl;
  json_t *disks, *plan;
  char id[32];
  size_t i;
  json_t *d;

  if (json_is_integer (json_object_get (args, "ttl")))
    ttl = json_integer_value (json_object_get (args, "ttl"));
  if (ttl > vm->ctx->backup_ttl_max)
    {
      reply_error_field (r, 422, "ttl-too-large", "ttl",
                         "ttl %lld is above the maximum of %d seconds",
                         (long long)ttl, vm->ctx->backup_ttl_max);
      return NULL;
    }

  if (since && (base = checkpoint_find (vm, since)) == NULL)
    {
      reply_error_field (r, 404, "checkpoint-not-found", "since",
                         "VM %s has no checkpoint '%s'", vm->name, since);
      return NULL;
    }

  if (json_is_string (cparg))
    snprintf (cpname, sizeof cpname, "%s", json_string_value (cparg));
  else if (cparg == NULL)
    checkpoint_generate_name (vm, cpname, sizeof cpname);
  if (cpname[0] && checkpoint_find (vm, cpname))
    {
      reply_error_field (r, 409, "checkpoint-exists", "checkpoint",
                         "VM %s already has a checkpoint '%s'", vm->name,
                         cpname);
      return NULL;
    }
  if (cpname[0] && bitmap_name_taken (bitmaps, vm->disks, cpname))
    {
      reply_error_field (r, 409, "bitmap-exists", "checkpoint",
                         "a bitmap named '%s' already exists on a disk of "
                         "VM %s",
                         cpname, vm->name);
      return NULL;
    }

  if (want)
    json_array_foreach (want, i, d)
      if (disk_find (vm->disks, json_string_value (d)) == NULL)
        {
          reply_error_field (r, 422, "disk-not-found", "disks",
                             "VM %s has no disk '%s'", vm->name,
                             json_string_value (d));
          return NULL;
        }

  disks = json_array ();
  json_array_foreach (vm->disks, i, d)
    {
      const char *name = str (d, "name");
      const char *node = str (d, "node");
      bool qcow2 = strcmp (str (d, "format"), "qcow2") == 0;
      /* QEMU takes a persistent bitmap on a read-only image but can never
       * store it: such a disk is exported, full, and holds no checkpoint.
       */
      bool ro = json_is_true (json_object_get (d, "ro"));
      const char *mode = "full", *reason = NULL;
      char tmp[NAME_MAX_LEN + 16];
      int idx = (int)json_array_size (disks);
      json_t *entry;
      bool selected = want == NULL;
      size_t k;
      json_t *w;

      json_array_foreach (want, k, w)
        if (strcmp (json_string_value (w), name) == 0)
          selected = true;
      if (!selected)
        continue;

      snprintf (tmp, sizeof tmp, PB_TMP_BITMAP_PREFIX "%s", name);
      if (base)
        {
          const json_t *cd = NULL;
          size_t m;
          json_t *e;

          json_array_foreach (json_object_get (base, "disks"), m, e)
            if (strcmp (str (e, "disk"), name) == 0)
              cd = e;
          if (!qcow2)
            reason = "disk-not-qcow2";
          else if (ro)
            reason = "disk-read-only";
          else if (cd == NULL)
            reason = "disk-added";
          else if (json_is_string (json_object_get (cd, "broken")))
            reason = str (cd, "broken");
          else
            mode = "incremental";
        }
      if (strcmp (mode, "incremental") == 0
          && json_object_get (json_object_get (bitmaps, node), tmp))
        {
          json_decref (disks);
          reply_error (r, 409, "bitmap-exists",
                       "a bitmap named '%s' already exists on disk %s of "
                       "VM %s",
                       tmp, name, vm->name);
          return NULL;
        }

      entry = json_pack (
          "{s:s, s:s, s:O, s:O, s:s, s:s?, s:i, s:s?, s:b, "
          "s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
          "name", name, "node", node, "size", json_object_get (d, "size"),
          "format", json_object_get (d, "format"), "mode", mode, "reason",
          reason, "index", idx, "tmp_bitmap",
          strcmp (mode, "incremental") == 0 ? tmp : NULL, "checkpoint_bitmap",
          qcow2 && !ro && cpname[0], "scratch",
          json_sprintf ("%s/pullback-%s.%d.qcow2", vm->scratch_dir, vm->name,
                        idx),
          "fleece", json_sprintf (PB_FLEECE_PREFIX "%d", idx), "cbw",
          json_sprintf (PB_CBW_PREFIX "%d", idx), "job",
          json_sprintf (PB_JOB_PREFIX "%d", idx), "export_id",
          json_sprintf (PB_EXPORT_PREFIX "%d", idx), "scratch_node",
          json_sprintf (PB_SCRATCH_PREFIX "%d", idx), "mkfile_job",
          json_sprintf (PB_MKJOB_PREFIX "file-%d", idx), "mkqcow2_job",
          json_sprintf (PB_MKJOB_PREFIX "qcow2-%d", idx));
      json_array_append_new (disks, entry);
    }
  if (json_array_size (disks) == 0)
    {
      json_decref (disks);
      reply_error (r, 422, "no-disks", "VM %s has no disks to back up",
                   vm->name);
      return NULL;
    }

  new_backup_id (id, sizeof id);
  plan = json_pack ("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:n, s:n, "
                    "s:b, s:o}",
                    "id", id, "phase", "starting", "checkpoint",
                    cpname[0] ? cpname : NULL, "since", since, "created",
                    (json_int_t)now_seconds (), "expires",
                    (json_int_t)(now_seconds () + ttl), "ttl", ttl,
                    "freeze_ms", "reason", "txn_done", 0, "disks", disks);
  return plan;
}

static int
qemu_failed (struct reply *r, const char *what, const struct qmp_error *err)
{
  return reply_error (r, err->kind == QMP_ERR_TIMEOUT ? 504 : 502,
                      "qemu-error", "%s: %s", what, err->desc);
}

static int
run_transaction (struct vm *vm, json_t *b, struct reply *r)
{
  const char *cp = str (b, "checkpoint");
  const char *since = str (b, "since");
  struct qmp_error err;
  struct qmp_txn *t = qmp_txn_new ();
  size_t i;
  json_t *d;
  int rc;

  json_array_foreach (json_object_get (b, "disks"), i, d)
    {
      qmp_txn_addf (t, "blockdev-backup", "{s:O, s:O, s:O, s:s, s:O}",
                    "job-id", json_object_get (d, "job"), "device",
                    json_object_get (d, "node"), "target",
                    json_object_get (d, "fleece"), "sync", "none",
                    "filter-node-name", json_object_get (d, "cbw"));
      if (json_is_true (json_object_get (d, "checkpoint_bitmap")))
        qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:O, s:s, s:b}", "node",
                      json_object_get (d, "node"), "name", cp, "persistent",
                      1);
      if (json_is_string (json_object_get (d, "tmp_bitmap")))
        {
          qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:O, s:O, s:b}", "node",
                        json_object_get (d, "node"), "name",
                        json_object_get (d, "tmp_bitmap"), "disabled", 1);
          qmp_txn_addf (t, "block-dirty-bitmap-merge", "{s:O, s:O, s:[s]}",
                        "node", json_object_get (d, "node"), "target",
                        json_object_get (d, "tmp_bitmap"), "bitmaps", since);
        }
    }
  rc = qmp_txn_execute (vm->qmp, t, vm->ctx->qmp_timeout_ms, &err);
  qmp_txn_free (t);
  if (rc == 0 || err.kind != QMP_ERR_QEMU)
    {
      /* Done, or unknown (a timeout, a lost connection): QEMU may have
       * applied it, and the names were checked free, so undo removes
       * the bitmaps too.
       */
      json_object_set_new (b, "txn_done", json_true ());
    }
  if (rc == -1)
    return qemu_failed (r, "backup transaction", &err);
  return 0;
}

static void
add_checkpoint_record (struct vm *vm, const json_t *b)
{
  json_t *disks = json_array ();
  size_t i;
  json_t *d;

  json_array_foreach (json_object_get (b, "disks"), i, d)
    if (json_is_true (json_object_get (d, "checkpoint_bitmap")))
      json_array_append_new (disks,
                             checkpoint_disk (str (d, "name"), str (d, "node"),
                                              str (b, "checkpoint")));
  checkpoint_append (vm, str (b, "checkpoint"),
                     json_integer_value (json_object_get (b, "created")),
                     disks);
}

int
backup_begin (struct vm *vm, const json_t *args, struct reply *r)
{
  CLEANUP_JSON json_t *bitmaps = NULL;
  struct qmp_error err;
  json_t *old = active_backup (vm), *b, *disks, *d;
  struct qga *g = NULL;
  int64_t t_begin = monotonic_us (), t_freeze = 0, t_txn;
  size_t i;

  if (old && strcmp (str (old, "phase"), "failed") != 0)
    return reply_error (r, 409, "backup-active",
                        "VM %s already has an active backup %s", vm->name,
                        str (old, "id"));
  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    return reply_error (r, 503, "qemu-unavailable",
                        "QEMU of VM %s is not connected", vm->name);
  if (vm_require_active (vm, r) == -1 || cleanup_require_none (vm, r) == -1)
    return -1;

  /* The disks and bitmaps as they are now; broken checkpoints found
   * here make their disks full below.
   */
  disks = disks_discover (vm, &err);
  if (disks == NULL)
    return qemu_failed (r, "discovering disks", &err);
  json_decref (vm->disks);
  vm->disks = disks;
  bitmaps = bitmaps_query (vm, &err);
  if (bitmaps == NULL)
    return qemu_failed (r, "reading bitmaps", &err);
  checkpoints_reconcile (vm, bitmaps);

  b = plan_backup (vm, args, bitmaps, r);
  if (b == NULL)
    {
      vm_save (vm);
      return -1;
    }

  /* From here on, a crash is cleaned up from this record. */
  json_object_set_new (vm->state, "backup", b);
  if (vm_save (vm) == -1)
    {
      clear_backup (vm);
      return reply_error (r, 500, "state-write-failed",
                          "cannot record the backup in the state directory");
    }

  if (scratch_add_all (vm, b, r) == -1 || scratch_arm (vm, b, r) == -1)
    goto undo;

  if (json_is_true (json_object_get (args, "quiesce")))
    {
      g = quiesce_freeze (vm, str (b, "id"), &t_freeze, r);
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
      json_object_set_new (b, "freeze_ms",
                           json_integer (monotonic_ms () - t_freeze));
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

  if (nbd_ensure_server (vm, r) == -1)
    goto undo;
  json_array_foreach (json_object_get (b, "disks"), i, d)
    {
      json_t *args2 = json_pack ("{s:s, s:O, s:O, s:O, s:b, s:b}", "type",
                                 "nbd", "id", json_object_get (d, "export_id"),
                                 "node-name", json_object_get (d, "fleece"),
                                 "name", json_object_get (d, "name"),
                                 "writable", 0, "allocation-depth", 1);
      json_t *ret;

      if (json_is_string (json_object_get (d, "tmp_bitmap")))
        json_object_set_new (args2, "bitmaps",
                             json_pack ("[{s:O, s:O}]", "node",
                                        json_object_get (d, "node"), "name",
                                        json_object_get (d, "tmp_bitmap")));
      ret = vm_qmp (vm, "block-export-add", args2, &err);
      if (ret == NULL)
        {
          qemu_failed (r, "exporting over NBD", &err);
          goto undo;
        }
      json_decref (ret);
    }

  if (str (b, "checkpoint"))
    add_checkpoint_record (vm, b);
  json_object_set_new (b, "phase", json_string ("ready"));
  json_object_set_new (
      b, "expires",
      json_integer (now_seconds ()
                    + json_integer_value (json_object_get (b, "ttl"))));
  if (vm_save (vm) == -1)
    {
      /* On disk it is still "starting": recovery would drop the
       * checkpoint, so it must not be announced.
       */
      json_t *list = json_object_get (vm->state, "checkpoints");

      if (str (b, "checkpoint"))
        json_array_remove (list, json_array_size (list) - 1);
      json_object_set_new (b, "phase", json_string ("starting"));
      reply_error (r, 500, "state-write-failed",
                   "cannot record the backup in the state directory");
      goto undo;
    }
  atomic_fetch_add (&pb_stats.backups_begun, 1);
  log_info (
      "VM %s: backup %s ready: %zu disks in %.2f ms (transaction "
      "%.2f ms)",
      vm->name, str (b, "id"), json_array_size (json_object_get (b, "disks")),
      (double)(monotonic_us () - t_begin) / 1000.0, (double)t_txn / 1000.0);
  return reply_ok (r, 201, backup_to_api (vm, b));

undo:
  /* Nothing of a backup that never became readable may stay, not even
   * its new checkpoint.
   */
  log_warnx ("VM %s: backup %s failed to start: %s", vm->name, str (b, "id"),
             str (json_object_get (r->body, "error"), "message"));
  backup_retire (vm, b, true);
  clear_backup (vm);
  atomic_fetch_add (&pb_stats.backups_begin_failed, 1);
  return -1;
}

static json_t *
find_backup (struct vm *vm, const json_t *args, struct reply *r)
{
  const char *id = str (args, "id");
  json_t *b = active_backup (vm);

  if (b == NULL || strcmp (str (b, "id"), id) != 0)
    {
      reply_error (r, 404, "backup-not-found", "VM %s has no backup '%s'",
                   vm->name, id);
      return NULL;
    }
  return b;
}

int
backup_get (struct vm *vm, const json_t *args, struct reply *r)
{
  json_t *b = find_backup (vm, args, r);

  if (b == NULL)
    return -1;
  return reply_ok (r, 200, backup_to_api (vm, b));
}

int
backup_patch (struct vm *vm, const json_t *args, struct reply *r)
{
  json_t *b = find_backup (vm, args, r);
  json_int_t ttl = json_integer_value (json_object_get (args, "ttl"));
  CLEANUP_JSON json_t *old_ttl = NULL;
  CLEANUP_JSON json_t *old_expires = NULL;

  if (b == NULL)
    return -1;
  if (strcmp (str (b, "phase"), "ready") != 0)
    return reply_error (r, 409, "backup-not-ready", "backup %s is %s",
                        str (b, "id"), str (b, "phase"));
  if (ttl > vm->ctx->backup_ttl_max)
    return reply_error_field (r, 422, "ttl-too-large", "ttl",
                              "ttl %lld is above the maximum of %d seconds",
                              (long long)ttl, vm->ctx->backup_ttl_max);
  old_ttl = json_incref (json_object_get (b, "ttl"));
  old_expires = json_incref (json_object_get (b, "expires"));
  json_object_set_new (b, "ttl", json_integer (ttl));
  json_object_set_new (b, "expires", json_integer (now_seconds () + ttl));
  if (vm_save (vm) == -1)
    {
      /* Nothing but the record changed: put it back. */
      json_object_set (b, "ttl", old_ttl);
      json_object_set (b, "expires", old_expires);
      return reply_error (r, 500, "state-write-failed",
                          "cannot record the new ttl in the state "
                          "directory; the backup keeps its old expiry");
    }
  return reply_ok (r, 200, backup_to_api (vm, b));
}

int
backup_end (struct vm *vm, const json_t *args, struct reply *r)
{
  json_t *b = find_backup (vm, args, r);

  if (b == NULL)
    return -1;
  if (strcmp (str (b, "phase"), "ready") == 0)
    {
      backup_retire (vm, b, false);
      atomic_fetch_add (&pb_stats.backups_ended, 1);
      log_info ("VM %s: backup %s ended", vm->name, str (b, "id"));
    }
  /* QEMU is torn down already; what is in memory is the truth and is
   * written as soon as it can be.  Until then a restart finds the old
   * record and cleans up by it, which finds nothing left.
   */
  if (clear_backup (vm) == -1)
    return reply_error (r, 500, "state-write-failed",
                        "the backup was ended, but the state directory "
                        "cannot be written; pullbackd writes it as soon as "
                        "it can");
  return reply_ok (r, 204, NULL);
}

/* How often a ready backup's scratch use is checked from the files. */
#define SCRATCH_CHECK_MS 1000

int
backup_tick (struct vm *vm)
{
  json_t *b = active_backup (vm);
  json_int_t left;
  char why[512];

  if (b == NULL || strcmp (str (b, "phase"), "starting") == 0)
    return -1;
  left = json_integer_value (json_object_get (b, "expires")) - now_seconds ();
  if (left > 0)
    {
      bool ready = strcmp (str (b, "phase"), "ready") == 0;

      if (ready && scratch_used_up (vm, b, why, sizeof why))
        {
          log_warnx ("VM %s: backup %s: %s; ending it before the guest's "
                     "writes fail",
                     vm->name, str (b, "id"), why);
          backup_fail (vm, "scratch-full");
          return backup_tick (vm);
        }
      if (ready)
        return SCRATCH_CHECK_MS;
      return left > 3600 ? 3600 * 1000 : (int)left * 1000;
    }
  log_info ("VM %s: backup %s expired", vm->name, str (b, "id"));
  /* A failed backup has nothing left in QEMU; only its record goes. */
  if (strcmp (str (b, "phase"), "ready") == 0)
    {
      backup_retire (vm, b, false);
      atomic_fetch_add (&pb_stats.backups_expired, 1);
    }
  clear_backup (vm);
  return -1;
}

void
backup_fail (struct vm *vm, const char *reason)
{
  json_t *b = active_backup (vm);

  if (b == NULL || strcmp (str (b, "phase"), "failed") == 0)
    return;
  log_warnx ("VM %s: backup %s failed: %s", vm->name, str (b, "id"), reason);
  atomic_fetch_add (&pb_stats.backups_failed, 1);
  json_object_set_new (b, "phase", json_string ("failed"));
  json_object_set_new (b, "reason", json_string (reason));
  /* QEMU may live on (-no-shutdown, as under libvirt; a full scratch):
   * tear down now.  Without a connection, what QEMU holds is remembered and
   * removed at the next connect; the scratch files go now.  Our NBD
   * socket stays: it tells the next connect that the server is ours.
   */
  backup_retire (vm, b, false);
  vm_save (vm);
}

void
backup_on_write_threshold (struct vm *vm, const json_t *ev)
{
  json_t *b = active_backup (vm);
  char why[512];

  if (b == NULL || strcmp (str (b, "phase"), "ready") != 0
      || scratch_threshold_reached (vm, b, ev, why, sizeof why) == 0)
    return;
  log_warnx ("VM %s: backup %s: %s; ending it before the guest's writes "
             "fail",
             vm->name, str (b, "id"), why);
  backup_fail (vm, "scratch-full");
}

void
backup_on_block_event (struct vm *vm, const json_t *ev)
{
  const char *name = qmp_event_name (ev);
  const json_t *data = json_object_get (ev, "data");
  bool export = strcmp (name, "BLOCK_EXPORT_DELETED") == 0;
  const char *id = str (data, export ? "id" : "device");
  json_t *b = active_backup (vm);
  const json_t *hit = NULL;
  size_t i;
  json_t *d;

  if (b == NULL || id == NULL || strcmp (str (b, "phase"), "ready") != 0)
    return;
  json_array_foreach (json_object_get (b, "disks"), i, d)
    if (strcmp (str (d, export ? "export_id" : "job"), id) == 0)
      hit = d;
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
        if (strcmp (str (o, export ? "id" : "device") ?: "", id) == 0)
          return;
    }
  log_warnx ("VM %s: backup %s: %s for %s of disk %s, not by pullbackd; "
             "ending the backup",
             vm->name, str (b, "id"), name, id, str (hit, "name"));
  /* Without its job, an export serves the live disk, not the snapshot:
   * cut every export off now, before the slower teardown.
   */
  if (!export)
    json_array_foreach (json_object_get (b, "disks"), i, d)
      vm_qmp_quietly (vm, "block-export-del",
                      json_pack ("{s:s, s:s}", "id", str (d, "export_id"),
                                 "mode", "hard"));
  backup_fail (vm, export                                  ? "export-deleted"
                   : strcmp (name, "BLOCK_JOB_ERROR") == 0 ? "job-error"
                                                           : "job-ended");
}

void
backup_undo_begin (struct vm *vm)
{
  json_t *b = active_backup (vm);
  json_t *list = json_object_get (vm->state, "checkpoints");
  size_t n = json_array_size (list);
  const char *cp;

  if (b == NULL || strcmp (str (b, "phase"), "ready") != 0)
    return;
  /* The checkpoint it made is the newest one. */
  cp = str (b, "checkpoint");
  if (cp && n > 0
      && strcmp (str (json_array_get (list, n - 1), "name"), cp) == 0)
    json_array_remove (list, n - 1);
  log_info ("VM %s: undoing backup %s", vm->name, str (b, "id"));
  backup_retire (vm, b, cp != NULL);
  clear_backup (vm);
}

void
backup_end_for_shutdown (struct vm *vm)
{
  json_t *b = active_backup (vm);

  if (b == NULL)
    return;
  if (strcmp (str (b, "phase"), "ready") == 0)
    {
      log_info ("VM %s: ending backup %s for shutdown", vm->name,
                str (b, "id"));
      backup_retire (vm, b, false);
    }
  clear_backup (vm);
}
