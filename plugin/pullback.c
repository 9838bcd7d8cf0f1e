/* nbdkit-pullback-plugin: a delta view of a QEMU NBD export.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * nbdkit can serve only the base:allocation context, so plain tools
 * (nbdcopy, qemu-img) never see QEMU's qemu:dirty-bitmap contexts.
 * This plugin connects to QEMU's export with libnbd and serves
 *
 *   view=delta  the same bytes, with block status built from the dirty
 *               bitmap: dirty ranges are data (even where they read as
 *               zeroes), clean ranges are hole+zero.  Copied with
 *               nbdcopy --destination-is-zero -S 0 into a qcow2 overlay
 *               of the previous backup, only the changes land there.
 *               It is not an image: clean ranges claim to be zeroes.
 *   view=full   a plain pass-through of data and base:allocation.
 *
 * Read-only, PARALLEL, one libnbd handle per client connection.  The
 * dirty bitmap is chosen once, when nbdkit starts (get_ready), so every
 * connection of a multi-conn client sees the same view; starting also
 * checks that the upstream, its export and the context are there, so a
 * parent that waits for the pid file knows the view can be served.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "aio.h"
#include "upstream.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* QEMU's limit, for an upstream that does not say. */
#define DEFAULT_MAX_REQUEST (32 * 1024 * 1024)

static bool delta = true;
static const char *context_arg;
/* The context served: the dirty bitmap (delta) or base:allocation. */
static char *context;

struct handle
{
  struct aio aio;
  int64_t size;
  uint32_t minimum, preferred, maximum; /* 0, 0, 0: unknown */
  char *export;
};

static void
pullback_unload (void)
{
  upstream_unload ();
  free (context);
}

static int
pullback_config (const char *key, const char *value)
{
  int r = upstream_config (key, value);

  if (r != 0)
    return r == 1 ? 0 : -1;
  if (strcmp (key, "view") == 0)
    {
      if (strcmp (value, "delta") == 0)
        delta = true;
      else if (strcmp (value, "full") == 0)
        delta = false;
      else
        {
          nbdkit_error ("view=%s: expected delta or full", value);
          return -1;
        }
    }
  else if (strcmp (key, "context") == 0)
    context_arg = value;
  else
    {
      nbdkit_error ("unknown parameter '%s'", key);
      return -1;
    }
  return 0;
}

static int
pullback_config_complete (void)
{
  const char *p = LIBNBD_CONTEXT_QEMU_DIRTY_BITMAP;

  if (upstream_config_complete () == -1)
    return -1;
  if (!delta)
    {
      if (context_arg)
        {
          nbdkit_error ("context=%s: only view=delta uses a dirty bitmap",
                        context_arg);
          return -1;
        }
      context = strdup (LIBNBD_CONTEXT_BASE_ALLOCATION);
    }
  else if (context_arg == NULL)
    return 0; /* chosen in get_ready */
  else if (strncmp (context_arg, p, strlen (p)) == 0
           && context_arg[strlen (p)] != '\0')
    context = strdup (context_arg);
  else if (strchr (context_arg, ':') == NULL && context_arg[0] != '\0')
    {
      /* A bare bitmap name. */
      if (asprintf (&context, "%s%s", p, context_arg) == -1)
        context = NULL;
    }
  else
    {
      nbdkit_error ("context=%s: expected %sNAME (or the bitmap's NAME)",
                    context_arg, p);
      return -1;
    }
  if (context == NULL)
    {
      nbdkit_error ("strdup: %m");
      return -1;
    }
  return 0;
}

#define pullback_config_help                                                  \
  "socket=<PATH>           The upstream's unix socket, or\n"                  \
  "[uri=]<NBD_URI>         the upstream's NBD URI (nbd://, nbds://,\n"        \
  "                        nbd+unix://, with TLS query parameters).\n"        \
  "export=<NAME>           The upstream export (overrides the URI's).\n"      \
  "view=delta|full         delta (default): block status from the dirty\n"    \
  "                        bitmap; full: plain pass-through.\n"               \
  "context=<CONTEXT>       qemu:dirty-bitmap:NAME (default: the only one).\n" \
  "tls=off|on|require      TLS to the upstream (with socket=).\n"             \
  "tls-certificates=<DIR>  X.509 certificates for the upstream.\n"            \
  "tls-verify=<BOOL>       Verify the upstream's certificate.\n"              \
  "tls-username=<NAME>     TLS user name.\n"                                  \
  "tls-psk=<FILE>          TLS pre-shared keys file."

/* Choose the dirty bitmap, or check the one asked for, and check that
 * the upstream and its export are there.  Runs once, before nbdkit
 * accepts connections, so its errors stop nbdkit with a message.
 */
static int
pullback_get_ready (void)
{
  struct nbd_handle *nbd;
  char **names = NULL;
  size_t n = 0, i;
  char *list = NULL, *name;
  size_t len = 0;
  FILE *fp;
  int r = -1;

  nbd = upstream_connect ();
  if (nbd == NULL)
    return -1;
  if (!delta)
    {
      if (nbd_opt_info (nbd) == -1)
        upstream_option_error (nbd, "NBD_OPT_INFO");
      else
        r = 0;
      goto out;
    }
  names = upstream_list_bitmaps (nbd, &n);
  if (names == NULL)
    goto out;
  for (i = 0; context && i < n; i++)
    if (strcmp (names[i], context) == 0)
      {
        r = 0;
        goto out;
      }
  if (context == NULL && n == 1)
    {
      context = names[0];
      names[0] = NULL;
      nbdkit_debug ("pullback: serving the only dirty bitmap, %s", context);
      r = 0;
      goto out;
    }
  /* Name the candidates in the error. */
  fp = open_memstream (&list, &len);
  if (fp == NULL)
    {
      nbdkit_error ("open_memstream: %m");
      goto out;
    }
  for (i = 0; i < n; i++)
    fprintf (fp, "%s%s", i ? ", " : "", names[i]);
  fclose (fp);
  name = upstream_export_name (nbd);
  if (n == 0)
    nbdkit_error ("upstream %s: export \"%s\" offers no %s context "
                  "(export it with a dirty bitmap: block-export-add with "
                  "\"bitmaps\", or qemu-nbd -B NAME)",
                  upstream_name (), name, LIBNBD_CONTEXT_QEMU_DIRTY_BITMAP);
  else if (context)
    nbdkit_error ("upstream %s: export \"%s\" does not offer %s; "
                  "it offers: %s",
                  upstream_name (), name, context, list);
  else
    nbdkit_error ("upstream %s: export \"%s\" offers %zu dirty bitmaps; "
                  "choose one with context=: %s",
                  upstream_name (), name, n, list);
  free (name);
  free (list);
out:
  upstream_free_names (names);
  if (nbd_aio_is_negotiating (nbd))
    nbd_opt_abort (nbd);
  nbd_close (nbd);
  return r;
}

/* The upstream's block size hints, if nbdkit can pass them on. */
static void
get_block_size (struct handle *h, struct nbd_handle *nbd)
{
  int64_t min = nbd_get_block_size (nbd, LIBNBD_SIZE_MINIMUM);
  int64_t pref = nbd_get_block_size (nbd, LIBNBD_SIZE_PREFERRED);
  int64_t max = nbd_get_block_size (nbd, LIBNBD_SIZE_MAXIMUM);

#define POW2(x) (((x) & ((x)-1)) == 0)
  if (min < 1 || min > 65536 || !POW2 (min) || pref < 512 || pref < min
      || pref > 32 * 1024 * 1024 || !POW2 (pref) || max < pref
      || max > UINT32_MAX || (max != UINT32_MAX && max % min != 0))
    {
      nbdkit_debug ("pullback: no usable block size hints upstream "
                    "(%" PRId64 ", %" PRId64 ", %" PRId64 ")",
                    min, pref, max);
      return;
    }
#undef POW2
  h->minimum = min;
  h->preferred = pref;
  h->maximum = max;
}

static void *
pullback_open (int readonly)
{
  struct handle *h;
  struct nbd_handle *nbd;
  uint64_t max_request;

  h = calloc (1, sizeof *h);
  if (h == NULL)
    {
      nbdkit_error ("calloc: %m");
      return NULL;
    }
  nbd = upstream_connect ();
  if (nbd == NULL)
    goto err;
  if (upstream_go (nbd, context) == -1)
    goto err_nbd;
  h->export = upstream_export_name (nbd);
  h->size = nbd_get_size (nbd);
  if (h->size == -1)
    {
      nbdkit_error ("upstream %s: %s", upstream_name (), nbd_get_error ());
      goto err_nbd;
    }
  get_block_size (h, nbd);
  max_request = h->maximum && h->maximum < DEFAULT_MAX_REQUEST
                    ? h->maximum
                    : DEFAULT_MAX_REQUEST;
  if (aio_start (&h->aio, nbd, max_request) == -1)
    goto err_nbd;
  return h;

err_nbd:
  nbd_close (nbd);
err:
  free (h->export);
  free (h);
  return NULL;
}

static void
pullback_close (void *handle)
{
  struct handle *h = handle;

  aio_stop (&h->aio);
  free (h->export);
  free (h);
}

static int64_t
pullback_get_size (void *handle)
{
  struct handle *h = handle;

  return h->size;
}

static int
pullback_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                     uint32_t *maximum)
{
  struct handle *h = handle;

  *minimum = h->minimum;
  *preferred = h->preferred;
  *maximum = h->maximum;
  return 0;
}

static const char *
pullback_export_description (void *handle)
{
  struct handle *h = handle;

  if (delta)
    return nbdkit_printf_intern (
        "pullback delta view of \"%s\" (%s), not a standalone image: "
        "block status shows only the changed blocks as data; copy with "
        "nbdcopy --destination-is-zero -S 0 into a qcow2 overlay of the "
        "previous backup",
        h->export, context);
  return nbdkit_printf_intern ("pullback full view of \"%s\"", h->export);
}

static int
pullback_can_multi_conn (void *handle)
{
  /* Read-only: every connection sees the same bytes. */
  return 1;
}

static int
pullback_can_extents (void *handle)
{
  return 1;
}

static int
pullback_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct handle *h = handle;

  /* nbdkit checks the range against get_size before calling us; this
   * guards the upstream request should that ever change.
   */
  if (offset > (uint64_t)h->size || count > (uint64_t)h->size - offset)
    {
      nbdkit_error ("read of %" PRIu32 " bytes at %" PRIu64
                    " is past the end of \"%s\" (%" PRId64 " bytes)",
                    count, offset, h->export, h->size);
      nbdkit_set_error (EINVAL);
      return -1;
    }
  return aio_pread (&h->aio, buf, count, offset);
}

static int
pullback_extents (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  struct extent_pairs pairs;
  uint64_t at = offset;
  uint32_t len, state, type;
  size_t i;
  int r = 0;

  if (aio_block_status (&h->aio, context, count, offset,
                        flags & NBDKIT_FLAG_REQ_ONE, &pairs)
      == -1)
    return -1;
  for (i = 0; i < pairs.n && r == 0; i++)
    {
      len = pairs.v[2 * i];
      state = pairs.v[2 * i + 1];
      if (delta)
        /* Dirty is data even if it reads as zeroes: nbdcopy -S 0 must
         * copy it over the stale bytes of the backing file.  Clean is a
         * hole, which nbdcopy --destination-is-zero leaves alone.
         */
        type = (state & LIBNBD_STATE_DIRTY)
                   ? 0
                   : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
      else
        type = state & (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
      r = nbdkit_add_extent (extents, at, len, type);
      at += len;
    }
  free (pairs.v);
  return r;
}

static void
pullback_dump_plugin (void)
{
  struct nbd_handle *nbd = nbd_create ();

  printf ("pullback_views=delta,full\n");
  if (nbd)
    {
      printf ("libnbd_version=%s\n", nbd_get_version (nbd));
      printf ("libnbd_tls=%d\n", nbd_supports_tls (nbd));
      nbd_close (nbd);
    }
}

static struct nbdkit_plugin plugin = {
  .name = "pullback",
  .longname = "pullback delta view of a QEMU NBD export",
  .version = PACKAGE_VERSION,
  .unload = pullback_unload,
  .config = pullback_config,
  .config_complete = pullback_config_complete,
  .config_help = pullback_config_help,
  .magic_config_key = "uri",
  .get_ready = pullback_get_ready,
  .dump_plugin = pullback_dump_plugin,
  .open = pullback_open,
  .close = pullback_close,
  .get_size = pullback_get_size,
  .block_size = pullback_block_size,
  .export_description = pullback_export_description,
  .can_multi_conn = pullback_can_multi_conn,
  .can_extents = pullback_can_extents,
  .pread = pullback_pread,
  .extents = pullback_extents,
};

NBDKIT_REGISTER_PLUGIN (plugin)
