/* nbdkit-pullback-plugin: requests in flight on one upstream connection.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * nbdkit calls .pread and .extents of one connection from several
 * threads at once (PARALLEL).  A synchronous libnbd call holds the
 * handle for its whole round trip, so those threads would take turns;
 * instead each issues its request with nbd_aio_* and sleeps until its
 * completion callback runs, and one reader thread per connection polls
 * the socket and lets libnbd's state machine send and receive.
 *
 * When the upstream goes away, libnbd retires every request in flight
 * with an error and the handle becomes dead: waiting threads wake up
 * with that error, later requests fail at once, and the reader ends.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "aio.h"
#include "upstream.h"

/* What a calling thread waits for: PENDING requests to complete. */
struct waiter
{
  pthread_mutex_t lock;
  pthread_cond_t done;
  unsigned pending;
  int err; /* the first error */
  /* Block status only. */
  const char *context;
  struct extent_pairs *out;
};

static void
waiter_init (struct waiter *w)
{
  memset (w, 0, sizeof *w);
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->done, NULL);
}

static void
waiter_destroy (struct waiter *w)
{
  pthread_cond_destroy (&w->done);
  pthread_mutex_destroy (&w->lock);
}

/* Completion callback, run by libnbd in whichever thread finishes the
 * request (usually the reader).
 */
static int
completed (void *user_data, int *error)
{
  struct waiter *w = user_data;

  pthread_mutex_lock (&w->lock);
  if (*error && !w->err)
    w->err = *error;
  w->pending--;
  pthread_cond_signal (&w->done);
  pthread_mutex_unlock (&w->lock);
  return 1; /* retire the command: we do not ask libnbd about it again */
}

/* Wait for everything issued with W. */
static int
wait_all (struct waiter *w)
{
  int err;

  pthread_mutex_lock (&w->lock);
  while (w->pending > 0)
    pthread_cond_wait (&w->done, &w->lock);
  err = w->err;
  pthread_mutex_unlock (&w->lock);
  return err;
}

/* After issuing a request: if libnbd could not send all of it at once,
 * the reader has to wait for the socket to be writable too.
 */
static void
kick (struct aio *a)
{
  char c = 0;

  if ((nbd_aio_get_direction (a->nbd) & LIBNBD_AIO_DIRECTION_WRITE)
      && write (a->kick[1], &c, 1) == -1 && errno != EAGAIN)
    nbdkit_debug ("pullback: waking the reader: %m");
}

static void *
reader (void *arg)
{
  struct aio *a = arg;
  struct pollfd fds[2];
  unsigned dir;
  char buf[64];
  int r;

  while (!nbd_aio_is_dead (a->nbd) && !nbd_aio_is_closed (a->nbd))
    {
      dir = nbd_aio_get_direction (a->nbd);
      fds[0].fd = nbd_aio_get_fd (a->nbd);
      fds[0].events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
                      | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
      fds[1].fd = a->kick[0];
      fds[1].events = POLLIN;
      if (poll (fds, 2, -1) == -1)
        {
          if (errno == EINTR)
            continue;
          nbdkit_error ("pullback: poll: %m");
          break;
        }
      r = 0;
      dir = nbd_aio_get_direction (a->nbd);
      if ((dir & LIBNBD_AIO_DIRECTION_READ)
          && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        r = nbd_aio_notify_read (a->nbd);
      else if ((dir & LIBNBD_AIO_DIRECTION_WRITE)
               && (fds[0].revents & (POLLOUT | POLLHUP | POLLERR)))
        r = nbd_aio_notify_write (a->nbd);
      if (r == -1)
        nbdkit_debug ("pullback: upstream connection: %s", nbd_get_error ());
      if ((fds[1].revents & POLLIN) && read (a->kick[0], buf, sizeof buf) == -1
          && errno != EAGAIN)
        nbdkit_debug ("pullback: reading the wake-up pipe: %m");
    }
  nbdkit_debug ("pullback: reader ends, upstream connection %s",
                nbd_connection_state (a->nbd));
  return NULL;
}

int
aio_start (struct aio *a, struct nbd_handle *nbd, uint64_t max_request)
{
  int err;

  a->nbd = nbd;
  a->max_request = max_request;
  a->reader_running = false;
  if (pipe2 (a->kick, O_CLOEXEC | O_NONBLOCK) == -1)
    {
      nbdkit_error ("pipe2: %m");
      return -1;
    }
  err = pthread_create (&a->reader, NULL, reader, a);
  if (err)
    {
      errno = err;
      nbdkit_error ("pthread_create: %m");
      close (a->kick[0]);
      close (a->kick[1]);
      return -1;
    }
  a->reader_running = true;
  return 0;
}

void
aio_stop (struct aio *a)
{
  char c = 0;

  if (!nbd_aio_is_dead (a->nbd) && !nbd_aio_is_closed (a->nbd)
      && nbd_aio_disconnect (a->nbd, 0) == -1)
    nbdkit_debug ("pullback: disconnect: %s", nbd_get_error ());
  if (a->reader_running)
    {
      if (write (a->kick[1], &c, 1) == -1 && errno != EAGAIN)
        nbdkit_debug ("pullback: waking the reader: %m");
      pthread_join (a->reader, NULL);
      a->reader_running = false;
    }
  close (a->kick[0]);
  close (a->kick[1]);
  nbd_close (a->nbd);
  a->nbd = NULL;
}

/* Report ERR of a request the upstream did not answer. */
static void
request_failed (struct aio *a, const char *what, uint32_t count,
                uint64_t offset, int err)
{
  if (nbd_aio_is_dead (a->nbd) || nbd_aio_is_closed (a->nbd))
    {
      nbdkit_error ("%s of %" PRIu32 " bytes at %" PRIu64 ": the "
                    "connection to upstream %s is gone (the export or its "
                    "server ended)",
                    what, count, offset, upstream_name ());
      /* libnbd says EINVAL (wrong state) or ENOTCONN; to the client it
       * is an I/O error.
       */
      err = EIO;
    }
  else
    {
      errno = err;
      nbdkit_error ("%s of %" PRIu32 " bytes at %" PRIu64
                    " failed upstream (%s): %m",
                    what, count, offset, upstream_name ());
    }
  nbdkit_set_error (err);
  errno = err;
}

int
aio_pread (struct aio *a, void *buf, uint32_t count, uint64_t offset)
{
  struct waiter w;
  nbd_completion_callback cb = { .callback = completed, .user_data = &w };
  uint64_t done, n;
  int err = 0;

  waiter_init (&w);
  for (done = 0; done < count; done += n)
    {
      n = count - done < a->max_request ? count - done : a->max_request;
      pthread_mutex_lock (&w.lock);
      w.pending++;
      pthread_mutex_unlock (&w.lock);
      if (nbd_aio_pread (a->nbd, (char *)buf + done, n, offset + done, cb, 0)
          == -1)
        {
          err = nbd_get_errno () ? nbd_get_errno () : EIO;
          nbdkit_debug ("pullback: read: %s", nbd_get_error ());
          pthread_mutex_lock (&w.lock);
          w.pending--;
          pthread_mutex_unlock (&w.lock);
          break;
        }
      kick (a);
    }
  if (wait_all (&w) && !err)
    err = w.err;
  waiter_destroy (&w);
  if (err)
    {
      request_failed (a, "read", count, offset, err);
      return -1;
    }
  return 0;
}

/* Extent callback: keep the pairs of our context. */
static int
got_extents (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t nr_entries, int *error)
{
  struct waiter *w = user_data;
  struct extent_pairs *out = w->out;
  uint32_t *v;

  if (strcmp (metacontext, w->context) != 0 || nr_entries < 2)
    return 0;
  nr_entries &= ~(size_t)1;
  v = realloc (out->v, (out->n * 2 + nr_entries) * sizeof *v);
  if (v == NULL)
    {
      pthread_mutex_lock (&w->lock);
      if (!w->err)
        w->err = ENOMEM;
      pthread_mutex_unlock (&w->lock);
      return 0;
    }
  memcpy (v + out->n * 2, entries, nr_entries * sizeof *v);
  out->v = v;
  out->n += nr_entries / 2;
  return 0;
}

int
aio_block_status (struct aio *a, const char *context, uint32_t count,
                  uint64_t offset, bool req_one, struct extent_pairs *out)
{
  struct waiter w;
  nbd_extent_callback ecb = { .callback = got_extents, .user_data = &w };
  nbd_completion_callback cb = { .callback = completed, .user_data = &w };
  int err = 0;

  waiter_init (&w);
  w.context = context;
  w.out = out;
  out->v = NULL;
  out->n = 0;
  w.pending = 1;
  if (nbd_aio_block_status (a->nbd, count, offset, ecb, cb,
                            req_one ? LIBNBD_CMD_FLAG_REQ_ONE : 0)
      == -1)
    {
      err = nbd_get_errno () ? nbd_get_errno () : EIO;
      nbdkit_debug ("pullback: block status: %s", nbd_get_error ());
      w.pending = 0;
    }
  else
    kick (a);
  if (wait_all (&w) && !err)
    err = w.err;
  waiter_destroy (&w);
  if (!err && out->n == 0)
    {
      nbdkit_error ("block status of %" PRIu32 " bytes at %" PRIu64
                    ": upstream %s sent nothing for %s",
                    count, offset, upstream_name (), context);
      nbdkit_set_error (EIO);
      errno = EIO;
      return -1;
    }
  if (err)
    {
      free (out->v);
      out->v = NULL;
      out->n = 0;
      request_failed (a, "block status", count, offset, err);
      return -1;
    }
  return 0;
}
