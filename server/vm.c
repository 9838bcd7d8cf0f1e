/* pullback: a registered VM and the thread that owns it.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "seterr.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "rundir.h"
#include "state.h"

/* How often a disconnected VM tries QMP again. */
#define RECONNECT_MS 1000
/* How often a state that could not be written is tried again. */
#define SAVE_RETRY_MS 1000

static void publish_summary (struct vm *vm);

/* Make VM out of service, with the reason (which names its state
 * file).  -1 if out of memory.
 */
static int vm_out_of_service (struct vm *vm, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
vm_out_of_service (struct vm *vm, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) == -1)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    return -1;
  free (vm->state_error);
  vm->state_error = msg;
  log_warnx ("VM %s is out of service: %s", vm->name, msg);
  return 0;
}

int64_t
now_seconds (void)
{
  return (int64_t)time (NULL);
}

static char *
dup_or_null (const char *s)
{
  return s ? strdup (s) : NULL;
}

json_t *
vm_registration (const struct vm *vm)
{
  return json_pack ("{s:s, s:s?, s:s?, s:s?, s:s?}", "name", vm->name, "qmp",
                    vm->qmp_path, "qga", vm->qga_path, "scratch_dir",
                    vm->scratch_dir, "nbd", vm->nbd_adopt);
}

static void
vm_free (struct vm *vm)
{
  if (vm == NULL)
    return;
  qmp_close (vm->qmp);
  qmp_schema_free (vm->schema);
  json_decref (vm->state);
  backup_free (vm->backup);
  backup_vector_iter (&vm->cleanup, backup_free);
  backup_vector_reset (&vm->cleanup);
  checkpoint_set_clear (&vm->cps);
  vm_disk_vector_clear (&vm->disks);
  json_decref (vm->summary);
  if (vm->wake[0] >= 0)
    close (vm->wake[0]);
  if (vm->wake[1] >= 0)
    close (vm->wake[1]);
  pthread_mutex_destroy (&vm->lock);
  pthread_cond_destroy (&vm->cond);
  free (vm->name);
  free (vm->state_error);
  free (vm->qmp_path);
  free (vm->qga_path);
  free (vm->scratch_dir);
  free (vm->nbd_adopt);
  free (vm);
}

/* Move the checkpoints, the backup and the cleanup list of the
 * (checked) state document STATE into records.
 */
static int
take_records (struct vm *vm, json_t *state)
{
  const json_t *b = json_object_get (state, "backup");
  size_t i;
  json_t *e;
  char err[512];

  if (state_checkpoints_from_json (state, &vm->cps, err, sizeof err) == -1)
    return -1;
  json_object_del (state, "checkpoints");
  json_object_del (state, "deleted");
  json_object_del (state, "checkpoint_pending");
  json_object_del (state, "checkpoint_deleting");

  if (json_is_object (b)
      && (vm->backup
          = state_backup_from_json (b, vm->name, "backup", err, sizeof err))
             == NULL)
    return -1;
  json_array_foreach (json_object_get (state, "cleanup"), i, e)
    {
      struct backup *c
          = state_backup_from_json (e, vm->name, "cleanup", err, sizeof err);

      if (c == NULL || backup_vector_append (&vm->cleanup, c) == -1)
        {
          backup_free (c);
          return -1;
        }
    }
  json_object_del (state, "backup");
  json_object_del (state, "cleanup");
  return 0;
}

struct vm *
vm_new (const struct daemon_ctx *ctx, const char *name, const char *qmp,
        const char *qga, const char *scratch, const char *nbd, bool from_api,
        char *err, size_t errlen)
{
  struct vm *vm = calloc (1, sizeof *vm);
  char why[512];
  json_t *state;
  int rc = 0;

  if (vm == NULL)
    {
      seterr (err, errlen, "out of memory");
      return NULL;
    }
  vm->wake[0] = vm->wake[1] = -1;
  vm->refs = 1;
  pthread_mutex_init (&vm->lock, NULL);
  pthread_cond_init (&vm->cond, NULL);
  vm->ctx = ctx;
  vm->from_api = from_api;
  vm->name = strdup (name);
  vm->qmp_path = dup_or_null (qmp);
  vm->qga_path = dup_or_null (qga);
  vm->nbd_adopt = dup_or_null (nbd);
  if (scratch)
    vm->scratch_dir = strdup (scratch);
  else if (asprintf (&vm->scratch_dir, "%s/vms/%s", ctx->run_dir, name) == -1)
    vm->scratch_dir = NULL;
  if (vm->name == NULL || (qmp && vm->qmp_path == NULL)
      || vm->scratch_dir == NULL || (qga && vm->qga_path == NULL)
      || (nbd && vm->nbd_adopt == NULL))
    {
      seterr (err, errlen, "out of memory");
      vm_free (vm);
      return NULL;
    }
  if (pipe2 (vm->wake, O_CLOEXEC | O_NONBLOCK) == -1)
    {
      seterr (err, errlen, "pipe: %s", strerror (errno));
      vm_free (vm);
      return NULL;
    }

  /* A state that cannot be used keeps the VM registered but out of
   * service: starting afresh would forget its checkpoints (their bitmaps
   * would stay in QEMU with nobody to remove them).
   */
  state = state_load (ctx->state_dir, name, why, sizeof why);
  if (state == NULL && why[0])
    rc = vm_out_of_service (vm, "%s", why);
  else if (state && state_check (state, name, why, sizeof why) == -1)
    {
      rc = vm_out_of_service (vm, "%s/vms/%s.json: %s", ctx->state_dir, name,
                              why);
      json_decref (state);
      state = NULL;
    }
  else if (qmp == NULL)
    rc = vm_out_of_service (vm,
                            "%s/vms/%s.json: the registration names no QMP "
                            "socket",
                            ctx->state_dir, name);
  if (rc == -1)
    {
      seterr (err, errlen, "out of memory");
      json_decref (state);
      vm_free (vm);
      return NULL;
    }
  if (state == NULL)
    state = json_pack ("{s:i}", "version", STATE_VERSION);
  /* Checked above: the checkpoints and backups become records. */
  if (state == NULL || take_records (vm, state) == -1)
    {
      seterr (err, errlen, "out of memory");
      json_decref (state);
      vm_free (vm);
      return NULL;
    }
  vm->state = state;
  publish_summary (vm);
  return vm;
}

int
vm_save (struct vm *vm)
{
  char err[512];

  CLEANUP_JSON json_t *doc = NULL;
  json_t *cleanup;

  /* The file of a VM out of service is the administrator's now. */
  if (vm->state_error)
    return -1;
  json_object_set_new (vm->state, "version", json_integer (STATE_VERSION));
  if (vm->from_api)
    json_object_set_new (vm->state, "registration", vm_registration (vm));
  else
    json_object_del (vm->state, "registration");
  /* The records join the document for the file only. */
  doc = json_copy (vm->state);
  cleanup = json_array ();
  for (size_t i = 0; i < vm->cleanup.len; i++)
    json_array_append_new (cleanup,
                           state_backup_to_json (vm->cleanup.ptr[i], true));
  if (doc == NULL || cleanup == NULL
      || json_object_set_new (doc, "backup",
                              vm->backup
                                  ? state_backup_to_json (vm->backup, false)
                                  : json_null ())
             == -1
      || json_object_set_new (doc, "cleanup", cleanup) == -1
      || state_checkpoints_to_json (doc, &vm->cps) == -1)
    {
      log_warnx ("VM %s: saving state: out of memory", vm->name);
      vm->save_failed = true;
      vm->save_retry_ms = monotonic_ms () + SAVE_RETRY_MS;
      return -1;
    }
  if (state_save (vm->ctx->state_dir, vm->name, doc, err, sizeof err) == -1)
    {
      log_warnx ("VM %s: saving state: %s", vm->name, err);
      /* What is in memory is the truth (QEMU may have changed already):
       * it is written again soon, and at every later change.
       */
      vm->save_failed = true;
      vm->save_retry_ms = monotonic_ms () + SAVE_RETRY_MS;
      return -1;
    }
  if (vm->save_failed)
    log_info ("VM %s: state saved again", vm->name);
  vm->save_failed = false;
  return 0;
}

json_t *
vm_qmp (struct vm *vm, const char *cmd, json_t *args, struct qmp_error *err)
{
  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    {
      json_decref (args);
      qmp_error_set (err, QMP_ERR_DISCONNECTED,
                     "QEMU of VM %s is not connected", vm->name);
      return NULL;
    }
  return qmp_execute (vm->qmp, cmd, args, vm->ctx->qmp_timeout_ms, err);
}

int
vm_qmp_batch (struct vm *vm, struct qmp_batch *b, size_t *failed,
              struct qmp_error *err)
{
  *failed = 0;
  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    {
      qmp_error_set (err, QMP_ERR_DISCONNECTED,
                     "QEMU of VM %s is not connected", vm->name);
      return -1;
    }
  return qmp_batch_run (vm->qmp, b, vm->ctx->qmp_timeout_ms, failed, err);
}

int
vm_qmp_quietly (struct vm *vm, const char *cmd, json_t *args)
{
  struct qmp_error err;
  json_t *ret = vm_qmp (vm, cmd, args, &err);

  if (ret == NULL && !qmp_error_is_not_found (&err))
    {
      if (err.kind != QMP_ERR_DISCONNECTED)
        log_warnx ("VM %s: %s: %s", vm->name, cmd, err.desc);
      return -1;
    }
  json_decref (ret);
  return 0;
}

/* ---------------------------------------------------------------- */

/* Is QEMU waiting for an incoming migration (-incoming)?  Its images are
 * inactive until it arrives.  1: yes, 0: no (qemu-storage-daemon has no
 * run state), -1: QEMU did not say.
 */
static int
qemu_incoming (struct vm *vm)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *st = NULL;
  const char *status;

  if (vm->schema && !qmp_schema_has_command (vm->schema, "query-status"))
    return 0;
  st = vm_qmp (vm, "query-status", NULL, &err);
  status = json_string_value (json_object_get (st, "status"));
  if (status == NULL)
    {
      log_warnx ("VM %s: query-status: %s", vm->name,
                 st ? "no status" : err.desc);
      return -1;
    }
  return strcmp (status, "inmigrate") == 0;
}

/* Discover the disks and, with RECONCILE, judge the checkpoints against
 * the bitmaps QEMU shows; then save.  Without a disk list nothing is
 * judged: every checkpoint would look "disk-missing" for good (the next
 * backup begin rediscovers and reconciles).
 */
static void
rediscover (struct vm *vm, bool reconcile)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *bitmaps = NULL;

  if (disks_discover (vm, &vm->disks, &err) == -1)
    log_warnx ("VM %s: discovering disks: %s", vm->name, err.desc);
  else
    {
      bitmaps = reconcile ? bitmaps_query (vm, &err) : NULL;
      if (bitmaps)
        checkpoints_reconcile (vm, bitmaps);
    }
  vm_save (vm);
}

int
vm_require_active (struct vm *vm, struct reply *r)
{
  int incoming;

  if (!vm->incoming)
    return 0;
  incoming = qemu_incoming (vm);
  if (incoming == -1)
    return reply_error (r, 502, "qemu-error",
                        "QEMU of VM %s did not tell whether it still waits "
                        "for an incoming migration",
                        vm->name);
  if (incoming == 1)
    return reply_error (r, 409, "vm-migrating",
                        "QEMU of VM %s waits for an incoming migration; "
                        "its disks and checkpoints are not there yet",
                        vm->name);
  /* It has arrived: the checks skipped at connect. */
  vm->incoming = false;
  log_info ("VM %s: the incoming migration has arrived", vm->name);
  rediscover (vm, true);
  return 0;
}

static void
on_connected (struct vm *vm)
{
  struct qmp_error err;

  qmp_schema_free (vm->schema);
  vm->schema = qmp_schema_query (vm->qmp, vm->ctx->qmp_timeout_ms, &err);
  if (vm->schema == NULL)
    log_warnx ("VM %s: query-qmp-schema: %s", vm->name, err.desc);

  /* What a crash left goes first: it must not be taken for disks. */
  recovery_cleanup (vm);
  /* Not knowing counts as waiting: judged again soon. */
  vm->incoming = qemu_incoming (vm) != 0;
  if (vm->incoming)
    log_info ("VM %s: QEMU waits for an incoming migration; its checkpoints "
              "are checked once it has arrived",
              vm->name);
  /* Before the migration arrives QEMU shows no persistent bitmaps:
   * every checkpoint would look missing.
   */
  rediscover (vm, !vm->incoming);
}

static void
try_connect (struct vm *vm)
{
  struct qmp_error err;

  if (monotonic_ms () < vm->next_connect_ms)
    return;
  vm->next_connect_ms = monotonic_ms () + RECONNECT_MS;

  if (vm->qmp == NULL)
    vm->qmp = qmp_connect (vm->qmp_path, vm->ctx->qmp_timeout_ms, &err);
  else if (qmp_reconnect (vm->qmp, vm->ctx->qmp_timeout_ms, &err) == -1)
    {
      qmp_close (vm->qmp);
      vm->qmp = NULL;
    }
  if (vm->qmp == NULL)
    {
      if (strcmp (vm->last_error, err.desc) != 0)
        log_warnx ("VM %s: %s", vm->name, err.desc);
      snprintf (vm->last_error, sizeof vm->last_error, "%s", err.desc);
      return;
    }
  {
    int major, minor, micro;

    qmp_version (vm->qmp, &major, &minor, &micro);
    log_info ("VM %s: connected to QEMU %d.%d.%d at %s", vm->name, major,
              minor, micro, vm->qmp_path);
  }
  vm->last_error[0] = '\0';
  vm->up = true;
  on_connected (vm);
}

/* How often a QEMU waiting for an incoming migration is asked again. */
#define INCOMING_CHECK_MS 2000

static bool
connected (const struct vm *vm)
{
  return vm->qmp && qmp_is_connected (vm->qmp);
}

static void
handle_events (struct vm *vm)
{
  json_t *ev;

  while ((ev = qmp_event_pop (vm->qmp)) != NULL)
    {
      const char *name = qmp_event_name (ev);

      if (name && strcmp (name, "SHUTDOWN") == 0)
        {
          log_info ("VM %s: QEMU is shutting down", vm->name);
          backup_fail (vm, FAILURE_QEMU_SHUTDOWN);
        }
      else if (name && strcmp (name, "BLOCK_WRITE_THRESHOLD") == 0)
        backup_on_write_threshold (vm, ev);
      else if (name
               && (strcmp (name, "BLOCK_JOB_COMPLETED") == 0
                   || strcmp (name, "BLOCK_JOB_CANCELLED") == 0
                   || strcmp (name, "BLOCK_JOB_ERROR") == 0
                   || strcmp (name, "BLOCK_EXPORT_DELETED") == 0))
        backup_on_block_event (vm, ev);
      json_decref (ev);
    }
}

static void
lost_connection (struct vm *vm, const char *why)
{
  vm->up = false;
  log_warnx ("VM %s: lost QMP connection: %s", vm->name, why);
  snprintf (vm->last_error, sizeof vm->last_error, "%s", why);
  backup_fail (vm, FAILURE_QEMU_DISCONNECTED);
  vm->nbd_ours = false;
  vm->next_connect_ms = monotonic_ms () + 100;
}

/* connecting (no answer yet, and no failure), connected, disconnected
 * (with vm->last_error), or state-error (out of service).
 */
static const char *
vm_status (const struct vm *vm)
{
  if (vm->state_error)
    return "state-error";
  if (connected (vm))
    return "connected";
  return vm->last_error[0] ? "disconnected" : "connecting";
}

/* The reason for a status other than connected, or NULL. */
static const char *
vm_status_error (const struct vm *vm)
{
  if (vm->state_error)
    return vm->state_error;
  if (!connected (vm) && vm->last_error[0])
    return vm->last_error;
  return NULL;
}

static void
publish_summary (struct vm *vm)
{
  const struct backup *b = vm->backup;
  json_t *sum = vm_registration (vm);

  if (sum == NULL)
    return; /* out of memory: the last summary stays */
  json_object_set_new (sum, "status", json_string (vm_status (vm)));
  if (vm_status_error (vm))
    json_object_set_new (sum, "error", json_string (vm_status_error (vm)));
  json_object_set_new (sum, "source",
                       json_string (vm->from_api ? "api" : "config"));
  json_object_set_new (sum, "disks", json_integer ((json_int_t)vm->disks.len));
  json_object_set_new (sum, "checkpoints",
                       json_integer ((json_int_t)vm->cps.list.len));
  json_object_set_new (sum, "backup",
                       b ? json_pack ("{s:s, s:s}", "id", b->id, "phase",
                                      backup_phase_name (b->phase))
                         : json_null ());
  pthread_mutex_lock (&vm->lock);
  json_decref (vm->summary);
  vm->summary = sum;
  pthread_mutex_unlock (&vm->lock);
}

json_t *
vm_summary (struct vm *vm)
{
  json_t *copy;

  pthread_mutex_lock (&vm->lock);
  copy = vm->summary ? json_deep_copy (vm->summary) : vm_registration (vm);
  pthread_mutex_unlock (&vm->lock);
  return copy;
}

/* Unregistering (or restarting with new settings): here, on the owner,
 * so that no backup can begin between the checks and the end.
 *
 * The rule for checkpoints: their bitmaps live in QEMU and their records
 * here; one must never outlive the other unnoticed.  So a VM with
 * checkpoints is unregistered only with checkpoints=delete (the bitmaps
 * are removed from QEMU first, then the records) or checkpoints=keep
 * (the state file stays, without its registration, and a later
 * registration under the same name finds them again).
 */
static int
vm_retire (struct vm *vm, const json_t *args, struct reply *r)
{
  const struct backup *b = vm->backup;
  const char *cps = json_string_value (json_object_get (args, "checkpoints"));
  bool reload = json_is_true (json_object_get (args, "reload"));
  size_t n = vm->cps.list.len;
  char aside[PATH_MAX], err[512];

  /* Its state file goes (unless kept), and with it the memory of a
   * freeze.
   */
  if (vm->state_error == NULL && !reload
      && quiesce_require_thawed (vm, r) == -1)
    return -1;
  if (vm->state_error)
    {
      /* Its file goes aside, kept: a new registration starts afresh. */
      if (!reload
          && state_set_aside (vm->ctx->state_dir, vm->name, aside,
                              sizeof aside, err, sizeof err)
                 == -1)
        return reply_error (r, 500, "state-write-failed",
                            "VM %s: setting its state file aside: %s",
                            vm->name, err);
      if (!reload)
        log_warnx ("VM %s: unregistered while out of service; its state "
                   "file is kept as %s",
                   vm->name, aside);
      vm->keep_state = true;
      goto retired;
    }
  if (b && b->phase != BACKUP_FAILED)
    return reply_error (r, 409, "backup-active",
                        "VM %s has an active backup; end it first", vm->name);
  if (!reload && n > 0 && cps == NULL)
    return reply_error_field (
        r, 409, "checkpoints-exist", "checkpoints",
        "VM %s has %zu checkpoints: unregister with ?checkpoints=delete to "
        "remove their bitmaps too, or ?checkpoints=keep to keep them for a "
        "later registration",
        vm->name, n);
  if (!reload && n > 0 && strcmp (cps, "delete") == 0
      && checkpoint_delete_all (vm, r) == -1)
    return -1;

  /* What QEMU still holds is removed only while we know it; a QEMU that
   * is gone took it along.
   */
  if (connected (vm))
    {
      vm->cleanup_next_ms = 0;
      if (cleanup_require_none (vm, r) == -1)
        return -1;
    }
  else if (vm->cleanup.len > 0)
    log_warnx ("VM %s: unregistered while QEMU is unreachable; anything an "
               "earlier backup left in it stays",
               vm->name);
  vm->keep_state = reload || (cps && strcmp (cps, "keep") == 0);
  if (vm->keep_state && vm->from_api && !reload)
    {
      /* Kept without its registration: not loaded at start. */
      vm->from_api = false;
      if (vm_save (vm) == -1)
        {
          vm->from_api = true;
          return reply_error (r, 500, "state-write-failed",
                              "VM %s: cannot write its state file", vm->name);
        }
    }
retired:
  vm->retired = true;
  vm->reloading = reload;
  return reply_ok (r, 204, NULL);
}

static void
run_request (struct vm *vm, struct vm_request *req)
{
  struct reply *r = &req->reply;
  const json_t *a = req->args;

  if (vm->retired && vm->reloading)
    {
      reply_error (r, 503, "vm-reloading",
                   "VM %s is being restarted with its new settings; retry",
                   vm->name);
      return;
    }
  if (vm->retired)
    {
      reply_error (r, 404, "vm-not-found", "no VM '%s' is registered",
                   vm->name);
      return;
    }
  if (vm->state_error && req->op != VM_OP_GET && req->op != VM_OP_RETIRE)
    {
      reply_error (r, 503, "vm-state-unreadable",
                   "VM %s is out of service: %s", vm->name, vm->state_error);
      return;
    }
  switch (req->op)
    {
    case VM_OP_GET:
      {
        const struct backup *b = vm->backup;
        json_t *body = vm_registration (vm);
        int major = 0, minor = 0, micro = 0;

        if (vm->qmp)
          qmp_version (vm->qmp, &major, &minor, &micro);
        json_object_set_new (body, "status", json_string (vm_status (vm)));
        if (vm_status_error (vm))
          json_object_set_new (body, "error",
                               json_string (vm_status_error (vm)));
        if (vm->save_failed)
          json_object_set_new (body, "state_saved", json_false ());
        if (major)
          json_object_set_new (body, "qemu_version",
                               json_sprintf ("%d.%d.%d", major, minor, micro));
        json_object_set_new (body, "disks", disks_to_api (&vm->disks));
        json_object_set_new (body, "checkpoints",
                             json_integer ((json_int_t)vm->cps.list.len));
        json_object_set_new (body, "backup",
                             b ? json_string (b->id) : json_null ());
        json_object_set_new (body, "source",
                             json_string (vm->from_api ? "api" : "config"));
        /* Backups whose teardown QEMU has not confirmed yet. */
        json_object_set_new (body, "cleanup_pending",
                             json_integer ((json_int_t)vm->cleanup.len));
        quiesce_describe (vm, body);
        reply_ok (r, 200, body);
        break;
      }
    case VM_OP_CHECKPOINT_LIST:
      checkpoint_list (vm, a, r);
      break;
    case VM_OP_CHECKPOINT_CREATE:
      checkpoint_create (vm, a, r);
      break;
    case VM_OP_CHECKPOINT_GET:
      checkpoint_get (vm, a, r);
      break;
    case VM_OP_CHECKPOINT_DELETE:
      checkpoint_delete (vm, a, r);
      break;
    case VM_OP_BACKUP_BEGIN:
      backup_begin (vm, a, r);
      break;
    case VM_OP_BACKUP_GET:
      backup_get (vm, a, r);
      break;
    case VM_OP_BACKUP_PATCH:
      backup_patch (vm, a, r);
      break;
    case VM_OP_BACKUP_END:
      backup_end (vm, a, r);
      break;
    case VM_OP_RETIRE:
      vm_retire (vm, a, r);
      break;
    }
  if (r->status == 0)
    reply_error (r, 500, "internal-error", "request was not answered");
}

/* A backup that began while the daemon was told to stop would be ended
 * right after its answer: answer 503 instead, and end it now.
 */
static void
end_if_stopping (struct vm *vm, struct vm_request *req)
{
  bool stopping;

  if (req->op != VM_OP_BACKUP_BEGIN || req->reply.status != 201)
    return;
  pthread_mutex_lock (&vm->lock);
  stopping = vm->stopping;
  pthread_mutex_unlock (&vm->lock);
  if (!stopping)
    return;
  log_info ("VM %s: the daemon is stopping: undoing the backup that just "
            "began",
            vm->name);
  backup_undo_begin (vm);
  reply_clear (&req->reply);
  reply_error (&req->reply, 503, "shutting-down",
               "pullbackd is shutting down; the backup was undone, its "
               "checkpoint too");
}

static void *
vm_thread (void *arg)
{
  struct vm *vm = arg;

  for (;;)
    {
      struct pollfd pfd[2];
      int nfds = 1, timeout, exp, r;
      struct vm_request *req;
      char drain[64];

      /* Out of service: nothing is known of what it has in QEMU. */
      if (!connected (vm) && vm->state_error == NULL)
        try_connect (vm);
      if (vm->save_failed && monotonic_ms () >= vm->save_retry_ms)
        vm_save (vm);
      publish_summary (vm);

      /* Requests first. */
      for (;;)
        {
          pthread_mutex_lock (&vm->lock);
          req = vm->head;
          if (req)
            {
              vm->head = req->next;
              if (vm->head == NULL)
                vm->tail = NULL;
            }
          pthread_mutex_unlock (&vm->lock);
          if (req == NULL)
            break;
          run_request (vm, req);
          end_if_stopping (vm, req);
          publish_summary (vm);
          pthread_mutex_lock (&vm->lock);
          req->done = true;
          pthread_cond_broadcast (&vm->cond);
          pthread_mutex_unlock (&vm->lock);
        }

      pthread_mutex_lock (&vm->lock);
      if (vm->stopping && vm->head == NULL)
        {
          pthread_mutex_unlock (&vm->lock);
          break;
        }
      pthread_mutex_unlock (&vm->lock);

      exp = vm->state_error ? -1 : backup_tick (vm);
      timeout = connected (vm) ? 5000 : RECONNECT_MS;
      if (exp >= 0 && exp < timeout)
        timeout = exp;
      if (vm->save_failed && timeout > SAVE_RETRY_MS)
        timeout = SAVE_RETRY_MS;
      /* A guest we froze and could not thaw: QMP or not. */
      exp = vm->state_error ? -1 : quiesce_tick (vm, false);
      if (exp >= 0 && exp < timeout)
        timeout = exp;
      /* Waiting for an incoming migration: look again now and then. */
      if (connected (vm) && vm->incoming)
        {
          struct reply scratch = { 0 };

          vm_require_active (vm, &scratch);
          reply_clear (&scratch);
          if (vm->incoming && timeout > INCOMING_CHECK_MS)
            timeout = INCOMING_CHECK_MS;
        }
      /* Events read while a request waited are queued already: poll
       * would not see them.
       */
      if (connected (vm) && qmp_event_count (vm->qmp) > 0)
        timeout = 0;

      pfd[0].fd = vm->wake[0];
      pfd[0].events = POLLIN;
      if (connected (vm))
        {
          pfd[1].fd = qmp_fd (vm->qmp);
          pfd[1].events = POLLIN;
          nfds = 2;
        }
      r = poll (pfd, nfds, timeout);
      if (r == -1 && errno != EINTR)
        log_warn ("VM %s: poll", vm->name);
      while (read (vm->wake[0], drain, sizeof drain) > 0)
        ;
      if (nfds == 2 && r > 0 && pfd[1].revents)
        {
          struct qmp_error err;

          if (qmp_read_events (vm->qmp, 0, &err) == -1)
            {
              handle_events (vm);
              lost_connection (vm, err.desc);
              continue;
            }
        }
      if (connected (vm))
        handle_events (vm);
      else if (vm->up)
        lost_connection (vm, "QMP connection closed");
    }

  if (vm->state_error == NULL)
    {
      /* Never exit with a guest of ours frozen, if it can be helped;
       * the marker stays for the next start if not.
       */
      if (quiesce_tick (vm, true) >= 0)
        log_warnx ("VM %s: exiting with the guest filesystems frozen; the "
                   "next start thaws them",
                   vm->name);
      backup_end_for_shutdown (vm);
      if (vm_save (vm) == -1)
        vm->final_save_failed = true;
    }
  return NULL;
}

int
vm_start (struct vm *vm)
{
  int r;

  /* The VM's run directory holds its NBD socket wherever its scratch
   * files go; by default they go there too.  Mode 0750 like the run
   * directory: the socket (0660) is for the group.  A scratch directory
   * named through the API must exist already (server/reqpaths.c):
   * pullbackd, as root, creates nothing a request names; one from the
   * configuration is the administrator's and is made if missing.
   */
  if (rundir_make (vm->ctx->run_dir, vm->name) == -1)
    log_warn ("VM %s: run directory %s/vms/%s", vm->name, vm->ctx->run_dir,
              vm->name);
  if (!vm->from_api && mkdir (vm->scratch_dir, 0700) == -1 && errno != EEXIST)
    log_warn ("VM %s: mkdir %s", vm->name, vm->scratch_dir);
  r = pthread_create (&vm->thread, NULL, vm_thread, vm);
  if (r != 0)
    {
      errno = r;
      log_warn ("VM %s: pthread_create", vm->name);
      return -1;
    }
  vm->started = true;
  return 0;
}

static void
wake (struct vm *vm)
{
  const char c = 0;

  if (write (vm->wake[1], &c, 1) == -1 && errno != EAGAIN)
    log_warn ("VM %s: wake", vm->name);
}

void
vm_request_stop (struct vm *vm)
{
  if (!vm->started)
    return;
  pthread_mutex_lock (&vm->lock);
  vm->stopping = true;
  pthread_mutex_unlock (&vm->lock);
  wake (vm);
}

void
vm_join (struct vm *vm)
{
  if (!vm->started)
    return;
  pthread_join (vm->thread, NULL);
  vm->started = false;
}

void
vm_stop (struct vm *vm)
{
  vm_request_stop (vm);
  vm_join (vm);
}

void
vm_stop_and_free (struct vm *vm)
{
  if (vm == NULL)
    return;
  vm_stop (vm);
  vm_free (vm);
}

void
vm_ref (struct vm *vm)
{
  pthread_mutex_lock (&vm->lock);
  vm->refs++;
  pthread_mutex_unlock (&vm->lock);
}

void
vm_unref (struct vm *vm)
{
  bool last;

  pthread_mutex_lock (&vm->lock);
  last = --vm->refs == 0;
  pthread_mutex_unlock (&vm->lock);
  if (last)
    vm_stop_and_free (vm);
}

void
vm_call (struct vm *vm, enum vm_op op, json_t *args, struct reply *out)
{
  struct vm_request req = { .op = op, .args = args };

  pthread_mutex_lock (&vm->lock);
  if (vm->stopping)
    {
      pthread_mutex_unlock (&vm->lock);
      reply_error (out, 503, "shutting-down", "pullbackd is shutting down");
      return;
    }
  if (vm->tail)
    vm->tail->next = &req;
  else
    vm->head = &req;
  vm->tail = &req;
  pthread_mutex_unlock (&vm->lock);
  wake (vm);

  pthread_mutex_lock (&vm->lock);
  while (!req.done)
    pthread_cond_wait (&vm->cond, &vm->lock);
  pthread_mutex_unlock (&vm->lock);
  *out = req.reply;
}
