/* pullback: a VM's owner thread: connecting to QEMU, its events, the
 * incoming migration, the periodic duties, and the requests in turn.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"

/* How often a disconnected VM tries QMP again. */
#define RECONNECT_MS 1000

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

  if (disks_discover (vm, &vm->disks, reconcile ? &bitmaps : NULL, &err) == -1)
    log_warnx ("VM %s: discovering disks: %s", vm->name, err.desc);
  else if (bitmaps)
    checkpoints_reconcile (vm, bitmaps);
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
    return reply_error (r, PB_ERR_QEMU_FAILED, "qemu-error",
                        "QEMU of VM %s did not tell whether it still waits "
                        "for an incoming migration",
                        vm->name);
  if (incoming == 1)
    return reply_error (r, PB_ERR_CONFLICT, "vm-migrating",
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

  /* QEMU's main loop has answered qmp_capabilities: it is past -runas. */
  if (qemu_user_of (qmp_fd (vm->qmp), &vm->qemu_user) == -1)
    log_warn ("VM %s: the user QEMU runs as is unknown; files made for it "
              "stay pullbackd's",
              vm->name);
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
          backup_finish (vm, BACKUP_END_FAILED, FAILURE_QEMU_SHUTDOWN);
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
  backup_finish (vm, BACKUP_END_FAILED, FAILURE_QEMU_DISCONNECTED);
  vm->nbd_ours = false;
  vm->next_connect_ms = monotonic_ms () + 100;
}

/* A backup that began while the daemon was told to stop would be ended
 * right after its answer: answer 503 instead, and end it now.
 */
static void
end_if_stopping (struct vm *vm, struct vm_request *req)
{
  bool stopping;

  if (req->op != VM_OP_BACKUP_BEGIN || !req->reply.created)
    return;
  pthread_mutex_lock (&vm->lock);
  stopping = vm->stopping;
  pthread_mutex_unlock (&vm->lock);
  if (!stopping)
    return;
  log_info ("VM %s: the daemon is stopping: undoing the backup that just "
            "began",
            vm->name);
  backup_finish (vm, BACKUP_END_UNDONE, FAILURE_NONE);
  reply_clear (&req->reply);
  reply_error (&req->reply, PB_ERR_UNAVAILABLE, "shutting-down",
               "pullbackd is shutting down; the backup was undone, its "
               "checkpoint too");
}

void *
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
      if (!vm_connected (vm) && vm->state_error == NULL)
        try_connect (vm);
      if (vm->save_failed && monotonic_ms () >= vm->save_retry_ms)
        vm_save (vm);
      vm_publish_summary (vm);

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
          vm_run_request (vm, req);
          end_if_stopping (vm, req);
          vm_publish_summary (vm);
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
      timeout = vm_connected (vm) ? 5000 : RECONNECT_MS;
      if (exp >= 0 && exp < timeout)
        timeout = exp;
      if (vm->save_failed && timeout > VM_SAVE_RETRY_MS)
        timeout = VM_SAVE_RETRY_MS;
      /* A guest we froze and could not thaw: QMP or not. */
      exp = vm->state_error ? -1 : quiesce_tick (vm, false);
      if (exp >= 0 && exp < timeout)
        timeout = exp;
      /* Waiting for an incoming migration: look again now and then. */
      if (vm_connected (vm) && vm->incoming)
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
      if (vm_connected (vm) && qmp_event_count (vm->qmp) > 0)
        timeout = 0;

      pfd[0].fd = vm->wake[0];
      pfd[0].events = POLLIN;
      if (vm_connected (vm))
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
      if (vm_connected (vm))
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
      backup_finish (vm, BACKUP_END_SHUTDOWN, FAILURE_NONE);
      if (vm_save (vm) == -1)
        vm->final_save_failed = true;
    }
  return NULL;
}
