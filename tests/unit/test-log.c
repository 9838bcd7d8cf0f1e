/* pullback: logging.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "log.h"

static void
setup (void)
{
  cr_redirect_stderr ();
  log_init ("t", true, LOG_LEVEL_INFO);
}

TestSuite (log, .init = setup);

Test (log, warn_appends_errno_text)
{
  errno = ENOENT;
  log_warn ("open %s", "x");
  fflush (stderr);
  cr_assert_stderr_eq_str ("t: warning: open x: No such file or directory\n");
}

Test (log, warnx_does_not)
{
  errno = ENOENT;
  log_warnx ("bad %d", 7);
  fflush (stderr);
  cr_assert_stderr_eq_str ("t: warning: bad 7\n");
}

Test (log, errno_is_preserved)
{
  errno = EBUSY;
  log_warn ("a");
  cr_assert_eq (errno, EBUSY);
  log_warnx ("b");
  cr_assert_eq (errno, EBUSY);
  log_info ("c");
  cr_assert_eq (errno, EBUSY);
  log_debug ("d");
  cr_assert_eq (errno, EBUSY);
}

Test (log, levels)
{
  log_debug ("hidden");
  log_info ("shown");
  log_set_level (LOG_LEVEL_DEBUG);
  cr_assert (log_debug_enabled ());
  log_debug ("now %s", "shown");
  log_set_level (LOG_LEVEL_WARN);
  log_info ("hidden");
  log_warnx ("w");
  cr_assert_not (log_debug_enabled ());
  cr_assert_eq (log_get_level (), LOG_LEVEL_WARN);
  fflush (stderr);
  cr_assert_stderr_eq_str ("t: shown\nt: debug: now shown\nt: warning: w\n");
}

Test (log, level_names_round_trip)
{
  for (int l = LOG_LEVEL_ERROR; l <= LOG_LEVEL_DEBUG; l++)
    cr_assert_eq (log_level_from_string (log_level_to_string (l)), l);
  cr_assert_eq (log_level_from_string ("loud"), -1);
  cr_assert_eq (log_level_from_string ("DEBUG"), -1);
  cr_assert_str_eq (log_level_to_string (99), "unknown");
}

Test (log, long_message_is_truncated_not_overflowed)
{
  char big[10000];

  memset (big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_warnx ("%s", big);
  fflush (stderr);
  /* One line, cut to the internal buffer, still newline-terminated. */
  cr_assert_stderr_neq_str ("");
}

Test (log, fatal_exits_1, .exit_code = 1)
{
  errno = EACCES;
  fatal ("cannot %s", "go on");
}

Test (log, fatalx_exits_1, .exit_code = 1)
{
  fatalx ("no");
}
