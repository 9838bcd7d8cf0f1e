/* pullback: the paths a registration request names.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "reqpaths.h"
#include "safepath.h"

/* The state and run directories and the API sockets. */
#define MAX_OWN 18

static size_t
own_paths (const struct daemon_ctx *ctx, const char **own)
{
  size_t n = 0;

  own[n++] = ctx->state_dir;
  own[n++] = ctx->run_dir;
  for (size_t i = 0; i < ctx->n_listen && n < MAX_OWN; i++)
    if (ctx->listen[i][0] == '/')
      own[n++] = ctx->listen[i];
  return n;
}

static int
check_fd (const struct daemon_ctx *ctx, const char *field, const char *path,
          mode_t type, int *fd, struct reply *r)
{
  const char *own[MAX_OWN];
  struct safepath_id ids[MAX_OWN];
  size_t nown = own_paths (ctx, own), nids = 0;
  struct sockaddr_un sun;
  char why[PATH_MAX + 256];

  if (type == S_IFSOCK && strlen (path) >= sizeof sun.sun_path)
    return reply_error_field (r, PB_ERR_MALFORMED, "invalid-path", field,
                              "field '%s': %s is too long for a unix socket "
                              "(at most %zu bytes)",
                              field, path, sizeof sun.sun_path - 1);
  for (size_t i = 0; i < nown; i++)
    {
      struct stat st;

      /* By name, also what does not exist (yet)... */
      if (own[i] && safepath_within (path, own[i]))
        return reply_error_field (
            r, PB_ERR_INVALID, "path-not-allowed", field,
            "field '%s': %s is or lies in pullbackd's own %s", field, path,
            i == 0   ? "state directory"
            : i == 1 ? "run directory"
                     : "API socket");
      /* ...and by identity, also through another name. */
      if (own[i] && stat (own[i], &st) == 0)
        ids[nids++] = (struct safepath_id){ st.st_dev, st.st_ino };
    }

  switch (safepath_check (path, ctx->allowed_roots, ctx->n_allowed_roots, type,
                          ids, nids, fd, why, sizeof why))
    {
    case SAFEPATH_OK:
      return 0;
    case SAFEPATH_INVALID:
      return reply_error_field (r, PB_ERR_MALFORMED, "invalid-path", field,
                                "field '%s': %s %s", field, path, why);
    case SAFEPATH_NOT_FOUND:
      return reply_error_field (r, PB_ERR_INVALID, "path-not-found", field,
                                "field '%s': %s %s", field, path, why);
    case SAFEPATH_WRONG_TYPE:
      return reply_error_field (r, PB_ERR_INVALID, "path-wrong-type", field,
                                "field '%s': %s %s", field, path, why);
    case SAFEPATH_NOT_ALLOWED:
    case SAFEPATH_ERROR:
      break;
    }
  return reply_error_field (r, PB_ERR_INVALID, "path-not-allowed", field,
                            "field '%s': %s %s", field, path, why);
}

static int
check (const struct daemon_ctx *ctx, const char *field, const char *path,
       mode_t type, struct reply *r)
{
  return check_fd (ctx, field, path, type, NULL, r);
}

int
reqpaths_open (const struct daemon_ctx *ctx, const char *field,
               const char *path, struct reply *r)
{
  char proc[64];
  int opath = -1, fd;

  if (check_fd (ctx, field, path, S_IFREG, &opath, r) == -1)
    return -1;
  /* The object the walk found, whatever its name leads to now. */
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", opath);
  fd = open (proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  close (opath);
  if (fd == -1)
    return reply_error_field (r, PB_ERR_INTERNAL, "path-not-allowed", field,
                              "field '%s': %s: %s", field, path,
                              strerror (errno));
  return fd;
}

int
reqpaths_check (const struct daemon_ctx *ctx, const json_t *args,
                struct reply *r)
{
  const char *qmp = json_string_value (json_object_get (args, "qmp"));
  const char *qga = json_string_value (json_object_get (args, "qga"));
  const char *scratch
      = json_string_value (json_object_get (args, "scratch_dir"));
  const char *nbd = json_string_value (json_object_get (args, "nbd"));
  const char *x509
      = json_string_value (json_object_get (args, "nbd_tls_x509_dir"));
  const char *psk
      = json_string_value (json_object_get (args, "nbd_tls_psk_file"));

  if ((qmp && check (ctx, "qmp", qmp, S_IFSOCK, r) == -1)
      || (qga && check (ctx, "qga", qga, S_IFSOCK, r) == -1)
      || (scratch && check (ctx, "scratch_dir", scratch, S_IFDIR, r) == -1)
      || (nbd && strncmp (nbd, "unix:", 5) == 0
          && check (ctx, "nbd", nbd + 5, S_IFSOCK, r) == -1)
      || (x509 && check (ctx, "nbd_tls_x509_dir", x509, S_IFDIR, r) == -1)
      || (psk && check (ctx, "nbd_tls_psk_file", psk, S_IFREG, r) == -1))
    return -1;
  return 0;
}
