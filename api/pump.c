/* pullback: a streamed answer produced off libmicrohttpd's threads.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pump.h"

/* One read of the stream, and what may wait for the client at most. */
#define PUMP_CHUNK (64 * 1024)
#define PUMP_CAPACITY (4 * PUMP_CHUNK)

struct pump
{
  pthread_mutex_t lock;
  pthread_cond_t space; /* the reader took bytes, or cancelled */
  int refs;
  struct MHD_Connection *c; /* NULL once MHD freed the response */
  ssize_t (*read) (void *stream, char *buf, size_t max);
  void (*free) (void *stream);
  void *stream;
  char *buf;
  size_t start, len;
  bool done, failed;   /* the producer has ended (failed: cut short) */
  bool cancelled;      /* pump_cancel, or the client is gone */
  bool reader_waiting; /* the connection is suspended for data */
};

struct pump *
pump_new (struct MHD_Connection *c,
          ssize_t (*read) (void *stream, char *buf, size_t max),
          void (*free_stream) (void *stream), void *stream)
{
  struct pump *p = calloc (1, sizeof *p);

  if (p == NULL || (p->buf = malloc (PUMP_CAPACITY)) == NULL)
    {
      free (p);
      free_stream (stream);
      return NULL;
    }
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->space, NULL);
  p->refs = 1;
  p->c = c;
  p->read = read;
  p->free = free_stream;
  p->stream = stream;
  return p;
}

void
pump_unref (struct pump *p)
{
  bool last;

  pthread_mutex_lock (&p->lock);
  last = --p->refs == 0;
  pthread_mutex_unlock (&p->lock);
  if (!last)
    return;
  if (p->stream)
    p->free (p->stream);
  pthread_cond_destroy (&p->space);
  pthread_mutex_destroy (&p->lock);
  free (p->buf);
  free (p);
}

/* With the lock held: let a reader waiting for data run again. */
static void
wake_reader (struct pump *p)
{
  if (p->reader_waiting)
    {
      p->reader_waiting = false;
      MHD_resume_connection (p->c);
    }
}

/* MHD's content reader, on an MHD thread: never blocks. */
static ssize_t
pump_read_cb (void *cls, uint64_t pos, char *out, size_t max)
{
  struct pump *p = cls;
  ssize_t n;

  pthread_mutex_lock (&p->lock);
  if (p->len > 0)
    {
      n = (ssize_t)(p->len < max ? p->len : max);
      memcpy (out, p->buf + p->start, (size_t)n);
      p->start += (size_t)n;
      p->len -= (size_t)n;
      if (p->len == 0)
        p->start = 0;
      pthread_cond_signal (&p->space);
    }
  else if (p->done)
    n = p->failed ? MHD_CONTENT_READER_END_WITH_ERROR
                  : MHD_CONTENT_READER_END_OF_STREAM;
  else
    {
      /* Nothing yet: sleep until the producer has some (no busy loop). */
      p->reader_waiting = true;
      MHD_suspend_connection (p->c);
      n = 0;
    }
  pthread_mutex_unlock (&p->lock);
  return n;
}

/* MHD is done with the response: the client has it all, or is gone. */
static void
pump_free_cb (void *cls)
{
  struct pump *p = cls;

  pthread_mutex_lock (&p->lock);
  p->c = NULL;
  p->cancelled = true;
  p->reader_waiting = false;
  pthread_cond_signal (&p->space);
  pthread_mutex_unlock (&p->lock);
  pump_unref (p);
}

struct MHD_Response *
pump_response (struct pump *p)
{
  struct MHD_Response *resp;

  resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, PUMP_CHUNK,
                                            pump_read_cb, p, pump_free_cb);
  if (resp == NULL)
    return NULL;
  pthread_mutex_lock (&p->lock);
  p->refs++;
  pthread_mutex_unlock (&p->lock);
  return resp;
}

void
pump_cancel (struct pump *p)
{
  pthread_mutex_lock (&p->lock);
  p->cancelled = true;
  pthread_cond_signal (&p->space);
  pthread_mutex_unlock (&p->lock);
}

void
pump_run (struct pump *p)
{
  char *chunk = malloc (PUMP_CHUNK);
  ssize_t n = -1;

  for (;;)
    {
      pthread_mutex_lock (&p->lock);
      if (p->cancelled)
        break;
      pthread_mutex_unlock (&p->lock);

      n = chunk ? p->read (p->stream, chunk, PUMP_CHUNK) : -1;

      pthread_mutex_lock (&p->lock);
      if (n <= 0)
        break;
      while (!p->cancelled && p->len + (size_t)n > PUMP_CAPACITY)
        pthread_cond_wait (&p->space, &p->lock);
      if (p->cancelled)
        break;
      if (p->start > 0)
        {
          memmove (p->buf, p->buf + p->start, p->len);
          p->start = 0;
        }
      memcpy (p->buf + p->len, chunk, (size_t)n);
      p->len += (size_t)n;
      wake_reader (p);
      pthread_mutex_unlock (&p->lock);
    }
  /* Here with the lock held. */
  p->done = true;
  p->failed = p->cancelled || n < 0;
  if (p->c)
    wake_reader (p);
  pthread_mutex_unlock (&p->lock);

  free (chunk);
  p->free (p->stream);
  pthread_mutex_lock (&p->lock);
  p->stream = NULL;
  pthread_mutex_unlock (&p->lock);
}
