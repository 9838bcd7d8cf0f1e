/* pullback: the set of registered VMs.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "nbdnet.h"
#include "registry.h"
#include "reqpaths.h"
#include "rundir.h"
#include "state.h"

void
registry_init (struct registry *reg, const struct daemon_ctx *ctx)
{
  pthread_rwlock_init (&reg->lock, NULL);
  reg->vms = (vm_vector)empty_vector;
  reg->ctx = ctx;
}

static bool
final_save_failed (struct vm *vm)
{
  return vm->final_save_failed;
}

int
registry_shutdown (struct registry *reg)
{
  int rc = 0;

  pthread_rwlock_wrlock (&reg->lock);
  /* All at once: each may wait for its QEMU (QMP timeouts) while it ends
   * its backup, and the stop must not take the sum of those.
   */
  vm_vector_iter (&reg->vms, vm_request_stop);
  vm_vector_iter (&reg->vms, vm_join);
  for (size_t i = 0; i < reg->vms.len; i++)
    if (final_save_failed (reg->vms.ptr[i]))
      {
        log_warnx ("VM %s: its last state could not be written",
                   reg->vms.ptr[i]->name);
        rc = -1;
      }
  vm_vector_iter (&reg->vms, vm_unref);
  vm_vector_reset (&reg->vms);
  pthread_rwlock_unlock (&reg->lock);
  return rc;
}

/* The VM called NAME; one being removed only if ALL (its name is not
 * free until its thread has saved its state for the last time).
 */
static struct vm *
find (struct registry *reg, const char *name, bool all)
{
  for (size_t i = 0; i < reg->vms.len; i++)
    if ((all || !reg->vms.ptr[i]->removing)
        && strcmp (reg->vms.ptr[i]->name, name) == 0)
      return reg->vms.ptr[i];
  return NULL;
}

/* Stop VM, marked removing, without holding the lock (its thread may be
 * slow to end), remove its state unless it keeps it, then drop it from
 * the set.
 */
static void
remove_vm (struct registry *reg, struct vm *vm)
{
  char err[512];

  vm_stop (vm);
  if (!vm->keep_state
      && state_remove (reg->ctx->state_dir, vm->name, err, sizeof err) == -1)
    log_warnx ("VM %s: %s", vm->name, err);
  /* Its thread is gone, and its name is not free until it leaves the
   * set: nothing uses the run directory now.  One restarted with new
   * settings goes on using it (its NBD socket may be live).
   */
  if (!vm->reloading)
    rundir_remove (reg->ctx->run_dir, vm->name);
  pthread_rwlock_wrlock (&reg->lock);
  for (size_t i = 0; i < reg->vms.len; i++)
    if (reg->vms.ptr[i] == vm)
      {
        vm_vector_remove (&reg->vms, i);
        break;
      }
  pthread_rwlock_unlock (&reg->lock);
  vm_unref (vm); /* the set's reference */
}

/* Create, start and add a VM; the caller holds the write lock. */
/* NET (the VM's NBD network settings, or NULL for unix) is the VM's,
 * or freed.
 */
/* BROKEN, if not NULL, is why the VM's saved registration cannot be
 * used: the VM is then out of service with that reason.
 */
static int
add (struct registry *reg, const char *name, const char *qmp, const char *qga,
     const char *scratch, const char *nbd, struct nbdnet *net,
     const char *broken, bool from_api, bool persist, char *err, size_t errlen)
{
  struct vm *vm
      = vm_new (reg->ctx, name, qmp, qga, scratch, nbd, from_api, err, errlen);
  CLEANUP_JSON json_t *before = NULL;
  char why[512];

  if (vm == NULL)
    {
      nbdnet_free (net);
      return -1;
    }
  vm->nbdnet = net;
  if (broken && vm->state_error == NULL
      && vm_out_of_service (vm, "%s", broken) == -1)
    {
      snprintf (err, errlen, "out of memory");
      vm_stop_and_free (vm);
      return -1;
    }
  /* Saved before the thread starts (then the state is the thread's), and
   * put back as it was if it does not start: a failed registration must
   * not come back with the next daemon.
   */
  if (persist)
    {
      if (vm->state_error)
        {
          snprintf (err, errlen, "%s", vm->state_error);
          vm_stop_and_free (vm);
          return -1;
        }
      before = state_load (reg->ctx->state_dir, name, why, sizeof why);
      if (vm_save (vm) == -1)
        {
          snprintf (err, errlen, "cannot save the registration");
          vm_stop_and_free (vm);
          return -1;
        }
    }
  if (vm_vector_reserve (&reg->vms, 1) == -1 || vm_start (vm) == -1)
    {
      snprintf (err, errlen, "cannot start the VM's thread");
      if (persist
          && (before
                  ? state_save (reg->ctx->state_dir, name, before, why,
                                sizeof why)
                  : state_remove (reg->ctx->state_dir, name, why, sizeof why))
                 == -1)
        log_warnx ("VM %s: %s", name, why);
      vm_stop_and_free (vm);
      return -1;
    }
  vm_vector_append (&reg->vms, vm); /* cannot fail: reserved */
  log_info ("VM %s registered (QMP %s)", name, qmp);
  return 0;
}

struct load_ctx
{
  struct registry *reg;
  const struct config *conf;
};

/* A VM registered through the API, from its state file.  A file that
 * cannot be read or checked still registers the VM, out of service (its
 * QMP socket may be unknown): it must not silently vanish.
 */
static void
load_persisted (const char *name, void *opaque)
{
  struct load_ctx *lc = opaque;
  char err[512];
  CLEANUP_JSON json_t *doc = NULL;
  json_t *reg;
  struct nbdnet *net = NULL;
  bool usable;
  char broken[700] = "";

  if (config_find_vm (lc->conf, name) || find (lc->reg, name, true))
    return; /* a config VM's state, loaded with it */
  doc = state_load (lc->reg->ctx->state_dir, name, err, sizeof err);
  usable = doc && state_check (doc, name, err, sizeof err) == 0;
  reg = usable ? json_object_get (doc, "registration") : NULL;
  if (usable && reg == NULL)
    return; /* kept for a later registration (checkpoints=keep) */
  if (reg)
    {
      char field[64], why[512];

      net = nbdnet_from_json (lc->reg->ctx->nbd_net, reg, field, sizeof field,
                              why, sizeof why);
      /* Not the unix socket instead: its clients expect TCP and TLS,
       * and the next save would forget the settings.
       */
      if (net == NULL)
        snprintf (broken, sizeof broken,
                  "%s/vms/%s.json: the registration's NBD settings: %s",
                  lc->reg->ctx->state_dir, name, why);
    }
  if (add (lc->reg, name, json_string_value (json_object_get (reg, "qmp")),
           json_string_value (json_object_get (reg, "qga")),
           json_string_value (json_object_get (reg, "scratch_dir")),
           json_string_value (json_object_get (reg, "nbd")), net,
           broken[0] ? broken : NULL, true, false, err, sizeof err)
      == -1)
    log_warnx ("VM %s: %s", name, err);
}

int
registry_load (struct registry *reg, const struct config *conf)
{
  struct load_ctx lc = { .reg = reg, .conf = conf };
  char err[512];
  int rc = 0;

  pthread_rwlock_wrlock (&reg->lock);
  for (size_t i = 0; i < conf->vms.len; i++)
    {
      const struct vm_config *v = conf->vms.ptr[i];

      if (add (reg, v->name, v->qmp, v->qga, v->scratch, v->nbd,
               nbdnet_new (&conf->nbd, &v->net), NULL, false, false, err,
               sizeof err)
          == -1)
        {
          log_warnx ("VM %s: %s", v->name, err);
          rc = -1;
        }
    }
  if (state_foreach (reg->ctx->state_dir, load_persisted, &lc, err, sizeof err)
      == -1)
    {
      log_warnx ("%s", err);
      rc = -1;
    }
  pthread_rwlock_unlock (&reg->lock);
  return rc;
}

static bool
same (const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

/* What a reload does with VM: nothing, remove it (no longer configured),
 * or replace it (its settings changed, or its state could not be read
 * and may have been fixed).
 */
enum reload_action
{
  RELOAD_KEEP,
  RELOAD_REMOVE,
  RELOAD_REPLACE,
};

static enum reload_action
reload_action (const struct vm *vm, const struct config *conf)
{
  const struct vm_config *v;

  if (vm->removing)
    return RELOAD_KEEP;
  if (vm->from_api)
    return vm->state_error ? RELOAD_REPLACE : RELOAD_KEEP;
  v = config_find_vm (conf, vm->name);
  if (v == NULL)
    return RELOAD_REMOVE;
  if (vm->state_error || !same (v->qmp, vm->qmp_path)
      || !same (v->qga, vm->qga_path) || !same (v->nbd, vm->nbd_adopt)
      || (v->scratch && !same (v->scratch, vm->scratch_dir))
      || !nbdnet_same (vm->nbdnet, &conf->nbd, &v->net))
    return RELOAD_REPLACE;
  return RELOAD_KEEP;
}

/* Retire VM for a reload, as the API would unregister it: one rule for
 * both, so a VM with an active backup (or cleanup QEMU has not confirmed)
 * stays as it is, and the reload says why.  Its state file is kept.
 */
static bool
retire_for_reload (struct registry *reg, struct vm *vm, bool replace)
{
  CLEANUP_JSON json_t *args
      = json_pack ("{s:s, s:b}", "checkpoints", "keep", "reload", replace);
  struct reply r = { 0 };
  bool ok;

  vm_call (vm, VM_OP_RETIRE, args, &r);
  ok = r.kind == PB_OK;
  if (!ok)
    log_warnx ("reload: VM %s stays as it was until a later reload (%s)",
               vm->name,
               json_string_value (json_object_get (
                   json_object_get (r.body, "error"), "message"))
                   ?: "refused");
  reply_clear (&r);
  if (ok)
    {
      pthread_rwlock_wrlock (&reg->lock);
      vm->removing = true;
      pthread_rwlock_unlock (&reg->lock);
      remove_vm (reg, vm);
    }
  return ok;
}

void
registry_reload (struct registry *reg, const struct config *conf)
{
  vm_vector change = empty_vector;
  struct load_ctx lc = { .reg = reg, .conf = conf };
  char err[512];

  pthread_rwlock_rdlock (&reg->lock);
  for (size_t i = 0; i < reg->vms.len; i++)
    if (reload_action (reg->vms.ptr[i], conf) != RELOAD_KEEP
        && vm_vector_append (&change, reg->vms.ptr[i]) == 0)
      vm_ref (reg->vms.ptr[i]);
  pthread_rwlock_unlock (&reg->lock);

  /* Without the lock: a VM may be slow to answer or to stop. */
  for (size_t i = 0; i < change.len; i++)
    {
      struct vm *vm = change.ptr[i];
      enum reload_action what = reload_action (vm, conf);

      if (what == RELOAD_REMOVE)
        log_info ("VM %s is no longer configured", vm->name);
      else if (what == RELOAD_REPLACE && !vm->state_error)
        log_info ("VM %s: its settings changed; restarting it", vm->name);
      if (what != RELOAD_KEEP
          && retire_for_reload (reg, vm, what == RELOAD_REPLACE)
          && what == RELOAD_REPLACE && vm->from_api)
        {
          /* Read its state file again. */
          pthread_rwlock_wrlock (&reg->lock);
          load_persisted (vm->name, &lc);
          pthread_rwlock_unlock (&reg->lock);
        }
      vm_unref (vm);
    }
  vm_vector_reset (&change);

  /* New ones, and the replaced ones with their new settings. */
  pthread_rwlock_wrlock (&reg->lock);
  for (size_t i = 0; i < conf->vms.len; i++)
    {
      const struct vm_config *v = conf->vms.ptr[i];

      if (find (reg, v->name, true) == NULL
          && add (reg, v->name, v->qmp, v->qga, v->scratch, v->nbd,
                  nbdnet_new (&conf->nbd, &v->net), NULL, false, false, err,
                  sizeof err)
                 == -1)
        log_warnx ("VM %s: %s", v->name, err);
    }
  pthread_rwlock_unlock (&reg->lock);
}

/* The VM called NAME, with a reference for the caller to drop; NULL
 * with R set when there is none (404) or, with API_ONLY, when it comes
 * from the configuration file (409).
 */
static struct vm *
get_vm (struct registry *reg, const char *name, bool api_only, struct reply *r)
{
  struct vm *vm;

  pthread_rwlock_rdlock (&reg->lock);
  vm = find (reg, name, false);
  if (vm == NULL)
    reply_error (r, PB_ERR_NOT_FOUND, "vm-not-found",
                 "no VM '%s' is registered", name);
  else if (api_only && !vm->from_api)
    {
      reply_error (r, PB_ERR_CONFLICT, "vm-from-config",
                   "VM %s comes from the configuration file; remove it there",
                   name);
      vm = NULL;
    }
  else
    vm_ref (vm);
  pthread_rwlock_unlock (&reg->lock);
  return vm;
}

void
registry_call (struct registry *reg, const char *name, enum vm_op op,
               json_t *args, struct reply *r)
{
  struct vm *vm = get_vm (reg, name, false, r);

  if (vm == NULL)
    return;
  /* Without the lock: a slow VM holds up only its own requests. */
  vm_call (vm, op, args, r);
  vm_unref (vm);
}

void
registry_list (struct registry *reg, struct reply *r)
{
  struct answer *a = answer_new (ANSWER_VMS);

  if (a == NULL || registry_summaries (reg, &a->vms) == -1)
    {
      answer_free (a);
      reply_error (r, PB_ERR_INTERNAL, "out-of-memory", "out of memory");
      return;
    }
  reply_answer (r, a, false);
}

void
registry_register (struct registry *reg, const json_t *args, struct reply *r)
{
  const char *name = json_string_value (json_object_get (args, "name"));
  char err[512], field[64];
  struct nbdnet *net = NULL;

  pthread_rwlock_wrlock (&reg->lock);
  if (find (reg, name, true))
    reply_error_field (r, PB_ERR_CONFLICT, "vm-exists", "name",
                       "a VM '%s' is already registered", name);
  else if (reqpaths_check (reg->ctx, args, r) == -1)
    ; /* R is set */
  else if ((net = nbdnet_from_json (reg->ctx->nbd_net, args, field,
                                    sizeof field, err, sizeof err))
           == NULL)
    reply_error_field (r, field[0] ? 422 : 500, "invalid-nbd-settings",
                       field[0] ? field : NULL, "VM %s: %s", name, err);
  else if (add (reg, name, json_string_value (json_object_get (args, "qmp")),
                json_string_value (json_object_get (args, "qga")),
                json_string_value (json_object_get (args, "scratch_dir")),
                json_string_value (json_object_get (args, "nbd")), net, NULL,
                true, true, err, sizeof err)
           == -1)
    reply_error (r, PB_ERR_INTERNAL, "register-failed", "VM %s: %s", name,
                 err);
  else
    reply_created (r, vm_registration (find (reg, name, false)));
  pthread_rwlock_unlock (&reg->lock);
}

void
registry_unregister (struct registry *reg, const char *name,
                     const json_t *args, struct reply *r)
{
  struct vm *vm = get_vm (reg, name, true, r);

  if (vm == NULL)
    return;

  /* The owner refuses if a backup is active, else answers every later
   * request 404: nothing can begin between the check and the stop.  It
   * may be slow to answer, so no lock is held.
   */
  log_debug ("VM %s: unregistering", name);
  vm_call (vm, VM_OP_RETIRE, (json_t *)args, r);
  if (r->kind == PB_OK)
    {
      pthread_rwlock_wrlock (&reg->lock);
      vm->removing = true;
      pthread_rwlock_unlock (&reg->lock);
      remove_vm (reg, vm);
      log_info ("VM %s unregistered", name);
    }
  vm_unref (vm);
}

int
registry_summaries (struct registry *reg, vm_brief_vector *out)
{
  int ret = 0;

  pthread_rwlock_rdlock (&reg->lock);
  for (size_t i = 0; ret == 0 && i < reg->vms.len; i++)
    {
      struct vm_brief b;

      if (reg->vms.ptr[i]->removing)
        continue;
      if (vm_summary (reg->vms.ptr[i], &b) == -1)
        ret = -1;
      else if (vm_brief_vector_append (out, b) == -1)
        {
          vm_brief_clear (&b);
          ret = -1;
        }
    }
  pthread_rwlock_unlock (&reg->lock);
  if (ret == -1)
    vm_brief_vector_clear (out);
  return ret;
}
