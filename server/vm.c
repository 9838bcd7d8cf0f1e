/* pullback: the VM object: making, saving, freeing it, its summary,
 * QMP calls, and handing requests to its owner thread (vm_call).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The owner thread's loop is vm-loop.c; the requests it runs are
 * vm-requests.c.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
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
#include "nbdnet.h"
#include "rundir.h"
#include "state.h"

/* Make VM out of service, with the reason (which names its state
 * file).  -1 if out of memory.
 */
int
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
  json_t *reg
      = json_pack ("{s:s, s:s?, s:s?, s:s?, s:s?}", "name", vm->name, "qmp",
                   vm->qmp_path, "qga", vm->qga_path, "scratch_dir",
                   vm->scratch_dir, "nbd", vm->nbd_adopt);

  if (reg && vm->nbdnet && vm->nbdnet->fields)
    nbdconf_copy_json (vm->nbdnet->fields, reg);
  return reg;
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
  vm_brief_clear (&vm->summary);
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
  nbdnet_free (vm->nbdnet);
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
  vm_publish_summary (vm);
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
      vm->save_retry_ms = monotonic_ms () + VM_SAVE_RETRY_MS;
      return -1;
    }
  if (state_save (vm->ctx->state_dir, vm->name, doc, err, sizeof err) == -1)
    {
      log_warnx ("VM %s: saving state: %s", vm->name, err);
      /* What is in memory is the truth (QEMU may have changed already):
       * it is written again soon, and at every later change.
       */
      vm->save_failed = true;
      vm->save_retry_ms = monotonic_ms () + VM_SAVE_RETRY_MS;
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
  int rc = -1;

  *failed = 0;
  if (vm->qmp == NULL || !qmp_is_connected (vm->qmp))
    qmp_error_set (err, QMP_ERR_DISCONNECTED, "QEMU of VM %s is not connected",
                   vm->name);
  else
    rc = qmp_batch_run (vm->qmp, b, vm->ctx->qmp_timeout_ms, failed, err);
  qmp_batch_free (b);
  return rc;
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

bool
vm_connected (const struct vm *vm)
{
  return vm->qmp && qmp_is_connected (vm->qmp);
}

/* connecting (no answer yet, and no failure), connected, disconnected
 * (with vm->last_error), or state-error (out of service).
 */
const char *
vm_status (const struct vm *vm)
{
  if (vm->state_error)
    return "state-error";
  if (vm_connected (vm))
    return "connected";
  return vm->last_error[0] ? "disconnected" : "connecting";
}

/* The reason for a status other than connected, or NULL. */
const char *
vm_status_error (const struct vm *vm)
{
  if (vm->state_error)
    return vm->state_error;
  if (!vm_connected (vm) && vm->last_error[0])
    return vm->last_error;
  return NULL;
}

void
vm_publish_summary (struct vm *vm)
{
  const struct backup *b = vm->backup;
  json_t *sum = vm_registration (vm);
  char *id = NULL;

  if (sum == NULL || (b && (id = strdup (b->id)) == NULL))
    {
      json_decref (sum);
      return; /* out of memory: the last summary stays */
    }
  json_object_set_new (sum, "status", json_string (vm_status (vm)));
  if (vm_status_error (vm))
    json_object_set_new (sum, "error", json_string (vm_status_error (vm)));
  json_object_set_new (sum, "source",
                       json_string (vm->from_api ? "api" : "config"));
  json_object_set_new (sum, "disks", json_integer ((json_int_t)vm->disks.len));
  json_object_set_new (sum, "checkpoints",
                       json_integer ((json_int_t)vm->cps.list.len));
  /* Its place: api/ renders the backup (api/render.c). */
  json_object_set_new (sum, "backup", json_null ());
  pthread_mutex_lock (&vm->lock);
  vm_brief_clear (&vm->summary);
  vm->summary.head = sum;
  vm->summary.backup_id = id;
  vm->summary.backup_phase = b ? b->phase : BACKUP_STARTING;
  pthread_mutex_unlock (&vm->lock);
}

int
vm_summary (struct vm *vm, struct vm_brief *out)
{
  const struct vm_brief *s = &vm->summary;

  pthread_mutex_lock (&vm->lock);
  out->head = s->head ? json_deep_copy (s->head) : vm_registration (vm);
  out->backup_id = s->backup_id ? strdup (s->backup_id) : NULL;
  out->backup_phase = s->backup_phase;
  pthread_mutex_unlock (&vm->lock);
  if (out->head == NULL || (s->backup_id && out->backup_id == NULL))
    {
      vm_brief_clear (out);
      return -1;
    }
  return 0;
}

int
vm_run_dir (const struct vm *vm, char *buf, size_t len)
{
  return (size_t)snprintf (buf, len, "%s/vms/%s", vm->ctx->run_dir, vm->name)
                 >= len
             ? -1
             : 0;
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
      reply_error (out, PB_ERR_UNAVAILABLE, "shutting-down",
                   "pullbackd is shutting down");
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
