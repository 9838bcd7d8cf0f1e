/* pullback: the TLS objects of a VM's NBD server on TCP.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * x509: tls-creds-x509 on nbd-tls-x509-dir (endpoint server,
 * verify-peer as set), and with nbd-tls-allowed-dn an authz-list that
 * allows those client DNs only.  PSK: tls-creds-psk on a directory
 * holding keys.psk, which we write under the VM's run directory (mode
 * 0600): a copy of nbd-tls-psk-file, or by default one identity and key
 * made for this server (one backup), given once in the begin answer.
 * The objects have our fixed ids (one NBD server per QEMU), so recovery
 * finds them by name.  Keys are never logged, and never sent over QMP.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "nbdnet.h"
#include "reqpaths.h"

/* GnuTLS's NORMAL, but AES-GCM before ChaCha20 and our order first.
 * With a PSK (whose binder hash is SHA-256) TLS 1.3 cannot use
 * AES-256-GCM (SHA-384), and NORMAL's next choice is ChaCha20-Poly1305,
 * which on a CPU with AES instructions is several times slower than
 * AES-128-GCM: measured here, a pull at 2.5x the speed.  ChaCha20 stays
 * allowed, last, for clients without AES-GCM.  (QEMU adds the PSK key
 * exchanges to it for tls-creds-psk.)
 */
#define TLS_PRIORITY                                                          \
  "NORMAL:%SERVER_PRECEDENCE:-CHACHA20-POLY1305:+CHACHA20-POLY1305"
#define PSK_KEY_BYTES 32

static int
psk_path (const struct vm *vm, char *buf, size_t len)
{
  return (size_t)snprintf (buf, len, "%s/vms/%s/%s", vm->ctx->run_dir,
                           vm->name, PB_NBD_PSK_FILE)
                 >= len
             ? -1
             : 0;
}

/* Write TEXT (LEN bytes) to PATH, a new file of mode 0600 that QEMU's
 * user may read.
 */
static int
write_secret (const char *path, const char *text, size_t len,
              const struct qemu_user *qemu)
{
  int fd;
  size_t n = 0;

  unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd == -1)
    return -1;
  if (qemu_user_grant_read (fd, qemu) == -1)
    {
      int e = errno;

      close (fd);
      unlink (path);
      errno = e;
      return -1;
    }
  while (n < len)
    {
      ssize_t r = write (fd, text + n, len - n);

      if (r == -1 && errno == EINTR)
        continue;
      if (r == -1)
        {
          close (fd);
          unlink (path);
          return -1;
        }
      n += (size_t)r;
    }
  if (close (fd) == -1)
    {
      unlink (path);
      return -1;
    }
  return 0;
}

/* The keys file for the PSK server: 0, or -1 with R set. */
static int
make_psk (struct vm *vm, struct reply *r)
{
  struct nbdnet *n = vm->nbdnet;
  char path[PATH_MAX], why[PATH_MAX + 128];
  char *text = NULL;
  size_t len;
  int rc, err;

  if (psk_path (vm, path, sizeof path) == -1)
    return reply_error (r, PB_ERR_INTERNAL, "path-too-long",
                        "PSK keys file path of VM %s is too long", vm->name);
  if (n->conf.psk_file)
    {
      /* A registration's file is walked to again (reqpaths.h): what
       * was checked then may be a symlink now.
       */
      bool api = json_object_get (n->fields, "nbd_tls_psk_file") != NULL;
      int fd = api ? reqpaths_open (vm->ctx, "nbd_tls_psk_file",
                                    n->conf.psk_file, r)
                   : -1;

      if (api && fd == -1)
        return -1;
      rc = nbdconf_psk_read (n->conf.psk_file, fd, &text, n->username,
                             sizeof n->username, why, sizeof why);
      if (fd >= 0)
        close (fd);
      if (rc == -1)
        return reply_error (r, PB_ERR_INTERNAL, "nbd-tls",
                            "nbd-tls-psk-file of VM %s: %s", vm->name, why);
      len = strlen (text);
      n->key[0] = '\0';
    }
  else
    {
      unsigned char raw[PSK_KEY_BYTES];

      if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return reply_error (r, PB_ERR_INTERNAL, "nbd-tls", "getrandom: %s",
                            strerror (errno));
      for (size_t i = 0; i < sizeof raw; i++)
        snprintf (n->key + 2 * i, 3, "%02x", raw[i]);
      explicit_bzero (raw, sizeof raw);
      snprintf (n->username, sizeof n->username, "pullback-%s",
                vm->backup ? vm->backup->id : "vm");
      len = strlen (n->username) + 1 + strlen (n->key) + 1;
      text = malloc (len + 1);
      if (text == NULL)
        return reply_error (r, PB_ERR_INTERNAL, "out-of-memory",
                            "out of memory");
      snprintf (text, len + 1, "%s:%s\n", n->username, n->key);
    }
  /* QEMU reads it by its path. */
  if (qemu_user_grant (vm->ctx->run_dir, vm->name, &vm->qemu_user, why,
                       sizeof why)
      == -1)
    log_warnx ("VM %s: %s", vm->name, why);
  rc = write_secret (path, text, len, &vm->qemu_user);
  err = errno;
  nbdconf_psk_free (text);
  if (rc == -1)
    return reply_error (r, PB_ERR_INTERNAL, "nbd-tls", "writing %s: %s", path,
                        strerror (err));
  return 0;
}

static json_t *
authz_rules (const struct nbd_net_conf *c)
{
  json_t *rules = json_array ();

  for (size_t i = 0; rules && i < c->allowed_dn.len; i++)
    json_array_append_new (rules, json_pack ("{s:s, s:s, s:s}", "match",
                                             c->allowed_dn.ptr[i], "policy",
                                             "allow", "format", "exact"));
  return rules;
}

int
nbdtls_create (struct vm *vm, struct reply *r)
{
  const struct nbd_net_conf *c = &vm->nbdnet->conf;
  char dir[PATH_MAX];
  struct qmp_error err;
  json_t *args, *ret;

  if (c->tls == NBD_TLS_OFF)
    return 0;
  /* Leftovers of ours (no server of ours runs now). */
  nbdtls_remove (vm);
  if (c->tls == NBD_TLS_PSK)
    {
      if (vm_run_dir (vm, dir, sizeof dir) == -1)
        return reply_error (r, PB_ERR_INTERNAL, "path-too-long",
                            "run directory of VM %s is too long", vm->name);
      if (make_psk (vm, r) == -1)
        return -1;
      args = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "qom-type",
                        "tls-creds-psk", "id", PB_NBD_TLS_ID, "endpoint",
                        "server", "dir", dir, "priority", TLS_PRIORITY);
    }
  else
    args = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s}", "qom-type",
                      "tls-creds-x509", "id", PB_NBD_TLS_ID, "endpoint",
                      "server", "dir", c->x509_dir, "verify-peer",
                      c->verify_peer, "priority", TLS_PRIORITY);
  ret = vm_qmp (vm, "object-add", args, &err);
  if (ret && c->tls == NBD_TLS_X509 && c->allowed_dn.len)
    {
      json_decref (ret);
      ret = vm_qmp (vm, "object-add",
                    json_pack ("{s:s, s:s, s:s, s:o}", "qom-type",
                               "authz-list", "id", PB_NBD_AUTHZ_ID, "policy",
                               "deny", "rules", authz_rules (c)),
                    &err);
    }
  if (ret == NULL)
    {
      nbdtls_remove (vm);
      return reply_error (r, qemu_errkind (err.kind), "qemu-error",
                          "making the NBD server's TLS credentials: %s",
                          err.desc);
    }
  json_decref (ret);
  return 0;
}

void
nbdtls_remove (struct vm *vm)
{
  char path[PATH_MAX];

  vm_qmp_quietly (vm, "object-del",
                  json_pack ("{s:s}", "id", PB_NBD_AUTHZ_ID));
  vm_qmp_quietly (vm, "object-del", json_pack ("{s:s}", "id", PB_NBD_TLS_ID));
  if (psk_path (vm, path, sizeof path) == 0 && unlink (path) == 0)
    log_debug ("VM %s: removed %s", vm->name, path);
  if (vm->nbdnet)
    {
      explicit_bzero (vm->nbdnet->key, sizeof vm->nbdnet->key);
      vm->nbdnet->username[0] = '\0';
    }
}
