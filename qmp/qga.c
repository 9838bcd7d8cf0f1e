/* pullback: qemu-guest-agent client.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "conn.h"
#include "deadline.h"
#include "log.h"
#include "qga.h"

/* Agent replies are small; a large limit only helps a confused peer. */
#define QGA_MAX_MESSAGE (1024 * 1024)

struct qga
{
  struct conn conn;
};

static void
drop_event (struct conn *c, json_t *msg)
{
  json_decref (msg);
}

struct qga *
qga_connect (const char *path, int timeout_ms, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);
  struct qga *g = calloc (1, sizeof *g);

  qmp_error_clear (err);
  if (g == NULL || conn_init (&g->conn, path, "QGA", QGA_MAX_MESSAGE) == -1)
    {
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      free (g);
      return NULL;
    }
  g->conn.on_event = drop_event;
  if (conn_open (&g->conn, deadline, err) == -1
      || qga_sync (g, deadline_remaining (deadline), err) == -1)
    {
      qga_close (g);
      return NULL;
    }
  return g;
}

void
qga_close (struct qga *g)
{
  if (g == NULL)
    return;
  conn_free (&g->conn);
  free (g);
}

/* The agent's sync id is an int; keep it positive and within 53 bits so
 * it survives any JSON number handling on the way.
 */
static int64_t
random_sync_id (void)
{
  uint64_t r = 0;

  if (getrandom (&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint64_t)monotonic_ms () * 2654435761u;
  return (int64_t)(r & ((UINT64_C (1) << 52) - 1)) + 1;
}

int
qga_sync (struct qga *g, int timeout_ms, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);
  const unsigned char reset = 0xff;
  int64_t sync = random_sync_id ();
  char id[CONN_ID_MAX];

  qmp_error_clear (err);
  /* 0xFF makes the agent drop any half-received request.  Its reply
   * comes after a 0xFF of its own; whatever precedes that (replies meant
   * for an earlier client, the complaint about our 0xFF) is stale.
   */
  if (conn_send (&g->conn, &reset, 1, -1, deadline, err) == -1)
    return -1;
  framer_expect_delimiter (&g->conn.fr);
  if (conn_send_command (&g->conn, "guest-sync-delimited",
                         json_pack ("{s:I}", "id", (json_int_t)sync), -1,
                         deadline, id, err)
      == -1)
    return -1;
  for (;;)
    {
      CLEANUP_JSON json_t *ret = conn_wait_reply (&g->conn, id, deadline, err);

      if (ret == NULL)
        return -1;
      if (!json_is_integer (ret))
        {
          qmp_error_set (err, QMP_ERR_PROTOCOL,
                         "QGA %s: guest-sync-delimited did not return an id",
                         g->conn.path);
          conn_close (&g->conn);
          return -1;
        }
      if (json_integer_value (ret) == sync)
        return 0;
      /* An earlier session's sync whose reply carries our command id:
       * ours comes after another 0xFF.
       */
      log_debug ("QGA %s: dropping a stale guest-sync reply", g->conn.path);
      framer_expect_delimiter (&g->conn.fr);
    }
}

json_t *
qga_execute (struct qga *g, const char *cmd, json_t *args, int timeout_ms,
             struct qmp_error *err)
{
  qmp_error_clear (err);
  return conn_call (&g->conn, cmd, args, -1, deadline_after (timeout_ms), err);
}

/* Run CMD and return its integer result (a count), or -1. */
static int
execute_count (struct qga *g, const char *cmd, json_t *args, int timeout_ms,
               struct qmp_error *err)
{
  CLEANUP_JSON json_t *ret = qga_execute (g, cmd, args, timeout_ms, err);

  if (ret == NULL)
    return -1;
  if (!json_is_integer (ret) || json_integer_value (ret) < 0)
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "QGA %s: %s did not return a count", g->conn.path, cmd);
      return -1;
    }
  return (int)json_integer_value (ret);
}

int
qga_fsfreeze_status (struct qga *g, int timeout_ms, struct qmp_error *err)
{
  CLEANUP_JSON json_t *ret
      = qga_execute (g, "guest-fsfreeze-status", NULL, timeout_ms, err);
  const char *s = json_string_value (ret);

  if (ret == NULL)
    return -1;
  if (s && strcmp (s, "thawed") == 0)
    return QGA_THAWED;
  if (s && strcmp (s, "frozen") == 0)
    return QGA_FROZEN;
  qmp_error_set (err, QMP_ERR_PROTOCOL, "QGA %s: unknown freeze status",
                 g->conn.path);
  return -1;
}

int
qga_fsfreeze_freeze_list (struct qga *g, const char *const *mountpoints,
                          size_t n, int timeout_ms, struct qmp_error *err)
{
  CLEANUP_JSON json_t *list = json_array ();

  qmp_error_clear (err);
  /* An absent or empty list would freeze everything: never send one. */
  if (n == 0)
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "refusing to freeze an empty list of mountpoints");
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if (list == NULL
        || json_array_append_new (list, json_string (mountpoints[i])) == -1)
      {
        qmp_error_set (err, QMP_ERR_PROTOCOL,
                       "mountpoint %zu is not a valid string", i);
        return -1;
      }
  return execute_count (g, "guest-fsfreeze-freeze-list",
                        json_pack ("{s:O}", "mountpoints", list), timeout_ms,
                        err);
}

int
qga_fsfreeze_freeze (struct qga *g, int timeout_ms, struct qmp_error *err)
{
  return execute_count (g, "guest-fsfreeze-freeze", NULL, timeout_ms, err);
}

int
qga_fsfreeze_thaw (struct qga *g, int timeout_ms, struct qmp_error *err)
{
  return execute_count (g, "guest-fsfreeze-thaw", NULL, timeout_ms, err);
}
