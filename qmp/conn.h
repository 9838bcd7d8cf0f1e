/* pullback: the JSON-lines connection under both QMP and the guest agent.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Internal to qmp/.  A conn owns a non-blocking unix socket and a framer.
 * conn_call sends one command with a fresh id and reads until the reply
 * carrying that id arrives; every other message on the way is handed to
 * on_message (QMP events) or dropped (stale replies).
 */

#ifndef PULLBACK_QMP_CONN_H
#define PULLBACK_QMP_CONN_H

#include <stdint.h>

#include <jansson.h>

#include "framer.h"
#include "qmp.h"

struct conn
{
  char *path;
  int fd;
  struct framer fr;
  uint64_t next_id;
  uint64_t *id_source; /* if set, ids come from this shared counter */
  const char *peer;    /* "QMP" or "QGA", for debug messages */
  /* Messages that are not the awaited reply and carry "event".  The
   * callback takes a new reference.
   */
  void (*on_event) (struct conn *c, json_t *msg);
  void *opaque;
};

int conn_init (struct conn *c, const char *path, const char *peer,
               size_t max_message);
void conn_free (struct conn *c);

int conn_open (struct conn *c, int64_t deadline, struct qmp_error *err);
void conn_close (struct conn *c);

/* Send raw bytes (the guest agent's 0xFF reset). */
int conn_send (struct conn *c, const void *buf, size_t len, int passfd,
               int64_t deadline, struct qmp_error *err);

/* The next message.  On QMP_ERR_DISCONNECTED, QMP_ERR_PROTOCOL and
 * QMP_ERR_SYSTEM the connection is closed; on QMP_ERR_TIMEOUT it is not.
 */
json_t *conn_recv (struct conn *c, int64_t deadline, struct qmp_error *err);

/* Like conn_recv, but returns NULL with kind QMP_ERR_NONE if nothing
 * complete is buffered or readable without blocking.
 */
json_t *conn_recv_nowait (struct conn *c, struct qmp_error *err);

/* Room for a command id. */
#define CONN_ID_MAX 48

/* The two halves of conn_call.  conn_send_command sends the command
 * and writes its id into ID (CONN_ID_MAX bytes); ARGS is stolen.
 * conn_wait_reply reads until the reply carrying ID arrives and returns
 * a new reference to its "return".
 */
int conn_send_command (struct conn *c, const char *cmd, json_t *args,
                       int passfd, int64_t deadline, char *id,
                       struct qmp_error *err);
json_t *conn_wait_reply (struct conn *c, const char *id, int64_t deadline,
                         struct qmp_error *err);

/* Send {"execute": CMD, "arguments": ARGS, "id": ...} and wait for its
 * reply.  ARGS is stolen.  Returns a new reference to "return".
 */
json_t *conn_call (struct conn *c, const char *cmd, json_t *args, int passfd,
                   int64_t deadline, struct qmp_error *err);

/* qmp.c: the connection of a QMP session (for batch.c). */
struct qmp;
struct conn *qmp_conn (struct qmp *q);

#endif /* PULLBACK_QMP_CONN_H */
