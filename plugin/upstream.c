/* nbdkit-pullback-plugin: the upstream NBD export.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The upstream is named by socket=PATH (a unix socket) or uri=URI (any
 * NBD URI libnbd accepts, nbds:// with its TLS query parameters
 * included), plus export=NAME and, for socket=, the tls-* parameters.
 * Every connection is made in option mode so that the export and its
 * contexts can be checked, and named in the error, before nbd_opt_go.
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "upstream.h"

static const char *uri;
static char *socket_path;
static const char *export;
static int tls = -1;
static char *tls_certificates;
static int tls_verify = -1;
static const char *tls_username;
static char *tls_psk;

static int
set_path (char **dst, const char *value)
{
  free (*dst);
  *dst = nbdkit_absolute_path (value);
  return *dst ? 1 : -1;
}

int
upstream_config (const char *key, const char *value)
{
  int r;

  if (strcmp (key, "uri") == 0)
    uri = value;
  else if (strcmp (key, "socket") == 0)
    return set_path (&socket_path, value);
  else if (strcmp (key, "export") == 0)
    export = value;
  else if (strcmp (key, "tls") == 0)
    {
      if (strcasecmp (value, "require") == 0)
        tls = LIBNBD_TLS_REQUIRE;
      else
        {
          if ((r = nbdkit_parse_bool (value)) == -1)
            return -1;
          tls = r ? LIBNBD_TLS_ALLOW : LIBNBD_TLS_DISABLE;
        }
    }
  else if (strcmp (key, "tls-certificates") == 0)
    return set_path (&tls_certificates, value);
  else if (strcmp (key, "tls-verify") == 0)
    {
      if ((r = nbdkit_parse_bool (value)) == -1)
        return -1;
      tls_verify = r;
    }
  else if (strcmp (key, "tls-username") == 0)
    tls_username = value;
  else if (strcmp (key, "tls-psk") == 0)
    return set_path (&tls_psk, value);
  else
    return 0;
  return 1;
}

int
upstream_config_complete (void)
{
  struct sockaddr_un sun;

  if (!uri == !socket_path)
    {
      nbdkit_error ("name the upstream export with exactly one of "
                    "socket=PATH and uri=NBD_URI");
      return -1;
    }
  if (socket_path && strlen (socket_path) >= sizeof sun.sun_path)
    {
      nbdkit_error ("socket=%s: the path is too long for a unix socket",
                    socket_path);
      return -1;
    }
  if (tls == -1)
    tls = tls_certificates || tls_verify >= 0 || tls_username || tls_psk
              ? LIBNBD_TLS_REQUIRE
              : LIBNBD_TLS_DISABLE;
  return 0;
}

void
upstream_unload (void)
{
  free (socket_path);
  free (tls_certificates);
  free (tls_psk);
}

const char *
upstream_name (void)
{
  return uri ? uri : socket_path;
}

/* What libnbd needs before connecting; errors left in libnbd. */
static int
prepare (struct nbd_handle *nbd)
{
  if (nbd_set_opt_mode (nbd, true) == -1)
    return -1;
  /* Reads land in nbdkit's buffer, which nbdkit never sends after a
   * failed read: zeroing it first (libnbd's default) is a pass over
   * every byte for nothing.
   */
  if (nbd_set_pread_initialize (nbd, false) == -1)
    return -1;
  if (tls != LIBNBD_TLS_DISABLE && nbd_set_tls (nbd, tls) == -1)
    return -1;
  if (tls_certificates
      && nbd_set_tls_certificates (nbd, tls_certificates) == -1)
    return -1;
  if (tls_verify >= 0 && nbd_set_tls_verify_peer (nbd, tls_verify) == -1)
    return -1;
  if (tls_username && nbd_set_tls_username (nbd, tls_username) == -1)
    return -1;
  if (tls_psk && nbd_set_tls_psk_file (nbd, tls_psk) == -1)
    return -1;
  /* The URI comes from the command line, so it may name local files
   * (tls-psk-file, tls-certificates).
   */
  if (uri && nbd_set_uri_allow_local_file (nbd, true) == -1)
    return -1;
  if (!uri && nbd_set_export_name (nbd, export ? export : "") == -1)
    return -1;
  return 0;
}

struct nbd_handle *
upstream_connect (void)
{
  struct nbd_handle *nbd;
  int r;

  nbd = nbd_create ();
  if (nbd == NULL)
    {
      nbdkit_error ("nbd_create: %s", nbd_get_error ());
      return NULL;
    }
  if (prepare (nbd) == -1)
    {
      nbdkit_error ("upstream %s: %s", upstream_name (), nbd_get_error ());
      nbd_close (nbd);
      return NULL;
    }
  r = uri ? nbd_connect_uri (nbd, uri) : nbd_connect_unix (nbd, socket_path);
  if (r == -1)
    {
      nbdkit_error ("cannot connect to upstream %s: %s", upstream_name (),
                    nbd_get_error ());
      nbd_close (nbd);
      return NULL;
    }
  /* export= overrides the export name of the URI. */
  if (uri && export && nbd_set_export_name (nbd, export) == -1)
    {
      nbdkit_error ("upstream %s: %s", upstream_name (), nbd_get_error ());
      nbd_close (nbd);
      return NULL;
    }
  return nbd;
}

char *
upstream_export_name (struct nbd_handle *nbd)
{
  char *name = nbd_get_export_name (nbd);

  return name ? name : strdup ("?");
}

void
upstream_option_error (struct nbd_handle *nbd, const char *what)
{
  int err = nbd_get_errno ();
  char *name;

  /* QEMU answers NBD_REP_ERR_UNKNOWN for an export it does not have,
   * which libnbd reports as ENOENT.
   */
  if (err == ENOENT)
    {
      name = upstream_export_name (nbd);
      nbdkit_error ("upstream %s has no export \"%s\"", upstream_name (),
                    name ? name : "?");
      free (name);
    }
  else
    nbdkit_error ("upstream %s: %s: %s", upstream_name (), what,
                  nbd_get_error ());
}

struct names
{
  char **v;
  size_t n;
  int err;
};

static int
add_name (void *user_data, const char *name)
{
  struct names *names = user_data;
  char **v;

  if (names->err)
    return 0;
  v = realloc (names->v, (names->n + 2) * sizeof *v);
  if (v == NULL || (v[names->n] = strdup (name)) == NULL)
    {
      names->err = errno;
      if (v)
        names->v = v;
      return 0;
    }
  names->v = v;
  names->v[++names->n] = NULL;
  return 0;
}

void
upstream_free_names (char **names)
{
  size_t i;

  for (i = 0; names && names[i]; i++)
    free (names[i]);
  free (names);
}

char **
upstream_list_bitmaps (struct nbd_handle *nbd, size_t *n)
{
  struct names names = { .v = calloc (1, sizeof (char *)) };
  nbd_context_callback cb = { .callback = add_name, .user_data = &names };

  if (names.v == NULL)
    {
      nbdkit_error ("calloc: %m");
      return NULL;
    }
  /* Ask for the export first: QEMU answers a context query about an
   * export it does not have with a generic error.
   */
  if (nbd_opt_info (nbd) == -1)
    {
      upstream_option_error (nbd, "NBD_OPT_INFO");
      upstream_free_names (names.v);
      return NULL;
    }
  if (nbd_clear_meta_contexts (nbd) == -1
      || nbd_add_meta_context (nbd, LIBNBD_CONTEXT_QEMU_DIRTY_BITMAP) == -1
      || nbd_opt_list_meta_context (nbd, cb) == -1)
    {
      upstream_option_error (nbd, "listing the dirty bitmaps");
      upstream_free_names (names.v);
      return NULL;
    }
  if (names.err)
    {
      errno = names.err;
      nbdkit_error ("listing the dirty bitmaps: %m");
      upstream_free_names (names.v);
      return NULL;
    }
  *n = names.n;
  return names.v;
}

int
upstream_go (struct nbd_handle *nbd, const char *context)
{
  char *name;
  int r;

  if (nbd_clear_meta_contexts (nbd) == -1
      || nbd_add_meta_context (nbd, context) == -1)
    {
      nbdkit_error ("upstream %s: %s", upstream_name (), nbd_get_error ());
      return -1;
    }
  if (nbd_opt_go (nbd) == -1)
    {
      upstream_option_error (nbd, "NBD_OPT_GO");
      return -1;
    }
  r = nbd_can_meta_context (nbd, context);
  if (r == 1)
    return 0;
  name = upstream_export_name (nbd);
  if (r == -1)
    nbdkit_error ("upstream %s: %s", upstream_name (), nbd_get_error ());
  else
    nbdkit_error ("upstream %s: export \"%s\" does not offer the context %s",
                  upstream_name (), name, context);
  free (name);
  return -1;
}
