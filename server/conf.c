/* pullback: pullbackd's configuration.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "seterr.h"
#include "conf.h"
#include "names.h"
#include "safepath.h"

/* Longest line the parser takes; anything longer is an error. */
#define MAX_LINE 4096

void
config_init (struct config *c)
{
  memset (c, 0, sizeof *c);
  c->log_level = LOG_LEVEL_INFO;
  c->backup_ttl = CONFIG_DEFAULT_BACKUP_TTL;
  c->backup_ttl_max = CONFIG_DEFAULT_BACKUP_TTL_MAX;
  c->scratch_reserve = CONFIG_DEFAULT_SCRATCH_RESERVE;
  nbdconf_init (&c->nbd);
}

static void
vm_config_free (struct vm_config *v)
{
  if (v == NULL)
    return;
  free (v->name);
  free (v->qmp);
  free (v->qga);
  free (v->scratch);
  free (v->nbd);
  free (v->origin);
  nbdconf_free (&v->net);
  free (v);
}

void
config_clear_listen (struct config *c)
{
  string_vector_iter (&c->listen, (void (*) (char *))free);
  string_vector_reset (&c->listen);
  string_vector_iter (&c->listen_origin, (void (*) (char *))free);
  string_vector_reset (&c->listen_origin);
}

void
config_free (struct config *c)
{
  free (c->state_dir);
  free (c->run_dir);
  free (c->token_file);
  free (c->delta_plugin);
  free (c->nbdkit);
  free (c->tls_cert);
  free (c->tls_key);
  free (c->tls_client_ca);
  free (c->tls_cert_origin);
  free (c->tls_key_origin);
  free (c->tls_client_ca_origin);
  config_clear_listen (c);
  string_vector_iter (&c->allowed_roots, (void (*) (char *))free);
  string_vector_reset (&c->allowed_roots);
  vm_config_vector_iter (&c->vms, vm_config_free);
  vm_config_vector_reset (&c->vms);
  nbdconf_free (&c->nbd);
  memset (c, 0, sizeof *c);
}

/* Replace *DST with a copy of VALUE. */
static int
set_string (char **dst, const char *value, char *err, size_t errlen)
{
  char *s = strdup (value);

  if (s == NULL)
    {
      seterr (err, errlen, "out of memory");
      return -1;
    }
  free (*dst);
  *dst = s;
  return 0;
}

static int
set_abs_path (char **dst, const char *value, char *err, size_t errlen)
{
  if (value[0] != '/')
    {
      seterr (err, errlen, "must be an absolute path");
      return -1;
    }
  if (strlen (value) >= PATH_MAX)
    {
      seterr (err, errlen, "path is too long");
      return -1;
    }
  return set_string (dst, value, err, errlen);
}

/* A whole positive number of seconds, at most one year. */
static int
parse_seconds (const char *value, int *out, char *err, size_t errlen)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (value, &end, 10);
  if (errno || end == value || *end != '\0' || v <= 0 || v > 366 * 86400)
    {
      seterr (err, errlen,
              "must be a whole number of seconds between 1 and %d",
              366 * 86400);
      return -1;
    }
  *out = (int)v;
  return 0;
}

/* A size in bytes: digits with an optional K, M, G or T (powers of
 * 1024).  "0" is allowed (meaning "no limit" where the key says so).
 */
static int
parse_size (const char *value, int64_t *out, char *err, size_t errlen)
{
  char *end;
  unsigned long long v;
  int shift = 0;

  errno = 0;
  v = strtoull (value, &end, 10);
  if (errno == 0 && end != value && value[0] != '-')
    switch (*end)
      {
      case 'K':
        shift = 10, end++;
        break;
      case 'M':
        shift = 20, end++;
        break;
      case 'G':
        shift = 30, end++;
        break;
      case 'T':
        shift = 40, end++;
        break;
      }
  if (errno || end == value || value[0] == '-' || *end != '\0'
      || v > (UINT64_C (1) << (62 - shift)))
    {
      seterr (err, errlen,
              "must be a size in bytes, optionally with K, M, G or T "
              "(e.g. 512M), at most 4 EiB");
      return -1;
    }
  *out = (int64_t)(v << shift);
  return 0;
}

/* "HOST:PORT" (port 1-65535, host non-empty, IPv6 in brackets) or an
 * absolute path for a unix socket.
 */
static int
check_listen (const char *value, char *err, size_t errlen)
{
  const char *colon;
  char *end;
  long port;

  if (value[0] == '/')
    return 0;
  colon = strrchr (value, ':');
  if (colon == NULL || colon == value)
    {
      seterr (err, errlen,
              "must be HOST:PORT or an absolute unix socket path");
      return -1;
    }
  errno = 0;
  port = strtol (colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
    {
      seterr (err, errlen, "port must be a number from 1 to 65535");
      return -1;
    }
  return 0;
}

/* The NBD server to adopt: "unix:PATH" or "HOST:PORT". */
static int
check_nbd_addr (const char *value, char *err, size_t errlen)
{
  if (strncmp (value, "unix:", 5) == 0)
    {
      if (value[5] != '/')
        {
          seterr (err, errlen, "unix: must be followed by an absolute path");
          return -1;
        }
      return 0;
    }
  if (value[0] == '/')
    {
      seterr (err, errlen, "write a unix socket as unix:PATH");
      return -1;
    }
  return check_listen (value, err, errlen);
}

/* Does the host of "HOST:PORT" resolve to loopback addresses only?  (A
 * prefix test would let "127.example.com" through.)
 */
static bool
loopback (const char *addr)
{
  char host[256];
  size_t n = (size_t)(strrchr (addr, ':') - addr);

  if (n >= sizeof host)
    return false;
  memcpy (host, addr, n);
  host[n] = '\0';
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
    {
      memmove (host, host + 1, n - 2);
      host[n - 2] = '\0';
    }
  return host_is_loopback (host);
}

/* A path key that remembers where it was set (for later errors). */
static int
set_path_at (char **dst, char **dst_origin, const char *value,
             const char *origin, char *err, size_t errlen)
{
  if (set_abs_path (dst, value, err, errlen) == -1)
    return -1;
  return set_string (dst_origin, origin, err, errlen);
}

/* Set global KEY to VALUE; ORIGIN says where ("FILE:LINE", or the
 * command line).
 */
static int
config_set_at (struct config *c, const char *key, const char *value,
               const char *origin, char *err, size_t errlen)
{
  char why[256];
  int r;

  why[0] = '\0';
  if (strcmp (key, "state-dir") == 0)
    r = set_abs_path (&c->state_dir, value, why, sizeof why);
  else if (strcmp (key, "run-dir") == 0)
    r = set_abs_path (&c->run_dir, value, why, sizeof why);
  else if (strcmp (key, "listen") == 0)
    {
      char *s;

      char *o;

      /* Off loopback it needs HTTPS, which other keys may set later:
       * config_check.
       */
      r = check_listen (value, why, sizeof why);
      for (size_t i = 0; r == 0 && i < c->listen.len; i++)
        if (strcmp (c->listen.ptr[i], value) == 0)
          {
            snprintf (why, sizeof why, "%s is given twice", value);
            r = -1;
          }
      if (r == 0)
        {
          s = strdup (value);
          o = strdup (origin);
          if (s == NULL || o == NULL
              || string_vector_reserve (&c->listen, 1) == -1
              || string_vector_reserve (&c->listen_origin, 1) == -1)
            {
              free (s);
              free (o);
              snprintf (why, sizeof why, "out of memory");
              r = -1;
            }
          else
            {
              string_vector_append (&c->listen, s);
              string_vector_append (&c->listen_origin, o);
            }
        }
    }
  else if (strcmp (key, "allowed-roots") == 0)
    {
      char *s;

      r = safepath_plain (value, why, sizeof why) ? 0 : -1;
      if (r == 0
          && ((s = strdup (value)) == NULL
              || string_vector_append (&c->allowed_roots, s) == -1))
        {
          snprintf (why, sizeof why, "out of memory");
          r = -1;
        }
    }
  else if (strcmp (key, "log-level") == 0)
    {
      int level = log_level_from_string (value);

      r = level >= 0 ? 0 : -1;
      if (r == 0)
        c->log_level = level;
      else
        snprintf (why, sizeof why, "must be error, warn, info or debug");
    }
  else if (strcmp (key, "backup-ttl") == 0)
    r = parse_seconds (value, &c->backup_ttl, why, sizeof why);
  else if (strcmp (key, "backup-ttl-max") == 0)
    r = parse_seconds (value, &c->backup_ttl_max, why, sizeof why);
  else if (strcmp (key, "token-file") == 0)
    r = set_abs_path (&c->token_file, value, why, sizeof why);
  else if (strcmp (key, "tls-cert") == 0)
    r = set_path_at (&c->tls_cert, &c->tls_cert_origin, value, origin, why,
                     sizeof why);
  else if (strcmp (key, "tls-key") == 0)
    r = set_path_at (&c->tls_key, &c->tls_key_origin, value, origin, why,
                     sizeof why);
  else if (strcmp (key, "tls-client-ca") == 0)
    r = set_path_at (&c->tls_client_ca, &c->tls_client_ca_origin, value,
                     origin, why, sizeof why);
  else if (strcmp (key, "delta-plugin") == 0)
    {
      c->delta_off = strcmp (value, "off") == 0;
      free (c->delta_plugin);
      c->delta_plugin = NULL;
      r = 0;
      if (!c->delta_off)
        r = set_abs_path (&c->delta_plugin, value, why, sizeof why);
    }
  else if (strcmp (key, "nbdkit") == 0)
    {
      free (c->nbdkit);
      c->nbdkit = strdup (value);
      r = 0;
      if (c->nbdkit == NULL)
        {
          snprintf (why, sizeof why, "out of memory");
          r = -1;
        }
    }
  else if (strcmp (key, "scratch-create") == 0)
    {
      r = strcmp (value, "auto") == 0 || strcmp (value, "qemu") == 0 ? 0 : -1;
      if (r == 0)
        c->scratch_via_qemu = strcmp (value, "qemu") == 0;
      else
        snprintf (why, sizeof why, "must be auto or qemu");
    }
  else if (strcmp (key, "scratch-max") == 0)
    r = parse_size (value, &c->scratch_max, why, sizeof why);
  else if (strcmp (key, "scratch-reserve") == 0)
    r = parse_size (value, &c->scratch_reserve, why, sizeof why);
  else if ((r = nbdconf_set (&c->nbd, key, value, why, sizeof why)) != 1)
    ;
  else
    {
      seterr (err, errlen, "unknown key '%s'", key);
      return -1;
    }
  if (r == -1)
    seterr (err, errlen, "key '%s': %s", key, why);
  return r;
}

int
config_set (struct config *c, const char *key, const char *value, char *err,
            size_t errlen)
{
  char origin[64];

  snprintf (origin, sizeof origin, "--%s", key);
  return config_set_at (c, key, value, origin, err, errlen);
}

static int
vm_set (struct vm_config *v, const char *key, const char *value, char *err,
        size_t errlen)
{
  char why[256];
  int r;

  why[0] = '\0';
  if (strcmp (key, "qmp") == 0)
    r = set_abs_path (&v->qmp, value, why, sizeof why);
  else if (strcmp (key, "qga") == 0)
    r = set_abs_path (&v->qga, value, why, sizeof why);
  else if (strcmp (key, "scratch") == 0)
    r = set_abs_path (&v->scratch, value, why, sizeof why);
  else if (strcmp (key, "nbd") == 0)
    {
      r = check_nbd_addr (value, why, sizeof why);
      if (r == 0)
        r = set_string (&v->nbd, value, why, sizeof why);
    }
  else if ((r = nbdconf_set (&v->net, key, value, why, sizeof why)) != 1)
    ;
  else
    {
      seterr (err, errlen, "unknown key '%s' in [vm %s]", key, v->name);
      return -1;
    }
  if (r == -1)
    seterr (err, errlen, "key '%s' of VM '%s': %s", key, v->name, why);
  return r;
}

static struct vm_config *
new_vm (struct config *c, const char *name, const char *origin, char *err,
        size_t errlen)
{
  char why[256];
  struct vm_config *v;

  if (!name_valid (NAME_VM, name, why, sizeof why))
    {
      seterr (err, errlen, "%s", why);
      return NULL;
    }
  if (config_find_vm (c, name))
    {
      seterr (err, errlen, "VM '%s' is defined twice", name);
      return NULL;
    }
  v = calloc (1, sizeof *v);
  if (v)
    nbdconf_init (&v->net);
  if (v == NULL || (v->name = strdup (name)) == NULL
      || (v->origin = strdup (origin)) == NULL
      || vm_config_vector_append (&c->vms, v) == -1)
    {
      vm_config_free (v);
      seterr (err, errlen, "out of memory");
      return NULL;
    }
  return v;
}

static char *
trim (char *s)
{
  char *end;

  while (*s == ' ' || *s == '\t')
    s++;
  end = s + strlen (s);
  while (end > s
         && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'
             || end[-1] == '\n'))
    *--end = '\0';
  return s;
}

int
config_read_file (struct config *c, const char *path, char *err, size_t errlen)
{
  CLEANUP_FCLOSE FILE *fp = fopen (path, "r");
  struct vm_config *vm = NULL;
  char line[MAX_LINE + 2];
  char origin[PATH_MAX + 32];
  char why[512];
  int lineno = 0;

  if (fp == NULL)
    {
      seterr (err, errlen, "%s: %s", path, strerror (errno));
      return -1;
    }

  while (fgets (line, sizeof line, fp))
    {
      char *s, *eq, *key, *value;

      lineno++;
      if (strlen (line) > MAX_LINE && line[strlen (line) - 1] != '\n')
        {
          seterr (err, errlen, "%s:%d: line longer than %d characters", path,
                  lineno, MAX_LINE);
          return -1;
        }
      s = trim (line);
      if (*s == '\0' || *s == '#')
        continue;

      if (*s == '[')
        {
          char *close = strchr (s, ']');
          char *name;

          if (close == NULL || trim (close + 1)[0] != '\0'
              || strncmp (s, "[vm ", 4) != 0)
            {
              seterr (err, errlen, "%s:%d: a section must look like [vm NAME]",
                      path, lineno);
              return -1;
            }
          *close = '\0';
          name = trim (s + 4);
          snprintf (origin, sizeof origin, "%s:%d", path, lineno);
          vm = new_vm (c, name, origin, why, sizeof why);
          if (vm == NULL)
            {
              seterr (err, errlen, "%s:%d: %s", path, lineno, why);
              return -1;
            }
          continue;
        }

      eq = strchr (s, '=');
      if (eq == NULL)
        {
          seterr (err, errlen, "%s:%d: expected 'key = value'", path, lineno);
          return -1;
        }
      *eq = '\0';
      key = trim (s);
      value = trim (eq + 1);
      if (*key == '\0')
        {
          seterr (err, errlen, "%s:%d: missing key before '='", path, lineno);
          return -1;
        }
      if (*value == '\0')
        {
          seterr (err, errlen, "%s:%d: key '%s': missing value", path, lineno,
                  key);
          return -1;
        }
      snprintf (origin, sizeof origin, "%s:%d", path, lineno);
      if ((vm ? vm_set (vm, key, value, why, sizeof why)
              : config_set_at (c, key, value, origin, why, sizeof why))
          == -1)
        {
          seterr (err, errlen, "%s:%d: %s", path, lineno, why);
          return -1;
        }
    }
  if (ferror (fp))
    {
      seterr (err, errlen, "%s: %s", path, strerror (errno));
      return -1;
    }
  return 0;
}

int
config_add_vm_arg (struct config *c, const char *arg, char *err, size_t errlen)
{
  CLEANUP_FREE char *copy = strdup (arg);
  char *eq, *opts, *item, *save = NULL;
  struct vm_config *vm;
  char why[512];

  if (copy == NULL)
    {
      seterr (err, errlen, "out of memory");
      return -1;
    }
  eq = strchr (copy, '=');
  if (eq == NULL)
    {
      seterr (err, errlen, "--vm %s: expected NAME=QMP_SOCKET[,key=value...]",
              arg);
      return -1;
    }
  *eq = '\0';
  vm = new_vm (c, copy, "--vm", why, sizeof why);
  if (vm == NULL)
    {
      seterr (err, errlen, "--vm %s: %s", arg, why);
      return -1;
    }
  opts = eq + 1;
  item = strtok_r (opts, ",", &save);
  if (item == NULL || vm_set (vm, "qmp", item, why, sizeof why) == -1)
    {
      seterr (err, errlen, "--vm %s: %s", arg,
              item ? why : "missing QMP socket path");
      return -1;
    }
  while ((item = strtok_r (NULL, ",", &save)) != NULL)
    {
      char *ieq = strchr (item, '=');

      if (ieq == NULL || ieq == item || ieq[1] == '\0')
        {
          seterr (err, errlen, "--vm %s: '%s' is not key=value", arg, item);
          return -1;
        }
      *ieq = '\0';
      if (strcmp (item, "qmp") == 0
          || vm_set (vm, item, ieq + 1, why, sizeof why) == -1)
        {
          seterr (err, errlen, "--vm %s: %s", arg,
                  strcmp (item, "qmp") == 0 ? "qmp is given first, once"
                                            : why);
          return -1;
        }
    }
  return 0;
}

/* The NBD network settings of every VM, and the global ones (which VMs
 * registered through the API take).
 */
static int
check_nbd_net (const struct config *c, char *err, size_t errlen)
{
  struct nbd_net_conf m;
  char why[512];
  int r;

  for (size_t i = 0; i <= c->vms.len; i++)
    {
      const struct vm_config *v = i < c->vms.len ? c->vms.ptr[i] : NULL;

      if (nbdconf_merge (&c->nbd, v ? &v->net : NULL, &m) == -1)
        {
          seterr (err, errlen, "out of memory");
          return -1;
        }
      r = nbdconf_check (&m, why, sizeof why);
      nbdconf_free (&m);
      if (r == -1)
        {
          if (v)
            seterr (err, errlen, "%s: VM '%s': %s", v->origin, v->name, why);
          else
            seterr (err, errlen, "%s", why);
          return -1;
        }
    }
  return 0;
}

int
config_check (const struct config *c, char *err, size_t errlen)
{
  bool tls = c->tls_cert && c->tls_key;

  if (c->tls_cert && !c->tls_key)
    {
      seterr (err, errlen, "%s: key 'tls-cert': needs 'tls-key' too",
              c->tls_cert_origin);
      return -1;
    }
  if (c->tls_key && !c->tls_cert)
    {
      seterr (err, errlen, "%s: key 'tls-key': needs 'tls-cert' too",
              c->tls_key_origin);
      return -1;
    }
  if (c->tls_client_ca && !tls)
    {
      seterr (err, errlen,
              "%s: key 'tls-client-ca': client certificates need HTTPS "
              "('tls-cert' and 'tls-key')",
              c->tls_client_ca_origin);
      return -1;
    }
  for (size_t i = 0; i < c->listen.len; i++)
    {
      const char *a = c->listen.ptr[i];
      const char *at = c->listen_origin.ptr[i];

      if (a[0] == '/')
        continue;
      if (!tls && !loopback (a))
        {
          seterr (err, errlen,
                  "%s: key 'listen': %s is not a loopback address; off "
                  "loopback the API is served over HTTPS only: set "
                  "'tls-cert' and 'tls-key' (or use a unix socket)",
                  at, a);
          return -1;
        }
      if (c->token_file == NULL)
        {
          seterr (err, errlen,
                  "%s: key 'listen': TCP address %s needs 'token-file' (TCP "
                  "clients must send 'Authorization: Bearer TOKEN')",
                  at, a);
          return -1;
        }
    }
  if (c->backup_ttl > c->backup_ttl_max)
    {
      seterr (err, errlen,
              "key 'backup-ttl' (%d) is larger than 'backup-ttl-max' (%d)",
              c->backup_ttl, c->backup_ttl_max);
      return -1;
    }
  for (size_t i = 0; i < c->vms.len; i++)
    if (c->vms.ptr[i]->qmp == NULL)
      {
        seterr (err, errlen, "%s: VM '%s' has no 'qmp' socket",
                c->vms.ptr[i]->origin, c->vms.ptr[i]->name);
        return -1;
      }
  return check_nbd_net (c, err, errlen);
}

const struct vm_config *
config_find_vm (const struct config *c, const char *name)
{
  for (size_t i = 0; i < c->vms.len; i++)
    if (strcmp (c->vms.ptr[i]->name, name) == 0)
      return c->vms.ptr[i];
  return NULL;
}

/* Largest token-file, tls-cert, tls-key or tls-client-ca taken. */
#define SECRET_FILE_MAX (1024 * 1024)
#define MAX_TOKENS 1024
#define TOKEN_MIN 16
#define TOKEN_MAX 4096

/* Read the regular file PATH (named KEY in messages) into *TEXT, NUL
 * terminated.  With SECRET, the file must be closed to others and not
 * writable by its group, and the bytes are read without stdio (no copy
 * left in its buffers).  -1 with ERR on error.
 */
static int
read_file (const char *key, const char *path, bool secret, char **text,
           size_t *len, char *err, size_t errlen)
{
  struct stat st;
  char *buf;
  size_t n = 0;
  int fd;

  *text = NULL;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd == -1)
    {
      seterr (err, errlen, "%s %s: %s", key, path, strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) == -1)
    {
      seterr (err, errlen, "%s %s: %s", key, path, strerror (errno));
      close (fd);
      return -1;
    }
  if (!S_ISREG (st.st_mode))
    {
      seterr (err, errlen, "%s %s: not a regular file", key, path);
      close (fd);
      return -1;
    }
  if (secret && (st.st_mode & 027))
    {
      seterr (err, errlen,
              "%s %s: others may access it or its group may write it "
              "(mode %03o); make it 0600 or 0640",
              key, path, (unsigned)(st.st_mode & 0777));
      close (fd);
      return -1;
    }
  if (st.st_size > SECRET_FILE_MAX)
    {
      seterr (err, errlen, "%s %s: larger than %d bytes", key, path,
              SECRET_FILE_MAX);
      close (fd);
      return -1;
    }
  buf = malloc ((size_t)st.st_size + 1);
  if (buf == NULL)
    {
      seterr (err, errlen, "out of memory");
      close (fd);
      return -1;
    }
  /* Up to the size it had: a file growing meanwhile is cut there. */
  while (n < (size_t)st.st_size)
    {
      ssize_t r = read (fd, buf + n, (size_t)st.st_size - n);

      if (r == -1 && errno == EINTR)
        continue;
      if (r == -1)
        {
          seterr (err, errlen, "%s %s: %s", key, path, strerror (errno));
          explicit_bzero (buf, n);
          free (buf);
          close (fd);
          return -1;
        }
      if (r == 0)
        break;
      n += (size_t)r;
    }
  close (fd);
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return 0;
}

static void
free_secret (char *s)
{
  if (s)
    {
      explicit_bzero (s, strlen (s));
      free (s);
    }
}

void
config_free_tokens (string_vector *tokens)
{
  string_vector_iter (tokens, free_secret);
  string_vector_reset (tokens);
}

/* Take the token on LINE (NUL terminated, no newline) into TOKENS. */
static int
add_token (string_vector *tokens, char *line, const char *path, int lineno,
           char *err, size_t errlen)
{
  char *t = trim (line), *end, *copy;
  size_t n;

  if (*t == '\0' || *t == '#')
    return 0;
  n = strcspn (t, " \t");
  end = trim (t + n);
  if (*end != '\0' && *end != '#')
    {
      seterr (err, errlen,
              "token-file %s:%d: one token a line (a comment may follow "
              "after '#')",
              path, lineno);
      return -1;
    }
  if (n < TOKEN_MIN || n > TOKEN_MAX)
    {
      seterr (err, errlen,
              "token-file %s:%d: a token must be %d to %d characters", path,
              lineno, TOKEN_MIN, TOKEN_MAX);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if (t[i] <= ' ' || t[i] > '~')
      {
        seterr (err, errlen,
                "token-file %s:%d: a token must be printable ASCII without "
                "spaces",
                path, lineno);
        return -1;
      }
  if (tokens->len == MAX_TOKENS)
    {
      seterr (err, errlen, "token-file %s: more than %d tokens", path,
              MAX_TOKENS);
      return -1;
    }
  copy = strndup (t, n);
  if (copy == NULL || string_vector_append (tokens, copy) == -1)
    {
      free (copy);
      seterr (err, errlen, "out of memory");
      return -1;
    }
  return 0;
}

int
config_load_tokens (const struct config *c, string_vector *tokens, char *err,
                    size_t errlen)
{
  char *text, *line, *next;
  size_t len;
  int lineno = 0, r = 0;

  *tokens = (string_vector)empty_vector;
  if (c->token_file == NULL)
    return 0;
  if (read_file ("token-file", c->token_file, true, &text, &len, err, errlen)
      == -1)
    return -1;
  if (strlen (text) != len)
    {
      seterr (err, errlen, "token-file %s: has a NUL byte", c->token_file);
      r = -1;
    }
  for (line = text; r == 0 && line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      lineno++;
      r = add_token (tokens, line, c->token_file, lineno, err, errlen);
    }
  explicit_bzero (text, len);
  free (text);
  if (r == 0 && tokens->len == 0)
    {
      seterr (err, errlen, "token-file %s: no token in it", c->token_file);
      r = -1;
    }
  if (r == -1)
    config_free_tokens (tokens);
  return r;
}

void
config_free_tls (struct tls_pem *pem)
{
  free (pem->cert);
  free_secret (pem->key);
  free (pem->client_ca);
  memset (pem, 0, sizeof *pem);
}

int
config_load_tls (const struct config *c, struct tls_pem *pem, char *err,
                 size_t errlen)
{
  size_t len;

  memset (pem, 0, sizeof *pem);
  if ((c->tls_cert
       && read_file ("tls-cert", c->tls_cert, false, &pem->cert, &len, err,
                     errlen)
              == -1)
      || (c->tls_key
          && read_file ("tls-key", c->tls_key, true, &pem->key, &len, err,
                        errlen)
                 == -1)
      || (c->tls_client_ca
          && read_file ("tls-client-ca", c->tls_client_ca, false,
                        &pem->client_ca, &len, err, errlen)
                 == -1))
    {
      config_free_tls (pem);
      return -1;
    }
  return 0;
}
