/* pullback: QEMU's NBD server for a VM.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * QEMU runs one NBD server per process.  We start it lazily on a unix
 * socket under the run directory, preferably on a socket we create and
 * pass with getfd (qemu-system) so that we set its mode; qemu-storage-
 * daemon has no getfd, so there QEMU makes the socket and we chmod it.
 * A server we did not start is used only if the VM's settings name its
 * address (nbd=...), and never stopped.
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

/* Listen on PATH ourselves; returns the descriptor or -1. */
static int
listen_unix (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  CLEANUP_CLOSE int fd = -1;

  if (strlen (path) >= sizeof addr.sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  unlink (path);
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) == -1
      || chmod (path, SOCKET_MODE) == -1 || listen (fd, 64) == -1)
    return -1;
  return TAKE_FD (fd);
}

int
nbd_ensure_server (struct vm *vm, struct reply *r)
{
  char path[sizeof vm->nbd_socket];
  struct qmp_error err;
  json_t *ret;

  if (vm->nbd_adopt || vm->nbd_ours)
    return 0;
  if (nbd_socket_path (vm, path, sizeof path) == -1
      || strlen (path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
    return reply_error (r, 500, "path-too-long",
                        "NBD socket path for VM %s is too long", vm->name);

  if (vm->schema && qmp_schema_has_command (vm->schema, "getfd"))
    {
      CLEANUP_CLOSE int fd = listen_unix (path);

      if (fd == -1)
        return reply_error (r, 500, "nbd-socket", "creating NBD socket %s: %s",
                            path, strerror (errno));
      ret = qmp_execute_with_fd (vm->qmp, "getfd",
                                 json_pack ("{s:s}", "fdname", PB_NBD_FDNAME),
                                 fd, vm->ctx->qmp_timeout_ms, &err);
      if (ret)
        {
          json_decref (ret);
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
      if (err.kind == QMP_ERR_QEMU && strstr (err.desc, "already running"))
        return reply_error (r, 409, "nbd-server-busy",
                            "QEMU of VM %s already runs an NBD server that "
                            "pullbackd did not start; give its address in "
                            "the VM's nbd= setting to use it",
                            vm->name);
      unlink (path);
      return reply_error (r, err.kind == QMP_ERR_TIMEOUT ? 504 : 502,
                          "qemu-error", "starting the NBD server: %s",
                          err.desc);
    }
  json_decref (ret);
  vm->nbd_ours = true;
  snprintf (vm->nbd_socket, sizeof vm->nbd_socket, "%s", path);
  log_debug ("VM %s: NBD server on %s", vm->name, path);
  return 0;
}

void
nbd_stop_if_idle (struct vm *vm)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *exports = NULL;

  if (!vm->nbd_ours)
    return;
  exports = vm_qmp (vm, "query-block-exports", NULL, &err);
  if (exports == NULL || json_array_size (exports) > 0)
    return;
  json_decref (vm_qmp (vm, "nbd-server-stop", NULL, &err));
  unlink (vm->nbd_socket);
  vm->nbd_ours = false;
}

json_t *
nbd_uri (const struct vm *vm, const char *export)
{
  const char *a = vm->nbd_adopt;

  if (a == NULL)
    return json_sprintf ("nbd+unix:///%s?socket=%s", export, vm->nbd_socket);
  if (strncmp (a, "unix:", 5) == 0)
    return json_sprintf ("nbd+unix:///%s?socket=%s", export, a + 5);
  return json_sprintf ("nbd://%s/%s", a, export);
}
