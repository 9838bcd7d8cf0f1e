/* pullback: QEMU's NBD server for a VM.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * QEMU runs one NBD server per process.  We start it lazily on a unix
 * socket under the run directory, preferably on a socket we create and
 * pass with getfd (qemu-system) so that we set its mode; qemu-storage-
 * daemon has no getfd, so there QEMU makes the socket and we chmod it.
 * A server we did not start is used only if the VM's settings name its
 * address (nbd=...), and never stopped.
 *
 * Whether the server QEMU runs is ours is known from our socket: after a
 * restart of the daemon, a server of ours is one that answers on it.  A
 * socket file left by a failed start or a dead QEMU answers nobody, so
 * every failure removes what it made, and recovery removes what it finds
 * dead.
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "nbd.h"
#include "nbdnet.h"
#include "nbduri.h"
#include "unixsock.h"

#define SOCKET_MODE 0660

int
nbd_socket_path (const struct vm *vm, char *buf, size_t len)
{
  if ((size_t)snprintf (buf, len, "%s/vms/%s/nbd.sock", vm->ctx->run_dir,
                        vm->name)
      >= len)
    return -1;
  return 0;
}

/* Drop a listening socket we passed with getfd that no server took
 * (QEMU keeps it until then, and it would look alive).
 */
static void
close_passed_fd (struct vm *vm)
{
  if (vm->schema && qmp_schema_has_command (vm->schema, "closefd"))
    vm_qmp_quietly (vm, "closefd",
                    json_pack ("{s:s}", "fdname", PB_NBD_FDNAME));
}

int
nbd_start_failed (const struct vm *vm, const struct qmp_error *err,
                  struct reply *r)
{
  if (err->kind == QMP_ERR_QEMU && strstr (err->desc, "already running"))
    return reply_error (r, PB_ERR_CONFLICT, "nbd-server-busy",
                        "QEMU of VM %s already runs an NBD server that "
                        "pullbackd did not start; give its address in the "
                        "VM's nbd= setting to use it",
                        vm->name);
  return reply_error (r, qemu_errkind (err->kind), "qemu-error",
                      "starting the NBD server: %s", err->desc);
}

int
nbd_ensure_server (struct vm *vm, struct reply *r)
{
  char path[sizeof vm->nbd_socket];
  struct sockaddr_un addr;
  struct qmp_error err;
  bool passed = false;
  json_t *ret;

  if (vm->nbd_adopt || vm->nbd_ours)
    return 0;
  if (nbdnet_tcp (vm))
    return nbdnet_start (vm, r);
  /* QEMU makes the socket on qemu-storage-daemon: check the length here. */
  if (nbd_socket_path (vm, path, sizeof path) == -1
      || unix_sockaddr (path, &addr) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "path-too-long",
                        "NBD socket path for VM %s is too long", vm->name);

  if (vm->schema && qmp_schema_has_command (vm->schema, "getfd"))
    {
      CLEANUP_CLOSE int fd = unix_listen (path, SOCKET_MODE);

      if (fd == -1)
        return reply_error (r, PB_ERR_INTERNAL, "nbd-socket",
                            "creating NBD socket %s: %s", path,
                            strerror (errno));
      ret = qmp_execute_with_fd (vm->qmp, "getfd",
                                 json_pack ("{s:s}", "fdname", PB_NBD_FDNAME),
                                 fd, vm->ctx->qmp_timeout_ms, &err);
      if (ret)
        {
          json_decref (ret);
          passed = true;
          ret = vm_qmp (vm, "nbd-server-start",
                        json_pack ("{s:{s:s, s:{s:s}}}", "addr", "type", "fd",
                                   "data", "str", PB_NBD_FDNAME),
                        &err);
        }
    }
  else
    {
      unlink (path);
      ret = vm_qmp (vm, "nbd-server-start",
                    json_pack ("{s:{s:s, s:{s:s}}}", "addr", "type", "unix",
                               "data", "path", path),
                    &err);
      if (ret && chmod (path, SOCKET_MODE) == -1)
        log_warn ("VM %s: chmod %s", vm->name, path);
    }
  if (ret == NULL)
    {
      /* Nothing listens on PATH now: leave no file that looks like a
       * server of ours.
       */
      if (passed)
        close_passed_fd (vm);
      unlink (path);
      return nbd_start_failed (vm, &err, r);
    }
  json_decref (ret);
  vm->nbd_ours = true;
  snprintf (vm->nbd_socket, sizeof vm->nbd_socket, "%s", path);
  log_debug ("VM %s: NBD server on %s", vm->name, path);
  return 0;
}

void
nbd_recover (struct vm *vm)
{
  char path[sizeof vm->nbd_socket];

  /* A server on TCP recorded in the state file is ours. */
  nbdnet_recover (vm);
  if (vm->nbd_adopt || vm->nbd_ours
      || nbd_socket_path (vm, path, sizeof path) == -1)
    return;
  /* A daemon killed between getfd and nbd-server-start left QEMU holding
   * a socket that no server accepts on.
   */
  close_passed_fd (vm);
  switch (unix_listening (path))
    {
    case 0:
      if (unlink (path) == 0)
        log_info ("VM %s: removed stale NBD socket %s", vm->name, path);
      return;
    case -1:
      log_warn ("VM %s: NBD socket %s", vm->name, path);
      return;
    }

  /* A server answers on our socket: one we started in an earlier life. */
  vm->nbd_ours = true;
  snprintf (vm->nbd_socket, sizeof vm->nbd_socket, "%s", path);
  nbd_stop_if_idle (vm);
  if (vm->nbd_ours)
    {
      /* Someone else's exports are on it: keep it and use it. */
      log_info ("VM %s: keeping our NBD server at %s", vm->name, path);
    }
}

void
nbd_stop_if_idle (struct vm *vm)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *exports = NULL;
  size_t i;
  json_t *e;

  if (!vm->nbd_ours)
    return;
  /* Only NBD exports are on the server (vhost-user-blk or FUSE ones are
   * not).
   */
  exports = vm_qmp (vm, "query-block-exports", NULL, &err);
  if (exports == NULL)
    return;
  json_array_foreach (exports, i, e)
    {
      const char *type = json_string_value (json_object_get (e, "type"));

      if (type && strcmp (type, "nbd") == 0)
        return;
    }
  json_decref (vm_qmp (vm, "nbd-server-stop", NULL, &err));
  if (!nbdnet_stopped (vm))
    unlink (vm->nbd_socket);
  vm->nbd_ours = false;
}

char *
nbd_uri (const struct vm *vm, const char *export)
{
  const char *a = vm->nbd_adopt;

  if (a == NULL && vm->nbdnet && vm->nbdnet->port)
    return nbdnet_uri (vm, export);
  if (a == NULL)
    return nbd_uri_unix (export, vm->nbd_socket);
  if (strncmp (a, "unix:", 5) == 0)
    return nbd_uri_unix (export, a + 5);
  return nbd_uri_tcp (a, export);
}
