/* pullback: changed-block and allocation extents of a backup's export.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "deadline.h"
#include "extents.h"
#include "vector.h"

/* How much of the disk one block-status request covers: bounds the
 * extents held at a time, whatever the disk's size (at 64 KiB
 * granularity, at most 4096 runs per context).
 */
#define QUERY_SPAN (UINT64_C (256) << 20)

/* Flags of one context. */
#define ALLOC_HOLE 1u
#define ALLOC_ZERO 2u
#define DIRTY_BIT 1u

struct run
{
  uint64_t length;
  uint32_t flags;
};

DEFINE_VECTOR_TYPE (run_vector, struct run)

struct extents
{
  struct nbd_handle *nbd;
  int timeout_ms;
  char *dirty_ctx; /* NULL for context=zero */
  uint64_t pos, end;
  long limit, emitted;

  /* Runs of the current request, per context. */
  run_vector alloc, dirty;
  uint64_t runs_start;
  bool runs_failed;

  /* The item being grown: it is written only once the next one differs
   * or the range ends, so pages never split an item.
   */
  bool have_pending;
  uint64_t p_start, p_length;
  bool p_a, p_b; /* zero/hole or dirty/zero */

  /* Output. */
  char *out;
  size_t out_len, out_cap, out_pos;
  bool started, finished;
  uint64_t next_offset; /* UINT64_MAX: null */
  char error[256];
};

static int
append (struct extents *x, const char *s, size_t n)
{
  if (x->out_pos == x->out_len)
    x->out_pos = x->out_len = 0;
  if (x->out_cap - x->out_len < n)
    {
      size_t cap = (x->out_cap ? x->out_cap * 2 : 65536);
      char *p;

      while (cap - x->out_len < n)
        cap *= 2;
      p = realloc (x->out, cap);
      if (p == NULL)
        return -1;
      x->out = p;
      x->out_cap = cap;
    }
  memcpy (x->out + x->out_len, s, n);
  x->out_len += n;
  return 0;
}

static int
write_item (struct extents *x)
{
  char item[160];
  int n;

  if (x->dirty_ctx)
    n = snprintf (item, sizeof item,
                  "%s{\"start\":%" PRIu64 ",\"length\":%" PRIu64
                  ",\"dirty\":%s,\"zero\":%s}",
                  x->emitted ? "," : "", x->p_start, x->p_length,
                  x->p_a ? "true" : "false", x->p_b ? "true" : "false");
  else
    n = snprintf (item, sizeof item,
                  "%s{\"start\":%" PRIu64 ",\"length\":%" PRIu64
                  ",\"zero\":%s,\"hole\":%s}",
                  x->emitted ? "," : "", x->p_start, x->p_length,
                  x->p_a ? "true" : "false", x->p_b ? "true" : "false");
  x->emitted++;
  return append (x, item, (size_t)n);
}

static int
finish (struct extents *x)
{
  char tail[64];

  if (x->next_offset == UINT64_MAX)
    snprintf (tail, sizeof tail, "],\"next_offset\":null}\n");
  else
    snprintf (tail, sizeof tail, "],\"next_offset\":%" PRIu64 "}\n",
              x->next_offset);
  x->finished = true;
  return append (x, tail, strlen (tail));
}

/* A segment [start, start+length) with flags A, B: merge it into the
 * pending item or write the pending item out.  Returns 1 when the limit
 * stops the answer.
 */
static int
add_segment (struct extents *x, uint64_t start, uint64_t length, bool a,
             bool b)
{
  if (x->have_pending && x->p_a == a && x->p_b == b
      && x->p_start + x->p_length == start)
    {
      x->p_length += length;
      return 0;
    }
  if (x->have_pending)
    {
      if (x->limit > 0 && x->emitted == x->limit)
        {
          /* Full: the next page starts with this segment. */
          x->next_offset = x->p_start;
          return 1;
        }
      if (write_item (x) == -1)
        return -1;
      if (x->limit > 0 && x->emitted == x->limit)
        {
          x->next_offset = start;
          return 1;
        }
    }
  x->have_pending = true;
  x->p_start = start;
  x->p_length = length;
  x->p_a = a;
  x->p_b = b;
  return 0;
}

static int
extent_cb (void *opaque, const char *ctx, uint64_t offset, uint32_t *entries,
           size_t n, int *error)
{
  struct extents *x = opaque;
  run_vector *v;

  if (strcmp (ctx, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0)
    v = &x->alloc;
  else if (x->dirty_ctx && strcmp (ctx, x->dirty_ctx) == 0)
    v = &x->dirty;
  else
    return 0;
  if (offset != x->runs_start)
    {
      x->runs_failed = true;
      return 0;
    }
  for (size_t i = 0; i + 1 < n; i += 2)
    if (run_vector_append (v, (struct run){ entries[i], entries[i + 1] })
        == -1)
      {
        x->runs_failed = true;
        return 0;
      }
  return 0;
}

/* Drive the handle until DONE says so, at most TIMEOUT_MS.  Returns 0,
 * or -1 with ERR set (TIMED_OUT tells a timeout from an NBD error).
 */
static int
run_until (struct nbd_handle *h, int (*done) (struct nbd_handle *, uint64_t),
           uint64_t cookie, int timeout_ms, const char *what, char *err,
           size_t errlen, bool *timed_out)
{
  int64_t deadline = deadline_after (timeout_ms);
  int r;

  *timed_out = false;
  while ((r = done (h, cookie)) == 0)
    {
      int left = deadline_remaining (deadline);

      if (left == 0)
        {
          snprintf (err, errlen, "%s: no answer within %d ms", what,
                    timeout_ms);
          *timed_out = true;
          return -1;
        }
      if (nbd_poll (h, left) == -1)
        break;
    }
  if (r != 1)
    {
      snprintf (err, errlen, "%s: %s", what, nbd_get_error ());
      return -1;
    }
  return 0;
}

static int
connected (struct nbd_handle *h, uint64_t unused)
{
  if (nbd_aio_is_connecting (h))
    return 0;
  return nbd_aio_is_ready (h) ? 1 : -1;
}

/* One block-status request from pos: turn its runs into segments.
 * Returns 0, 1 (limit reached) or -1.
 */
static int
step (struct extents *x)
{
  uint64_t span = x->end - x->pos;
  size_t ia = 0, id = 0;
  uint64_t ra, rd, pos = x->pos;
  bool timed_out;
  int64_t cookie;
  int r = 0;

  if (span > QUERY_SPAN)
    span = QUERY_SPAN;
  x->alloc.len = x->dirty.len = 0;
  x->runs_start = x->pos;
  x->runs_failed = false;
  cookie = nbd_aio_block_status (
      x->nbd, span, x->pos,
      (nbd_extent_callback){ .callback = extent_cb, .user_data = x },
      NBD_NULL_COMPLETION, 0);
  if (cookie == -1)
    {
      snprintf (x->error, sizeof x->error, "block status: %s",
                nbd_get_error ());
      return -1;
    }
  if (run_until (x->nbd, nbd_aio_command_completed, (uint64_t)cookie,
                 x->timeout_ms, "block status", x->error, sizeof x->error,
                 &timed_out)
      == -1)
    return -1;
  if (x->runs_failed || x->alloc.len == 0
      || (x->dirty_ctx && x->dirty.len == 0))
    {
      snprintf (x->error, sizeof x->error,
                "block status at %" PRIu64 ": the server answered badly",
                x->pos);
      return -1;
    }

  /* Walk both lists together; a segment ends where either run ends. */
  ra = x->alloc.ptr[0].length;
  rd = x->dirty_ctx ? x->dirty.ptr[0].length : UINT64_MAX;
  while (pos < x->end && r == 0)
    {
      uint64_t len = ra < rd ? ra : rd;
      uint32_t fa = x->alloc.ptr[ia].flags;
      bool dirty = x->dirty_ctx && (x->dirty.ptr[id].flags & DIRTY_BIT);

      if (len > x->end - pos)
        len = x->end - pos;
      if (len == 0)
        break;
      if (x->dirty_ctx)
        r = add_segment (x, pos, len, dirty, fa & ALLOC_ZERO);
      else
        r = add_segment (x, pos, len, fa & ALLOC_ZERO, fa & ALLOC_HOLE);
      pos += len;
      ra -= len;
      if (x->dirty_ctx)
        rd -= len;
      if (ra == 0)
        {
          if (++ia == x->alloc.len)
            break;
          ra = x->alloc.ptr[ia].length;
        }
      if (x->dirty_ctx && rd == 0)
        {
          if (++id == x->dirty.len)
            break;
          rd = x->dirty.ptr[id].length;
        }
    }
  if (r == -1)
    {
      snprintf (x->error, sizeof x->error, "out of memory");
      return -1;
    }
  if (r == 0 && pos == x->pos)
    {
      /* A zero-length first extent: no progress, and asking again would
       * loop forever.
       */
      snprintf (x->error, sizeof x->error,
                "block status at %" PRIu64 ": the server answered badly",
                x->pos);
      return -1;
    }
  x->pos = pos;
  return r;
}

/* Produce more output.  Returns 0, or -1 on error. */
static int
produce (struct extents *x)
{
  int r;

  if (!x->started)
    {
      x->started = true;
      return append (x, "{\"extents\":[", 12);
    }
  if (x->pos >= x->end)
    {
      /* The range is done: the last item is complete. */
      if (x->have_pending)
        {
          if (x->limit > 0 && x->emitted == x->limit)
            x->next_offset = x->p_start;
          else if (write_item (x) == -1)
            return -1;
        }
      return finish (x);
    }
  r = step (x);
  if (r == 1)
    return finish (x);
  return r;
}

struct extents *
extents_open (const char *uri, const char *tls_psk_file,
              const char *tls_certificates, const char *dirty_context,
              uint64_t offset, uint64_t length, long limit, int timeout_ms,
              char *err, size_t errlen, int *status)
{
  struct extents *x = calloc (1, sizeof *x);
  bool timed_out;
  int64_t size;

  *status = 502;
  if (x == NULL)
    {
      snprintf (err, errlen, "out of memory");
      *status = 500;
      return NULL;
    }
  x->next_offset = UINT64_MAX;
  x->limit = limit;
  x->timeout_ms = timeout_ms;
  x->nbd = nbd_create ();
  if (x->nbd == NULL
      || (dirty_context && (x->dirty_ctx = strdup (dirty_context)) == NULL)
      || nbd_add_meta_context (x->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1
      || (dirty_context && nbd_add_meta_context (x->nbd, dirty_context) == -1)
      || (tls_psk_file && nbd_set_tls_psk_file (x->nbd, tls_psk_file) == -1)
      || (tls_certificates
          && nbd_set_tls_certificates (x->nbd, tls_certificates) == -1)
      || nbd_aio_connect_uri (x->nbd, uri) == -1)
    {
      snprintf (err, errlen, "connecting to %s: %s", uri, nbd_get_error ());
      extents_close (x);
      return NULL;
    }
  if (run_until (x->nbd, connected, 0, timeout_ms, "connecting", err, errlen,
                 &timed_out)
      == -1)
    {
      if (timed_out)
        *status = 504;
      extents_close (x);
      return NULL;
    }
  if (nbd_can_meta_context (x->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1
      || (dirty_context && nbd_can_meta_context (x->nbd, dirty_context) != 1))
    {
      snprintf (err, errlen, "the export does not offer %s",
                dirty_context ? dirty_context : "base:allocation");
      extents_close (x);
      return NULL;
    }
  size = nbd_get_size (x->nbd);
  if (size < 0)
    {
      snprintf (err, errlen, "size of %s: %s", uri, nbd_get_error ());
      extents_close (x);
      return NULL;
    }
  if (offset >= (uint64_t)size)
    {
      snprintf (err, errlen,
                "offset %" PRIu64 " is beyond the disk (%" PRId64 " bytes)",
                offset, size);
      *status = 400;
      extents_close (x);
      return NULL;
    }
  x->pos = offset;
  x->end = (uint64_t)size;
  if (length > 0 && length < (uint64_t)size - offset)
    x->end = offset + length;
  return x;
}

void
extents_close (struct extents *x)
{
  if (x == NULL)
    return;
  if (x->nbd)
    {
      /* A polite disconnect only to a server that is idle and answering,
       * and not waiting long for it: nbd_shutdown would wait for ever on
       * one that timed out.
       */
      if (nbd_aio_is_ready (x->nbd) && nbd_aio_in_flight (x->nbd) == 0
          && nbd_aio_disconnect (x->nbd, 0) == 0)
        {
          int64_t deadline = deadline_after (1000);

          while (!nbd_aio_is_closed (x->nbd) && !nbd_aio_is_dead (x->nbd)
                 && deadline_remaining (deadline) > 0
                 && nbd_poll (x->nbd, deadline_remaining (deadline)) != -1)
            ;
        }
      nbd_close (x->nbd);
    }
  run_vector_reset (&x->alloc);
  run_vector_reset (&x->dirty);
  free (x->dirty_ctx);
  free (x->out);
  free (x);
}

ssize_t
extents_read (struct extents *x, char *buf, size_t max)
{
  while (x->out_pos == x->out_len)
    {
      if (x->finished)
        return 0;
      if (produce (x) == -1)
        return -1;
    }
  if (max > x->out_len - x->out_pos)
    max = x->out_len - x->out_pos;
  memcpy (buf, x->out + x->out_pos, max);
  x->out_pos += max;
  return (ssize_t)max;
}

const char *
extents_error (const struct extents *x)
{
  return x->error;
}
