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
 * The keys file is pullbackd's (root's nbdkit reads it too) with an ACL
 * entry that lets QEMU read it.  The scratch files are given to QEMU's
 * user: it writes them.
 *
 * VMs whose QEMUs share a uid can reach each other's files, as they can
 * each other's disk images: separating them is the MAC layer's job
 * (sVirt), or one user per VM.
 *
 * The ACL is the kernel's xattr form (linux/posix_acl_xattr.h), written
 * through the descriptor, under one lock.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
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
  /* SO_PEERCRED tells who made the socket.  Under -runas that is root,
   * before QEMU dropped it: then /proc says who the process is now.
   */
  if (getsockopt (qmp_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
    return -1;
  if (cred.uid != 0)
    {
      /* Made by QEMU as the user it runs as. */
      u->uid = cred.uid;
      u->gid = cred.gid;
      u->known = true;
      return 0;
    }
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
  return u->known && u->uid != geteuid ();
}

#define ACL_XATTR "system.posix_acl_access"
#define ACL_XATTR_VERSION 2
#define ACL_MAX_ENTRIES 4096
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

/* RUN and RUN/vms are shared by the VMs' threads: a read-modify-write
 * of an ACL must not drop another thread's entry.
 */
static pthread_mutex_t acl_lock = PTHREAD_MUTEX_INITIALIZER;

static int
entry_order (const void *a, const void *b)
{
  const struct acl_entry *x = a, *y = b;

  if (x->tag != y->tag)
    return x->tag < y->tag ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The access ACL of FD, with room for 2 more entries: the stored one, or
 * the one its mode stands for.  *E is malloc'd (free it).  0, or -1 with
 * errno set.
 */
static int
read_acl (int fd, struct acl_entry **e, size_t *n)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  ssize_t len = fgetxattr (fd, ACL_XATTR, NULL, 0);
  struct stat st;
  uint32_t v;

  *e = NULL;
  *n = 0;
  if (len == -1 && errno != ENODATA)
    return -1;
  if (len == -1)
    {
      if (fstat (fd, &st) == -1 || (*e = calloc (5, sizeof **e)) == NULL)
        return -1;
      (*e)[0] = (struct acl_entry){ ACL_USER_OBJ, (st.st_mode >> 6) & 7,
                                    ACL_UNDEFINED_ID };
      (*e)[1] = (struct acl_entry){ ACL_GROUP_OBJ, (st.st_mode >> 3) & 7,
                                    ACL_UNDEFINED_ID };
      (*e)[2]
          = (struct acl_entry){ ACL_OTHER, st.st_mode & 7, ACL_UNDEFINED_ID };
      *n = 3;
      return 0;
    }
  if (len < 4 || (len - 4) % 8 != 0 || (len - 4) / 8 > ACL_MAX_ENTRIES)
    {
      errno = EPROTO;
      return -1;
    }
  buf = malloc (len);
  *e = calloc ((len - 4) / 8 + 2, sizeof **e);
  if (buf == NULL || *e == NULL)
    return -1;
  /* Under acl_lock, and nobody else writes our directories' ACLs: the
   * size has not changed since.
   */
  if (fgetxattr (fd, ACL_XATTR, buf, len) != len)
    {
      if (errno == 0 || errno == ERANGE)
        errno = EAGAIN;
      return -1;
    }
  memcpy (&v, buf, 4);
  if (le32toh (v) != ACL_XATTR_VERSION)
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
      (*e)[(*n)++]
          = (struct acl_entry){ le16toh (tag), le16toh (perm), le32toh (id) };
    }
  return 0;
}

static int
write_acl (int fd, struct acl_entry *e, size_t n)
{
  CLEANUP_FREE unsigned char *buf = malloc (4 + 8 * n);
  uint32_t v = htole32 (ACL_XATTR_VERSION);

  if (buf == NULL)
    return -1;
  qsort (e, n, sizeof e[0], entry_order);
  memcpy (buf, &v, 4);
  for (size_t i = 0; i < n; i++)
    {
      uint16_t tag = htole16 (e[i].tag), perm = htole16 (e[i].perm);
      uint32_t id = htole32 (e[i].id);

      memcpy (buf + 4 + 8 * i, &tag, 2);
      memcpy (buf + 4 + 8 * i + 2, &perm, 2);
      memcpy (buf + 4 + 8 * i + 4, &id, 4);
    }
  return fsetxattr (fd, ACL_XATTR, buf, 4 + 8 * n, 0);
}

/* Give UID the permission bits PERM on FD, and nobody anything more.
 * The mask bounds the owning group and every named entry, and so what
 * each can do is its stored bits within the mask.  Those stored bits
 * are first cut down to the old mask, then the mask gains PERM only:
 * what every other entry can do is unchanged.
 */
static int
grant (int fd, uid_t uid, uint16_t perm)
{
  CLEANUP_FREE struct acl_entry *e = NULL;
  size_t n, i, mask = SIZE_MAX, user = SIZE_MAX, group = SIZE_MAX;
  uint16_t old_mask;

  if (read_acl (fd, &e, &n) == -1)
    return -1;
  for (i = 0; i < n; i++)
    if (e[i].tag == ACL_USER && e[i].id == (uint32_t)uid)
      user = i;
    else if (e[i].tag == ACL_MASK)
      mask = i;
    else if (e[i].tag == ACL_GROUP_OBJ)
      group = i;
  if (group == SIZE_MAX)
    {
      errno = EPROTO;
      return -1;
    }
  /* Without a mask the owning group's bits are what it can do. */
  old_mask = mask != SIZE_MAX ? e[mask].perm : e[group].perm;
  if (user != SIZE_MAX && (e[user].perm & old_mask & perm) == perm)
    return 0; /* already */
  for (i = 0; i < n; i++)
    if (e[i].tag == ACL_USER || e[i].tag == ACL_GROUP_OBJ
        || e[i].tag == ACL_GROUP)
      e[i].perm &= old_mask;
  if (user == SIZE_MAX)
    {
      user = n++;
      e[user] = (struct acl_entry){ ACL_USER, 0, (uint32_t)uid };
    }
  e[user].perm |= perm;
  if (mask == SIZE_MAX)
    {
      mask = n++;
      e[mask] = (struct acl_entry){ ACL_MASK, 0, ACL_UNDEFINED_ID };
    }
  e[mask].perm = old_mask | perm;
  return write_acl (fd, e, n);
}

static int
grant_locked (int fd, uid_t uid, uint16_t perm)
{
  int r;

  pthread_mutex_lock (&acl_lock);
  r = grant (fd, uid, perm);
  pthread_mutex_unlock (&acl_lock);
  return r;
}

int
qemu_user_grant_read (int fd, const struct qemu_user *u)
{
  if (!qemu_user_is_other (u))
    return 0;
  return grant_locked (fd, u->uid, 4);
}

int
qemu_user_grant (const char *run_dir, const char *name,
                 const struct qemu_user *u, char *why, size_t len)
{
  const char *step[3] = { run_dir, "vms", name };
  char shown[PATH_MAX] = "";
  int dir = AT_FDCWD, next, e = 0;

  if (!qemu_user_is_other (u))
    return 0;
  for (size_t i = 0; i < 3 && e == 0; i++)
    {
      /* Below the run directory (the admin's path): never a symlink. */
      next
          = openat (dir, step[i],
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | (i ? O_NOFOLLOW : 0));
      if (next == -1 || grant_locked (next, u->uid, 1) == -1)
        e = errno;
      if (dir != AT_FDCWD)
        close (dir);
      dir = next;
      snprintf (shown + strlen (shown), sizeof shown - strlen (shown), "%s%s",
                i ? "/" : "", step[i]);
    }
  if (dir != -1)
    close (dir);
  if (e == 0)
    return 0;
  snprintf (why, len, "QEMU runs as uid %u and cannot be let through %s: %s%s",
            (unsigned)u->uid, shown, strerror (e),
            e == EOPNOTSUPP ? " (the file system has no POSIX ACLs: put "
                              "run-dir and scratch-dir where it can go)"
                            : "");
  return -1;
}
