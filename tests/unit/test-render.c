/* pullback: api/render.c writes the engine's typed answers as the JSON
 * the API has always answered, byte for byte, and never the credentials
 * of pullbackd's own reads.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "answer.h"
#include "render.h"
#include "status.h"

/* A's answer (CREATED: to a POST) as api/ renders it, its HTTP status
 * checked when STATUS is not 0.  The caller frees the text.
 */
static char *
rendered (struct answer *a, bool created, int status)
{
  struct reply r = { 0 };
  char *text;

  reply_answer (&r, a, created);
  api_render (&r);
  if (status)
    cr_expect_eq (http_status (&r), status);
  cr_assert_null (r.answer, "the answer is rendered and freed");
  cr_assert_not_null (r.body);
  text = json_dumps (r.body, JSON_COMPACT);
  reply_clear (&r);
  return text;
}

static void
disk (struct backup_disk *d, const char *name, enum disk_mode mode,
      enum disk_reason reason, int index)
{
  d->name = strdup (name);
  d->node = strdup ("fmt");
  d->format = strdup ("qcow2");
  d->size = 1048576;
  d->mode = mode;
  d->reason = reason;
  d->index = index;
}

static struct answer *
backup_answer (enum backup_phase phase)
{
  struct answer *a = answer_new (ANSWER_BACKUP);
  struct backup *b = backup_new (2);

  cr_assert_not_null (a);
  cr_assert_not_null (b);
  b->id = strdup ("bk-1");
  b->phase = phase;
  b->checkpoint = strdup ("cp2");
  b->since = strdup ("cp1");
  b->created = 100;
  b->expires = 200;
  b->ttl = 100;
  disk (&b->disks[0], "sda", DISK_INCREMENTAL, REASON_NONE, 0);
  disk (&b->disks[1], "sdb", DISK_FULL, REASON_DISK_ADDED, 1);
  a->backup.b = b;
  a->backup.vm = strdup ("vm1");
  a->backup.scratch_bytes = 4096;
  a->backup.disks = calloc (2, sizeof *a->backup.disks);
  return a;
}

Test (render, backup_ready_psk_begin)
{
  struct answer *a = backup_answer (BACKUP_READY);
  char *text;

  a->backup.b->freeze_ms = 12;
  a->backup.disks[0].uri = strdup ("nbds://u@h:10809/sda");
  a->backup.disks[0].delta_uri = strdup ("nbd+unix:///?socket=/run/d.sock");
  a->backup.disks[1].uri = strdup ("nbds://u@h:10809/sdb");
  a->backup.tls = "psk";
  a->backup.tls_username = strdup ("u");
  a->backup.psk_username = strdup ("u");
  a->backup.psk_key = strdup ("00ff");
  a->backup.client_psk_file = strdup ("/run/keys.psk");
  text = rendered (a, true, 201);
  cr_expect_str_eq (
      text, "{\"id\":\"bk-1\",\"vm\":\"vm1\",\"phase\":\"ready\","
            "\"checkpoint\":\"cp2\",\"since\":\"cp1\",\"created\":100,"
            "\"expires\":200,\"ttl\":100,\"freeze_ms\":12,"
            "\"scratch_bytes\":4096,\"reason\":null,"
            "\"disks\":[{\"name\":\"sda\",\"size\":1048576,"
            "\"mode\":\"incremental\",\"reason\":null,"
            "\"nbd\":{\"uri\":\"nbds://u@h:10809/sda\","
            "\"export\":\"sda\","
            "\"dirty_bitmap_context\":\"qemu:dirty-bitmap:backup-sda\","
            "\"tls\":\"psk\",\"tls_username\":\"u\"},"
            "\"delta_uri\":\"nbd+unix:///?socket=/run/d.sock\","
            "\"delta\":{\"uri\":\"nbd+unix:///?socket=/run/d.sock\"}},"
            "{\"name\":\"sdb\",\"size\":1048576,\"mode\":\"full\","
            "\"reason\":\"disk-added\","
            "\"nbd\":{\"uri\":\"nbds://u@h:10809/sdb\","
            "\"export\":\"sdb\",\"dirty_bitmap_context\":null,"
            "\"tls\":\"psk\",\"tls_username\":\"u\"},"
            "\"delta_uri\":null,\"delta\":null}],\"nbd_tls_psk\":{"
            "\"username\":\"u\","
            "\"key\":\"00ff\"}}");
  cr_expect_null (strstr (text, "keys.psk"), "no nbd_client, ever");
  free (text);
}

Test (render, backup_failed_has_no_nbd)
{
  struct answer *a = backup_answer (BACKUP_FAILED);
  char *text;

  a->backup.b->failure = FAILURE_SCRATCH_FULL;
  a->backup.tls = NULL;
  text = rendered (a, false, 200);
  cr_expect_str_eq (
      text,
      "{\"id\":\"bk-1\",\"vm\":\"vm1\",\"phase\":\"failed\","
      "\"checkpoint\":\"cp2\",\"since\":\"cp1\",\"created\":100,"
      "\"expires\":200,\"ttl\":100,\"freeze_ms\":null,"
      "\"scratch_bytes\":4096,\"reason\":\"scratch-full\","
      "\"disks\":[{\"name\":\"sda\",\"size\":1048576,"
      "\"mode\":\"incremental\",\"reason\":null,\"nbd\":null,"
      "\"delta_uri\":null,\"delta\":null},{\"name\":\"sdb\",\"size\":1048576,"
      "\"mode\":\"full\",\"reason\":\"disk-added\",\"nbd\":null,"
      "\"delta_uri\":null,\"delta\":null}]}");
  free (text);
}

static struct checkpoint *
checkpoint (const char *name, const char *parent, enum disk_reason broken)
{
  struct checkpoint *cp = checkpoint_new (1);

  cr_assert_not_null (cp);
  cp->name = strdup (name);
  cp->parent = parent ? strdup (parent) : NULL;
  cp->created = 7;
  checkpoint_disk_init (&cp->disks[0], "sda", "fmt", name);
  cp->disks[0].broken = broken;
  if (broken == REASON_NONE)
    cp->disks[0].granularity = 65536;
  return cp;
}

Test (render, checkpoint_and_page)
{
  struct answer *a = answer_new (ANSWER_CHECKPOINT);
  char *text;

  a->checkpoint = checkpoint ("cp2", "cp1", REASON_BITMAP_INCONSISTENT);
  text = rendered (a, true, 201);
  cr_expect_str_eq (text, "{\"name\":\"cp2\",\"created\":7,\"parent\":\"cp1\","
                          "\"disks\":[{\"name\":\"sda\",\"bitmap\":\"cp2\","
                          "\"granularity\":null,\"state\":\"broken\","
                          "\"reason\":\"bitmap-inconsistent\"}]}");
  free (text);

  a = answer_new (ANSWER_CHECKPOINTS);
  checkpoint_vector_append (&a->checkpoints,
                            checkpoint ("cp1", NULL, REASON_NONE));
  a->next = strdup ("cp1");
  text = rendered (a, false, 0);
  cr_expect_str_eq (
      text, "{\"checkpoints\":[{\"name\":\"cp1\",\"created\":7,"
            "\"parent\":null,\"disks\":[{\"name\":\"sda\","
            "\"bitmap\":\"cp1\",\"granularity\":65536,\"state\":\"ok\","
            "\"reason\":null}]}],\"next\":\"cp1\"}");
  free (text);
}

Test (render, vm_keeps_the_places_of_its_records)
{
  struct answer *a = answer_new (ANSWER_VM);
  struct vm_disk d = { .name = strdup ("sda"),
                       .node = strdup ("fmt"),
                       .format = strdup ("raw"),
                       .size = 512,
                       .ro = true };
  char *text;

  a->vm = json_pack ("{s:s, s:n, s:i, s:n, s:b}", "name", "vm1", "disks",
                     "checkpoints", 3, "backup", "guest_frozen", 0);
  vm_disk_vector_append (&a->disks, d);
  a->backup_id = strdup ("bk-1");
  text = rendered (a, false, 0);
  cr_expect_str_eq (text,
                    "{\"name\":\"vm1\",\"disks\":[{\"name\":\"sda\","
                    "\"node\":\"fmt\",\"format\":\"raw\",\"size\":512,"
                    "\"ro\":true}],\"checkpoints\":3,\"backup\":\"bk-1\","
                    "\"guest_frozen\":false}");
  free (text);
}

Test (render, vm_list_with_its_backups)
{
  struct answer *a = answer_new (ANSWER_VMS);
  struct vm_brief b1 = { 0 }, b2 = { 0 }, b3 = { 0 };
  char *text;

  b1.head = json_pack ("{s:s, s:n, s:i}", "name", "vm1", "backup",
                       "checkpoints", 2);
  b1.backup_id = strdup ("bk-1");
  b1.backup_phase = BACKUP_READY;
  b2.head = json_pack ("{s:s, s:n}", "name", "vm2", "backup");
  /* Before the owner published a summary: the registration alone. */
  b3.head = json_pack ("{s:s}", "name", "vm3");
  vm_brief_vector_append (&a->vms, b1);
  vm_brief_vector_append (&a->vms, b2);
  vm_brief_vector_append (&a->vms, b3);
  text = rendered (a, false, 0);
  cr_expect_str_eq (text, "{\"vms\":[{\"name\":\"vm1\",\"backup\":{\"id\":"
                          "\"bk-1\",\"phase\":\"ready\"},\"checkpoints\":2},"
                          "{\"name\":\"vm2\",\"backup\":null},"
                          "{\"name\":\"vm3\"}]}");
  free (text);
}
