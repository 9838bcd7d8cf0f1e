/* pullback: a VM's run directory, <run-dir>/vms/<vm>.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "rundir.h"

/* <RUN_DIR>/vms, or -1. */
static int
open_vms (const char *run_dir)
{
  CLEANUP_CLOSE int run = open (run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (run == -1)
    return -1;
  return openat (run, "vms", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int
rundir_make (const char *run_dir, const char *name)
{
  CLEANUP_CLOSE int vms = open_vms (run_dir);
  CLEANUP_CLOSE int fd = -1;

  if (vms == -1)
    return -1;
  if (mkdirat (vms, name, 0750) == -1 && errno != EEXIST)
    return -1;
  /* What is there must be a directory, not a symlink to one. */
  fd = openat (vms, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1)
    {
      if (errno == ELOOP)
        errno = ENOTDIR;
      return -1;
    }
  return 0;
}

/* pullback-NAME.N.qcow2 (backup.c names the scratch files so). */
static bool
ours (const char *entry, const char *name)
{
  size_t n = strlen (name);
  const char *p;

  if (strcmp (entry, "nbd.sock") == 0 || strcmp (entry, "keys.psk") == 0)
    return true;
  if (strncmp (entry, "pullback-", 9) != 0 || strncmp (entry + 9, name, n) != 0
      || entry[9 + n] != '.')
    return false;
  p = entry + 9 + n + 1;
  if (!isdigit ((unsigned char)*p))
    return false;
  while (isdigit ((unsigned char)*p))
    p++;
  return strcmp (p, ".qcow2") == 0;
}

int
rundir_remove (const char *run_dir, const char *name)
{
  CLEANUP_CLOSE int vms = open_vms (run_dir);
  int fd;
  DIR *d;
  struct dirent *e;
  bool other = false;

  if (vms == -1)
    {
      log_warn ("%s/vms", run_dir);
      return -1;
    }
  fd = openat (vms, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1)
    {
      if (errno == ENOENT)
        return 0;
      log_warn ("VM %s: run directory %s/vms/%s", name, run_dir, name);
      return -1;
    }
  d = fdopendir (fd);
  if (d == NULL)
    {
      log_warn ("VM %s: run directory %s/vms/%s", name, run_dir, name);
      close (fd);
      return -1;
    }
  while ((errno = 0, e = readdir (d)) != NULL)
    {
      struct stat st;

      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      /* A name of ours, and not a directory: unlinkat removes the entry
       * itself, never what a symlink points to.
       */
      if (!ours (e->d_name, name)
          || fstatat (fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1
          || S_ISDIR (st.st_mode) || unlinkat (fd, e->d_name, 0) == -1)
        other = true;
    }
  closedir (d);
  if (other)
    {
      log_warnx ("VM %s: keeping %s/vms/%s: it holds files pullbackd did "
                 "not make",
                 name, run_dir, name);
      return -1;
    }
  if (unlinkat (vms, name, AT_REMOVEDIR) == -1)
    {
      log_warn ("VM %s: removing %s/vms/%s", name, run_dir, name);
      return -1;
    }
  log_debug ("VM %s: removed its run directory", name);
  return 0;
}
