/* pullback: pullbackd's configuration.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "conf.h"
#include "names.h"
#include "safepath.h"

/* Longest line the parser takes; anything longer is an error. */
#define MAX_LINE 4096

static void seterr (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
seterr (char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL || errlen == 0)
    return;
  va_start (ap, fmt);
  vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
}

void
config_init (struct config *c)
{
  memset (c, 0, sizeof *c);
  c->log_level = LOG_LEVEL_INFO;
  c->backup_ttl = CONFIG_DEFAULT_BACKUP_TTL;
  c->backup_ttl_max = CONFIG_DEFAULT_BACKUP_TTL_MAX;
  c->scratch_reserve = CONFIG_DEFAULT_SCRATCH_RESERVE;
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
  free (v);
}

void
config_free (struct config *c)
{
  free (c->state_dir);
  free (c->run_dir);
  free (c->token_file);
  string_vector_iter (&c->listen, (void (*) (char *))free);
  string_vector_reset (&c->listen);
  string_vector_iter (&c->allowed_roots, (void (*) (char *))free);
  string_vector_reset (&c->allowed_roots);
  vm_config_vector_iter (&c->vms, vm_config_free);
  vm_config_vector_reset (&c->vms);
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
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL, *ai;
  bool ok;

  if (n >= sizeof host)
    return false;
  memcpy (host, addr, n);
  host[n] = '\0';
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
    {
      memmove (host, host + 1, n - 2);
      host[n - 2] = '\0';
    }
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

int
config_set (struct config *c, const char *key, const char *value, char *err,
            size_t errlen)
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

      r = check_listen (value, why, sizeof why);
      if (r == 0 && value[0] != '/' && !loopback (value))
        {
          snprintf (why, sizeof why,
                    "%s is not a loopback address; until pullbackd serves "
                    "HTTPS, TCP is allowed on loopback only (use a unix "
                    "socket, or a TLS proxy in front)",
                    value);
          r = -1;
        }
      for (size_t i = 0; r == 0 && i < c->listen.len; i++)
        if (strcmp (c->listen.ptr[i], value) == 0)
          {
            snprintf (why, sizeof why, "%s is given twice", value);
            r = -1;
          }
      if (r == 0
          && ((s = strdup (value)) == NULL
              || string_vector_append (&c->listen, s) == -1))
        {
          snprintf (why, sizeof why, "out of memory");
          r = -1;
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
  else
    {
      seterr (err, errlen, "unknown key '%s'", key);
      return -1;
    }
  if (r == -1)
    seterr (err, errlen, "key '%s': %s", key, why);
  return r;
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
      if ((vm ? vm_set (vm, key, value, why, sizeof why)
              : config_set (c, key, value, why, sizeof why))
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

int
config_check (const struct config *c, char *err, size_t errlen)
{
  for (size_t i = 0; i < c->listen.len; i++)
    {
      const char *a = c->listen.ptr[i];

      if (a[0] != '/' && c->token_file == NULL)
        {
          seterr (err, errlen,
                  "key 'listen': TCP address %s needs 'token-file' (TCP "
                  "clients must send 'Authorization: Bearer TOKEN')",
                  a);
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
  return 0;
}

const struct vm_config *
config_find_vm (const struct config *c, const char *name)
{
  for (size_t i = 0; i < c->vms.len; i++)
    if (strcmp (c->vms.ptr[i]->name, name) == 0)
      return c->vms.ptr[i];
  return NULL;
}

int
config_load_token (const struct config *c, char **token, char *err,
                   size_t errlen)
{
  char buf[4098];
  struct stat st;
  size_t n;
  FILE *fp;

  *token = NULL;
  if (c->token_file == NULL)
    return 0;
  fp = fopen (c->token_file, "re");
  if (fp == NULL)
    {
      seterr (err, errlen, "token-file %s: %s", c->token_file,
              strerror (errno));
      return -1;
    }
  n = fread (buf, 1, sizeof buf - 1, fp);
  if (fstat (fileno (fp), &st) == -1)
    st.st_mode = 07777;
  fclose (fp);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  if (st.st_mode & 007)
    {
      seterr (err, errlen,
              "token-file %s: others may access it (mode %03o); make it "
              "0600 or 0640",
              c->token_file, (unsigned)(st.st_mode & 0777));
      return -1;
    }
  if (n < 16 || n >= sizeof buf - 2)
    {
      seterr (err, errlen,
              "token-file %s: the token must be 16 to 4096 characters",
              c->token_file);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if (buf[i] <= ' ' || buf[i] > '~')
      {
        seterr (err, errlen,
                "token-file %s: the token must be printable ASCII without "
                "spaces (one line)",
                c->token_file);
        return -1;
      }
  *token = strdup (buf);
  if (*token == NULL)
    {
      seterr (err, errlen, "out of memory");
      return -1;
    }
  return 0;
}
