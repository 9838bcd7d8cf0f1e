/* pullback: the front door.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "deadline.h"
#include "door.h"
#include "head.h"
#include "log.h"
#include "tls.h"
#include "status.h"

#define MAX_LISTEN 16
/* After a refusal, the client's input is read and dropped for at most
 * this long and this much (it may be sending a body).
 */
#define DRAIN_MS 5000
#define DRAIN_MAX (128ULL * 1024 * 1024)
/* Listening paused for lack of file descriptors. */
#define PAUSE_MS 100

_Static_assert(HEAD_MAX + 1 >= TLS_RECORD_MAX,
               "the door's buffer holds a TLS record");

enum kind
{
  KIND_LISTEN,
  KIND_CONN,
  KIND_WAKE,
  KIND_DEAD, /* freed after the current batch of events */
};

struct listen_ref
{
  enum kind kind; /* first: epoll data points here */
  size_t index;
};

struct conn
{
  enum kind kind; /* first */
  int fd;
  size_t index;
  struct sockaddr_storage sa;
  socklen_t salen;
  int64_t deadline;
  bool draining;
  unsigned long long drained;
  /* Handed over to libmicrohttpd (TLS): the door's duplicate of FD, and
   * the socket's identity.
   */
  int dup;
  dev_t dev;
  ino_t ino;
  struct conn *prev, *next;
};

/* Connections in the order of their deadlines (each list has one fixed
 * duration, so appending keeps it sorted).
 */
struct queue
{
  struct conn *head, *tail;
  size_t len;
};

struct door
{
  int ep, wake;
  int fds[MAX_LISTEN];
  bool tls[MAX_LISTEN];
  struct listen_ref refs[MAX_LISTEN];
  enum kind wake_kind;
  size_t n, max_waiting;
  door_pass_fn pass;
  void *cls;
  pthread_t thread;
  pthread_mutex_t lock;
  bool quiesce, stop; /* under lock */
  bool listening;     /* the thread's own */
  int64_t paused_until;
  struct queue heads, drains;
  /* Under lock: TLS connections handed over that have not sent their
   * first request (door_release), in the order of their deadlines; how
   * many per listener; and by their file descriptor number.
   */
  struct queue handed;
  /* Connections closed while a batch of epoll events is handled: a later
   * event of the same batch may still point at one, so they are freed
   * after the batch (door thread only).
   */
  struct conn *dead;
  size_t pending[MAX_LISTEN];
  struct conn **byfd;
  size_t nbyfd;
  char buf[HEAD_MAX + 1];
};

static void
enqueue (struct queue *q, struct conn *k)
{
  k->next = NULL;
  k->prev = q->tail;
  if (q->tail)
    q->tail->next = k;
  else
    q->head = k;
  q->tail = k;
  q->len++;
}

static void
dequeue (struct queue *q, struct conn *k)
{
  if (k->prev)
    k->prev->next = k->next;
  else
    q->head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    q->tail = k->prev;
  q->len--;
}

/* Into a queue whose deadlines are almost in order: from the tail. */
static void
enqueue_sorted (struct queue *q, struct conn *k)
{
  struct conn *after = q->tail;

  while (after && after->deadline > k->deadline)
    after = after->prev;
  k->prev = after;
  k->next = after ? after->next : q->head;
  if (k->next)
    k->next->prev = k;
  else
    q->tail = k;
  if (after)
    after->next = k;
  else
    q->head = k;
  q->len++;
}

/* Free K after the current batch of events (door thread only). */
static void
bury (struct door *d, struct conn *k)
{
  k->kind = KIND_DEAD;
  k->next = d->dead;
  d->dead = k;
}

static void
free_dead (struct door *d)
{
  while (d->dead)
    {
      struct conn *k = d->dead;

      d->dead = k->next;
      free (k);
    }
}

static void
conn_close (struct door *d, struct conn *k)
{
  dequeue (k->draining ? &d->drains : &d->heads, k);
  close (k->fd); /* also leaves the epoll set */
  bury (d, k);
}

/* File descriptors held for connections that wait (lock held). */
static size_t
waiting (struct door *d)
{
  return d->heads.len + d->drains.len + 2 * d->handed.len;
}

/* K, handed over, is no longer the door's (lock held).  END: end the
 * connection too (libmicrohttpd sees the client gone and closes it).
 */
static void
handed_drop (struct door *d, struct conn *k, bool end)
{
  dequeue (&d->handed, k);
  if ((size_t)k->fd < d->nbyfd && d->byfd[k->fd] == k)
    d->byfd[k->fd] = NULL;
  d->pending[k->index]--;
  if (end)
    shutdown (k->dup, SHUT_RDWR);
  close (k->dup);
  free (k);
}

/* Close the oldest waiting connection (lock held): one being drained
 * first, else the one accepted first.
 */
static void
close_oldest (struct door *d)
{
  struct conn *h = d->heads.head, *t = d->handed.head;

  if (d->drains.head)
    conn_close (d, d->drains.head);
  else if (t && (h == NULL || t->deadline < h->deadline))
    handed_drop (d, t, true);
  else if (h)
    conn_close (d, h);
}

static void
set_listening (struct door *d, bool on)
{
  if (d->listening == on)
    return;
  for (size_t i = 0; i < d->n; i++)
    {
      struct epoll_event ev
          = { .events = on ? EPOLLIN : 0, .data.ptr = &d->refs[i] };

      epoll_ctl (d->ep, EPOLL_CTL_MOD, d->fds[i], &ev);
    }
  d->listening = on;
}

/* Answer R on K's connection, then only read (and drop) what comes. */
static void
refuse (struct door *d, struct conn *k, struct reply *r)
{
  char *body = json_dumps (r->body, JSON_COMPACT);
  char *msg = NULL;
  int len, status = http_status (r);

  len = asprintf (&msg,
                  "HTTP/1.1 %d %s\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: %zu\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  "%s\n",
                  status, MHD_get_reason_phrase_for ((unsigned)status),
                  (body ? strlen (body) : 2) + 1, body ? body : "{}");
  log_debug ("door: refused a request: %d %s", status, body ? body : "");
  /* Small: it fits in the socket's buffer, or the client is not reading
   * anyway.
   */
  if (len > 0
      && send (k->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
    log_debug ("door: send: %m");
  free (msg);
  free (body);
  reply_clear (r);
  shutdown (k->fd, SHUT_WR);
  dequeue (&d->heads, k);
  k->draining = true;
  k->deadline = monotonic_ms () + DRAIN_MS;
  enqueue (&d->drains, k);
}

static void
drain (struct door *d, struct conn *k)
{
  for (;;)
    {
      ssize_t n = recv (k->fd, d->buf, sizeof d->buf, MSG_DONTWAIT);

      if (n > 0)
        {
          k->drained += (size_t)n;
          if (k->drained > DRAIN_MAX)
            break;
          continue;
        }
      if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n == -1 && errno == EINTR)
        continue;
      break; /* the end, or an error */
    }
  conn_close (d, k);
}

/* Look at what K has sent so far, without taking it.  HUP: the client
 * will send no more.
 */
static void
examine (struct door *d, struct conn *k, bool hup)
{
  struct reply r = { 0 };
  ssize_t n;
  size_t hlen;

  n = recv (k->fd, d->buf, sizeof d->buf, MSG_PEEK | MSG_DONTWAIT);
  if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0)
    {
      conn_close (d, k);
      return;
    }
  hlen = head_length (d->buf, (size_t)n);
  if (hlen == 0)
    {
      if ((size_t)n > HEAD_MAX)
        {
          http_error (&r, 431, "header-too-large",
                      "the request line and headers are larger than %d "
                      "bytes",
                      HEAD_MAX);
          refuse (d, k, &r);
        }
      else if (hup)
        conn_close (d, k); /* a head that will never be complete */
      return;              /* more to come: epoll says when */
    }
  if (!head_check (d->buf, hlen, &r))
    {
      refuse (d, k, &r);
      return;
    }
  dequeue (&d->heads, k);
  epoll_ctl (d->ep, EPOLL_CTL_DEL, k->fd, NULL);
  switch (d->pass (d->cls, k->index, k->fd, (struct sockaddr *)&k->sa,
                   k->salen, 0, &r))
    {
    case DOOR_TAKEN:
    case DOOR_LOST:
      bury (d, k);
      return;
    case DOOR_REFUSED:
      break;
    }
  /* Not taken: answer here. */
  {
    struct epoll_event ev
        = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = k };

    enqueue (&d->heads, k);
    epoll_ctl (d->ep, EPOLL_CTL_ADD, k->fd, &ev);
    refuse (d, k, &r);
  }
}

/* Room in byfd for FD (lock held). */
static bool
byfd_reserve (struct door *d, int fd)
{
  struct conn **p;
  size_t n = d->nbyfd ? d->nbyfd : 64;

  if ((size_t)fd < d->nbyfd)
    return true;
  while (n <= (size_t)fd)
    n *= 2;
  p = realloc (d->byfd, n * sizeof *p);
  if (p == NULL)
    return false;
  memset (p + d->nbyfd, 0, (n - d->nbyfd) * sizeof *p);
  d->byfd = p;
  d->nbyfd = n;
  return true;
}

/* K's ClientHello is in: hand K over, keeping a duplicate of its socket
 * until it has sent its first request.
 */
static void
hand_over (struct door *d, struct conn *k)
{
  struct reply r = { 0 };
  struct stat st;
  size_t pending;
  enum door_pass res;

  dequeue (&d->heads, k);
  epoll_ctl (d->ep, EPOLL_CTL_DEL, k->fd, NULL);
  k->dup = fcntl (k->fd, F_DUPFD_CLOEXEC, 0);
  if (k->dup == -1 || fstat (k->dup, &st) == -1)
    {
      log_warn ("REST API: cannot hand over a TLS connection");
      if (k->dup >= 0)
        close (k->dup);
      close (k->fd);
      bury (d, k);
      return;
    }
  k->dev = st.st_dev;
  k->ino = st.st_ino;

  pthread_mutex_lock (&d->lock);
  if (!byfd_reserve (d, k->fd))
    {
      pthread_mutex_unlock (&d->lock);
      close (k->dup);
      close (k->fd);
      bury (d, k);
      return;
    }
  /* One more descriptor held (the duplicate): make room if need be. */
  while (waiting (d) + 2 > d->max_waiting && waiting (d) > 0)
    close_oldest (d);
  enqueue_sorted (&d->handed, k);
  d->byfd[k->fd] = k;
  pending = d->pending[k->index]++;
  pthread_mutex_unlock (&d->lock);

  /* Not under the lock: libmicrohttpd may call door_release at once. */
  res = d->pass (d->cls, k->index, k->fd, (struct sockaddr *)&k->sa, k->salen,
                 pending, &r);
  reply_clear (&r);
  if (res == DOOR_TAKEN)
    return;
  if (res == DOOR_REFUSED)
    {
      /* No answer in the clear to a TLS client. */
      log_debug ("door: a TLS connection refused (busy or stopping)");
      shutdown (k->fd, SHUT_RDWR);
      close (k->fd);
    }
  pthread_mutex_lock (&d->lock);
  handed_drop (d, k, false);
  pthread_mutex_unlock (&d->lock);
}

/* Look at what K, on a TLS listener, has sent so far. */
static void
examine_tls (struct door *d, struct conn *k, bool hup)
{
  struct reply r = { 0 };
  ssize_t n;

  n = recv (k->fd, d->buf, TLS_RECORD_MAX, MSG_PEEK | MSG_DONTWAIT);
  if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0)
    {
      conn_close (d, k);
      return;
    }
  switch (tls_hello_check ((const unsigned char *)d->buf, (size_t)n))
    {
    case TLS_HELLO_MORE:
      if (hup)
        conn_close (d, k);
      return;
    case TLS_HELLO_HTTP:
      http_error (&r, 400, "https-required",
                  "this address serves HTTPS only: use https://");
      refuse (d, k, &r);
      return;
    case TLS_HELLO_BAD:
      log_debug ("door: not TLS on a TLS address; closed");
      conn_close (d, k);
      return;
    case TLS_HELLO_OK:
      hand_over (d, k);
      return;
    }
}

static void
accept_all (struct door *d, size_t index)
{
  for (;;)
    {
      struct conn *k = calloc (1, sizeof *k);
      struct epoll_event ev;

      if (k == NULL)
        return;
      k->salen = sizeof k->sa;
      k->fd = accept4 (d->fds[index], (struct sockaddr *)&k->sa, &k->salen,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (k->fd == -1)
        {
          int e = errno;

          free (k);
          if (e == EINTR || e == ECONNABORTED)
            continue;
          if (e == EMFILE || e == ENFILE)
            {
              size_t w;

              /* Make room: the oldest waiter goes. */
              pthread_mutex_lock (&d->lock);
              w = waiting (d);
              if (w > 0)
                close_oldest (d);
              pthread_mutex_unlock (&d->lock);
              if (w > 0)
                continue;
            }
          if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
            {
              log_warnx ("REST API: cannot accept: %s", strerror (e));
              set_listening (d, false);
              d->paused_until = monotonic_ms () + PAUSE_MS;
            }
          return;
        }
      pthread_mutex_lock (&d->lock);
      while (waiting (d) + 1 > d->max_waiting && waiting (d) > 0)
        close_oldest (d);
      pthread_mutex_unlock (&d->lock);
      k->kind = KIND_CONN;
      k->index = index;
      k->deadline = monotonic_ms () + HEAD_DEADLINE_MS;
      enqueue (&d->heads, k);
      ev = (struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = k };
      if (epoll_ctl (d->ep, EPOLL_CTL_ADD, k->fd, &ev) == -1)
        {
          conn_close (d, k);
          continue;
        }
      /* Data that came with the connection gives an event too. */
    }
}

static void
expire (struct door *d, struct queue *q, int64_t now)
{
  while (q->head && q->head->deadline <= now)
    conn_close (d, q->head);
}

/* TLS connections that have not sent their first request in time. */
static void
expire_handed (struct door *d, int64_t now)
{
  pthread_mutex_lock (&d->lock);
  while (d->handed.head && d->handed.head->deadline <= now)
    {
      log_debug ("door: a TLS connection sent no request in time; ended");
      handed_drop (d, d->handed.head, true);
    }
  pthread_mutex_unlock (&d->lock);
}

static int
next_timeout (struct door *d, int64_t now)
{
  int64_t t = INT64_MAX;

  if (d->heads.head)
    t = d->heads.head->deadline;
  if (d->drains.head && d->drains.head->deadline < t)
    t = d->drains.head->deadline;
  pthread_mutex_lock (&d->lock);
  if (d->handed.head && d->handed.head->deadline < t)
    t = d->handed.head->deadline;
  pthread_mutex_unlock (&d->lock);
  if (!d->listening && d->paused_until < t)
    t = d->paused_until;
  if (t == INT64_MAX)
    return -1;
  return t <= now ? 0 : (int)(t - now > 60000 ? 60000 : t - now);
}

static void *
door_thread (void *arg)
{
  struct door *d = arg;
  struct epoll_event evs[64];

  for (;;)
    {
      int64_t now = monotonic_ms ();
      bool quiesce, stop;
      int n;

      pthread_mutex_lock (&d->lock);
      quiesce = d->quiesce;
      stop = d->stop;
      pthread_mutex_unlock (&d->lock);
      if (stop)
        break;
      if (quiesce)
        set_listening (d, false);
      else if (!d->listening && now >= d->paused_until)
        set_listening (d, true);
      expire (d, &d->heads, now);
      expire (d, &d->drains, now);
      expire_handed (d, now);

      n = epoll_wait (d->ep, evs, 64, next_timeout (d, now));
      for (int i = 0; i < n; i++)
        {
          enum kind *kind = evs[i].data.ptr;

          if (*kind == KIND_WAKE)
            {
              uint64_t v;

              if (read (d->wake, &v, sizeof v) == -1)
                {
                  /* EAGAIN: another wake-up took it. */
                }
            }
          else if (*kind == KIND_LISTEN)
            {
              if (d->listening)
                accept_all (d, ((struct listen_ref *)kind)->index);
            }
          else
            {
              struct conn *k = (struct conn *)kind;

              bool hup
                  = (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;

              if (k->kind == KIND_DEAD)
                continue; /* closed by an earlier event of this batch */
              if (k->draining)
                drain (d, k);
              else if (d->tls[k->index])
                examine_tls (d, k, hup);
              else
                examine (d, k, hup);
            }
        }
      free_dead (d);
    }
  free_dead (d);
  return NULL;
}

struct door *
door_start (const int *fds, const bool *tls, size_t n, size_t max_waiting,
            door_pass_fn pass, void *cls, char *err, size_t errlen)
{
  struct door *d = calloc (1, sizeof *d);
  struct epoll_event ev;
  int e;

  if (d == NULL)
    {
      snprintf (err, errlen, "out of memory");
      return NULL;
    }
  d->ep = epoll_create1 (EPOLL_CLOEXEC);
  d->wake = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  d->n = n < MAX_LISTEN ? n : MAX_LISTEN;
  d->max_waiting = max_waiting;
  d->pass = pass;
  d->cls = cls;
  d->listening = true;
  d->wake_kind = KIND_WAKE;
  pthread_mutex_init (&d->lock, NULL);
  if (d->ep == -1 || d->wake == -1)
    goto fail;
  ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &d->wake_kind };
  if (epoll_ctl (d->ep, EPOLL_CTL_ADD, d->wake, &ev) == -1)
    goto fail;
  for (size_t i = 0; i < d->n; i++)
    {
      int fl = fcntl (fds[i], F_GETFL);

      /* accept_all takes all that wait, until EAGAIN. */
      if (fl == -1 || fcntl (fds[i], F_SETFL, fl | O_NONBLOCK) == -1)
        goto fail;
      d->fds[i] = fds[i];
      d->tls[i] = tls[i];
      d->refs[i] = (struct listen_ref){ KIND_LISTEN, i };
      ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &d->refs[i] };
      if (epoll_ctl (d->ep, EPOLL_CTL_ADD, fds[i], &ev) == -1)
        goto fail;
    }
  e = pthread_create (&d->thread, NULL, door_thread, d);
  if (e != 0)
    {
      errno = e;
      goto fail;
    }
  return d;

fail:
  snprintf (err, errlen, "REST API: %s", strerror (errno));
  if (d->ep >= 0)
    close (d->ep);
  if (d->wake >= 0)
    close (d->wake);
  pthread_mutex_destroy (&d->lock);
  free (d);
  return NULL;
}

static void
wake (struct door *d)
{
  uint64_t one = 1;

  if (write (d->wake, &one, sizeof one) == -1)
    {
      /* Only EAGAIN (the counter is full): it is awake anyway. */
    }
}

void
door_quiesce (struct door *d)
{
  if (d == NULL)
    return;
  pthread_mutex_lock (&d->lock);
  d->quiesce = true;
  pthread_mutex_unlock (&d->lock);
  wake (d);
}

void
door_stop (struct door *d)
{
  if (d == NULL)
    return;
  pthread_mutex_lock (&d->lock);
  d->stop = true;
  pthread_mutex_unlock (&d->lock);
  wake (d);
  pthread_join (d->thread, NULL);
  while (d->heads.head)
    conn_close (d, d->heads.head);
  while (d->drains.head)
    conn_close (d, d->drains.head);
  free_dead (d);
  /* libmicrohttpd ends those when it stops. */
  while (d->handed.head)
    handed_drop (d, d->handed.head, false);
  free (d->byfd);
  for (size_t i = 0; i < d->n; i++)
    close (d->fds[i]);
  close (d->ep);
  close (d->wake);
  pthread_mutex_destroy (&d->lock);
  free (d);
}

void
door_release (struct door *d, int fd, dev_t dev, ino_t ino)
{
  struct conn *k;

  pthread_mutex_lock (&d->lock);
  k = fd >= 0 && (size_t)fd < d->nbyfd ? d->byfd[fd] : NULL;
  /* The number may have been reused; the socket is the same only if its
   * inode is (the duplicate keeps it from being reused).
   */
  if (k && k->dev == dev && k->ino == ino)
    handed_drop (d, k, false);
  pthread_mutex_unlock (&d->lock);
}
