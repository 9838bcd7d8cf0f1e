/* pullback: the QMP client's framing, ids, events, timeouts and
 * disconnections, against a scripted peer on a real unix socket.  (The
 * library against real QEMU is tests/qmp/test-qmp-live.c; this drives the
 * cases QEMU will not produce on demand: split and merged writes, stale
 * replies, absurd lines, a full listen backlog, and a guest agent
 * replaying stale syncs.)
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "deadline.h"
#include "qga.h"
#include "qmp.h"

#define GREETING                                                              \
  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "         \
  "\"major\": 7}, \"package\": \"test\"}, \"capabilities\": [\"oob\"]}}\r\n"

static char dir[] = "/tmp/pullback-conn-XXXXXX";
static char path[128];
static int lfd = -1;
static pthread_t thread;
static bool thread_started;

/* The peer's side of one connection. */
struct peer
{
  int fd;
  char buf[65536];
  size_t len;
};

static void
peer_send (struct peer *p, const char *s)
{
  size_t n = strlen (s);

  while (n > 0)
    {
      ssize_t r = send (p->fd, s, n, MSG_NOSIGNAL);
      if (r <= 0)
        return;
      s += r;
      n -= (size_t)r;
    }
}

/* Read one line; returns the "id" of the command in it (static buffer),
 * or NULL at end of file.
 */
static const char *
peer_read_command (struct peer *p, char *cmd, size_t cmdlen)
{
  static char id[64];

  for (;;)
    {
      char *nl = memchr (p->buf, '\n', p->len);
      ssize_t r;

      if (nl)
        {
          json_t *j;
          size_t n = (size_t)(nl - p->buf);

          *nl = '\0';
          j = json_loads (p->buf, 0, NULL);
          snprintf (id, sizeof id, "%s",
                    json_string_value (json_object_get (j, "id")));
          if (cmd)
            snprintf (cmd, cmdlen, "%s",
                      json_string_value (json_object_get (j, "execute")));
          json_decref (j);
          memmove (p->buf, nl + 1, p->len - n - 1);
          p->len -= n + 1;
          return id;
        }
      r = read (p->fd, p->buf + p->len, sizeof p->buf - p->len);
      if (r <= 0)
        return NULL;
      p->len += (size_t)r;
    }
}

static void
peer_reply (struct peer *p, const char *id, const char *ret)
{
  char msg[1024];

  snprintf (msg, sizeof msg, "{\"return\": %s, \"id\": \"%s\"}\r\n", ret, id);
  peer_send (p, msg);
}

static bool
peer_accept (struct peer *p)
{
  char cmd[64];
  const char *id;

  p->len = 0;
  p->fd = accept (lfd, NULL, NULL);
  if (p->fd == -1)
    return false;
  peer_send (p, GREETING);
  id = peer_read_command (p, cmd, sizeof cmd);
  if (id == NULL || strcmp (cmd, "qmp_capabilities") != 0)
    return false;
  peer_reply (p, id, "{}");
  return true;
}

static void
setup (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  cr_assert_not_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/qmp.sock", dir);
  strcpy (addr.sun_path, path);
  lfd = socket (AF_UNIX, SOCK_STREAM, 0);
  cr_assert_eq (bind (lfd, (struct sockaddr *)&addr, sizeof addr), 0);
  cr_assert_eq (listen (lfd, 4), 0);
}

static void
teardown (void)
{
  if (thread_started)
    pthread_join (thread, NULL);
  close (lfd);
  unlink (path);
  rmdir (dir);
}

TestSuite (conn, .init = setup, .fini = teardown, .timeout = 20);

static void
run_peer (void *(*fn) (void *))
{
  cr_assert_eq (pthread_create (&thread, NULL, fn, NULL), 0);
  thread_started = true;
}

static struct qmp *
connect_ok (void)
{
  struct qmp_error err;
  struct qmp *q = qmp_connect (path, 5000, &err);

  cr_assert_not_null (q, "%s: %s", err.cls, err.desc);
  return q;
}

/* ---------------------------------------------------------------- */

static void *
peer_handshake_only (void *arg)
{
  struct peer p;

  if (peer_accept (&p))
    {
      const char *id = peer_read_command (&p, NULL, 0);
      if (id)
        peer_reply (&p, id, "{\"answer\": 42}");
      close (p.fd);
    }
  return NULL;
}

Test (conn, handshake_and_version)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;
  int major, minor, micro;

  run_peer (peer_handshake_only);
  q = connect_ok ();
  qmp_version (q, &major, &minor, &micro);
  cr_assert_eq (major, 7);
  cr_assert_eq (minor, 2);
  cr_assert_eq (micro, 22);
  cr_assert_str_eq (qmp_version_package (q), "test");
  cr_assert_str_eq (qmp_path (q), path);
  ret = qmp_execute (q, "query-answer", NULL, 5000, &err);
  cr_assert_not_null (ret, "%s", err.desc);
  cr_assert_eq (json_integer_value (json_object_get (ret, "answer")), 42);
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_split_reply (void *arg)
{
  struct peer p;
  const char *id;
  char msg[256];

  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  snprintf (msg, sizeof msg,
            "{\"return\": {\"v\": \"split\"}, \"id\": \"%s\"}\r\n", id);
  for (char *c = msg; *c; c++)
    {
      char one[2] = { *c, 0 };
      peer_send (&p, one);
      if ((c - msg) % 7 == 0)
        usleep (2000);
    }
  close (p.fd);
  return NULL;
}

Test (conn, reply_in_pieces)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;

  run_peer (peer_split_reply);
  q = connect_ok ();
  ret = qmp_execute (q, "x", NULL, 5000, &err);
  cr_assert_not_null (ret, "%s", err.desc);
  cr_assert_str_eq (json_string_value (json_object_get (ret, "v")), "split");
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_event_and_stale (void *arg)
{
  struct peer p;
  const char *id;
  char msg[512];

  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  /* An event, a reply to somebody else's old command, two more events
   * and ours, all in one write.
   */
  snprintf (msg, sizeof msg,
            "{\"event\": \"E1\", \"data\": {\"id\": \"a\"}}\r\n"
            "{\"return\": \"stale\", \"id\": \"old-1\"}\r\n"
            "{\"event\": \"E2\", \"data\": {}}\r\n"
            "{\"event\": \"E1\", \"data\": {\"id\": \"b\"}}\r\n"
            "{\"return\": \"mine\", \"id\": \"%s\"}\r\n",
            id);
  peer_send (&p, msg);
  close (p.fd);
  return NULL;
}

Test (conn, events_and_stale_replies_around_the_reply)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;
  CLEANUP_JSON json_t *ev = NULL;
  json_t *e;

  run_peer (peer_event_and_stale);
  q = connect_ok ();
  ret = qmp_execute (q, "x", NULL, 5000, &err);
  cr_assert_str_eq (json_string_value (ret), "mine");
  cr_assert_eq (qmp_event_count (q), 3);

  /* Wait for E1 with id b: the others stay queued, in order. */
  ev = qmp_wait_event (q, "E1", qmp_event_data_id_is, (void *)"b", 1000, &err);
  cr_assert_not_null (ev, "%s", err.desc);
  cr_assert_eq (qmp_event_count (q), 2);
  e = qmp_event_pop (q);
  cr_assert_str_eq (qmp_event_name (e), "E1");
  cr_assert (qmp_event_data_id_is (e, (void *)"a"));
  json_decref (e);
  e = qmp_event_pop (q);
  cr_assert_str_eq (qmp_event_name (e), "E2");
  json_decref (e);
  cr_assert_null (qmp_event_pop (q));
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_error_then_close (void *arg)
{
  struct peer p;
  const char *id;
  char msg[256];

  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  snprintf (msg, sizeof msg,
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, "
            "\"id\": \"%s\"}\r\n",
            id);
  peer_send (&p, msg);
  /* Read the next command and hang up without answering. */
  peer_read_command (&p, NULL, 0);
  close (p.fd);
  return NULL;
}

Test (conn, error_then_disconnect)
{
  struct qmp_error err;
  struct qmp *q;
  int64_t t0;

  run_peer (peer_error_then_close);
  q = connect_ok ();
  cr_assert_null (qmp_execute (q, "x", NULL, 5000, &err));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  cr_assert_str_eq (err.cls, "GenericError");
  cr_assert_str_eq (err.desc, "nope");
  cr_assert (qmp_is_connected (q));

  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "y", NULL, 10000, &err));
  cr_assert_eq (err.kind, QMP_ERR_DISCONNECTED, "%s", err.desc);
  cr_assert_lt (monotonic_ms () - t0, 2000);
  cr_assert_not (qmp_is_connected (q));
  cr_assert_eq (qmp_fd (q), -1);
  /* And at once afterwards. */
  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "z", NULL, 10000, &err));
  cr_assert_eq (err.kind, QMP_ERR_DISCONNECTED);
  cr_assert_lt (monotonic_ms () - t0, 100);
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_late (void *arg)
{
  struct peer p;
  char first[64];
  const char *id;

  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  snprintf (first, sizeof first, "%s", id);
  /* Say nothing until the client gave up and sent the next command. */
  id = peer_read_command (&p, NULL, 0);
  peer_reply (&p, first, "\"late\"");
  peer_reply (&p, id, "\"second\"");
  close (p.fd);
  return NULL;
}

Test (conn, timeout_then_late_reply_is_dropped)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;
  int64_t t0;

  run_peer (peer_late);
  q = connect_ok ();
  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "first", NULL, 200, &err));
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT);
  cr_assert_geq (monotonic_ms () - t0, 190);
  cr_assert (qmp_is_connected (q));
  ret = qmp_execute (q, "second", NULL, 5000, &err);
  cr_assert_not_null (ret, "%s", err.desc);
  cr_assert_str_eq (json_string_value (ret), "second");
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_flood (void *arg)
{
  struct peer p;
  char chunk[8192];

  if (!peer_accept (&p))
    return NULL;
  peer_read_command (&p, NULL, 0);
  memset (chunk, 'x', sizeof chunk - 1);
  chunk[sizeof chunk - 1] = '\0';
  for (int i = 0; i < 64; i++) /* 512 KiB, no newline */
    peer_send (&p, chunk);
  close (p.fd);
  return NULL;
}

Test (conn, absurd_line_is_refused)
{
  struct qmp_error err;
  struct qmp *q;

  run_peer (peer_flood);
  q = connect_ok ();
  qmp_set_max_message (q, 4096);
  cr_assert_null (qmp_execute (q, "x", NULL, 5000, &err));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL, "%s: %s", err.cls, err.desc);
  cr_assert (strstr (err.desc, "longer than 4096") != NULL, "%s", err.desc);
  cr_assert_not (qmp_is_connected (q));
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_twice (void *arg)
{
  struct peer p;
  const char *id;

  /* First life: greet, then die. */
  if (!peer_accept (&p))
    return NULL;
  close (p.fd);
  /* Second life. */
  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  peer_reply (&p, id, "\"again\"");
  close (p.fd);
  return NULL;
}

Test (conn, reconnect)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;

  run_peer (peer_twice);
  q = connect_ok ();
  cr_assert_eq (qmp_read_events (q, 5000, &err), -1);
  cr_assert_eq (err.kind, QMP_ERR_DISCONNECTED);
  cr_assert_eq (qmp_reconnect (q, 5000, &err), 0, "%s", err.desc);
  ret = qmp_execute (q, "x", NULL, 5000, &err);
  cr_assert_str_eq (json_string_value (ret), "again");
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_fd (void *arg)
{
  struct peer p;
  char buf[4096];
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
  struct msghdr msg = { .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf };
  struct cmsghdr *c;
  const char *answer = "\"no fd\"";
  struct stat st;
  ssize_t n;
  json_t *j;
  char reply[256];

  if (!peer_accept (&p))
    return NULL;
  n = recvmsg (p.fd, &msg, 0);
  c = CMSG_FIRSTHDR (&msg);
  if (n > 0 && c && c->cmsg_type == SCM_RIGHTS)
    {
      int fd;

      memcpy (&fd, CMSG_DATA (c), sizeof fd);
      if (fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode))
        answer = "\"got a socket\"";
      close (fd);
    }
  buf[n > 0 ? n : 0] = '\0';
  *strchr (buf, '\n') = '\0';
  j = json_loads (buf, 0, NULL);
  snprintf (reply, sizeof reply, "{\"return\": %s, \"id\": \"%s\"}\r\n",
            answer, json_string_value (json_object_get (j, "id")));
  json_decref (j);
  peer_send (&p, reply);
  close (p.fd);
  return NULL;
}

Test (conn, pass_descriptor)
{
  struct qmp_error err;
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;
  int sv[2];

  run_peer (peer_fd);
  q = connect_ok ();
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ret = qmp_execute_with_fd (q, "getfd", json_pack ("{s:s}", "fdname", "f"),
                             sv[0], 5000, &err);
  cr_assert_str_eq (json_string_value (ret), "got a socket");
  close (sv[0]);
  close (sv[1]);
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

static void *
peer_not_qmp (void *arg)
{
  int fd = accept (lfd, NULL, NULL);
  const char *s = "{\"hello\": \"I am not QEMU\"}\n";

  if (write (fd, s, strlen (s)) < 0)
    perror ("write");
  usleep (200000);
  close (fd);
  return NULL;
}

Test (conn, bad_greeting)
{
  struct qmp_error err;

  run_peer (peer_not_qmp);
  cr_assert_null (qmp_connect (path, 5000, &err));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL);
  cr_assert (strstr (err.desc, "greeting") != NULL, "%s", err.desc);
}

Test (conn, missing_socket)
{
  struct qmp_error err;
  char nowhere[160];

  snprintf (nowhere, sizeof nowhere, "%s/nowhere.sock", dir);
  cr_assert_null (qmp_connect (nowhere, 1000, &err));
  cr_assert_eq (err.kind, QMP_ERR_SYSTEM);
  cr_assert_eq (err.errnum, ENOENT);
  cr_assert (strstr (err.desc, "nowhere.sock") != NULL);
}

Test (conn, arguments_must_be_an_object)
{
  struct qmp_error err;
  struct qmp *q;

  run_peer (peer_handshake_only);
  q = connect_ok ();
  cr_assert_null (qmp_execute (q, "x", json_pack ("[i]", 1), 1000, &err));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL);
  cr_assert_null (qmp_executef (q, "x", 1000, &err, "{s:s}", "k", NULL));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL);
  /* The connection is still good for a real command. */
  json_decref (qmp_execute (q, "x", NULL, 5000, &err));
  cr_assert_eq (err.kind, QMP_ERR_NONE, "%s", err.desc);
  qmp_close (q);
}

/* ---------------------------------------------------------------- */

/* A unix socket's backlog is full: connect(2) says EAGAIN, which is not
 * a connection in progress.  Fill a backlog of 0 (one queued connection)
 * from here.  Returns the filler descriptors' count.
 */
static int
fill_backlog (int *fds, int max)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int n = 0;

  strcpy (addr.sun_path, path);
  cr_assert_eq (listen (lfd, 0), 0);
  while (n < max)
    {
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

      cr_assert_geq (fd, 0);
      if (connect (fd, (struct sockaddr *)&addr, sizeof addr) == -1)
        {
          cr_assert_eq (errno, EAGAIN, "connect: %s", strerror (errno));
          close (fd);
          return n;
        }
      fds[n++] = fd;
    }
  cr_assert_fail ("the backlog never filled");
  return n;
}

Test (conn, backlog_full_times_out)
{
  struct qmp_error err;
  int fds[16], n = fill_backlog (fds, 16);
  int64_t t0 = monotonic_ms ();

  cr_assert_null (qmp_connect (path, 300, &err));
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT, "%s", err.desc);
  cr_assert_geq (monotonic_ms () - t0, 290);
  for (int i = 0; i < n; i++)
    close (fds[i]);
}

static void *
peer_accept_late (void *arg)
{
  struct peer p;
  const char *id;
  int filler;

  /* Let the client find the backlog full, then make room. */
  usleep (200000);
  filler = accept (lfd, NULL, NULL);
  close (filler);
  if (!peer_accept (&p))
    return NULL;
  id = peer_read_command (&p, NULL, 0);
  if (id)
    peer_reply (&p, id, "\"in\"");
  close (p.fd);
  return NULL;
}

Test (conn, backlog_full_then_room)
{
  struct qmp_error err;
  int fds[16], n = fill_backlog (fds, 16);
  struct qmp *q;
  CLEANUP_JSON json_t *ret = NULL;

  cr_assert_eq (n, 1);
  run_peer (peer_accept_late);
  q = connect_ok ();
  ret = qmp_execute (q, "x", NULL, 5000, &err);
  cr_assert_not_null (ret, "%s", err.desc);
  cr_assert_str_eq (json_string_value (ret), "in");
  qmp_close (q);
  close (fds[0]);
}

/* ---------------------------------------------------------------- */

/* A fake guest agent: no greeting; each session starts with 0xFF and
 * guest-sync-delimited.
 */
static char qga_ids[2][64];

/* Accept a session and read its sync command: its "id" into
 * qga_ids[SLOT], the sync number into *SYNC.  False on failure or end of
 * file.
 */
static bool
agent_accept_sync (struct peer *p, int slot, json_int_t *sync)
{
  char *nl;
  json_t *j;
  size_t n;
  char *line;

  p->len = 0;
  p->fd = accept (lfd, NULL, NULL);
  if (p->fd == -1)
    return false;
  while ((nl = memchr (p->buf, '\n', p->len)) == NULL)
    {
      ssize_t r = read (p->fd, p->buf + p->len, sizeof p->buf - p->len);

      if (r <= 0)
        return false;
      p->len += (size_t)r;
    }
  *nl = '\0';
  n = (size_t)(nl - p->buf);
  line = p->buf;
  while (*line == '\xff')
    line++;
  j = json_loads (line, 0, NULL);
  snprintf (qga_ids[slot], sizeof qga_ids[slot], "%s",
            json_string_value (json_object_get (j, "id")));
  *sync = json_integer_value (
      json_object_get (json_object_get (j, "arguments"), "id"));
  json_decref (j);
  memmove (p->buf, nl + 1, p->len - n - 1);
  p->len -= n + 1;
  return true;
}

static void
agent_reply (struct peer *p, const char *delim, json_int_t ret, const char *id)
{
  char msg[256];

  snprintf (msg, sizeof msg,
            "%s{\"return\": %" JSON_INTEGER_FORMAT ", \"id\": \"%s\"}\n",
            delim, ret, id);
  peer_send (p, msg);
}

/* Wait for the client to hang up. */
static void
agent_drain (struct peer *p)
{
  char buf[256];

  while (read (p->fd, buf, sizeof buf) > 0)
    ;
  close (p->fd);
}

static struct qga *
qga_connect_ok (int timeout_ms)
{
  struct qmp_error err;
  struct qga *g = qga_connect (path, timeout_ms, &err);

  cr_assert_not_null (g, "%s", err.desc);
  return g;
}

static void *
agent_two_sessions (void *arg)
{
  for (int i = 0; i < 2; i++)
    {
      struct peer p;
      json_int_t sync;

      if (!agent_accept_sync (&p, i, &sync))
        return NULL;
      agent_reply (&p, "\xff", sync, qga_ids[i]);
      agent_drain (&p);
    }
  return NULL;
}

Test (conn, qga_sessions_use_different_ids)
{
  run_peer (agent_two_sessions);
  qga_close (qga_connect_ok (5000));
  qga_close (qga_connect_ok (5000));
  pthread_join (thread, NULL);
  thread_started = false;
  cr_assert_str_neq (qga_ids[0], "");
  cr_assert_str_neq (qga_ids[0], qga_ids[1], "both sessions used %s",
                     qga_ids[0]);
}

static void *
agent_stale_same_id (void *arg)
{
  struct peer p;
  json_int_t sync;

  if (!agent_accept_sync (&p, 0, &sync))
    return NULL;
  /* An earlier session's sync answered late, with the same command id
   * (as when every session counted from 1), then ours.
   */
  agent_reply (&p, "\xff", sync + 1, qga_ids[0]);
  usleep (50000);
  agent_reply (&p, "\xff", sync, qga_ids[0]);
  agent_drain (&p);
  return NULL;
}

Test (conn, qga_stale_sync_with_our_id_is_skipped)
{
  struct qga *g;

  run_peer (agent_stale_same_id);
  g = qga_connect_ok (5000);
  qga_close (g);
}

static void *
agent_stale_delimiter (void *arg)
{
  struct peer p;
  json_int_t sync;

  if (!agent_accept_sync (&p, 0, &sync))
    return NULL;
  /* A stale 0xFF and reply for another command id, then ours with its
   * own 0xFF, all in one write.
   */
  {
    char msg[512];

    snprintf (msg, sizeof msg,
              "\xff{\"return\": 1, \"id\": \"old-1\"}\n"
              "\xff{\"return\": %" JSON_INTEGER_FORMAT ", \"id\": \"%s\"}\n",
              sync, qga_ids[0]);
    peer_send (&p, msg);
  }
  agent_drain (&p);
  return NULL;
}

Test (conn, qga_stale_delimiter_before_the_reply)
{
  run_peer (agent_stale_delimiter);
  qga_close (qga_connect_ok (5000));
}

static void *
agent_only_stale (void *arg)
{
  struct peer p;
  json_int_t sync;

  if (!agent_accept_sync (&p, 0, &sync))
    return NULL;
  agent_reply (&p, "\xff", sync + 1, qga_ids[0]);
  agent_drain (&p);
  return NULL;
}

Test (conn, qga_only_stale_syncs_time_out)
{
  struct qmp_error err;

  run_peer (agent_only_stale);
  cr_assert_null (qga_connect (path, 300, &err));
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT, "%s", err.desc);
}
