/* pullback: QMP sessions: greeting, capabilities, commands, events.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "conn.h"
#include "deadline.h"
#include "log.h"
#include "qmp.h"

/* Events are kept until the owner takes them; a stuck owner must not
 * make us grow without bound, so past this many the oldest are dropped.
 */
#define EVENT_QUEUE_MAX 4096

/* The ids of every QMP connection of the process, from a random start
 * below 2^20 (a stale reply after a restart is unlikely to match).
 */
static uint64_t qmp_ids;
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;

static void
ids_init (void)
{
  uint32_t r;

  if (getrandom (&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint32_t)monotonic_us ();
  qmp_ids = r & 0xfffff;
}

struct qmp
{
  struct conn conn;
  json_t *events; /* array, oldest first */
  size_t dropped;
  int major, minor, micro;
  char *package;
};

static void
queue_event (struct conn *c, json_t *msg)
{
  struct qmp *q = c->opaque;

  if (json_array_size (q->events) >= EVENT_QUEUE_MAX)
    {
      json_array_remove (q->events, 0);
      if (q->dropped++ == 0)
        log_warnx ("QMP %s: event queue full, dropping the oldest events",
                   c->path);
    }
  json_array_append_new (q->events, msg);
}

/* Read the greeting {"QMP": {"version": {...}, "capabilities": [...]}}
 * and enter command mode.
 */
static int
handshake (struct qmp *q, int64_t deadline, struct qmp_error *err)
{
  CLEANUP_JSON json_t *greeting = NULL;
  CLEANUP_JSON json_t *ret = NULL;
  const char *package = NULL;
  int major = 0, minor = 0, micro = 0;
  const json_t *caps, *cap;
  bool oob = false;
  size_t i;

  greeting = conn_recv (&q->conn, deadline, err);
  if (greeting == NULL)
    return -1;
  if (json_unpack (greeting, "{s:{s:{s:{s:i, s:i, s:i}, s?:s}}}", "QMP",
                   "version", "qemu", "major", &major, "minor", &minor,
                   "micro", &micro, "package", &package)
      == -1)
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "QMP %s: the first message is not a QMP greeting",
                     q->conn.path);
      conn_close (&q->conn);
      return -1;
    }
  q->major = major;
  q->minor = minor;
  q->micro = micro;
  free (q->package);
  q->package = strdup (package ? package : "");

  /* With "oob" QEMU queues up to 8 in-band commands and parses the next
   * while its main loop runs the current one.  Commands still run, and
   * are answered, in the order they came; we never use exec-oob.
   */
  caps = json_object_get (json_object_get (greeting, "QMP"), "capabilities");
  json_array_foreach (caps, i, cap)
    if (json_is_string (cap) && strcmp (json_string_value (cap), "oob") == 0)
      oob = true;
  ret = conn_call (&q->conn, "qmp_capabilities",
                   oob ? json_pack ("{s:[s]}", "enable", "oob") : NULL, -1,
                   deadline, err);
  if (ret == NULL)
    {
      conn_close (&q->conn);
      return -1;
    }
  log_debug ("QMP %s: connected to QEMU %d.%d.%d", q->conn.path, major, minor,
             micro);
  return 0;
}

struct qmp *
qmp_connect (const char *path, int timeout_ms, struct qmp_error *err)
{
  struct qmp *q = calloc (1, sizeof *q);

  qmp_error_clear (err);
  if (q == NULL
      || conn_init (&q->conn, path, "QMP", QMP_DEFAULT_MAX_MESSAGE) == -1)
    {
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      free (q);
      return NULL;
    }
  /* Short ids (QEMU reads a command byte by byte, see conn.c), never
   * repeated in this process: a command still running when a connection
   * drops is answered on the next one.
   */
  pthread_once (&ids_once, ids_init);
  q->conn.id_source = &qmp_ids;
  q->conn.on_event = queue_event;
  q->conn.opaque = q;
  q->events = json_array ();

  if (qmp_reconnect (q, timeout_ms, err) == -1)
    {
      qmp_close (q);
      return NULL;
    }
  return q;
}

int
qmp_reconnect (struct qmp *q, int timeout_ms, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);

  qmp_error_clear (err);
  if (conn_open (&q->conn, deadline, err) == -1)
    return -1;
  return handshake (q, deadline, err);
}

void
qmp_close (struct qmp *q)
{
  if (q == NULL)
    return;
  conn_free (&q->conn);
  json_decref (q->events);
  free (q->package);
  free (q);
}

bool
qmp_is_connected (const struct qmp *q)
{
  return q->conn.fd >= 0;
}

const char *
qmp_path (const struct qmp *q)
{
  return q->conn.path;
}

void
qmp_version (const struct qmp *q, int *major, int *minor, int *micro)
{
  if (major)
    *major = q->major;
  if (minor)
    *minor = q->minor;
  if (micro)
    *micro = q->micro;
}

const char *
qmp_version_package (const struct qmp *q)
{
  return q->package ? q->package : "";
}

struct conn *
qmp_conn (struct qmp *q)
{
  return &q->conn;
}

int
qmp_fd (const struct qmp *q)
{
  return q->conn.fd;
}

void
qmp_set_max_message (struct qmp *q, size_t max)
{
  q->conn.fr.max = max;
}

json_t *
qmp_execute (struct qmp *q, const char *cmd, json_t *args, int timeout_ms,
             struct qmp_error *err)
{
  return qmp_execute_with_fd (q, cmd, args, -1, timeout_ms, err);
}

json_t *
qmp_execute_with_fd (struct qmp *q, const char *cmd, json_t *args, int fd,
                     int timeout_ms, struct qmp_error *err)
{
  qmp_error_clear (err);
  if (args != NULL && !json_is_object (args))
    {
      json_decref (args);
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "arguments of %s must be a JSON object", cmd);
      return NULL;
    }
  return conn_call (&q->conn, cmd, args, fd, deadline_after (timeout_ms), err);
}

json_t *
qmp_executef (struct qmp *q, const char *cmd, int timeout_ms,
              struct qmp_error *err, const char *fmt, ...)
{
  json_error_t jerr;
  json_t *args;
  va_list ap;

  va_start (ap, fmt);
  args = json_vpack_ex (&jerr, 0, fmt, ap);
  va_end (ap);
  if (args == NULL)
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL, "arguments of %s: %s", cmd,
                     jerr.text);
      return NULL;
    }
  return qmp_execute (q, cmd, args, timeout_ms, err);
}

int
qmp_read_events (struct qmp *q, int timeout_ms, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);
  size_t before = json_array_size (q->events) + q->dropped;
  struct qmp_error local;
  json_t *msg;

  if (err == NULL)
    err = &local;
  qmp_error_clear (err);
  /* Wait for the first message, then take whatever else is there. */
  msg = conn_recv (&q->conn, deadline, err);
  while (msg)
    {
      if (json_object_get (msg, "event"))
        queue_event (&q->conn, msg);
      else
        {
          log_debug ("QMP %s: dropping an unexpected reply", q->conn.path);
          json_decref (msg);
        }
      msg = conn_recv_nowait (&q->conn, err);
    }
  if (err->kind == QMP_ERR_TIMEOUT)
    qmp_error_clear (err);
  if (err->kind != QMP_ERR_NONE)
    return -1;
  return (int)(json_array_size (q->events) + q->dropped - before);
}

json_t *
qmp_event_pop (struct qmp *q)
{
  json_t *ev;

  if (json_array_size (q->events) == 0)
    return NULL;
  ev = json_incref (json_array_get (q->events, 0));
  json_array_remove (q->events, 0);
  return ev;
}

size_t
qmp_event_count (const struct qmp *q)
{
  return json_array_size (q->events);
}

size_t
qmp_events_dropped (const struct qmp *q)
{
  return q->dropped;
}

const char *
qmp_event_name (const json_t *event)
{
  return json_string_value (json_object_get (event, "event"));
}

static bool
data_string_is (const json_t *event, const char *key, const char *want)
{
  const char *v = json_string_value (
      json_object_get (json_object_get (event, "data"), key));

  return v && want && strcmp (v, want) == 0;
}

bool
qmp_event_data_id_is (const json_t *event, void *opaque)
{
  return data_string_is (event, "id", opaque);
}

bool
qmp_event_data_device_is (const json_t *event, void *opaque)
{
  return data_string_is (event, "device", opaque);
}

/* Remove and return the oldest queued event matching, starting at index
 * *FROM (events before it were already rejected).
 */
static json_t *
take_matching (struct qmp *q, size_t *from, const char *name,
               qmp_event_pred pred, void *opaque)
{
  for (; *from < json_array_size (q->events); (*from)++)
    {
      json_t *ev = json_array_get (q->events, *from);
      const char *n = qmp_event_name (ev);

      if (n && strcmp (n, name) == 0 && (pred == NULL || pred (ev, opaque)))
        {
          json_incref (ev);
          json_array_remove (q->events, *from);
          return ev;
        }
    }
  return NULL;
}

json_t *
qmp_wait_event (struct qmp *q, const char *name, qmp_event_pred pred,
                void *opaque, int timeout_ms, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);
  size_t from = 0;

  qmp_error_clear (err);
  for (;;)
    {
      json_t *ev = take_matching (q, &from, name, pred, opaque);
      size_t dropped = q->dropped;

      if (ev)
        return ev;
      if (qmp_read_events (q, deadline_remaining (deadline), err) == -1)
        {
          /* What arrived just before the connection broke still counts
           * (SHUTDOWN, say, then end of file).
           */
          from = 0;
          ev = take_matching (q, &from, name, pred, opaque);
          if (ev)
            qmp_error_clear (err);
          return ev;
        }
      if (q->dropped != dropped)
        from = 0; /* the queue shifted under us: look again from the start */
      if (deadline_remaining (deadline) == 0
          && from >= json_array_size (q->events))
        {
          qmp_error_set (err, QMP_ERR_TIMEOUT,
                         "QMP %s: no %s event within %d ms", q->conn.path,
                         name, timeout_ms);
          return NULL;
        }
    }
}
