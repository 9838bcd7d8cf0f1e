/* pullback: the requests a VM's owner thread runs (enum vm_op).
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "state.h"

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
        return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
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
    return reply_error (r, PB_ERR_CONFLICT, "backup-active",
                        "VM %s has an active backup; end it first", vm->name);
  if (!reload && n > 0 && cps == NULL)
    return reply_error_field (
        r, PB_ERR_CONFLICT, "checkpoints-exist", "checkpoints",
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
  if (vm_connected (vm))
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
          return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                              "VM %s: cannot write its state file", vm->name);
        }
    }
retired:
  vm->retired = true;
  vm->reloading = reload;
  return reply_ok (r, NULL);
}

void
vm_run_request (struct vm *vm, struct vm_request *req)
{
  struct reply *r = &req->reply;
  const json_t *a = req->args;

  if (vm->retired && vm->reloading)
    {
      reply_error (r, PB_ERR_UNAVAILABLE, "vm-reloading",
                   "VM %s is being restarted with its new settings; retry",
                   vm->name);
      return;
    }
  if (vm->retired)
    {
      reply_error (r, PB_ERR_NOT_FOUND, "vm-not-found",
                   "no VM '%s' is registered", vm->name);
      return;
    }
  if (vm->state_error && req->op != VM_OP_GET && req->op != VM_OP_RETIRE)
    {
      reply_error (r, PB_ERR_UNAVAILABLE, "vm-state-unreadable",
                   "VM %s is out of service: %s", vm->name, vm->state_error);
      return;
    }
  switch (req->op)
    {
    case VM_OP_GET:
      {
        const struct backup *b = vm->backup;
        struct answer *answer = answer_new (ANSWER_VM);
        json_t *body = vm_registration (vm);
        int major = 0, minor = 0, micro = 0;

        if (answer == NULL || body == NULL
            || vm_disk_vector_copy (&vm->disks, &answer->disks) == -1
            || (b && (answer->backup_id = strdup (b->id)) == NULL))
          {
            answer_free (answer);
            json_decref (body);
            reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
            break;
          }

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
        /* The places of the records, which api/ renders (api/render.c). */
        json_object_set_new (body, "disks", json_null ());
        json_object_set_new (body, "checkpoints",
                             json_integer ((json_int_t)vm->cps.list.len));
        json_object_set_new (body, "backup", json_null ());
        json_object_set_new (body, "source",
                             json_string (vm->from_api ? "api" : "config"));
        /* Backups whose teardown QEMU has not confirmed yet. */
        json_object_set_new (body, "cleanup_pending",
                             json_integer ((json_int_t)vm->cleanup.len));
        quiesce_describe (vm, body);
        answer->vm = body;
        reply_answer (r, answer, false);
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
  if (!r->answered)
    reply_error (r, PB_ERR_INTERNAL, "internal-error",
                 "request was not answered");
}
