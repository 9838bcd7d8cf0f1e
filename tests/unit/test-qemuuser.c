/* pullback: QEMU's way through the run directory (server/qemuuser.c):
 * the ACL entries it writes, on a real file system.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "qemuuser.h"
#include "scratch-dir.h"

TestSuite (qemuuser, .init = scratch_dir_make, .fini = scratch_dir_remove);

#define XATTR "system.posix_acl_access"

/* The access ACL of PATH as "tag:id:perm," text ("" for none); tags as
 * numbers (1 owner, 2 user, 4 group owner, 8 group, 16 mask, 32 other).
 */
static const char *
acl_text (const char *path)
{
  static char text[1024];
  unsigned char buf[4 + 8 * 32];
  ssize_t len = getxattr (path, XATTR, buf, sizeof buf);

  text[0] = '\0';
  if (len == -1)
    {
      cr_assert_eq (errno, ENODATA, "%s: %s", path, strerror (errno));
      return text;
    }
  for (ssize_t off = 4; off + 8 <= len; off += 8)
    {
      uint16_t tag, perm;
      uint32_t id;

      memcpy (&tag, buf + off, 2);
      memcpy (&perm, buf + off + 2, 2);
      memcpy (&id, buf + off + 4, 4);
      snprintf (text + strlen (text), sizeof text - strlen (text),
                id == UINT32_MAX ? "%u::%u," : "%u:%u:%u,", tag,
                id == UINT32_MAX ? perm : id, perm);
    }
  return text;
}

/* RUN, RUN/vms, RUN/vms/vm1, mode 0750 like pullbackd makes them. */
static void
make_run (char *run, size_t len)
{
  char p[512];

  /* chmod: the umask must not decide the modes. */
  snprintf (run, len, "%s/run", dir);
  cr_assert_eq (mkdir (run, 0750), 0);
  cr_assert_eq (chmod (run, 0750), 0);
  snprintf (p, sizeof p, "%s/vms", run);
  cr_assert_eq (mkdir (p, 0750), 0);
  cr_assert_eq (chmod (p, 0750), 0);
  snprintf (p, sizeof p, "%s/vms/vm1", run);
  cr_assert_eq (mkdir (p, 0750), 0);
  cr_assert_eq (chmod (p, 0750), 0);
  if (getxattr (run, XATTR, NULL, 0) == -1 && errno == EOPNOTSUPP)
    cr_skip_test ("%s: no POSIX ACLs here", dir);
}

/* Store the ACL given as (tag, perm, id) triples on PATH. */
static void
set_acl (const char *path, size_t n, const unsigned *t)
{
  unsigned char buf[4 + 8 * 16] = { 2, 0, 0, 0 };

  cr_assert_leq (n, 16);
  for (size_t i = 0; i < n; i++)
    {
      uint16_t tag = t[3 * i], perm = t[3 * i + 1];
      uint32_t id = t[3 * i + 2];

      memcpy (buf + 4 + 8 * i, &tag, 2);
      memcpy (buf + 4 + 8 * i + 2, &perm, 2);
      memcpy (buf + 4 + 8 * i + 4, &id, 4);
    }
  cr_assert_eq (setxattr (path, XATTR, buf, 4 + 8 * n, 0), 0, "%s",
                strerror (errno));
}

#define NONE UINT32_MAX

static const char *
under (const char *run, const char *rest)
{
  static char p[512];

  snprintf (p, sizeof p, "%s%s", run, rest);
  return p;
}

static mode_t
mode_of (const char *path)
{
  struct stat st;

  cr_assert_eq (stat (path, &st), 0);
  return st.st_mode & 07777;
}

Test (qemuuser, execute_for_qemu_only)
{
  struct qemu_user q = { .known = true, .uid = 12345, .gid = 12345 };
  char run[128], why[512];
  const char *want = "1::7,2:12345:1,4::5,16::5,32::0,";

  make_run (run, sizeof run);
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0, "%s",
                why);
  cr_expect_str_eq (acl_text (run), want);
  cr_expect_str_eq (acl_text (under (run, "/vms")), want);
  cr_expect_str_eq (acl_text (under (run, "/vms/vm1")), want);
  /* The mask is the old group bits: nobody else gains anything. */
  cr_expect_eq (mode_of (under (run, "/vms/vm1")), 0750);

  /* Again: nothing changes.  Another QEMU user: a second entry, in
   * order.
   */
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0);
  cr_expect_str_eq (acl_text (run), want);
  q.uid = 100;
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0);
  cr_expect_str_eq (acl_text (under (run, "/vms/vm1")),
                    "1::7,2:100:1,2:12345:1,4::5,16::5,32::0,");
}

/* RUN with the 5-entry ACL (tag, perm, id triples), after QEMU (uid
 * 12345) is let through: expect its ACL as WANT; returns its mode.
 */
static mode_t
granted_over (const unsigned acl[15], const char *want)
{
  struct qemu_user q = { .known = true, .uid = 12345, .gid = 12345 };
  char run[128], why[512];

  make_run (run, sizeof run);
  set_acl (run, 5, acl);
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0, "%s",
                why);
  cr_expect_str_eq (acl_text (run), want);
  return mode_of (run);
}

/* An administrator's "group 777: rwx" with its mask. */
Test (qemuuser, keeps_what_the_admin_set)
{
  granted_over ((const unsigned[]){ 1, 7, NONE, 4, 5, NONE, 8, 7, 777, 16, 7,
                                    NONE, 32, 0, NONE },
                "1::7,2:12345:1,4::5,8:777:7,16::7,32::0,");
}

/* A mask narrower than the entries it bounds (as a default ACL leaves
 * on a directory made with mode 0750): the mask must not grow past the
 * old one and QEMU's execute, or the group and group 777 would gain
 * write (failed before: the mask became their union, rwx).  Each entry
 * is what it could do before: r--; QEMU --x.
 */
Test (qemuuser, narrow_mask_gives_nobody_else_more)
{
  cr_expect_eq (
      granted_over ((const unsigned[]){ 1, 7, NONE, 4, 7, NONE, 8, 7, 777, 16,
                                        4, NONE, 32, 0, NONE },
                    "1::7,2:12345:1,4::4,8:777:4,16::5,32::0,"),
      0750);
}

/* An ACL far larger than the usual few entries is read whole. */
Test (qemuuser, many_entries)
{
  struct qemu_user q = { .known = true, .uid = 99999, .gid = 99999 };
  char run[128], why[512];

  make_run (run, sizeof run);
  for (unsigned u = 1000; u < 1100; u++)
    {
      q.uid = u;
      cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0,
                    "uid %u: %s", u, why);
    }
  q.uid = 1050;
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), 0);
  cr_expect_eq (getxattr (run, XATTR, NULL, 0), 4 + 8 * (100 + 4));
}

/* The keys file: QEMU reads it, nothing more, and pullbackd keeps it. */
Test (qemuuser, read_only_file)
{
  struct qemu_user q = { .known = true, .uid = 12345, .gid = 12345 };
  char path[128];
  int fd;

  snprintf (path, sizeof path, "%s/keys.psk", dir);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (fchmod (fd, 0600), 0);
  if (qemu_user_grant_read (fd, &q) == -1 && errno == EOPNOTSUPP)
    cr_skip_test ("no POSIX ACLs here");
  cr_expect_str_eq (acl_text (path), "1::6,2:12345:4,4::0,16::4,32::0,");
  cr_expect_eq (close (fd), 0);
}

Test (qemuuser, nothing_for_ourselves_or_unknown)
{
  struct qemu_user me
      = { .known = true, .uid = geteuid (), .gid = getegid () };
  struct qemu_user unknown = { .known = false, .uid = 12345, .gid = 1 };
  char run[128], why[512];

  make_run (run, sizeof run);
  cr_assert_eq (qemu_user_grant (run, "vm1", &me, why, sizeof why), 0);
  cr_assert_eq (qemu_user_grant (run, "vm1", &unknown, why, sizeof why), 0);
  cr_expect_str_eq (acl_text (run), "");
  cr_expect_str_eq (acl_text (under (run, "/vms/vm1")), "");
}

Test (qemuuser, never_through_a_symlink)
{
  struct qemu_user q = { .known = true, .uid = 12345, .gid = 12345 };
  char run[128], why[512], elsewhere[128];

  make_run (run, sizeof run);
  snprintf (elsewhere, sizeof elsewhere, "%s/elsewhere", dir);
  cr_assert_eq (mkdir (elsewhere, 0700), 0);
  cr_assert_eq (rmdir (under (run, "/vms/vm1")), 0);
  cr_assert_eq (symlink (elsewhere, under (run, "/vms/vm1")), 0);
  cr_assert_eq (qemu_user_grant (run, "vm1", &q, why, sizeof why), -1);
  cr_expect (strstr (why, "/vms/vm1") != NULL, "%s", why);
  cr_expect (strstr (why, "uid 12345") != NULL, "%s", why);
  cr_expect_str_eq (acl_text (elsewhere), "");
}
