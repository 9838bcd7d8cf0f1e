/* pullback: QMP pipelining.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Independent commands (a blockdev-add per disk, an export per disk) are
 * sent one after the other without waiting, then their replies are read
 * in order: QMP answers the commands of one monitor in the order they
 * came, so N commands cost one round trip instead of N.  Every reply is
 * read, even after a failure, so none is left for a later call.
 */

#include <config.h>

#include <stdlib.h>

#include "cleanup.h"
#include "conn.h"
#include "deadline.h"
#include "qmp.h"

struct qmp_batch
{
  json_t *cmds; /* [[name, args or null], ...] */
};

struct qmp_batch *
qmp_batch_new (void)
{
  struct qmp_batch *b = calloc (1, sizeof *b);

  if (b == NULL)
    return NULL;
  b->cmds = json_array ();
  if (b->cmds == NULL)
    {
      free (b);
      return NULL;
    }
  return b;
}

void
qmp_batch_free (struct qmp_batch *b)
{
  if (b == NULL)
    return;
  json_decref (b->cmds);
  free (b);
}

int
qmp_batch_add (struct qmp_batch *b, const char *cmd, json_t *args)
{
  if (b == NULL)
    {
      json_decref (args);
      return -1;
    }
  return json_array_append_new (
      b->cmds, json_pack ("[s, o]", cmd, args ? args : json_null ()));
}

size_t
qmp_batch_len (const struct qmp_batch *b)
{
  return b ? json_array_size (b->cmds) : 0;
}

int
qmp_batch_run (struct qmp *q, const struct qmp_batch *b, int timeout_ms,
               size_t *failed, struct qmp_error *err)
{
  int64_t deadline = deadline_after (timeout_ms);
  size_t n = qmp_batch_len (b), sent = 0, i;
  char (*ids)[CONN_ID_MAX];
  struct qmp_error first, e;
  int rc = 0;

  qmp_error_clear (err);
  qmp_error_clear (&first);
  if (b == NULL || json_array_size (b->cmds) != n)
    {
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      return -1;
    }
  ids = calloc (n ? n : 1, sizeof *ids);
  if (ids == NULL)
    {
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      return -1;
    }
  for (i = 0; i < n; i++)
    {
      const json_t *c = json_array_get (b->cmds, i);
      json_t *args = json_array_get (c, 1);

      if (conn_send_command (qmp_conn (q),
                             json_string_value (json_array_get (c, 0)),
                             json_is_null (args) ? NULL : json_incref (args),
                             -1, deadline, ids[i], &first)
          == -1)
        {
          if (failed)
            *failed = i;
          rc = -1;
          break;
        }
      sent++;
    }
  for (i = 0; i < sent; i++)
    {
      json_t *ret = conn_wait_reply (qmp_conn (q), ids[i], deadline, &e);

      if (ret == NULL && rc == 0)
        {
          first = e;
          if (failed)
            *failed = i;
          rc = -1;
        }
      json_decref (ret);
      /* A connection that is gone answers nothing more. */
      if (ret == NULL && e.kind != QMP_ERR_QEMU)
        break;
    }
  free (ids);
  if (rc == -1)
    *err = first;
  return rc;
}
