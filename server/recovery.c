/* pullback: cleaning up after a crash: leftovers found by their names.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * What the state file records is torn down by backup_recover
 * (backup-end.c); what a lost or hand-edited state file does not record
 * is found here by the names the daemon gives QEMU objects and scratch
 * files (engine.h), and removed in the order of export.c.
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

/* Is export pb-exp-INDEX among EXPORTS? */
static bool
export_left (const json_t *exports, const char *index)
{
  size_t i;
  json_t *e;

  json_array_foreach (exports, i, e)
    {
      const char *id = json_str (e, "id");

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
      const char *id = json_str (e, "id");
      if (id && strncmp (id, PB_EXPORT_PREFIX, strlen (PB_EXPORT_PREFIX)) == 0)
        {
          log_info ("VM %s: removing leftover export %s", vm->name, id);
          export_delete (vm, id);
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
      const char *id = json_str (e, "device");
      if (id && strncmp (id, PB_JOB_PREFIX, strlen (PB_JOB_PREFIX)) == 0
          && !export_left (exports, id + strlen (PB_JOB_PREFIX)))
        {
          log_info ("VM %s: removing leftover job %s", vm->name, id);
          job_cancel (vm, id);
        }
    }
  json_decref (jobs);
  jobs = vm_qmp (vm, "query-jobs", NULL, &err);
  json_array_foreach (jobs, i, e)
    {
      const char *id = json_str (e, "id");
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
        const char *id = json_str (e, "node-name");
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
  /* By the records first, then by the names. */
  backup_recover (vm);
  remove_by_name (vm);
  remove_scratch_files (vm);
  delta_recover (vm);
  nbd_recover (vm);
}
