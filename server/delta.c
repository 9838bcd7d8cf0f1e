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
 * When the VM's NBD transport is TCP, nbdkit listens there instead: on
 * nbd-address, a port of nbd-ports from nbdnet's daemon-wide table, with
 * the TLS of QEMU's server (the same PSK keys file, or nbd-tls-x509-dir),
 * and reads QEMU's export with pullbackd's own client credentials (as
 * GET .../extents does).  nbdkit cannot check client DNs, so with
 * nbd-tls-allowed-dn there is no delta view (and the answer says why)
 * rather than one open to any certificate of the CA.
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

#include "answer.h"
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
/* nbdkit worker threads per client connection of a delta view. */
#define DELTA_THREADS "4"

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

  if (d->delta_pid <= 0)
    return NULL;
  if (d->delta_port > 0)
    return nbdnet_uri_port (vm, d->delta_port, "");
  if (delta_file (vm, d->index, "sock", sock, sizeof sock) == -1)
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
  if (d->delta_port > 0)
    {
      nbdnet_port_give (d->delta_port);
      d->delta_port = 0;
    }
  if (delta_file (vm, d->index, "sock", path, sizeof path) == 0)
    unlink (path);
  if (delta_file (vm, d->index, "pid", path, sizeof path) == 0)
    unlink (path);
}

/* The arguments of nbdkit: where it listens, with which TLS, and how
 * the plugin reaches QEMU's export.
 */
struct delta_args
{
  const char *argv[24];
  size_t n;
  char listen[PATH_MAX + 8], port[16], tls_file[PATH_MAX + 32];
  char up_creds[PATH_MAX + 32];
  char *uri, *ctx;
};

static void
arg (struct delta_args *a, const char *s)
{
  if (a->n + 1 < sizeof a->argv / sizeof a->argv[0])
    a->argv[a->n++] = s;
}

/* Why the delta view cannot run on the VM's TCP transport, or NULL;
 * else the plugin's credentials for QEMU's export in A->up_creds.
 */
static const char *
tcp_tls (const struct vm *vm, struct delta_args *a)
{
  const struct nbd_net_conf *c = &vm->nbdnet->conf;
  struct backup_answer client = { 0 };
  const char *why = NULL;

  if (c->tls == NBD_TLS_OFF)
    return NULL;
  if (c->tls == NBD_TLS_X509 && c->allowed_dn.len)
    return "nbd-tls-allowed-dn is set and nbdkit cannot check client DNs: "
           "no delta view rather than one open to every certificate of the "
           "CA";
  if (nbdnet_add_client (vm, &client) == -1)
    why = "out of memory";
  else if (client.client_unavailable)
    why = NBDNET_NO_CLIENT_CERT;
  else if (client.client_psk_file)
    snprintf (a->up_creds, sizeof a->up_creds, "tls-psk=%s",
              client.client_psk_file);
  else if (client.client_certs)
    snprintf (a->up_creds, sizeof a->up_creds, "tls-certificates=%s",
              client.client_certs);
  else
    why = "no client credentials for QEMU's export";
  free (client.client_unavailable);
  free (client.client_psk_file);
  free (client.client_certs);
  return why;
}

/* nbdkit's listening and TLS arguments for the VM's TCP transport (the
 * port in D->delta_port).  0, or -1 (logged).
 */
static int
tcp_args (const struct vm *vm, struct backup_disk *d, struct delta_args *a)
{
  const struct nbd_net_conf *c = &vm->nbdnet->conf;

  d->delta_port = nbdnet_port_take (vm);
  if (d->delta_port == -1)
    {
      d->delta_port = 0;
      log_warnx ("VM %s: no free port in nbd-ports %d-%d for the delta view "
                 "of disk %s",
                 vm->name, c->port_lo, c->port_hi, d->name);
      return -1;
    }
  snprintf (a->listen, sizeof a->listen, "%s", c->address);
  snprintf (a->port, sizeof a->port, "%d", d->delta_port);
  arg (a, "-i");
  arg (a, a->listen);
  arg (a, "-p");
  arg (a, a->port);
  if (c->tls == NBD_TLS_OFF)
    return 0;
  arg (a, "--tls=require");
  if (c->tls == NBD_TLS_PSK)
    snprintf (a->tls_file, sizeof a->tls_file, "--tls-psk=%s/vms/%s/%s",
              vm->ctx->run_dir, vm->name, PB_NBD_PSK_FILE);
  else
    snprintf (a->tls_file, sizeof a->tls_file, "--tls-certificates=%s",
              c->x509_dir);
  arg (a, a->tls_file);
  if (c->tls == NBD_TLS_X509 && c->verify_peer)
    arg (a, "--tls-verify-peer");
  return 0;
}

/* Start nbdkit for incremental disk D.  0, or -1 (logged). */
static int
start_one (struct vm *vm, struct backup_disk *d)
{
  char sock[PATH_MAX], pidfile[PATH_MAX];
  struct disk_objects obj;
  struct delta_args a = { .n = 0 };
  CLEANUP_FREE char *uri = nbd_uri (vm, d->name);
  int64_t deadline = deadline_after (READY_MS);
  bool tcp = nbdnet_tcp (vm);
  pid_t pid;

  if (tcp && (d->delta_why = tcp_tls (vm, &a)) != NULL)
    {
      log_info ("VM %s: no delta view of disk %s: %s", vm->name, d->name,
                d->delta_why);
      return -1;
    }
  if (uri == NULL || delta_file (vm, d->index, "sock", sock, sizeof sock) == -1
      || delta_file (vm, d->index, "pid", pidfile, sizeof pidfile) == -1)
    return -1;
  unlink (sock);
  unlink (pidfile);
  backup_disk_objects (d, &obj);
  if (asprintf (&a.uri, "uri=%s", uri) == -1)
    a.uri = NULL;
  if (asprintf (&a.ctx, "context=qemu:dirty-bitmap:%s", obj.tmp_bitmap) == -1)
    a.ctx = NULL;
  arg (&a, vm->ctx->nbdkit);
  arg (&a, "--exit-with-parent");
  arg (&a, "-f");
  arg (&a, "-r");
  /* As many worker threads per client connection as the requests worth
   * having in flight to a local QEMU: nbdkit's default of 16 only adds
   * hand-offs (measured with nbdcopy --requests=4 through the view:
   * 0.88 of a direct libnbd reader with 16, 0.93 with 4).
   */
  arg (&a, "--threads=" DELTA_THREADS);
  arg (&a, "-P");
  arg (&a, pidfile);
  if (!tcp)
    {
      arg (&a, "-U");
      arg (&a, sock);
    }
  if (a.uri == NULL || a.ctx == NULL || (tcp && tcp_args (vm, d, &a) == -1))
    {
      free (a.uri);
      free (a.ctx);
      return -1;
    }
  arg (&a, vm->ctx->delta_plugin);
  arg (&a, a.uri);
  arg (&a, "view=delta");
  arg (&a, a.ctx);
  if (a.up_creds[0])
    arg (&a, a.up_creds);
  a.argv[a.n] = NULL;

  pid = fork ();
  if (pid == -1)
    {
      log_warn ("VM %s: fork for nbdkit", vm->name);
      free (a.uri);
      free (a.ctx);
      stop_one (vm, d);
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
      execvp (a.argv[0], (char *const *)a.argv);
      _exit (127);
    }
  free (a.uri);
  free (a.ctx);
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
  log_debug ("VM %s: delta view of disk %s on %s%s (nbdkit %ld)", vm->name,
             d->name, tcp ? "port " : "", tcp ? a.port : sock, (long)pid);
  return 0;
}

void
delta_start (struct vm *vm, struct backup *b)
{
  if (vm->ctx->delta_plugin == NULL)
    return;
  /* A disk without its delta view is still exported: the view is a
   * convenience for plain tools, not part of the backup.
   */
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->disks[i].mode == DISK_INCREMENTAL)
      start_one (vm, &b->disks[i]);
}

void
delta_stop (struct vm *vm, struct backup *b)
{
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->disks[i].delta_pid > 0 || b->disks[i].delta_port > 0)
      stop_one (vm, &b->disks[i]);
}

void
delta_recover (struct vm *vm)
{
  char dir[PATH_MAX], prefix[] = "delta-";
  DIR *d;
  struct dirent *e;

  /* nbdkit died with the daemon (--exit-with-parent); its files stay. */
  if (vm_run_dir (vm, dir, sizeof dir) == -1)
    return;
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
