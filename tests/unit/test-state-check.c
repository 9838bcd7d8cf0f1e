/* pullback: the shape of state files (server/state-check.c).
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "state.h"

static char err[512];

static json_t *
load (const char *text)
{
  json_error_t jerr;
  json_t *doc = json_loads (text, 0, &jerr);

  cr_assert_not_null (doc, "%s: %s", text, jerr.text);
  return doc;
}

/* The file a release before the check existed wrote: a deleted
 * checkpoint, two live ones and a ready incremental backup.
 */
Test (state_check, file_of_the_previous_release)
{
  json_error_t jerr;
  CLEANUP_JSON json_t *doc
      = json_load_file (SRCDIR "/tests/unit/data/state-v1-vm1.json", 0, &jerr);

  cr_assert_not_null (doc, "%s", jerr.text);
  cr_assert_eq (state_check (doc, "vm1", err, sizeof err), 0, "%s", err);
  /* Another VM's name: its scratch files are not this VM's. */
  cr_assert_eq (state_check (doc, "vm2", err, sizeof err), -1);
  cr_assert (strstr (err, "pullback-vm2.0.qcow2"), "%s", err);
}

Test (state_check, fresh_documents)
{
  const char *ok[] = {
    "{}",
    "{\"version\":1, \"checkpoints\":[], \"backup\":null}",
    "{\"checkpoints\":[{\"name\":\"c1\",\"created\":5,\"parent\":null,"
    "\"disks\":[]}]}",
    "{\"registration\":{\"name\":\"vm1\",\"qmp\":\"/q.sock\"}}",
    "{\"checkpoint_deleting\":{\"names\":[\"c1\"]}}",
  };

  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    {
      CLEANUP_JSON json_t *doc = load (ok[i]);

      cr_expect_eq (state_check (doc, "vm1", err, sizeof err), 0, "%s: %s",
                    ok[i], err);
    }
}

Test (state_check, wrong_shapes)
{
  /* Each with a word its message must contain. */
  static const struct
  {
    const char *doc, *why;
  } bad[] = {
    { "[]", "not a JSON object" },
    { "{\"version\":99}", "version" },
    { "{\"version\":\"1\"}", "version" },
    { "{\"checkpoints\":{}}", "checkpoints" },
    { "{\"checkpoints\":[{}]}", "\"name\"" },
    { "{\"checkpoints\":[1]}", "object" },
    { "{\"checkpoints\":[{\"name\":\"../x\",\"created\":1,\"disks\":[]}]}",
      "name" },
    { "{\"checkpoints\":[{\"name\":\"c1\",\"disks\":[]}]}", "created" },
    { "{\"checkpoints\":[{\"name\":\"c1\",\"created\":1,\"disks\":[{}]}]}",
      "disk" },
    { "{\"checkpoints\":[{\"name\":\"c1\",\"created\":1,\"disks\":[]},"
      "{\"name\":\"c1\",\"created\":1,\"disks\":[]}]}",
      "twice" },
    { "{\"deleted\":[1]}", "deleted" },
    { "{\"deleted\":[[\"a\"]]}", "deleted" },
    { "{\"backup\":5}", "backup" },
    { "{\"backup\":{}}", "disks" },
    { "{\"cleanup\":[{\"id\":\"bk-1\",\"phase\":\"ready\",\"created\":1,"
      "\"expires\":1,\"ttl\":1,\"disks\":[]}]}",
      "non-empty" },
    { "{\"cleanup\":{}}", "cleanup" },
    { "{\"checkpoint_pending\":{\"name\":\"c1\",\"disks\":[]}}",
      "checkpoint_pending" },
    { "{\"checkpoint_pending\":{\"disks\":[{\"disk\":\"a\",\"node\":\"n\","
      "\"bitmap\":\"c1\"}]}}",
      "name" },
    { "{\"checkpoint_deleting\":{\"names\":[\"/etc\"]}}",
      "checkpoint_deleting" },
    { "{\"registration\":{\"qmp\":5}}", "qmp" },
    { "{\"registration\":{\"name\":\"other\",\"qmp\":\"/q\"}}", "name" },
  };

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      CLEANUP_JSON json_t *doc = load (bad[i].doc);

      err[0] = '\0';
      cr_expect_eq (state_check (doc, "vm1", err, sizeof err), -1, "%s",
                    bad[i].doc);
      cr_expect (strstr (err, bad[i].why), "%s: '%s' lacks '%s'", bad[i].doc,
                 err, bad[i].why);
    }
}

/* A backup record names the QEMU objects teardown deletes and the file
 * it unlinks: only the daemon's own names pass.
 */
Test (state_check, backup_names_only_ours)
{
  static const struct
  {
    const char *key, *value, *why;
  } bad[] = {
    { "fleece", "disk0", "pb-fleece-0" },
    { "job", "pb-job-1", "pb-job-0" },
    { "export_id", "guest-disk0", "pb-exp-0" },
    { "scratch_node", "disk0-file", "pb-scratch-0" },
    { "scratch", "/etc/passwd", "pullback-vm1.0.qcow2" },
    { "scratch", "relative/pullback-vm1.0.qcow2", "absolute" },
    { "scratch", "/a/../pullback-vm1.0.qcow2", "absolute" },
    { "tmp_bitmap", "c2", "backup-disk0" },
    { "mode", "partial", "mode" },
  };
  json_error_t jerr;

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      CLEANUP_JSON json_t *doc = json_load_file (
          SRCDIR "/tests/unit/data/state-v1-vm1.json", 0, &jerr);
      json_t *d0 = json_array_get (
          json_object_get (json_object_get (doc, "backup"), "disks"), 0);

      cr_assert_not_null (d0);
      json_object_set_new (d0, bad[i].key, json_string (bad[i].value));
      err[0] = '\0';
      cr_expect_eq (state_check (doc, "vm1", err, sizeof err), -1, "%s=%s",
                    bad[i].key, bad[i].value);
      cr_expect (strstr (err, bad[i].why), "%s=%s: '%s' lacks '%s'",
                 bad[i].key, bad[i].value, err, bad[i].why);
    }
}

/* "scratch_nested" (the scratch file node goes with its overlay): a
 * boolean, absent in files of earlier releases.
 */
Test (state_check, scratch_nested)
{
  json_error_t jerr;
  CLEANUP_JSON json_t *doc
      = json_load_file (SRCDIR "/tests/unit/data/state-v1-vm1.json", 0, &jerr);
  json_t *b = json_object_get (doc, "backup");

  cr_assert_not_null (b);
  cr_expect_eq (state_check (doc, "vm1", err, sizeof err), 0, "%s", err);
  json_object_set_new (b, "scratch_nested", json_true ());
  cr_expect_eq (state_check (doc, "vm1", err, sizeof err), 0, "%s", err);
  json_object_set_new (b, "scratch_nested", json_string ("yes"));
  err[0] = '\0';
  cr_expect_eq (state_check (doc, "vm1", err, sizeof err), -1);
  cr_expect (strstr (err, "scratch_nested"), "'%s'", err);
}
