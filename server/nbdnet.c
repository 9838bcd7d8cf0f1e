/* pullback: QEMU's NBD server of a VM on TCP, with TLS.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "nbd.h"
#include "nbdnet.h"
#include "nbduri.h"

/* The state file's record of our server: {"port": N}. */
#define STATE_KEY "nbd_server"

/* The ports our servers hold, daemon-wide: VMs run on their own threads. */
static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t ports_used[65536 / 8];

static bool
port_taken (int p)
{
  return ports_used[p / 8] & (1u << (p % 8));
}

static void
port_mark (int p, bool used)
{
  pthread_mutex_lock (&ports_lock);
  if (used)
    ports_used[p / 8] |= (uint8_t)(1u << (p % 8));
  else
    ports_used[p / 8] &= (uint8_t) ~(1u << (p % 8));
  pthread_mutex_unlock (&ports_lock);
}

/* Take P if no VM of ours holds it: true then. */
static bool
port_claim (int p)
{
  bool ok;

  pthread_mutex_lock (&ports_lock);
  ok = !port_taken (p);
  if (ok)
    ports_used[p / 8] |= (uint8_t)(1u << (p % 8));
  pthread_mutex_unlock (&ports_lock);
  return ok;
}

/* Can we bind ADDRESS:PORT now (no one else listens there)? */
static bool
port_free (const char *address, int port)
{
  struct addrinfo hints
      = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res = NULL;
  char serv[16];
  bool ok = false;

  snprintf (serv, sizeof serv, "%d", port);
  if (getaddrinfo (address, serv, &hints, &res) != 0 || res == NULL)
    return false;
  {
    int one = 1;
    CLEANUP_CLOSE int fd
        = socket (res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);

    /* QEMU sets SO_REUSEADDR too: a port in TIME_WAIT is free to it. */
    ok = fd >= 0
         && setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0
         && bind (fd, res->ai_addr, res->ai_addrlen) == 0;
  }
  freeaddrinfo (res);
  return ok;
}

/* Take a port of the range after AFTER (0: from the start): -1 if none. */
static int
port_take (const struct nbd_net_conf *c, int after)
{
  int p = after ? after + 1 : c->port_lo;

  pthread_mutex_lock (&ports_lock);
  for (; p <= c->port_hi; p++)
    if (!port_taken (p) && port_free (c->address, p))
      {
        ports_used[p / 8] |= (uint8_t)(1u << (p % 8));
        break;
      }
  pthread_mutex_unlock (&ports_lock);
  return p <= c->port_hi ? p : -1;
}

int
nbdnet_port_take (const struct vm *vm)
{
  return port_take (&vm->nbdnet->conf, 0);
}

void
nbdnet_port_give (int port)
{
  if (port > 0 && port < 65536)
    port_mark (port, false);
}

struct nbdnet *
nbdnet_new (const struct nbd_net_conf *global, const struct nbd_net_conf *vm)
{
  struct nbdnet *n = calloc (1, sizeof *n);

  if (n == NULL || nbdconf_merge (global, vm, &n->conf) == -1)
    {
      free (n);
      return NULL;
    }
  return n;
}

struct nbdnet *
nbdnet_from_json (const struct nbd_net_conf *global, const json_t *obj,
                  char *field, size_t fieldlen, char *why, size_t len)
{
  struct nbd_net_conf own;
  struct nbdnet *n = NULL;
  const char *q;

  nbdconf_init (&own);
  field[0] = '\0';
  if (nbdconf_from_json (obj, &own, why, len) == 0)
    {
      n = nbdnet_new (global, &own);
      if (n == NULL)
        snprintf (why, len, "out of memory");
      else if (nbdconf_check (&n->conf, why, len) == -1)
        {
          nbdnet_free (n);
          n = NULL;
        }
      else if ((n->fields = json_object ()) == NULL)
        {
          nbdnet_free (n);
          n = NULL;
          snprintf (why, len, "out of memory");
        }
      else
        nbdconf_copy_json (obj, n->fields);
    }
  nbdconf_free (&own);
  /* "field 'F': ..." or "key 'K': ...": name F, or K as a field. */
  if (n == NULL && (q = strchr (why, '\'')) != NULL)
    {
      size_t k = strcspn (q + 1, "'");

      snprintf (field, fieldlen, "%.*s", (int)k, q + 1);
      for (char *p = field; *p; p++)
        if (*p == '-')
          *p = '_';
    }
  return n;
}

bool
nbdnet_same (const struct nbdnet *n, const struct nbd_net_conf *global,
             const struct nbd_net_conf *vm)
{
  struct nbd_net_conf m;
  bool same;

  if (n == NULL || nbdconf_merge (global, vm, &m) == -1)
    return n == NULL;
  same = nbdconf_equal (&n->conf, &m);
  nbdconf_free (&m);
  return same;
}

void
nbdnet_free (struct nbdnet *n)
{
  if (n == NULL)
    return;
  /* A VM removed while its QEMU could not be told to stop: the port is
   * not the table's any more (a port QEMU still listens on fails the
   * next one's bind check).
   */
  if (n->port)
    port_mark (n->port, false);
  json_decref (n->fields);
  nbdconf_free (&n->conf);
  explicit_bzero (n->key, sizeof n->key);
  free (n);
}

bool
nbdnet_tcp (const struct vm *vm)
{
  return vm->nbdnet && vm->nbdnet->conf.transport == NBD_TRANSPORT_TCP;
}

/* Record PORT (0: none) of a server with TLS TLS in the state file:
 * {"port": N, "tls": "psk"}.
 */
static int
record_port_tls (struct vm *vm, int port, const char *tls)
{
  if (port)
    json_object_set_new (vm->state, STATE_KEY,
                         json_pack ("{s:i, s:s}", "port", port, "tls", tls));
  else
    json_object_del (vm->state, STATE_KEY);
  return vm_save (vm);
}

static int
record_port (struct vm *vm, int port)
{
  return record_port_tls (vm, port, NULL);
}

/* Start the server on PORT: 0, or -1 with ERR. */
static int
server_start (struct vm *vm, int port, struct qmp_error *err)
{
  const struct nbd_net_conf *c = &vm->nbdnet->conf;
  char serv[16];
  json_t *args, *ret;

  snprintf (serv, sizeof serv, "%d", port);
  args = json_pack ("{s:{s:s, s:{s:s, s:s}}}", "addr", "type", "inet", "data",
                    "host", c->address, "port", serv);
  if (c->tls != NBD_TLS_OFF)
    json_object_set_new (args, "tls-creds", json_string (PB_NBD_TLS_ID));
  if (c->tls == NBD_TLS_X509 && c->allowed_dn.len)
    json_object_set_new (args, "tls-authz", json_string (PB_NBD_AUTHZ_ID));
  ret = vm_qmp (vm, "nbd-server-start", args, err);
  json_decref (ret);
  return ret ? 0 : -1;
}

/* Free the port N took, if any. */
static void
release (struct nbdnet *n)
{
  if (n && n->port)
    {
      port_mark (n->port, false);
      n->port = 0;
    }
}

int
nbdnet_start (struct vm *vm, struct reply *r)
{
  struct nbdnet *n = vm->nbdnet;
  struct qmp_error err = { 0 };
  int port = 0;

  release (n); /* a port of a server that is gone */
  if (nbdtls_create (vm, r) == -1)
    return -1;
  for (;;)
    {
      port = port_take (&n->conf, port);
      if (port == -1)
        {
          nbdtls_remove (vm);
          /* A port QEMU found in use may be recorded: no server of ours
           * listens there.
           */
          if (json_object_get (vm->state, STATE_KEY)
              && record_port (vm, 0) == -1)
            log_warnx ("VM %s: cannot remove the NBD port from the state "
                       "file",
                       vm->name);
          return reply_error (r, PB_ERR_UNAVAILABLE, "nbd-no-port",
                              "VM %s: no free port in nbd-ports %d-%d on %s",
                              vm->name, n->conf.port_lo, n->conf.port_hi,
                              n->conf.address);
        }
      /* Recorded before QEMU listens: a crash after it is cleaned up. */
      if (record_port_tls (vm, port, nbdconf_tls_name (n->conf.tls)) == -1)
        {
          port_mark (port, false);
          nbdtls_remove (vm);
          record_port (vm, 0);
          return reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                              "cannot record the NBD port in the state "
                              "directory");
        }
      if (server_start (vm, port, &err) == 0)
        break;
      /* Someone took it between our bind and QEMU's: the next one. */
      if (err.kind == QMP_ERR_QEMU && strstr (err.desc, "in use"))
        {
          port_mark (port, false);
          continue;
        }
      port_mark (port, false);
      nbdtls_remove (vm);
      record_port (vm, 0);
      return nbd_start_failed (vm, &err, r);
    }
  n->port = port;
  vm->nbd_ours = true;
  log_debug ("VM %s: NBD server on %s:%d (TLS %s)", vm->name, n->conf.address,
             port, nbdconf_tls_name (n->conf.tls));
  return 0;
}

bool
nbdnet_stopped (struct vm *vm)
{
  struct nbdnet *n = vm->nbdnet;
  json_t *rec = json_object_get (vm->state, STATE_KEY);

  if (rec == NULL && (n == NULL || n->port == 0))
    return false;
  nbdtls_remove (vm);
  /* Only a port this VM took: a record's may be another VM's now. */
  release (n);
  if (rec && record_port (vm, 0) == -1)
    log_warnx ("VM %s: cannot remove the NBD port from the state file",
               vm->name);
  return true;
}

/* Does QEMU still hold the TLS object of our server?  1, 0, or -1 if
 * QEMU could not be asked.
 */
static int
tls_object_there (struct vm *vm)
{
  struct qmp_error err;
  json_t *ret
      = vm_qmp (vm, "qom-list",
                json_pack ("{s:s}", "path", "/objects/" PB_NBD_TLS_ID), &err);

  json_decref (ret);
  if (ret)
    return 1;
  return err.kind == QMP_ERR_QEMU ? 0 : -1;
}

void
nbdnet_recover (struct vm *vm)
{
  json_t *rec = json_object_get (vm->state, STATE_KEY);
  json_int_t port = json_integer_value (json_object_get (rec, "port"));
  const char *tls = json_string_value (json_object_get (rec, "tls"));

  if (vm->nbd_ours || rec == NULL)
    return;
  /* A server with TLS is ours only while QEMU holds our object: after
   * QEMU restarted, the NBD server it runs (if any) is someone else's,
   * and must be neither stopped nor used.
   */
  if (tls == NULL || strcmp (tls, "none") != 0)
    switch (tls_object_there (vm))
      {
      case -1:
        return; /* at the next connection */
      case 0:
        nbdtls_remove (vm);
        release (vm->nbdnet);
        if (record_port (vm, 0) == -1)
          log_warnx ("VM %s: cannot remove the NBD port from the state file",
                     vm->name);
        log_info ("VM %s: our NBD server on port %lld is gone (QEMU has no "
                  "%s object): leaving QEMU's NBD server alone",
                  vm->name, (long long)port, PB_NBD_TLS_ID);
        return;
      }
  if (port > 0 && port < 65536 && vm->nbdnet && vm->nbdnet->port == 0
      && port_claim ((int)port))
    vm->nbdnet->port = (int)port;
  vm->nbd_ours = true;
  /* Stops it (and frees the port) unless exports of others are on it. */
  nbd_stop_if_idle (vm);
  if (vm->nbd_ours)
    log_info ("VM %s: keeping our NBD server on port %lld", vm->name,
              (long long)port);
  else
    log_info ("VM %s: stopped our NBD server left on port %lld", vm->name,
              (long long)port);
}

/* The host clients connect to: the address, or this host's name for a
 * wildcard address.
 */
static void
uri_host (const struct nbd_net_conf *c, char *buf, size_t len)
{
  if (strcmp (c->address, "0.0.0.0") == 0)
    {
      if (gethostname (buf, len) == 0)
        {
          buf[len - 1] = '\0';
          return;
        }
    }
  snprintf (buf, len, "%s", c->address);
}

char *
nbdnet_uri (const struct vm *vm, const char *export)
{
  return nbdnet_uri_port (vm, vm->nbdnet->port, export);
}

char *
nbdnet_uri_port (const struct vm *vm, int port, const char *export)
{
  const struct nbdnet *n = vm->nbdnet;
  char hostport[300], host[256];
  CLEANUP_FREE char *plain = NULL;
  CLEANUP_FREE char *user = NULL;
  char *uri;

  uri_host (&n->conf, host, sizeof host);
  snprintf (hostport, sizeof hostport, "%s:%d", host, port);
  plain = nbd_uri_tcp (hostport, export);
  if (plain == NULL)
    return NULL;
  if (n->conf.tls == NBD_TLS_OFF)
    {
      uri = plain;
      plain = NULL;
      return uri;
    }
  /* nbds://[USER@]HOST:PORT/EXPORT: libnbd takes the PSK identity from
   * the user part.
   */
  if (n->username[0] && (user = uri_encode (n->username, "")) == NULL)
    return NULL;
  if (asprintf (&uri, "nbds://%s%s%s", user ? user : "", user ? "@" : "",
                plain + strlen ("nbd://"))
      == -1)
    return NULL;
  return uri;
}

int
nbdnet_describe (const struct vm *vm, struct backup_answer *a)
{
  const struct nbdnet *n = vm->nbdnet;

  if (!nbdnet_tcp (vm))
    return 0;
  a->tls = nbdconf_tls_name (n->conf.tls);
  if (n->conf.tls == NBD_TLS_X509
      && asprintf (&a->tls_ca_cert, "%s/ca-cert.pem", n->conf.x509_dir) == -1)
    {
      a->tls_ca_cert = NULL;
      return -1;
    }
  if (n->conf.tls == NBD_TLS_PSK
      && (a->tls_username = strdup (n->username)) == NULL)
    return -1;
  return 0;
}

int
nbdnet_add_secret (const struct vm *vm, struct backup_answer *a)
{
  const struct nbdnet *n = vm->nbdnet;

  if (!nbdnet_tcp (vm) || n->conf.tls != NBD_TLS_PSK || !n->key[0])
    return 0;
  a->psk_username = strdup (n->username);
  a->psk_key = strdup (n->key);
  return a->psk_username && a->psk_key ? 0 : -1;
}

int
nbdnet_add_client (const struct vm *vm, struct backup_answer *a)
{
  const struct nbdnet *n = vm->nbdnet;
  char path[PATH_MAX];
  const char *v = path;
  char **to;

  if (!nbdnet_tcp (vm) || n->port == 0 || n->conf.tls == NBD_TLS_OFF)
    return 0;
  if (n->conf.tls == NBD_TLS_PSK)
    {
      if ((size_t)snprintf (path, sizeof path, "%s/vms/%s/%s",
                            vm->ctx->run_dir, vm->name, PB_NBD_PSK_FILE)
          >= sizeof path)
        return 0;
      to = &a->client_psk_file;
    }
  else if (n->conf.verify_peer
           && ((size_t)snprintf (path, sizeof path, "%s/client-cert.pem",
                                 n->conf.x509_dir)
                   >= sizeof path
               || access (path, R_OK) == -1))
    {
      v = NBDNET_NO_CLIENT_CERT;
      to = &a->client_unavailable;
    }
  else
    {
      v = n->conf.x509_dir;
      to = &a->client_certs;
    }
  *to = strdup (v);
  return *to ? 0 : -1;
}
