/* pullback: the JSON-lines connection under both QMP and the guest agent.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "conn.h"
#include "deadline.h"
#include "log.h"
#include "unixsock.h"

/* How much of a message the debug log shows. */
#define LOG_EXCERPT 1024

int
conn_init (struct conn *c, const char *path, const char *peer,
           size_t max_message)
{
  memset (c, 0, sizeof *c);
  c->fd = -1;
  c->peer = peer;
  c->path = strdup (path);
  if (c->path == NULL)
    return -1;
  /* Ids start at a random value: a late reply meant for an earlier
   * handle on the same socket must not match one of ours.
   */
  if (getrandom (&c->next_id, sizeof c->next_id, 0)
      != (ssize_t)sizeof c->next_id)
    c->next_id = (uint64_t)monotonic_us () * 2654435761u;
  c->next_id >>= 16; /* 48 bits are plenty and easier to read in a log */
  framer_init (&c->fr, max_message);
  return 0;
}

void
conn_free (struct conn *c)
{
  conn_close (c);
  framer_free (&c->fr);
  free (c->path);
  c->path = NULL;
}

void
conn_close (struct conn *c)
{
  if (c->fd >= 0)
    {
      close (c->fd);
      c->fd = -1;
    }
  framer_reset (&c->fr);
}

static void
set_system_error (struct qmp_error *err, int errnum, const char *what,
                  const char *path)
{
  qmp_error_set (err, QMP_ERR_SYSTEM, "%s %s: %s", what, path,
                 strerror (errnum));
  if (err)
    err->errnum = errnum;
}

/* connect(2) until it succeeds, fails or DEADLINE passes (ETIMEDOUT).
 * On a unix socket EAGAIN means the listen backlog is full, not that a
 * connection is under way: nothing would ever complete it, so try again.
 */
static int
connect_unix (int fd, const struct sockaddr_un *addr, int64_t deadline)
{
  for (;;)
    {
      int left;

      if (connect (fd, (const struct sockaddr *)addr, sizeof *addr) == 0)
        return 0;
      if (errno != EAGAIN)
        return -1;
      left = deadline_remaining (deadline);
      if (left == 0)
        {
          errno = ETIMEDOUT;
          return -1;
        }
      usleep (left < 0 || left > 10 ? 10000 : left * 1000);
    }
}

int
conn_open (struct conn *c, int64_t deadline, struct qmp_error *err)
{
  struct sockaddr_un addr;
  CLEANUP_CLOSE int fd = -1;

  conn_close (c);

  if (unix_sockaddr (c->path, &addr) == -1)
    {
      set_system_error (err, errno, "connect", c->path);
      return -1;
    }

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd == -1)
    {
      set_system_error (err, errno, "socket for", c->path);
      return -1;
    }

  if (connect_unix (fd, &addr, deadline) == -1)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLOUT };
      int r, soerr = 0;
      socklen_t len = sizeof soerr;

      if (errno == ETIMEDOUT)
        {
          qmp_error_set (err, QMP_ERR_TIMEOUT, "connect %s: timed out",
                         c->path);
          return -1;
        }
      if (errno != EINPROGRESS)
        {
          set_system_error (err, errno, "connect", c->path);
          return -1;
        }
      do
        r = poll (&pfd, 1, deadline_remaining (deadline));
      while (r == -1 && errno == EINTR);
      if (r == 0)
        {
          qmp_error_set (err, QMP_ERR_TIMEOUT, "connect %s: timed out",
                         c->path);
          return -1;
        }
      if (r == -1 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        {
          set_system_error (err, errno, "connect", c->path);
          return -1;
        }
      if (soerr != 0)
        {
          set_system_error (err, soerr, "connect", c->path);
          return -1;
        }
    }

  c->fd = TAKE_FD (fd);
  return 0;
}

static void
lost (struct conn *c, struct qmp_error *err, const char *why)
{
  qmp_error_set (err, QMP_ERR_DISCONNECTED, "%s connection %s lost: %s",
                 c->peer, c->path, why);
  conn_close (c);
}

/* Wait until FD is ready for EVENTS or DEADLINE passes.
 * Returns 1 when ready, 0 on timeout, -1 on error.
 */
static int
wait_fd (int fd, short events, int64_t deadline)
{
  struct pollfd pfd = { .fd = fd, .events = events };
  int r;

  do
    r = poll (&pfd, 1, deadline_remaining (deadline));
  while (r == -1 && errno == EINTR);
  return r;
}

int
conn_send (struct conn *c, const void *buf, size_t len, int passfd,
           int64_t deadline, struct qmp_error *err)
{
  const char *p = buf;

  if (c->fd < 0)
    {
      qmp_error_set (err, QMP_ERR_DISCONNECTED, "%s %s is not connected",
                     c->peer, c->path);
      return -1;
    }

  while (len > 0)
    {
      struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
      union
      {
        char buf[CMSG_SPACE (sizeof (int))];
        struct cmsghdr align;
      } control;
      ssize_t n;

      if (passfd >= 0)
        {
          struct cmsghdr *cmsg;

          memset (&control, 0, sizeof control);
          msg.msg_control = control.buf;
          msg.msg_controllen = sizeof control.buf;
          cmsg = CMSG_FIRSTHDR (&msg);
          cmsg->cmsg_level = SOL_SOCKET;
          cmsg->cmsg_type = SCM_RIGHTS;
          cmsg->cmsg_len = CMSG_LEN (sizeof (int));
          memcpy (CMSG_DATA (cmsg), &passfd, sizeof (int));
        }

      n = sendmsg (c->fd, &msg, MSG_NOSIGNAL);
      if (n == -1)
        {
          int r;

          if (errno == EINTR)
            continue;
          if (errno == EPIPE || errno == ECONNRESET)
            {
              lost (c, err, strerror (errno));
              return -1;
            }
          if (errno != EAGAIN)
            {
              set_system_error (err, errno, "send to", c->path);
              conn_close (c);
              return -1;
            }
          r = wait_fd (c->fd, POLLOUT, deadline);
          if (r == 0)
            {
              qmp_error_set (err, QMP_ERR_TIMEOUT, "%s %s: timed out sending",
                             c->peer, c->path);
              /* Half a message would garble the next one: start over. */
              if (p != buf)
                conn_close (c);
              return -1;
            }
          if (r == -1)
            {
              set_system_error (err, errno, "poll", c->path);
              conn_close (c);
              return -1;
            }
          continue;
        }
      passfd = -1; /* the descriptor travels with the first byte only */
      p += n;
      len -= (size_t)n;
    }
  return 0;
}

/* Parse one framed message.  Returns 1 with *OUT set, 0 if nothing is
 * complete, -1 on error (the connection is closed).
 */
static int
parse_buffered (struct conn *c, json_t **out, struct qmp_error *err)
{
  char *line;
  size_t len;
  json_error_t jerr;
  json_t *msg;
  int r;

  r = framer_next (&c->fr, &line, &len);
  if (r == 0)
    return 0;
  if (r == -1)
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "%s %s: message longer than %zu bytes", c->peer, c->path,
                     c->fr.max);
      conn_close (c);
      return -1;
    }

  if (log_debug_enabled ())
    log_debug ("%s %s <- %.*s%s", c->peer, c->path,
               (int)(len < LOG_EXCERPT ? len : LOG_EXCERPT), line,
               len > LOG_EXCERPT ? "..." : "");

  msg = json_loadb (line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (msg == NULL || !json_is_object (msg))
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL, "%s %s: bad message: %s", c->peer,
                     c->path, msg ? "not a JSON object" : jerr.text);
      json_decref (msg);
      conn_close (c);
      return -1;
    }
  *out = msg;
  return 1;
}

/* One read(2) into the framer.  Returns 1 if bytes arrived, 0 if none
 * were available (EAGAIN), -1 on error or EOF (the connection is closed).
 */
static int
read_some (struct conn *c, struct qmp_error *err)
{
  size_t avail;
  char *p = framer_space (&c->fr, &avail);
  ssize_t n;

  if (p == NULL)
    {
      set_system_error (err, errno, "read from", c->path);
      conn_close (c);
      return -1;
    }
  do
    n = read (c->fd, p, avail);
  while (n == -1 && errno == EINTR);
  if (n == 0)
    {
      lost (c, err, "end of file");
      return -1;
    }
  if (n == -1)
    {
      if (errno == EAGAIN)
        return 0;
      if (errno == ECONNRESET)
        lost (c, err, strerror (errno));
      else
        {
          set_system_error (err, errno, "read from", c->path);
          conn_close (c);
        }
      return -1;
    }
  framer_commit (&c->fr, (size_t)n);
  return 1;
}

json_t *
conn_recv_nowait (struct conn *c, struct qmp_error *err)
{
  json_t *msg = NULL;

  qmp_error_clear (err);
  for (;;)
    {
      int r;

      if (c->fd < 0)
        {
          qmp_error_set (err, QMP_ERR_DISCONNECTED, "%s %s is not connected",
                         c->peer, c->path);
          return NULL;
        }
      r = parse_buffered (c, &msg, err);
      if (r != 0)
        return r == 1 ? msg : NULL;
      r = read_some (c, err);
      if (r <= 0)
        return NULL;
    }
}

json_t *
conn_recv (struct conn *c, int64_t deadline, struct qmp_error *err)
{
  struct qmp_error local;

  if (err == NULL)
    err = &local;
  for (;;)
    {
      json_t *msg = conn_recv_nowait (c, err);
      int r;

      if (msg || err->kind != QMP_ERR_NONE)
        return msg;

      r = wait_fd (c->fd, POLLIN, deadline);
      if (r == 0)
        {
          qmp_error_set (err, QMP_ERR_TIMEOUT, "%s %s: timed out", c->peer,
                         c->path);
          return NULL;
        }
      if (r == -1)
        {
          set_system_error (err, errno, "poll", c->path);
          conn_close (c);
          return NULL;
        }
    }
}

int
conn_send_command (struct conn *c, const char *cmd, json_t *args, int passfd,
                   int64_t deadline, char *id, struct qmp_error *err)
{
  CLEANUP_JSON json_t *req = NULL;
  CLEANUP_FREE char *text = NULL;
  size_t len;

  /* Short: QEMU 7.2 reads a command one byte per turn of its monitor
   * loop (12-14 us a byte measured here), and a begin of N disks sends
   * about 4N commands.
   */
  snprintf (id, CONN_ID_MAX, "pb%" PRIx64,
            c->id_source
                ? __atomic_add_fetch (c->id_source, 1, __ATOMIC_RELAXED)
                : ++c->next_id);
  req = json_pack ("{s:s, s:s}", "execute", cmd, "id", id);
  if (req == NULL
      || (args && json_object_set_new (req, "arguments", args) == -1))
    {
      if (req == NULL)
        json_decref (args);
      set_system_error (err, ENOMEM, "build command for", c->path);
      return -1;
    }
  args = NULL;

  text = json_dumps (req, JSON_COMPACT);
  if (text == NULL)
    {
      set_system_error (err, ENOMEM, "encode command for", c->path);
      return -1;
    }
  len = strlen (text);
  if (log_debug_enabled ())
    log_debug ("%s %s -> %.*s%s", c->peer, c->path,
               (int)(len < LOG_EXCERPT ? len : LOG_EXCERPT), text,
               len > LOG_EXCERPT ? "..." : "");
  text[len] = '\n'; /* replace the NUL: the line is sent with its end */
  return conn_send (c, text, len + 1, passfd, deadline, err);
}

json_t *
conn_wait_reply (struct conn *c, const char *id, int64_t deadline,
                 struct qmp_error *err)
{
  struct qmp_error local;

  if (err == NULL)
    err = &local;

  for (;;)
    {
      CLEANUP_JSON json_t *msg = conn_recv (c, deadline, err);
      json_t *rid, *ret;

      if (msg == NULL)
        return NULL;
      if (json_object_get (msg, "event"))
        {
          if (c->on_event)
            c->on_event (c, TAKE_PTR (msg));
          continue;
        }
      rid = json_object_get (msg, "id");
      if (!json_is_string (rid) || strcmp (json_string_value (rid), id) != 0)
        {
          log_debug ("%s %s: dropping a reply that is not for %s", c->peer,
                     c->path, id);
          continue;
        }
      if (qmp_error_from_reply (msg, err))
        return NULL;
      ret = json_object_get (msg, "return");
      return json_incref (ret);
    }
}

json_t *
conn_call (struct conn *c, const char *cmd, json_t *args, int passfd,
           int64_t deadline, struct qmp_error *err)
{
  char id[CONN_ID_MAX];

  if (conn_send_command (c, cmd, args, passfd, deadline, id, err) == -1)
    return NULL;
  return conn_wait_reply (c, id, deadline, err);
}
