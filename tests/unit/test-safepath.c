/* pullback: checking request-given paths (common/safepath.c).
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "safepath.h"
#include "scratch-dir.h"

Test (safepath, plain)
{
  static const char *const good[]
      = { "/", "/a", "/a/b.sock", "/a/..b/c.", "/a/b c/#%?" };
  static const char *const bad[]
      = { "",      "a/b",     "./a",  "/a/",   "//a",   "/a//b", "/a/./b",
          "/a/..", "/../etc", "/a/.", "/a\nb", "/a\tb", "/a\x7f" };
  char why[128], longp[PATH_MAX + 2];

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_expect (safepath_plain (good[i], why, sizeof why), "%s: %s", good[i],
               why);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      why[0] = '\0';
      cr_expect (!safepath_plain (bad[i], why, sizeof why), "%s", bad[i]);
      cr_expect (why[0] != '\0', "%s: no reason", bad[i]);
    }
  memset (longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  cr_expect (!safepath_plain (longp, why, sizeof why));
}

Test (safepath, within)
{
  cr_expect (safepath_within ("/a/b", "/a"));
  cr_expect (safepath_within ("/a", "/a"));
  cr_expect (safepath_within ("/a/b", "/"));
  cr_expect (!safepath_within ("/ab", "/a"));
  cr_expect (!safepath_within ("/a", "/a/b"));
  cr_expect (!safepath_within ("/b/a", "/a"));
}

/* The tree used below, in DIR:
 *   root/            the allowed root
 *   root/sub/s.sock  a socket
 *   root/file        a regular file
 *   root/fifo        a FIFO
 *   root/link -> ..  a symlink out of the root
 *   root/inlink -> sub  a symlink inside it (refused all the same)
 *   root/own/        stands for a directory of pullbackd's own
 *   out/x.sock       a socket outside the root
 */
static char root[PATH_MAX], p[PATH_MAX];

static void
make_socket (const char *path)
{
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);

  cr_assert (fd >= 0);
  strcpy (a.sun_path, path);
  cr_assert_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0, "%s", path);
  close (fd);
}

static void
setup (void)
{
  scratch_dir_make ();
  snprintf (root, sizeof root, "%s/root", dir);
  cr_assert_eq (mkdir (root, 0700), 0);
#define MK(fmt, call)                                                         \
  do                                                                          \
    {                                                                         \
      snprintf (p, sizeof p, fmt, dir);                                       \
      call;                                                                   \
    }                                                                         \
  while (0)
  MK ("%s/root/sub", cr_assert_eq (mkdir (p, 0700), 0));
  MK ("%s/root/own", cr_assert_eq (mkdir (p, 0700), 0));
  MK ("%s/out", cr_assert_eq (mkdir (p, 0700), 0));
  MK ("%s/root/sub/s.sock", make_socket (p));
  MK ("%s/out/x.sock", make_socket (p));
  MK ("%s/root/file", close (open (p, O_CREAT | O_WRONLY, 0600)));
  MK ("%s/root/fifo", cr_assert_eq (mkfifo (p, 0600), 0));
  MK ("%s/root/link", cr_assert_eq (symlink ("..", p), 0));
  MK ("%s/root/inlink", cr_assert_eq (symlink ("sub", p), 0));
}

static enum safepath_result
check (const char *rel, mode_t type, const struct safepath_id *forbidden,
       size_t nforbidden)
{
  const char *roots[] = { "/nonexistent-root", root };
  char why[PATH_MAX + 128] = "";
  enum safepath_result r;
  int fd = -2;

  snprintf (p, sizeof p, "%s%s", dir, rel);
  r = safepath_check (p, roots, 2, type, forbidden, nforbidden, &fd, why,
                      sizeof why);
  if (r == SAFEPATH_OK)
    {
      struct stat st;

      cr_expect (fd >= 0);
      cr_expect_eq (fstat (fd, &st), 0);
      cr_expect_eq (st.st_mode & S_IFMT, type);
      close (fd);
    }
  else
    {
      cr_expect_eq (fd, -1);
      cr_expect (why[0] != '\0', "%s: no reason", rel);
    }
  return r;
}

Test (safepath, check, .init = setup, .fini = scratch_dir_remove)
{
  struct stat st;
  struct safepath_id own;

  cr_expect_eq (check ("/root/sub/s.sock", S_IFSOCK, NULL, 0), SAFEPATH_OK);
  cr_expect_eq (check ("/root/sub", S_IFDIR, NULL, 0), SAFEPATH_OK);
  cr_expect_eq (check ("/root", S_IFDIR, NULL, 0), SAFEPATH_OK);
  /* Outside, or written to look inside. */
  cr_expect_eq (check ("/out/x.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_NOT_ALLOWED);
  cr_expect_eq (check ("/root/../out/x.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_INVALID);
  cr_expect_eq (check ("/root//sub/s.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_INVALID);
  cr_expect_eq (check ("/rootx", S_IFDIR, NULL, 0), SAFEPATH_NOT_ALLOWED);
  /* Symlinks: out of the root, or staying inside. */
  cr_expect_eq (check ("/root/link/out/x.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_NOT_ALLOWED);
  cr_expect_eq (check ("/root/link", S_IFDIR, NULL, 0), SAFEPATH_NOT_ALLOWED);
  cr_expect_eq (check ("/root/inlink/s.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_NOT_ALLOWED);
  /* Types. */
  cr_expect_eq (check ("/root/file", S_IFSOCK, NULL, 0), SAFEPATH_WRONG_TYPE);
  cr_expect_eq (check ("/root/fifo", S_IFSOCK, NULL, 0), SAFEPATH_WRONG_TYPE);
  cr_expect_eq (check ("/root/sub", S_IFSOCK, NULL, 0), SAFEPATH_WRONG_TYPE);
  cr_expect_eq (check ("/root/sub/s.sock", S_IFDIR, NULL, 0),
                SAFEPATH_WRONG_TYPE);
  cr_expect_eq (check ("/root/file/x", S_IFSOCK, NULL, 0), SAFEPATH_NOT_FOUND);
  cr_expect_eq (check ("/root/none", S_IFDIR, NULL, 0), SAFEPATH_NOT_FOUND);
  cr_expect_eq (check ("/root/none/x.sock", S_IFSOCK, NULL, 0),
                SAFEPATH_NOT_FOUND);
  /* The caller's own objects, and what lies in them. */
  snprintf (p, sizeof p, "%s/root/own", dir);
  cr_assert_eq (stat (p, &st), 0);
  own = (struct safepath_id){ st.st_dev, st.st_ino };
  cr_expect_eq (check ("/root/own", S_IFDIR, &own, 1), SAFEPATH_NOT_ALLOWED);
  snprintf (p, sizeof p, "%s/root/own/a.sock", dir);
  make_socket (p);
  cr_expect_eq (check ("/root/own/a.sock", S_IFSOCK, &own, 1),
                SAFEPATH_NOT_ALLOWED);
  cr_expect_eq (check ("/root/own/a.sock", S_IFSOCK, NULL, 0), SAFEPATH_OK);
  /* Nothing was created along the way. */
  snprintf (p, sizeof p, "%s/root/none", dir);
  cr_expect_neq (lstat (p, &st), 0);
}

Test (safepath, no_roots)
{
  char why[256];

  cr_expect_eq (safepath_check ("/tmp", NULL, 0, S_IFDIR, NULL, 0, NULL, why,
                                sizeof why),
                SAFEPATH_NOT_ALLOWED);
  cr_expect (strstr (why, "allowed-roots") != NULL, "%s", why);
}
