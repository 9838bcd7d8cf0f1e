/* pullback: the delta view of incremental disks, served by nbdkit.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * nbdkit cannot carry a qemu:dirty-bitmap context, so plain nbdcopy and
 * qemu-img cannot pull an incremental from QEMU's export.  For every
 * incremental disk of a ready backup pullbackd runs one nbdkit with
 * nbdkit-pullback-plugin in front of the disk's export (view=delta: the
 * dirty ranges as data, the rest as holes of zeroes), on
 * <run>/vms/<vm>/delta-I.sock, and publishes its URI as delta_uri.
 *
 * nbdkit runs with --exit-with-parent: it dies with the thread that
 * started it (the VM's owner), so a crash of pullbackd leaves no process;
 * the files it leaves are removed by name at the next connect.  It is
 * stopped before the exports go, so its clients see a clean end.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "names.h"
#include "nbd.h"
#include "nbdnet.h"
#include "nbduri.h"

#define READY_MS 20000
#define STOP_MS 5000

static int
delta_file (const struct vm *vm, int index, const char *suffix, char *buf,
            size_t len)
{
  if ((size_t)snprintf (buf, len, "%s/vms/%s/delta-%d.%s", vm->ctx->run_dir,
                        vm->name, index, suffix)
      >= len)
    return -1;
  return 0;
}

char *
delta_uri (const struct vm *vm, const struct backup_disk *d)
{
  char sock[PATH_MAX];

  if (d->delta_pid <= 0
      || delta_file (vm, d->index, "sock", sock, sizeof sock) == -1)
    return NULL;
  return nbd_uri_unix ("", sock);
}

/* Is the pid file PATH written (nbdkit is serving)? */
static bool
pidfile_written (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 && st.st_size > 0;
}

/* Wait up to MS for PID to exit; true if it has (and is reaped). */
static bool
reap (pid_t pid, int ms)
{
  int64_t deadline = deadline_after (ms);

  for (;;)
    {
      pid_t r = waitpid (pid, NULL, WNOHANG);

      if (r == pid || (r == -1 && errno == ECHILD))
        return true;
      if (deadline_remaining (deadline) == 0)
        return false;
      usleep (10 * 1000);
    }
}

static void
stop_one (struct vm *vm, struct backup_disk *d)
{
  char path[PATH_MAX];

  if (d->delta_pid > 0)
    {
      kill (d->delta_pid, SIGTERM);
      if (!reap (d->delta_pid, STOP_MS))
        {
          log_warnx ("VM %s: nbdkit %ld of disk %s did not stop; killing it",
                     vm->name, (long)d->delta_pid, d->name);
          kill (d->delta_pid, SIGKILL);
          reap (d->delta_pid, STOP_MS);
        }
      d->delta_pid = 0;
    }
  if (delta_file (vm, d->index, "sock", path, sizeof path) == 0)
    unlink (path);
  if (delta_file (vm, d->index, "pid", path, sizeof path) == 0)
    unlink (path);
}

/* Start nbdkit for incremental disk D.  0, or -1 (logged). */
static int
start_one (struct vm *vm, const struct backup *b, struct backup_disk *d)
{
  char sock[PATH_MAX], pidfile[PATH_MAX];
  struct disk_objects obj;
  CLEANUP_FREE char *uri_arg = NULL, *ctx_arg = NULL;
  CLEANUP_FREE char *uri = nbd_uri (vm, d->name);
  int64_t deadline = deadline_after (READY_MS);
  pid_t pid;

  (void)b;
  if (uri == NULL || delta_file (vm, d->index, "sock", sock, sizeof sock) == -1
      || delta_file (vm, d->index, "pid", pidfile, sizeof pidfile) == -1)
    return -1;
  unlink (sock);
  unlink (pidfile);
  backup_disk_objects (d, &obj);
  if (asprintf (&uri_arg, "uri=%s", uri) == -1
      || asprintf (&ctx_arg, "context=qemu:dirty-bitmap:%s", obj.tmp_bitmap)
             == -1)
    {
      uri_arg = ctx_arg = NULL;
      return -1;
    }

  pid = fork ();
  if (pid == -1)
    {
      log_warn ("VM %s: fork for nbdkit", vm->name);
      return -1;
    }
  if (pid == 0)
    {
      int null = open ("/dev/null", O_RDONLY);
      sigset_t none;

      /* pullbackd blocks SIGTERM for sigwait and ignores SIGPIPE; both
       * would be inherited, and nbdkit would ignore its stop signal and
       * the death of its parent (--exit-with-parent sends SIGTERM).
       */
      sigemptyset (&none);
      pthread_sigmask (SIG_SETMASK, &none, NULL);
      signal (SIGPIPE, SIG_DFL);
      if (null >= 0)
        dup2 (null, STDIN_FILENO);
      execlp (vm->ctx->nbdkit, vm->ctx->nbdkit, "--exit-with-parent", "-f",
              "-r", "-U", sock, "-P", pidfile, vm->ctx->delta_plugin, uri_arg,
              "view=delta", ctx_arg, (char *)NULL);
      _exit (127);
    }
  d->delta_pid = pid;
  while (!pidfile_written (pidfile))
    {
      if (waitpid (pid, NULL, WNOHANG) == pid)
        {
          log_warnx ("VM %s: nbdkit for the delta view of disk %s exited "
                     "before serving (see its message above)",
                     vm->name, d->name);
          d->delta_pid = 0;
          stop_one (vm, d);
          return -1;
        }
      if (deadline_remaining (deadline) == 0)
        {
          log_warnx ("VM %s: nbdkit for the delta view of disk %s is not "
                     "ready after %d ms",
                     vm->name, d->name, READY_MS);
          stop_one (vm, d);
          return -1;
        }
      usleep (5 * 1000);
    }
  log_debug ("VM %s: delta view of disk %s on %s (nbdkit %ld)", vm->name,
             d->name, sock, (long)pid);
  return 0;
}

void
delta_start (struct vm *vm, struct backup *b)
{
  if (vm->ctx->delta_plugin == NULL)
    return;
  /* The plugin has no TLS credentials for QEMU's export (yet). */
  if (nbdnet_tcp (vm) && vm->nbdnet->conf.tls != NBD_TLS_OFF)
    return;
  /* A disk without its delta view is still exported: the view is a
   * convenience for plain tools, not part of the backup.
   */
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->disks[i].mode == DISK_INCREMENTAL)
      start_one (vm, b, &b->disks[i]);
}

void
delta_stop (struct vm *vm, struct backup *b)
{
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->disks[i].delta_pid > 0)
      stop_one (vm, &b->disks[i]);
}

void
delta_recover (struct vm *vm)
{
  char dir[PATH_MAX], prefix[] = "delta-";
  DIR *d;
  struct dirent *e;

  /* nbdkit died with the daemon (--exit-with-parent); its files stay. */
  snprintf (dir, sizeof dir, "%s/vms/%s", vm->ctx->run_dir, vm->name);
  d = opendir (dir);
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    if (strncmp (e->d_name, prefix, strlen (prefix)) == 0
        && (strstr (e->d_name, ".sock") || strstr (e->d_name, ".pid")))
      {
        struct stat st;

        if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
            && (S_ISSOCK (st.st_mode) || S_ISREG (st.st_mode)))
          unlinkat (dirfd (d), e->d_name, 0);
      }
  closedir (d);
}
