/* pullback: the state directory, one JSON file per VM.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "seterr.h"
#include "names.h"
#include "state.h"

#define SUFFIX ".json"
#define TMP_SUFFIX ".json.tmp"

/* <dir>/vms/<vm><suffix>, refusing anything but a valid VM id. */
static int
vm_path (char *buf, size_t len, const char *dir, const char *vm,
         const char *suffix, char *err, size_t errlen)
{
  char why[128];

  if (!name_valid (NAME_VM, vm, why, sizeof why))
    {
      seterr (err, errlen, "%s", why);
      return -1;
    }
  if ((size_t)snprintf (buf, len, "%s/vms/%s%s", dir, vm, suffix) >= len)
    {
      seterr (err, errlen, "state path too long");
      return -1;
    }
  return 0;
}

static int
mkdir_p (const char *path, mode_t mode)
{
  char buf[PATH_MAX];
  size_t len = strlen (path);

  if (len == 0 || len >= sizeof buf)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  memcpy (buf, path, len + 1);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (buf, 0755) == -1 && errno != EEXIST)
          return -1;
        *p = '/';
      }
  if (mkdir (buf, mode) == -1 && errno != EEXIST)
    return -1;
  return 0;
}

static int
fsync_dir (const char *path)
{
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1)
    return -1;
  return fsync (fd);
}

int
state_init (const char *dir, char *err, size_t errlen)
{
  char vms[PATH_MAX];
  DIR *d;
  struct dirent *e;

  if ((size_t)snprintf (vms, sizeof vms, "%s/vms", dir) >= sizeof vms)
    {
      seterr (err, errlen, "%s: path too long", dir);
      return -1;
    }
  if (mkdir_p (dir, 0700) == -1 || mkdir_p (vms, 0700) == -1)
    {
      seterr (err, errlen, "create %s: %s", vms, strerror (errno));
      return -1;
    }

  /* A crash between write and rename leaves a temporary file. */
  d = opendir (vms);
  if (d == NULL)
    {
      seterr (err, errlen, "%s: %s", vms, strerror (errno));
      return -1;
    }
  while ((e = readdir (d)) != NULL)
    {
      size_t n = strlen (e->d_name);

      if (n > strlen (TMP_SUFFIX)
          && strcmp (e->d_name + n - strlen (TMP_SUFFIX), TMP_SUFFIX) == 0)
        unlinkat (dirfd (d), e->d_name, 0);
    }
  closedir (d);
  return 0;
}

int
state_save (const char *dir, const char *vm, const json_t *doc, char *err,
            size_t errlen)
{
  char path[PATH_MAX], tmp[PATH_MAX], vms[PATH_MAX];
  CLEANUP_FREE char *text = NULL;
  CLEANUP_CLOSE int fd = -1;
  size_t len, off = 0;

  if (vm_path (path, sizeof path, dir, vm, SUFFIX, err, errlen) == -1
      || vm_path (tmp, sizeof tmp, dir, vm, TMP_SUFFIX, err, errlen) == -1)
    return -1;
  snprintf (vms, sizeof vms, "%s/vms", dir);

  text = json_dumps (doc, JSON_INDENT (2) | JSON_SORT_KEYS);
  if (text == NULL)
    {
      seterr (err, errlen, "encode state of %s: out of memory", vm);
      return -1;
    }
  len = strlen (text);

  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1)
    {
      seterr (err, errlen, "%s: %s", tmp, strerror (errno));
      return -1;
    }
  while (off < len)
    {
      ssize_t n = write (fd, text + off, len - off);

      if (n == -1 && errno == EINTR)
        continue;
      if (n == -1)
        {
          seterr (err, errlen, "write %s: %s", tmp, strerror (errno));
          unlink (tmp);
          return -1;
        }
      off += (size_t)n;
    }
  if (write (fd, "\n", 1) != 1 || fsync (fd) == -1)
    {
      seterr (err, errlen, "write %s: %s", tmp, strerror (errno));
      unlink (tmp);
      return -1;
    }
  if (rename (tmp, path) == -1)
    {
      seterr (err, errlen, "rename %s: %s", tmp, strerror (errno));
      unlink (tmp);
      return -1;
    }
  if (fsync_dir (vms) == -1)
    {
      seterr (err, errlen, "fsync %s: %s", vms, strerror (errno));
      return -1;
    }
  return 0;
}

json_t *
state_load (const char *dir, const char *vm, char *err, size_t errlen)
{
  char path[PATH_MAX];
  json_error_t jerr;
  json_t *doc;

  if (err && errlen)
    err[0] = '\0';
  if (vm_path (path, sizeof path, dir, vm, SUFFIX, err, errlen) == -1)
    return NULL;
  if (access (path, F_OK) == -1 && errno == ENOENT)
    return NULL;
  doc = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL || !json_is_object (doc))
    {
      seterr (err, errlen, "%s:%d: %s", path, jerr.line,
              doc ? "not a JSON object" : jerr.text);
      json_decref (doc);
      return NULL;
    }
  return doc;
}

int
state_set_aside (const char *dir, const char *vm, char *newname, size_t len,
                 char *err, size_t errlen)
{
  char path[PATH_MAX], aside[PATH_MAX], vms[PATH_MAX];

  if (vm_path (path, sizeof path, dir, vm, SUFFIX, err, errlen) == -1)
    return -1;
  if ((size_t)snprintf (aside, sizeof aside, "%s.rejected-%lld", path,
                        (long long)time (NULL))
      >= sizeof aside)
    {
      seterr (err, errlen, "state path too long");
      return -1;
    }
  /* link + unlink, not rename: an older file set aside in the same
   * second is never overwritten.
   */
  if (link (path, aside) == -1)
    {
      if (errno == ENOENT)
        return 0;
      seterr (err, errlen, "link %s: %s", aside, strerror (errno));
      return -1;
    }
  if (unlink (path) == -1)
    {
      seterr (err, errlen, "unlink %s: %s", path, strerror (errno));
      return -1;
    }
  snprintf (vms, sizeof vms, "%s/vms", dir);
  fsync_dir (vms);
  if (newname)
    snprintf (newname, len, "%s", aside);
  return 0;
}

int
state_remove (const char *dir, const char *vm, char *err, size_t errlen)
{
  char path[PATH_MAX], vms[PATH_MAX];

  if (vm_path (path, sizeof path, dir, vm, SUFFIX, err, errlen) == -1)
    return -1;
  if (unlink (path) == -1 && errno != ENOENT)
    {
      seterr (err, errlen, "unlink %s: %s", path, strerror (errno));
      return -1;
    }
  snprintf (vms, sizeof vms, "%s/vms", dir);
  fsync_dir (vms);
  return 0;
}

int
state_foreach (const char *dir, void (*fn) (const char *vm, void *opaque),
               void *opaque, char *err, size_t errlen)
{
  char vms[PATH_MAX];
  DIR *d;
  struct dirent *e;

  snprintf (vms, sizeof vms, "%s/vms", dir);
  d = opendir (vms);
  if (d == NULL)
    {
      seterr (err, errlen, "%s: %s", vms, strerror (errno));
      return -1;
    }
  while ((e = readdir (d)) != NULL)
    {
      char name[NAME_MAX + 1];
      size_t n = strlen (e->d_name);

      if (n <= strlen (SUFFIX)
          || strcmp (e->d_name + n - strlen (SUFFIX), SUFFIX) != 0)
        continue;
      memcpy (name, e->d_name, n - strlen (SUFFIX));
      name[n - strlen (SUFFIX)] = '\0';
      if (name_valid (NAME_VM, name, NULL, 0))
        fn (name, opaque);
    }
  closedir (d);
  return 0;
}
