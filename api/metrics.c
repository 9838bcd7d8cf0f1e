/* pullback: GET /metrics, Prometheus text from the VMs' summaries and
 * the daemon's counters.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "registry.h"
#include "stats.h"

/* A string member of a summary, "" when it has none. */
static const char *
sum_str (const json_t *v, const char *key)
{
  return json_string_value (json_object_get (v, key)) ?: "";
}

char *
api_metrics (struct registry *reg)
{
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&text, &len);
  vm_brief_vector sums = empty_vector;
  size_t i;
  const json_t *v;

  if (fp == NULL || registry_summaries (reg, &sums) == -1)
    {
      if (fp)
        fclose (fp);
      free (text);
      return NULL;
    }

  fprintf (fp,
           "# HELP pullback_vms Registered VMs.\n"
           "# TYPE pullback_vms gauge\n"
           "pullback_vms %zu\n",
           sums.len);
  fprintf (fp, "# HELP pullback_vm_connected 1 if the VM's QMP is connected.\n"
               "# TYPE pullback_vm_connected gauge\n");
  for (i = 0; i < sums.len && (v = sums.ptr[i].head); i++)
    fprintf (fp, "pullback_vm_connected{vm=\"%s\"} %d\n", sum_str (v, "name"),
             strcmp (sum_str (v, "status"), "connected") == 0);
  fprintf (fp, "# HELP pullback_vm_out_of_service 1 if the VM's state file "
               "cannot be used.\n"
               "# TYPE pullback_vm_out_of_service gauge\n");
  for (i = 0; i < sums.len && (v = sums.ptr[i].head); i++)
    fprintf (fp, "pullback_vm_out_of_service{vm=\"%s\"} %d\n",
             sum_str (v, "name"),
             strcmp (sum_str (v, "status"), "state-error") == 0);
  fprintf (fp, "# HELP pullback_vm_checkpoints Checkpoints of the VM.\n"
               "# TYPE pullback_vm_checkpoints gauge\n");
  for (i = 0; i < sums.len && (v = sums.ptr[i].head); i++)
    fprintf (
        fp, "pullback_vm_checkpoints{vm=\"%s\"} %lld\n", sum_str (v, "name"),
        (long long)json_integer_value (json_object_get (v, "checkpoints")));
  fprintf (fp,
           "# HELP pullback_vm_backup_active 1 if the VM has a ready backup.\n"
           "# TYPE pullback_vm_backup_active gauge\n");
  for (i = 0; i < sums.len && (v = sums.ptr[i].head); i++)
    fprintf (
        fp, "pullback_vm_backup_active{vm=\"%s\"} %d\n", sum_str (v, "name"),
        sums.ptr[i].backup_id && sums.ptr[i].backup_phase == BACKUP_READY);
#define COUNTER(name, field, help)                                            \
  fprintf (fp,                                                                \
           "# HELP " name " " help "\n# TYPE " name " counter\n" name         \
           " %lu\n",                                                          \
           atomic_load (&pb_stats.field))
  COUNTER ("pullback_backups_begun_total", backups_begun,
           "Backups that became ready.");
  COUNTER ("pullback_backups_begin_failed_total", backups_begin_failed,
           "Backups undone before they became ready.");
  COUNTER ("pullback_backups_ended_total", backups_ended,
           "Backups ended by request or shutdown.");
  COUNTER ("pullback_backups_expired_total", backups_expired,
           "Backups ended by their TTL.");
  COUNTER ("pullback_backups_failed_total", backups_failed,
           "Backups failed because QEMU went away.");
#undef COUNTER
  fclose (fp);
  vm_brief_vector_clear (&sums);
  return text;
}
