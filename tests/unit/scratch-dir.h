/* pullback tests: a private directory per test (criterion runs each test
 * in its own process), removed with what is in it.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_TEST_SCRATCH_DIR_H
#define PULLBACK_TEST_SCRATCH_DIR_H

#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

static char dir[] = "/tmp/pullback-unit-XXXXXX";

static inline void
scratch_dir_make (void)
{
  cr_assert_not_null (mkdtemp (dir));
}

static inline void
scratch_dir_remove (void)
{
  char cmd[128];

  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq (system (cmd), 0);
}

#endif /* PULLBACK_TEST_SCRATCH_DIR_H */
