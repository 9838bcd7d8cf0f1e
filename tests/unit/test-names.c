/* pullback: name validation.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "names.h"

static const enum name_kind kinds[]
    = { NAME_VM, NAME_CHECKPOINT, NAME_DISK, NAME_BACKUP };

Test (names, valid)
{
  static const char *const good[]
      = { "a", "Z", "0", "vm1", "web-01.example_b", "a..b", "x-", "9.9" };
  char max[NAME_MAX_LEN + 1];

  memset (max, 'm', NAME_MAX_LEN);
  max[NAME_MAX_LEN] = '\0';
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    {
      for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect (name_valid (kinds[k], good[i], NULL, 0), "%s: %s",
                   name_kind_label (kinds[k]), good[i]);
      cr_expect (name_valid (kinds[k], max, NULL, 0));
    }
}

struct bad
{
  const char *name;
  const char *reason;
};

Test (names, invalid)
{
  static const struct bad bad[] = {
    { "", "must not be empty" },
    { ".", "must not be '.'" },
    { "..", "must not be '..'" },
    { "/x", "must start with a letter or digit" },
    { "../x", "must start with a letter or digit" },
    { "a/b", "must not contain '/'" },
    { "a/../b", "must not contain '/'" },
    { "-a", "must start with a letter or digit" },
    { ".a", "must start with a letter or digit" },
    { "_a", "must start with a letter or digit" },
    { "a b", "may contain only" },
    { "a\tb", "may contain only" },
    { "a\nb", "may contain only" },
    { "caf\xc3\xa9", "may contain only" },
    { "a:b", "may contain only" },
    { "a%2Fb", "may contain only" },
  };
  char err[128];

  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
      {
        err[0] = '\0';
        cr_expect_not (name_valid (kinds[k], bad[i].name, err, sizeof err),
                       "accepted '%s'", bad[i].name);
        cr_expect (strstr (err, bad[i].reason) != NULL, "'%s': %s",
                   bad[i].name, err);
        /* The message says which kind of name it was. */
        cr_expect (strncmp (err, name_kind_label (kinds[k]),
                            strlen (name_kind_label (kinds[k])))
                       == 0,
                   "%s", err);
      }
}

Test (names, null_and_length)
{
  char long65[NAME_MAX_LEN + 2], long300[301], err[128];

  cr_assert_not (name_valid (NAME_VM, NULL, err, sizeof err));
  cr_assert_str_eq (err, "VM id must not be empty");
  memset (long65, 'a', sizeof long65 - 1);
  long65[sizeof long65 - 1] = '\0';
  cr_assert_not (name_valid (NAME_DISK, long65, err, sizeof err));
  cr_assert_str_eq (err, "disk name is longer than 64 characters");
  memset (long300, 'b', 300);
  long300[300] = '\0';
  cr_assert_not (name_valid (NAME_CHECKPOINT, long300, err, sizeof err));
  cr_assert (strstr (err, "longer than 64") != NULL);
}

Test (names, reserved_bitmap_prefix)
{
  char err[128];

  cr_assert_not (
      name_valid (NAME_CHECKPOINT, "backup-disk0", err, sizeof err));
  cr_assert (strstr (err, "reserved") != NULL, "%s", err);
  /* Only checkpoints become bitmap names; only the prefix counts. */
  cr_assert (name_valid (NAME_CHECKPOINT, "backup", NULL, 0));
  cr_assert (name_valid (NAME_CHECKPOINT, "xbackup-1", NULL, 0));
  cr_assert (name_valid (NAME_DISK, "backup-1", NULL, 0));
  cr_assert (name_valid (NAME_VM, "backup-1", NULL, 0));
}

Test (names, small_error_buffer)
{
  char err[8];

  memset (err, 'X', sizeof err);
  cr_assert_not (name_valid (NAME_VM, "a/b", err, sizeof err));
  cr_assert_eq (err[sizeof err - 1], '\0');
  cr_assert_str_eq (err, "VM id m");
  /* A zero-length buffer is left alone. */
  cr_assert_not (name_valid (NAME_VM, "a/b", err, 0));
}

Test (names, labels)
{
  cr_assert_str_eq (name_kind_label (NAME_VM), "VM id");
  cr_assert_str_eq (name_kind_label (NAME_CHECKPOINT), "checkpoint name");
  cr_assert_str_eq (name_kind_label (NAME_DISK), "disk name");
  cr_assert_str_eq (name_kind_label (NAME_BACKUP), "backup id");
}
