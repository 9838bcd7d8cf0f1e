/* pullback: the empty qcow2 writer, checked by qemu-img itself.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "qcow2.h"
#include "scratch-dir.h"

TestSuite (qcow2, .init = scratch_dir_make, .fini = scratch_dir_remove);

static void
make_image (const char *path, uint64_t size)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (qcow2_write_empty (fd, size), 0, "%s", strerror (errno));
  cr_assert_eq (close (fd), 0);
}

/* Run CMD; its status must be 0 (qemu-img check says 0 for "no errors"). */
static void
run (const char *fmt, ...)
{
  char cmd[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (cmd, sizeof cmd, fmt, ap);
  va_end (ap);
  cr_assert_eq (system (cmd), 0, "failed: %s", cmd);
}

Test (qcow2, qemu_img_accepts_every_size)
{
  static const uint64_t sizes[] = {
    512,
    64 << 10,
    (64 << 20) + 512,
    UINT64_C (10) << 30,
    (UINT64_C (512) << 20) * 8192, /* the L1 table fills one cluster */
    (UINT64_C (512) << 20) * 8193, /* ...and one more */
    UINT64_C (64) << 40,
  };
  char path[128];

  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    {
      snprintf (path, sizeof path, "%s/img%zu.qcow2", dir, i);
      make_image (path, sizes[i]);
      run ("qemu-img check -q -f qcow2 %s", path);
      run ("test \"$(qemu-img info -f qcow2 --output=json %s | "
           "jq '.\"virtual-size\", .\"actual-size\" > 0, "
           ".\"cluster-size\", .\"format-specific\".data.\"refcount-bits\"' "
           "| tr '\\n' ' ')\" = '%" PRIu64 " true 65536 16 '",
           path, sizes[i]);
    }
}

Test (qcow2, data_round_trips)
{
  char path[128];

  snprintf (path, sizeof path, "%s/rw.qcow2", dir);
  make_image (path, UINT64_C (1) << 30);
  run ("qemu-io -f qcow2 -c 'write -P 0x5a 1M 192k' "
       "-c 'write -P 0x33 1023M 64k' %s >/dev/null",
       path);
  run ("qemu-io -f qcow2 -c 'read -P 0x5a 1M 192k' -c 'read -P 0 0 1M' "
       "-c 'read -P 0x33 1023M 64k' %s | grep -q 'read 65536/65536'",
       path);
  run ("! qemu-io -f qcow2 -c 'read -P 0x5a 1M 192k' %s 2>&1 | "
       "grep -q 'Pattern verification failed'",
       path);
  run ("qemu-img check -q -f qcow2 %s", path);
}

Test (qcow2, bad_sizes)
{
  char path[128];
  int fd;

  snprintf (path, sizeof path, "%s/bad.qcow2", dir);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (qcow2_write_empty (fd, 0), -1);
  cr_assert_eq (errno, EINVAL);
  cr_assert_eq (qcow2_write_empty (fd, 1000), -1);
  cr_assert_eq (qcow2_write_empty (fd, UINT64_C (1) << 62), -1);
  close (fd);
}
