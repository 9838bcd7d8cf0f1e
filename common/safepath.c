/* pullback: checking paths that an API client names.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "safepath.h"

bool
safepath_plain (const char *path, char *why, size_t len)
{
  size_t n = strlen (path);
  const char *p, *c;

  if (path[0] != '/')
    {
      snprintf (why, len, "must be an absolute path");
      return false;
    }
  if (n >= PATH_MAX)
    {
      snprintf (why, len, "is longer than %d bytes", PATH_MAX - 1);
      return false;
    }
  for (p = path; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      {
        snprintf (why, len, "contains a control character");
        return false;
      }
  if (n == 1)
    return true;
  if (path[n - 1] == '/')
    {
      snprintf (why, len, "must not end with '/'");
      return false;
    }
  /* Each component, after its '/'. */
  for (c = path + 1;; c = p + 1)
    {
      size_t cl;

      p = strchr (c, '/');
      cl = p ? (size_t)(p - c) : strlen (c);
      if (cl == 0)
        {
          snprintf (why, len, "must not contain '//'");
          return false;
        }
      if ((cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
        {
          snprintf (why, len, "must not contain '.' or '..' components");
          return false;
        }
      if (p == NULL)
        break;
    }
  return true;
}

bool
safepath_within (const char *path, const char *root)
{
  size_t n = strlen (root);

  if (strcmp (root, "/") == 0)
    return path[0] == '/';
  return strncmp (path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

const char *
safepath_type_name (mode_t type)
{
  switch (type & S_IFMT)
    {
    case S_IFSOCK:
      return "socket";
    case S_IFDIR:
      return "directory";
    case S_IFREG:
      return "regular file";
    case S_IFLNK:
      return "symbolic link";
    case S_IFIFO:
      return "FIFO";
    case S_IFCHR:
      return "character device";
    case S_IFBLK:
      return "block device";
    }
  return "file of unknown type";
}

static bool
forbidden_id (const struct stat *st, const struct safepath_id *forbidden,
              size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (st->st_dev == forbidden[i].dev && st->st_ino == forbidden[i].ino)
      return true;
  return false;
}

enum safepath_result
safepath_check (const char *path, const char *const *roots, size_t nroots,
                mode_t type, const struct safepath_id *forbidden,
                size_t nforbidden, int *fd, char *why, size_t len)
{
  const char *root = NULL, *c, *p;
  CLEANUP_CLOSE int cur = -1;
  char comp[NAME_MAX + 1];
  struct stat st;

  if (fd)
    *fd = -1;
  if (!safepath_plain (path, why, len))
    return SAFEPATH_INVALID;
  for (size_t i = 0; i < nroots && root == NULL; i++)
    if (safepath_within (path, roots[i]))
      root = roots[i];
  if (root == NULL)
    {
      snprintf (why, len,
                nroots ? "is not under any of the allowed-roots"
                       : "names a path, and no allowed-roots are configured");
      return SAFEPATH_NOT_ALLOWED;
    }

  cur = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cur == -1 || fstat (cur, &st) == -1)
    {
      snprintf (why, len, "allowed root %s: %s", root, strerror (errno));
      return SAFEPATH_ERROR;
    }
  if (forbidden_id (&st, forbidden, nforbidden))
    {
      snprintf (why, len, "is one of pullbackd's own files or directories");
      return SAFEPATH_NOT_ALLOWED;
    }

  /* The components below the root, one at a time. */
  c = path + (strcmp (root, "/") == 0 ? 0 : strlen (root));
  while (*c == '/')
    {
      int next;
      size_t cl;

      c++;
      p = strchr (c, '/');
      cl = p ? (size_t)(p - c) : strlen (c);
      if (cl > NAME_MAX)
        {
          snprintf (why, len, "has a component longer than %d bytes",
                    NAME_MAX);
          return SAFEPATH_INVALID;
        }
      memcpy (comp, c, cl);
      comp[cl] = '\0';
      c += cl;

      next = openat (cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (next == -1)
        {
          int e = errno;

          snprintf (why, len, "%s %.*s: %s",
                    e == ENOENT ? "does not exist:" : "cannot be checked:",
                    (int)(c - path), path, strerror (e));
          return e == ENOENT ? SAFEPATH_NOT_FOUND : SAFEPATH_ERROR;
        }
      close (cur);
      cur = next;
      if (fstat (cur, &st) == -1)
        {
          snprintf (why, len, "cannot be checked: %s", strerror (errno));
          return SAFEPATH_ERROR;
        }
      if (S_ISLNK (st.st_mode))
        {
          snprintf (why, len, "goes through a symbolic link (%.*s)",
                    (int)(c - path), path);
          return SAFEPATH_NOT_ALLOWED;
        }
      if (forbidden_id (&st, forbidden, nforbidden))
        {
          snprintf (why, len,
                    "is or lies in one of pullbackd's own files or "
                    "directories (%.*s)",
                    (int)(c - path), path);
          return SAFEPATH_NOT_ALLOWED;
        }
      if (*c == '/' && !S_ISDIR (st.st_mode))
        {
          snprintf (why, len, "does not exist: %.*s is a %s", (int)(c - path),
                    path, safepath_type_name (st.st_mode));
          return SAFEPATH_NOT_FOUND;
        }
    }

  if ((st.st_mode & S_IFMT) != (type & S_IFMT))
    {
      snprintf (why, len, "is a %s, not a %s", safepath_type_name (st.st_mode),
                safepath_type_name (type));
      return SAFEPATH_WRONG_TYPE;
    }
  if (fd)
    *fd = TAKE_FD (cur);
  return SAFEPATH_OK;
}
