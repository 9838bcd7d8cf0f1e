/* pullback: the settings of a VM's NBD server on the network.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nbdconf.h"

void
nbdconf_init (struct nbd_net_conf *n)
{
  memset (n, 0, sizeof *n);
  n->verify_peer = -1;
}

static void
clear_dns (dn_vector *v)
{
  dn_vector_iter (v, (void (*) (char *))free);
  dn_vector_reset (v);
}

void
nbdconf_free (struct nbd_net_conf *n)
{
  free (n->address);
  free (n->x509_dir);
  free (n->psk_file);
  clear_dns (&n->allowed_dn);
  nbdconf_init (n);
}

static int
set_str (char **dst, const char *value, char *why, size_t len)
{
  char *s = strdup (value);

  if (s == NULL)
    {
      snprintf (why, len, "out of memory");
      return -1;
    }
  free (*dst);
  *dst = s;
  return 0;
}

static int
set_path (char **dst, const char *value, char *why, size_t len)
{
  if (value[0] != '/' || strlen (value) >= PATH_MAX)
    {
      snprintf (why, len, "must be an absolute path");
      return -1;
    }
  return set_str (dst, value, why, len);
}

static int
parse_ports (struct nbd_net_conf *n, const char *value, char *why, size_t len)
{
  char *end, *end2;
  long lo, hi;

  errno = 0;
  lo = strtol (value, &end, 10);
  hi = lo;
  if (errno == 0 && end != value && *end == '-')
    hi = strtol (end + 1, &end2, 10), end = end2;
  if (errno || end == value || *end != '\0' || lo < 1 || hi > 65535 || lo > hi)
    {
      snprintf (why, len,
                "must be LO-HI (or one port), 1 <= LO <= HI <= 65535");
      return -1;
    }
  n->port_lo = (int)lo;
  n->port_hi = (int)hi;
  return 0;
}

/* A DN is one non-empty line of printable characters. */
static int
add_dn (struct nbd_net_conf *n, const char *value, char *why, size_t len)
{
  char *s;

  if (*value == '\0')
    {
      snprintf (why, len, "must not be empty");
      return -1;
    }
  for (const char *p = value; *p; p++)
    if ((unsigned char)*p < ' ' || *p == 0x7f)
      {
        snprintf (why, len, "a DN is one line of printable characters");
        return -1;
      }
  s = strdup (value);
  if (s == NULL || dn_vector_append (&n->allowed_dn, s) == -1)
    {
      free (s);
      snprintf (why, len, "out of memory");
      return -1;
    }
  return 0;
}

int
nbdconf_set (struct nbd_net_conf *n, const char *key, const char *value,
             char *why, size_t len)
{
  if (strcmp (key, "nbd-transport") == 0)
    {
      if (strcmp (value, "unix") == 0)
        n->transport = NBD_TRANSPORT_UNIX;
      else if (strcmp (value, "tcp") == 0)
        n->transport = NBD_TRANSPORT_TCP;
      else
        {
          snprintf (why, len, "must be unix or tcp");
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "nbd-address") == 0)
    {
      if (*value == '\0' || strcspn (value, " \t/:[]") != strlen (value))
        {
          snprintf (why, len,
                    "must be a host name or an IPv4 address (no port)");
          return -1;
        }
      return set_str (&n->address, value, why, len);
    }
  if (strcmp (key, "nbd-ports") == 0)
    return parse_ports (n, value, why, len);
  if (strcmp (key, "nbd-tls") == 0)
    {
      if (strcmp (value, "x509") == 0)
        n->tls = NBD_TLS_X509;
      else if (strcmp (value, "psk") == 0)
        n->tls = NBD_TLS_PSK;
      else if (strcmp (value, "off") == 0)
        n->tls = NBD_TLS_OFF;
      else
        {
          snprintf (why, len, "must be x509, psk or off");
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "nbd-tls-x509-dir") == 0)
    return set_path (&n->x509_dir, value, why, len);
  if (strcmp (key, "nbd-tls-verify-peer") == 0)
    {
      if (strcmp (value, "yes") == 0)
        n->verify_peer = 1;
      else if (strcmp (value, "no") == 0)
        n->verify_peer = 0;
      else
        {
          snprintf (why, len, "must be yes or no");
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "nbd-tls-allowed-dn") == 0)
    return add_dn (n, value, why, len);
  if (strcmp (key, "nbd-tls-psk-file") == 0)
    return set_path (&n->psk_file, value, why, len);
  return 1;
}

static int
copy_str (char **dst, const char *a, const char *b)
{
  const char *s = a ? a : b;

  *dst = s ? strdup (s) : NULL;
  return s && *dst == NULL ? -1 : 0;
}

int
nbdconf_merge (const struct nbd_net_conf *g, const struct nbd_net_conf *v,
               struct nbd_net_conf *out)
{
  static const struct nbd_net_conf none = { .verify_peer = -1 };
  const dn_vector *dns;

  if (v == NULL)
    v = &none;
  nbdconf_init (out);
  out->transport = v->transport ? v->transport : g->transport;
  if (out->transport == NBD_TRANSPORT_UNSET)
    out->transport = NBD_TRANSPORT_UNIX;
  out->port_lo = v->port_lo ? v->port_lo : g->port_lo;
  out->port_hi = v->port_lo ? v->port_hi : g->port_hi;
  if (out->port_lo == 0)
    {
      out->port_lo = NBDCONF_DEFAULT_PORT_LO;
      out->port_hi = NBDCONF_DEFAULT_PORT_HI;
    }
  out->tls = v->tls ? v->tls : g->tls;
  out->verify_peer = v->verify_peer >= 0 ? v->verify_peer : g->verify_peer;
  if (out->verify_peer < 0)
    out->verify_peer = 1;
  if (copy_str (&out->address, v->address, g->address) == -1
      || copy_str (&out->x509_dir, v->x509_dir, g->x509_dir) == -1
      || copy_str (&out->psk_file, v->psk_file, g->psk_file) == -1
      || (out->address == NULL
          && (out->address = strdup (NBDCONF_DEFAULT_ADDRESS)) == NULL))
    goto oom;
  if (out->tls == NBD_TLS_UNSET)
    out->tls = out->x509_dir ? NBD_TLS_X509 : NBD_TLS_PSK;
  dns = v->allowed_dn.len ? &v->allowed_dn : &g->allowed_dn;
  for (size_t i = 0; i < dns->len; i++)
    {
      char *s = strdup (dns->ptr[i]);

      if (s == NULL || dn_vector_append (&out->allowed_dn, s) == -1)
        {
          free (s);
          goto oom;
        }
    }
  return 0;

oom:
  nbdconf_free (out);
  return -1;
}

/* PATH must be a regular file; with SECRET, closed to others and not
 * writable by its group (like token-file).
 */
static int
check_file (const char *key, const char *path, bool secret, char *why,
            size_t len)
{
  struct stat st;

  if (stat (path, &st) == -1)
    {
      snprintf (why, len, "key '%s': %s: %s", key, path, strerror (errno));
      return -1;
    }
  if (!S_ISREG (st.st_mode))
    {
      snprintf (why, len, "key '%s': %s: not a regular file", key, path);
      return -1;
    }
  if (secret && (st.st_mode & 027))
    {
      snprintf (why, len,
                "key '%s': %s: others may access it or its group may write "
                "it (mode %03o); make it 0600 or 0640",
                key, path, (unsigned)(st.st_mode & 0777));
      return -1;
    }
  return 0;
}

int
nbdconf_check (const struct nbd_net_conf *n, char *why, size_t len)
{
  static const char *const x509[]
      = { "ca-cert.pem", "server-cert.pem", "server-key.pem" };
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  int gai;

  if (n->transport != NBD_TRANSPORT_TCP)
    return 0;
  /* Else every begin would fail with "no free port". */
  gai = getaddrinfo (n->address, NULL, &hints, &res);
  if (gai != 0)
    {
      snprintf (why, len, "key 'nbd-address': cannot resolve %s: %s",
                n->address, gai_strerror (gai));
      return -1;
    }
  freeaddrinfo (res);
  if (n->tls == NBD_TLS_OFF && !host_is_loopback (n->address))
    {
      snprintf (why, len,
                "key 'nbd-tls': off is allowed on a loopback 'nbd-address' "
                "only, and %s is not one: use x509 or psk",
                n->address);
      return -1;
    }
  /* QEMU checks no client certificate without verify-peer, so the list
   * would let every client in.
   */
  if (n->allowed_dn.len && !n->verify_peer)
    {
      snprintf (why, len,
                "key 'nbd-tls-allowed-dn': client DNs are checked only with "
                "nbd-tls-verify-peer = yes (with no, QEMU lets any client "
                "in)");
      return -1;
    }
  if (n->tls == NBD_TLS_X509)
    {
      if (n->x509_dir == NULL)
        {
          snprintf (why, len,
                    "key 'nbd-tls': x509 needs 'nbd-tls-x509-dir' (a "
                    "directory with ca-cert.pem, server-cert.pem and "
                    "server-key.pem)");
          return -1;
        }
      for (size_t i = 0; i < sizeof x509 / sizeof x509[0]; i++)
        {
          char path[PATH_MAX + 32];

          snprintf (path, sizeof path, "%s/%s", n->x509_dir, x509[i]);
          if (check_file ("nbd-tls-x509-dir", path, i == 2, why, len) == -1)
            return -1;
        }
    }
  if (n->tls != NBD_TLS_X509 && n->allowed_dn.len)
    {
      snprintf (why, len,
                "key 'nbd-tls-allowed-dn': client DNs need nbd-tls = x509");
      return -1;
    }
  if (n->tls == NBD_TLS_PSK && n->psk_file)
    {
      char *text, user[NBDCONF_PSK_USER_MAX], reason[PATH_MAX + 128];

      if (nbdconf_psk_read (n->psk_file, -1, &text, user, sizeof user, reason,
                            sizeof reason)
          == -1)
        {
          snprintf (why, len, "key 'nbd-tls-psk-file': %s", reason);
          return -1;
        }
      nbdconf_psk_free (text);
    }
  return 0;
}

/* Check the lines of TEXT (IDENTITY:HEXKEY) and copy the first identity
 * into USER.  Never puts a key in WHY.
 */
static int
psk_parse (const char *text, char *user, size_t ulen, char *why, size_t len)
{
  size_t line = 0, lines = 0;

  for (const char *p = text; *p; line++)
    {
      size_t n = strcspn (p, "\n"), id = strcspn (p, ":\n"), hex = 0;

      if (n > 0)
        {
          while (id + 1 + hex < n && isxdigit ((unsigned char)p[id + 1 + hex]))
            hex++;
          if (p[id] != ':' || id == 0 || id >= ulen || id + 1 + hex != n
              || hex == 0 || hex % 2)
            {
              snprintf (why, len,
                        "line %zu is not IDENTITY:HEXKEY (an identity of 1 "
                        "to %zu bytes, an even number of hex digits), as "
                        "psktool writes",
                        line + 1, ulen - 1);
              return -1;
            }
          if (lines++ == 0)
            {
              memcpy (user, p, id);
              user[id] = '\0';
            }
        }
      p += n + (p[n] == '\n');
    }
  if (lines == 0)
    {
      snprintf (why, len, "no IDENTITY:HEXKEY line");
      return -1;
    }
  return 0;
}

int
nbdconf_psk_read (const char *path, int fd, char **textp, char *user,
                  size_t ulen, char *why, size_t len)
{
  struct stat st;
  char *text = NULL;
  ssize_t r;
  int own = -1;

  *textp = NULL;
  if (fd == -1)
    fd = own = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd == -1 || fstat (fd, &st) == -1)
    {
      snprintf (why, len, "%s: %s", path, strerror (errno));
      goto fail;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 027)
      || st.st_size >= NBDCONF_PSK_FILE_MAX)
    {
      snprintf (why, len,
                "%s: not a regular file of mode 0600 or 0640 under %d bytes",
                path, NBDCONF_PSK_FILE_MAX);
      goto fail;
    }
  text = malloc ((size_t)st.st_size + 1);
  if (text == NULL)
    {
      snprintf (why, len, "out of memory");
      goto fail;
    }
  r = pread (fd, text, (size_t)st.st_size, 0);
  if (r != st.st_size)
    {
      snprintf (why, len, "%s: %s", path,
                r == -1 ? strerror (errno) : "short read");
      goto fail;
    }
  text[r] = '\0';
  if (strlen (text) != (size_t)r)
    {
      snprintf (why, len, "%s: holds a NUL byte", path);
      goto fail;
    }
  if (psk_parse (text, user, ulen, why, len) == -1)
    {
      char reason[256];

      snprintf (reason, sizeof reason, "%s", why);
      snprintf (why, len, "%s: %s", path, reason);
      goto fail;
    }
  if (own >= 0)
    close (own);
  *textp = text;
  return 0;

fail:
  nbdconf_psk_free (text);
  if (own >= 0)
    close (own);
  return -1;
}

void
nbdconf_psk_free (char *text)
{
  if (text)
    {
      explicit_bzero (text, strlen (text));
      free (text);
    }
}

static bool
same (const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

bool
nbdconf_equal (const struct nbd_net_conf *a, const struct nbd_net_conf *b)
{
  if (a->transport != b->transport || a->port_lo != b->port_lo
      || a->port_hi != b->port_hi || a->tls != b->tls
      || a->verify_peer != b->verify_peer || !same (a->address, b->address)
      || !same (a->x509_dir, b->x509_dir) || !same (a->psk_file, b->psk_file)
      || a->allowed_dn.len != b->allowed_dn.len)
    return false;
  for (size_t i = 0; i < a->allowed_dn.len; i++)
    if (strcmp (a->allowed_dn.ptr[i], b->allowed_dn.ptr[i]) != 0)
      return false;
  return true;
}

static const char *const json_fields[] = {
  "nbd_transport",
  "nbd_address",
  "nbd_ports",
  "nbd_tls",
  "nbd_tls_x509_dir",
  "nbd_tls_verify_peer",
  "nbd_tls_allowed_dn",
  "nbd_tls_psk_file",
  NULL,
};

bool
nbdconf_json_field (const char *name)
{
  for (size_t i = 0; json_fields[i]; i++)
    if (strcmp (json_fields[i], name) == 0)
      return true;
  return false;
}

/* Apply field NAME = V to N. */
static int
set_json (struct nbd_net_conf *n, const char *name, const json_t *v, char *why,
          size_t len)
{
  char key[64], reason[256];
  size_t i;
  json_t *e;
  int r = 0;

  snprintf (key, sizeof key, "%s", name);
  for (char *p = key; *p; p++)
    if (*p == '_')
      *p = '-';
  reason[0] = '\0';
  if (strcmp (name, "nbd_tls_verify_peer") == 0)
    {
      if (!json_is_boolean (v))
        {
          snprintf (why, len, "field '%s' must be true or false", name);
          return -1;
        }
      n->verify_peer = json_is_true (v);
      return 0;
    }
  if (strcmp (name, "nbd_tls_allowed_dn") == 0)
    {
      if (!json_is_array (v) || json_array_size (v) == 0)
        {
          snprintf (why, len, "field '%s' must be a non-empty array of DNs",
                    name);
          return -1;
        }
      json_array_foreach (v, i, e)
        if (r == 0)
          r = json_is_string (e)
                      && strlen (json_string_value (e))
                             == json_string_length (e)
                  ? nbdconf_set (n, key, json_string_value (e), reason,
                                 sizeof reason)
                  : (snprintf (reason, sizeof reason, "a DN is a string"), -1);
    }
  else if (!json_is_string (v)
           || strlen (json_string_value (v)) != json_string_length (v))
    {
      snprintf (why, len, "field '%s' must be a string", name);
      return -1;
    }
  else
    r = nbdconf_set (n, key, json_string_value (v), reason, sizeof reason);
  if (r != 0)
    {
      snprintf (why, len, "field '%s': %s", name, reason);
      return -1;
    }
  return 0;
}

bool
nbdconf_json_check (const char *name, const json_t *v, char *why, size_t len)
{
  struct nbd_net_conf n;
  int r;

  nbdconf_init (&n);
  r = set_json (&n, name, v, why, len);
  nbdconf_free (&n);
  return r == 0;
}

int
nbdconf_from_json (const json_t *obj, struct nbd_net_conf *n, char *why,
                   size_t len)
{
  for (size_t i = 0; json_fields[i]; i++)
    {
      const json_t *v = json_object_get (obj, json_fields[i]);

      if (v && set_json (n, json_fields[i], v, why, len) == -1)
        return -1;
    }
  return 0;
}

void
nbdconf_copy_json (const json_t *from, json_t *to)
{
  for (size_t i = 0; json_fields[i]; i++)
    {
      json_t *v = json_object_get (from, json_fields[i]);

      if (v)
        json_object_set (to, json_fields[i], v);
    }
}

const char *
nbdconf_tls_name (enum nbd_tls t)
{
  switch (t)
    {
    case NBD_TLS_X509:
      return "x509";
    case NBD_TLS_PSK:
      return "psk";
    default:
      return "none";
    }
}

bool
host_is_loopback (const char *host)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL, *ai;
  bool ok;

  if (getaddrinfo (host, NULL, &hints, &res) != 0)
    return false;
  ok = res != NULL;
  for (ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET)
      ok = ok
           && (ntohl (
                   ((const struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr)
               >> 24)
                  == IN_LOOPBACKNET;
    else if (ai->ai_family == AF_INET6)
      ok = ok
           && IN6_IS_ADDR_LOOPBACK (
               &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    else
      ok = false;
  freeaddrinfo (res);
  return ok;
}
