/* pullback bench: read exactly the dirty blocks of an export, fast.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 *   read-dirty URI CONTEXT [CONNECTIONS [REQUEST_SIZE [REQUESTS]]]
 *
 * The baseline of the delta view's benchmark: what a libnbd client that
 * speaks qemu:dirty-bitmap does without the plugin.  It asks CONTEXT for
 * the dirty extents, splits them into requests of at most REQUEST_SIZE
 * (default 256 KiB, nbdcopy's), and reads them over CONNECTIONS
 * connections (default 4, nbdcopy's, if the export allows multi-conn),
 * one thread each with up to REQUESTS in flight (default 64, nbdcopy's),
 * discarding the data.  Prints the dirty bytes read.  With CONTEXT
 * base:allocation it reads the data extents instead (e.g. of a delta
 * view).
 */

#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define MAX_IN_FLIGHT 64

struct chunk
{
  uint64_t offset;
  uint32_t length;
};

static const char *uri, *context;
static struct chunk *chunks;
static size_t nr_chunks;
static uint32_t request_size = 256 * 1024;
static unsigned in_flight = MAX_IN_FLIGHT;
static bool base_allocation;

static void
die (const char *what)
{
  fprintf (stderr, "read-dirty: %s: %s\n", what, nbd_get_error ());
  exit (EXIT_FAILURE);
}

static struct nbd_handle *
connect_one (void)
{
  struct nbd_handle *h = nbd_create ();

  /* No zeroing of read buffers before each read: as the plugin. */
  if (h == NULL || nbd_set_pread_initialize (h, false) == -1
      || nbd_add_meta_context (h, context) == -1
      || nbd_connect_uri (h, uri) == -1)
    die ("connect");
  return h;
}

static int
add_extents (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t nr_entries, int *error)
{
  uint64_t *next = user_data;
  size_t i;
  uint32_t len, n;

  if (strcmp (metacontext, context) != 0)
    return 0;
  for (i = 0; i + 1 < nr_entries; i += 2)
    {
      /* Dirty in a dirty bitmap; data (not a hole) in base:allocation. */
      bool want = base_allocation ? !(entries[i + 1] & LIBNBD_STATE_HOLE)
                                  : (entries[i + 1] & 1);

      for (len = entries[i]; want && len > 0; len -= n)
        {
          n = len < request_size ? len : request_size;
          chunks = realloc (chunks, (nr_chunks + 1) * sizeof *chunks);
          if (chunks == NULL)
            abort ();
          chunks[nr_chunks].offset = offset + (entries[i] - len);
          chunks[nr_chunks++].length = n;
        }
      offset += entries[i];
    }
  *next = offset;
  return 0;
}

struct worker
{
  struct nbd_handle *h;
  size_t first, step; /* chunks first, first + step, ... */
  uint64_t bytes;
};

static int
read_done (void *user_data, int *error)
{
  if (*error)
    {
      fprintf (stderr, "read-dirty: read: %s\n", strerror (*error));
      exit (EXIT_FAILURE);
    }
  return 1; /* retire */
}

static void *
work (void *arg)
{
  struct worker *w = arg;
  nbd_completion_callback cb = { .callback = read_done };
  char *bufs[MAX_IN_FLIGHT];
  size_t i, slot = 0;

  /* The data is discarded, so buffers are simply taken in turn. */
  for (i = 0; i < MAX_IN_FLIGHT; i++)
    if ((bufs[i] = malloc (request_size)) == NULL)
      abort ();
  for (i = w->first; i < nr_chunks; i += w->step)
    {
      while (nbd_aio_in_flight (w->h) >= (int)in_flight)
        if (nbd_poll (w->h, -1) == -1)
          die ("poll");
      if (nbd_aio_pread (w->h, bufs[slot], chunks[i].length, chunks[i].offset,
                         cb, 0)
          == -1)
        die ("pread");
      slot = (slot + 1) % MAX_IN_FLIGHT;
      w->bytes += chunks[i].length;
    }
  while (nbd_aio_in_flight (w->h) > 0)
    if (nbd_poll (w->h, -1) == -1)
      die ("poll");
  for (i = 0; i < MAX_IN_FLIGHT; i++)
    free (bufs[i]);
  return NULL;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *first;
  struct worker *w;
  pthread_t *tids;
  int conns = 4, i;
  int64_t size;
  uint64_t offset = 0, next, total = 0;

  if (argc < 3 || argc > 6)
    {
      fprintf (stderr, "usage: read-dirty URI CONTEXT [CONNECTIONS "
                       "[REQUEST_SIZE [REQUESTS]]]\n");
      return 2;
    }
  uri = argv[1];
  context = argv[2];
  base_allocation = strcmp (context, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0;
  if (argc > 3)
    conns = atoi (argv[3]);
  if (argc > 4)
    request_size = strtoul (argv[4], NULL, 0);
  if (argc > 5)
    in_flight = strtoul (argv[5], NULL, 0);
  if (in_flight < 1 || in_flight > MAX_IN_FLIGHT)
    {
      fprintf (stderr, "read-dirty: REQUESTS must be 1 to %d\n",
               MAX_IN_FLIGHT);
      return 2;
    }

  first = connect_one ();
  if (nbd_can_meta_context (first, context) != 1)
    die (context);
  if ((size = nbd_get_size (first)) == -1)
    die ("size");
  while (offset < (uint64_t)size)
    {
      uint64_t n = (uint64_t)size - offset;
      next = offset;
      if (nbd_block_status (first, n < (1u << 30) ? n : (1u << 30), offset,
                            (nbd_extent_callback){ .callback = add_extents,
                                                   .user_data = &next },
                            0)
              == -1
          || next <= offset)
        die ("block status");
      offset = next;
    }
  if (nbd_can_multi_conn (first) != 1)
    conns = 1;

  w = calloc (conns, sizeof *w);
  tids = calloc (conns, sizeof *tids);
  if (w == NULL || tids == NULL)
    abort ();
  for (i = 0; i < conns; i++)
    {
      w[i].h = i == 0 ? first : connect_one ();
      w[i].first = i;
      w[i].step = conns;
      pthread_create (&tids[i], NULL, work, &w[i]);
    }
  for (i = 0; i < conns; i++)
    {
      pthread_join (tids[i], NULL);
      total += w[i].bytes;
      nbd_shutdown (w[i].h, 0);
      nbd_close (w[i].h);
    }
  free (w);
  free (tids);
  free (chunks);
  printf ("%" PRIu64 "\n", total);
  return 0;
}
