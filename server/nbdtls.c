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

#define PSK_KEY_BYTES 32
#define PSK_FILE_MAX 65536

static int
vm_dir (const struct vm *vm, char *buf, size_t len)
{
  return (size_t)snprintf (buf, len, "%s/vms/%s", vm->ctx->run_dir, vm->name)
                 >= len
             ? -1
             : 0;
}

static int
psk_path (const struct vm *vm, char *buf, size_t len)
{
  return (size_t)snprintf (buf, len, "%s/vms/%s/%s", vm->ctx->run_dir,
                           vm->name, PB_NBD_PSK_FILE)
                 >= len
             ? -1
             : 0;
}

/* Write TEXT (LEN bytes) to PATH, a new file of mode 0600. */
static int
write_secret (const char *path, const char *text, size_t len)
{
  int fd;
  size_t n = 0;

  unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd == -1)
    return -1;
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

/* Read the admin's keys file (closed to others) into BUF. */
static int
read_psk_file (const char *path, char *buf, size_t len, char *why,
               size_t whylen)
{
  struct stat st;
  ssize_t r;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

  if (fd == -1 || fstat (fd, &st) == -1)
    {
      snprintf (why, whylen, "%s: %s", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 027) || (size_t)st.st_size >= len)
    {
      snprintf (why, whylen,
                "%s: not a regular file of mode 0600 or 0640 under %zu "
                "bytes",
                path, len);
      close (fd);
      return -1;
    }
  r = read (fd, buf, (size_t)st.st_size);
  close (fd);
  if (r != st.st_size)
    {
      snprintf (why, whylen, "%s: short read", path);
      return -1;
    }
  buf[r] = '\0';
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
  int rc;

  if (psk_path (vm, path, sizeof path) == -1)
    return reply_error (r, 500, "path-too-long",
                        "PSK keys file path of VM %s is too long", vm->name);
  if (n->conf.psk_file)
    {
      size_t id;

      text = malloc (PSK_FILE_MAX);
      if (text == NULL)
        return reply_error (r, 500, "out-of-memory", "out of memory");
      if (read_psk_file (n->conf.psk_file, text, PSK_FILE_MAX, why, sizeof why)
          == -1)
        {
          free (text);
          return reply_error (r, 500, "nbd-tls",
                              "nbd-tls-psk-file of VM %s: %s", vm->name, why);
        }
      len = strlen (text);
      id = strcspn (text, ":\n");
      if (text[id] != ':' || id == 0 || id >= sizeof n->username)
        {
          explicit_bzero (text, len);
          free (text);
          return reply_error (r, 500, "nbd-tls",
                              "nbd-tls-psk-file of VM %s: the first line "
                              "must be IDENTITY:HEXKEY",
                              vm->name);
        }
      memcpy (n->username, text, id);
      n->username[id] = '\0';
      n->key[0] = '\0';
    }
  else
    {
      unsigned char raw[PSK_KEY_BYTES];

      if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return reply_error (r, 500, "nbd-tls", "getrandom: %s",
                            strerror (errno));
      for (size_t i = 0; i < sizeof raw; i++)
        snprintf (n->key + 2 * i, 3, "%02x", raw[i]);
      explicit_bzero (raw, sizeof raw);
      snprintf (n->username, sizeof n->username, "pullback-%s",
                vm->backup ? vm->backup->id : "vm");
      len = strlen (n->username) + 1 + strlen (n->key) + 1;
      text = malloc (len + 1);
      if (text == NULL)
        return reply_error (r, 500, "out-of-memory", "out of memory");
      snprintf (text, len + 1, "%s:%s\n", n->username, n->key);
    }
  rc = write_secret (path, text, len);
  explicit_bzero (text, len);
  free (text);
  if (rc == -1)
    return reply_error (r, 500, "nbd-tls", "writing %s: %s", path,
                        strerror (errno));
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
      if (vm_dir (vm, dir, sizeof dir) == -1)
        return reply_error (r, 500, "path-too-long",
                            "run directory of VM %s is too long", vm->name);
      if (make_psk (vm, r) == -1)
        return -1;
      args = json_pack ("{s:s, s:s, s:s, s:s}", "qom-type", "tls-creds-psk",
                        "id", PB_NBD_TLS_ID, "endpoint", "server", "dir", dir);
    }
  else
    args
        = json_pack ("{s:s, s:s, s:s, s:s, s:b}", "qom-type", "tls-creds-x509",
                     "id", PB_NBD_TLS_ID, "endpoint", "server", "dir",
                     c->x509_dir, "verify-peer", c->verify_peer);
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
      return reply_error (r, qemu_status (err.kind), "qemu-error",
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
