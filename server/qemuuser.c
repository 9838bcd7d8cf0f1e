/* pullback: the user a VM's QEMU runs as, and its way into the run
 * directory.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Most QEMUs drop root (-runas, or a service user).  pullbackd writes
 * the scratch overlays and the TLS-PSK keys file and gives them to
 * QEMU's user, but QEMU opens them by path, through the run directory,
 * which is closed to others (0750: it also holds the VM's NBD socket and
 * the delta views' sockets).  So QEMU's uid gets one POSIX ACL entry on
 * RUN, RUN/vms and RUN/vms/VM: execute, which lets it reach a file by
 * name and nothing else.  The entry on a VM's directory goes with it;
 * the ones on RUN and RUN/vms stay (they grant nothing to list or read).
 *
 * The ACL is the kernel's xattr form (linux/posix_acl_xattr.h), written
 * through the directory's descriptor.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "qemuuser.h"

int
qemu_user_of (int qmp_fd, struct qemu_user *u)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  char path[64], line[256];
  bool uid = false, gid = false;
  FILE *fp;

  u->known = false;
  /* SO_PEERCRED tells who made the socket, which is root under -runas:
   * only its pid is used, and /proc says who that process is now.
   */
  if (getsockopt (qmp_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
    return -1;
  snprintf (path, sizeof path, "/proc/%ld/status", (long)cred.pid);
  fp = fopen (path, "re");
  if (fp == NULL)
    return -1;
  /* "Uid:\treal\teffective\t...": the effective ids. */
  while (fgets (line, sizeof line, fp))
    {
      unsigned real, eff;

      if (sscanf (line, "Uid: %u %u", &real, &eff) == 2)
        u->uid = eff, uid = true;
      else if (sscanf (line, "Gid: %u %u", &real, &eff) == 2)
        u->gid = eff, gid = true;
    }
  fclose (fp);
  if (!uid || !gid)
    {
      errno = EPROTO;
      return -1;
    }
  u->known = true;
  return 0;
}

bool
qemu_user_is_other (const struct qemu_user *u)
{
  return u->known && (u->uid != geteuid () || u->gid != getegid ());
}

#define ACL_XATTR "system.posix_acl_access"
#define ACL_XATTR_VERSION 2
#define ACL_MAX_ENTRIES 64
#define ACL_UNDEFINED_ID UINT32_MAX

enum acl_tag
{
  ACL_USER_OBJ = 0x01,
  ACL_USER = 0x02,
  ACL_GROUP_OBJ = 0x04,
  ACL_GROUP = 0x08,
  ACL_MASK = 0x10,
  ACL_OTHER = 0x20,
};

struct acl_entry
{
  uint16_t tag, perm;
  uint32_t id;
};

static int
entry_order (const void *a, const void *b)
{
  const struct acl_entry *x = a, *y = b;

  if (x->tag != y->tag)
    return x->tag < y->tag ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The access ACL of directory FD into E (*N entries): the stored one,
 * or the one its mode stands for.  0, or -1 with errno set.
 */
static int
read_acl (int fd, struct acl_entry *e, size_t *n)
{
  unsigned char buf[4 + 8 * ACL_MAX_ENTRIES];
  ssize_t len = fgetxattr (fd, ACL_XATTR, buf, sizeof buf);
  struct stat st;
  uint32_t v;

  *n = 0;
  if (len == -1 && errno != ENODATA)
    return -1;
  if (len == -1)
    {
      if (fstat (fd, &st) == -1)
        return -1;
      e[0] = (struct acl_entry){ ACL_USER_OBJ, (st.st_mode >> 6) & 7,
                                 ACL_UNDEFINED_ID };
      e[1] = (struct acl_entry){ ACL_GROUP_OBJ, (st.st_mode >> 3) & 7,
                                 ACL_UNDEFINED_ID };
      e[2] = (struct acl_entry){ ACL_OTHER, st.st_mode & 7, ACL_UNDEFINED_ID };
      *n = 3;
      return 0;
    }
  memcpy (&v, buf, 4);
  if (len < 4 || (len - 4) % 8 != 0 || le32toh (v) != ACL_XATTR_VERSION)
    {
      errno = EPROTO;
      return -1;
    }
  for (ssize_t off = 4; off < len; off += 8)
    {
      uint16_t tag, perm;
      uint32_t id;

      memcpy (&tag, buf + off, 2);
      memcpy (&perm, buf + off + 2, 2);
      memcpy (&id, buf + off + 4, 4);
      e[(*n)++]
          = (struct acl_entry){ le16toh (tag), le16toh (perm), le32toh (id) };
    }
  return 0;
}

/* Give UID execute on directory FD, keeping every other entry. */
static int
grant_pass (int fd, uid_t uid)
{
  struct acl_entry e[ACL_MAX_ENTRIES + 2];
  unsigned char buf[4 + 8 * (ACL_MAX_ENTRIES + 2)];
  size_t n, i, mask = SIZE_MAX, user = SIZE_MAX;
  uint16_t group_class = 0;
  uint32_t v = htole32 (ACL_XATTR_VERSION);

  if (read_acl (fd, e, &n) == -1)
    return -1;
  for (i = 0; i < n; i++)
    if (e[i].tag == ACL_USER && e[i].id == (uint32_t)uid)
      user = i;
    else if (e[i].tag == ACL_MASK)
      mask = i;
  if (user != SIZE_MAX && (e[user].perm & 1) && mask != SIZE_MAX
      && (e[mask].perm & 1))
    return 0; /* already */
  if (user == SIZE_MAX)
    {
      user = n++;
      e[user] = (struct acl_entry){ ACL_USER, 0, (uint32_t)uid };
    }
  e[user].perm |= 1;
  /* The mask bounds every named entry and the owning group: the union
   * of them, so that nobody gains anything but UID its execute.
   */
  for (i = 0; i < n; i++)
    if (e[i].tag == ACL_USER || e[i].tag == ACL_GROUP_OBJ
        || e[i].tag == ACL_GROUP)
      group_class |= e[i].perm;
  if (mask == SIZE_MAX)
    {
      mask = n++;
      e[mask] = (struct acl_entry){ ACL_MASK, 0, ACL_UNDEFINED_ID };
    }
  e[mask].perm = group_class;
  qsort (e, n, sizeof e[0], entry_order);
  memcpy (buf, &v, 4);
  for (i = 0; i < n; i++)
    {
      uint16_t tag = htole16 (e[i].tag), perm = htole16 (e[i].perm);
      uint32_t id = htole32 (e[i].id);

      memcpy (buf + 4 + 8 * i, &tag, 2);
      memcpy (buf + 4 + 8 * i + 2, &perm, 2);
      memcpy (buf + 4 + 8 * i + 4, &id, 4);
    }
  return fsetxattr (fd, ACL_XATTR, buf, 4 + 8 * n, 0);
}

int
qemu_user_grant (const char *run_dir, const char *name,
                 const struct qemu_user *u, char *why, size_t len)
{
  const char *below[2] = { "vms", name };
  char shown[PATH_MAX];
  int dir, next, e;

  if (!qemu_user_is_other (u))
    return 0;
  snprintf (shown, sizeof shown, "%s", run_dir);
  dir = open (run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; dir != -1 && grant_pass (dir, u->uid) == 0; i++)
    {
      if (i == 2)
        {
          close (dir);
          return 0;
        }
      next = openat (dir, below[i],
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (dir);
      dir = next;
      snprintf (shown + strlen (shown), sizeof shown - strlen (shown), "/%s",
                below[i]);
    }
  e = errno;
  if (dir != -1)
    close (dir);
  snprintf (why, len, "QEMU runs as uid %u and cannot be let through %s: %s%s",
            (unsigned)u->uid, shown, strerror (e),
            e == EOPNOTSUPP ? " (the file system has no POSIX ACLs: put "
                              "run-dir and scratch-dir where it can go)"
                            : "");
  return -1;
}
