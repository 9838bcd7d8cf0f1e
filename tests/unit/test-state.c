/* pullback: the state directory.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "state.h"

static char dir[] = "/tmp/pullback-state-XXXXXX";
static char err[512];

static void
setup (void)
{
  cr_assert_not_null (mkdtemp (dir));
  cr_assert_eq (state_init (dir, err, sizeof err), 0, "%s", err);
}

static void
teardown (void)
{
  char cmd[PATH_MAX + 16];

  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq (system (cmd), 0);
}

TestSuite (state, .init = setup, .fini = teardown);

static bool
exists (const char *rel)
{
  char p[PATH_MAX];

  snprintf (p, sizeof p, "%s/%s", dir, rel);
  return access (p, F_OK) == 0;
}

Test (state, round_trip)
{
  CLEANUP_JSON json_t *doc = json_pack ("{s:i, s:[{s:s}]}", "version", 1,
                                        "checkpoints", "name", "c1");
  CLEANUP_JSON json_t *back = NULL;
  struct stat st;
  char p[PATH_MAX];

  cr_assert_eq (state_save (dir, "vm1", doc, err, sizeof err), 0, "%s", err);
  back = state_load (dir, "vm1", err, sizeof err);
  cr_assert_not_null (back, "%s", err);
  cr_assert (json_equal (doc, back));
  /* Private to the daemon, and no temporary left behind. */
  snprintf (p, sizeof p, "%s/vms/vm1.json", dir);
  cr_assert_eq (stat (p, &st), 0);
  cr_assert_eq (st.st_mode & 0777, 0600);
  cr_assert_not (exists ("vms/vm1.json.tmp"));
  snprintf (p, sizeof p, "%s/vms", dir);
  cr_assert_eq (stat (p, &st), 0);
  cr_assert_eq (st.st_mode & 0777, 0700);
}

Test (state, absent_is_not_an_error)
{
  cr_assert_null (state_load (dir, "nobody", err, sizeof err));
  cr_assert_str_eq (err, "");
  cr_assert_eq (state_remove (dir, "nobody", err, sizeof err), 0);
}

Test (state, names_never_become_paths)
{
  static const char *const bad[]
      = { "../x", "..", ".", "a/b", "", "/etc", ".hidden" };
  CLEANUP_JSON json_t *doc = json_object ();

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      err[0] = '\0';
      cr_assert_eq (state_save (dir, bad[i], doc, err, sizeof err), -1,
                    "saved '%s'", bad[i]);
      cr_assert_neq (err[0], '\0');
      cr_assert_null (state_load (dir, bad[i], err, sizeof err));
      cr_assert_neq (err[0], '\0');
    }
  cr_assert_not (exists ("x"));
  cr_assert_not (exists ("vms/..json"));
}

Test (state, replace_is_atomic)
{
  CLEANUP_JSON json_t *v1 = json_pack ("{s:i}", "gen", 1);
  CLEANUP_JSON json_t *v2 = json_pack ("{s:i}", "gen", 2);
  CLEANUP_JSON json_t *back = NULL;
  char p[PATH_MAX];
  FILE *fp;

  cr_assert_eq (state_save (dir, "vm1", v1, err, sizeof err), 0);
  /* A crash mid-write leaves a torn temporary; the real file is whole,
   * and the next start removes the temporary.
   */
  snprintf (p, sizeof p, "%s/vms/vm1.json.tmp", dir);
  fp = fopen (p, "w");
  fputs ("{\"gen\": 2, \"chec", fp);
  fclose (fp);
  back = state_load (dir, "vm1", err, sizeof err);
  cr_assert (json_equal (back, v1));
  cr_assert_eq (state_init (dir, err, sizeof err), 0);
  cr_assert_not (exists ("vms/vm1.json.tmp"));

  cr_assert_eq (state_save (dir, "vm1", v2, err, sizeof err), 0);
  json_decref (back);
  back = state_load (dir, "vm1", err, sizeof err);
  cr_assert (json_equal (back, v2));
}

Test (state, corrupt_file_is_reported)
{
  char p[PATH_MAX];
  FILE *fp;

  snprintf (p, sizeof p, "%s/vms/vm2.json", dir);
  fp = fopen (p, "w");
  fputs ("{\"a\": 1, \"a\": 2}", fp);
  fclose (fp);
  cr_assert_null (state_load (dir, "vm2", err, sizeof err));
  cr_assert (strstr (err, "vm2.json") != NULL, "%s", err);
}

static int seen;
static void
count (const char *vm, void *opaque)
{
  cr_assert (strcmp (vm, "a") == 0 || strcmp (vm, "b") == 0, "%s", vm);
  seen++;
}

Test (state, foreach_lists_valid_vms)
{
  CLEANUP_JSON json_t *doc = json_object ();
  char p[PATH_MAX];
  FILE *fp;

  state_save (dir, "a", doc, err, sizeof err);
  state_save (dir, "b", doc, err, sizeof err);
  snprintf (p, sizeof p, "%s/vms/-bad.json", dir);
  fp = fopen (p, "w");
  fclose (fp);
  cr_assert_eq (state_foreach (dir, count, NULL, err, sizeof err), 0);
  cr_assert_eq (seen, 2);
  cr_assert_eq (state_remove (dir, "a", err, sizeof err), 0);
  cr_assert_not (exists ("vms/a.json"));
}
