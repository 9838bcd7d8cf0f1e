/* pullback: QMP transaction builder.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdarg.h>
#include <stdlib.h>

#include "cleanup.h"
#include "qmp.h"

struct qmp_txn
{
  json_t *actions;
};

struct qmp_txn *
qmp_txn_new (void)
{
  struct qmp_txn *t = calloc (1, sizeof *t);

  if (t == NULL)
    return NULL;
  t->actions = json_array ();
  if (t->actions == NULL)
    {
      free (t);
      return NULL;
    }
  return t;
}

void
qmp_txn_free (struct qmp_txn *t)
{
  if (t == NULL)
    return;
  json_decref (t->actions);
  free (t);
}

int
qmp_txn_add (struct qmp_txn *t, const char *type, json_t *data)
{
  if (data == NULL)
    return -1;
  return json_array_append_new (
      t->actions, json_pack ("{s:s, s:o}", "type", type, "data", data));
}

int
qmp_txn_addf (struct qmp_txn *t, const char *type, const char *fmt, ...)
{
  json_t *data;
  va_list ap;

  va_start (ap, fmt);
  data = json_vpack_ex (NULL, 0, fmt, ap);
  va_end (ap);
  return qmp_txn_add (t, type, data);
}

size_t
qmp_txn_len (const struct qmp_txn *t)
{
  return json_array_size (t->actions);
}

const json_t *
qmp_txn_actions (const struct qmp_txn *t)
{
  return t->actions;
}

int
qmp_txn_execute (struct qmp *q, const struct qmp_txn *t, int timeout_ms,
                 struct qmp_error *err)
{
  CLEANUP_JSON json_t *ret = NULL;

  ret = qmp_execute (q, "transaction",
                     json_pack ("{s:O}", "actions", t->actions), timeout_ms,
                     err);
  return ret ? 0 : -1;
}
