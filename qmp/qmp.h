/* pullback: QMP client library.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A synchronous client of QEMU's machine protocol over a unix socket.
 * It knows QEMU, not backups.  A handle belongs to one thread at a time
 * (the VM's owner); at most one command is pending on it.
 *
 * Every call that can fail takes a caller-supplied struct qmp_error and
 * fills it: QEMU's own error class and description for errors QEMU
 * returned, or one of our kinds (timeout, disconnected, protocol,
 * system) for the rest.  The library never prints errors itself; it
 * logs commands and replies at debug level only.
 */

#ifndef PULLBACK_QMP_H
#define PULLBACK_QMP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum qmp_error_kind
{
  QMP_ERR_NONE = 0,
  QMP_ERR_QEMU,         /* QEMU answered with {"error": {class, desc}} */
  QMP_ERR_TIMEOUT,      /* no answer before the deadline */
  QMP_ERR_DISCONNECTED, /* the peer closed the socket or exited */
  QMP_ERR_PROTOCOL,     /* a malformed, unexpected or oversized message */
  QMP_ERR_SYSTEM,       /* a system call failed; errnum says why */
};

struct qmp_error
{
  enum qmp_error_kind kind;
  int errnum;     /* for QMP_ERR_SYSTEM, else 0 */
  char cls[64];   /* QEMU's class ("GenericError", ...) or our kind's name */
  char desc[512]; /* human-readable description */
};

/* "QEMU", "Timeout", "Disconnected", "ProtocolError", "SystemError". */
const char *qmp_error_kind_name (enum qmp_error_kind kind);

void qmp_error_clear (struct qmp_error *err);
void qmp_error_set (struct qmp_error *err, enum qmp_error_kind kind,
                    const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* If REPLY is an error reply, fill ERR with QEMU's class and description
 * and return true.  A reply that is neither {"return":...} nor a
 * well-formed {"error":...} also returns true, as a protocol error.
 */
bool qmp_error_from_reply (const json_t *reply, struct qmp_error *err);

/* Did QEMU answer that the object (node, job, export, bitmap) does not
 * exist?  Teardown treats that as "already gone".
 */
bool qmp_error_is_not_found (const struct qmp_error *err);

/* Default limit on one message; query-qmp-schema of qemu-system is
 * about 200 KiB, so this leaves a wide margin and still bounds memory.
 */
#define QMP_DEFAULT_MAX_MESSAGE (16 * 1024 * 1024)

/* Default per-call timeout used by callers that have no better idea. */
#define QMP_DEFAULT_TIMEOUT_MS 30000

struct qmp;

/* Connect to QEMU's QMP socket at PATH, read the greeting and negotiate
 * capabilities, all within TIMEOUT_MS.  Returns NULL and fills ERR on
 * failure.
 */
struct qmp *qmp_connect (const char *path, int timeout_ms,
                         struct qmp_error *err);

/* Drop the current connection, if any, and connect again to the same
 * path.  Queued events are kept.
 */
int qmp_reconnect (struct qmp *q, int timeout_ms, struct qmp_error *err);

void qmp_close (struct qmp *q);

bool qmp_is_connected (const struct qmp *q);
const char *qmp_path (const struct qmp *q);

/* QEMU's version from the greeting. */
void qmp_version (const struct qmp *q, int *major, int *minor, int *micro);
/* The "package" string of the greeting (e.g. "Debian 1:7.2+dfsg-7..."). */
const char *qmp_version_package (const struct qmp *q);

/* The descriptor to poll for incoming events, or -1 if disconnected. */
int qmp_fd (const struct qmp *q);

/* Limit the size of one incoming message (default QMP_DEFAULT_MAX_MESSAGE).
 * A longer message breaks the connection with QMP_ERR_PROTOCOL.
 */
void qmp_set_max_message (struct qmp *q, size_t max);

/* Run CMD with ARGS (a JSON object, or NULL for none; the reference is
 * stolen) and wait at most TIMEOUT_MS (negative: forever) for the reply
 * with our id.  Events that arrive meanwhile are queued in order; replies
 * to earlier, timed-out commands are discarded.
 *
 * Returns a new reference to the "return" value, or NULL with ERR filled.
 * On QMP_ERR_TIMEOUT the connection stays usable; on QMP_ERR_DISCONNECTED
 * and QMP_ERR_PROTOCOL it is closed and every later call fails at once
 * until qmp_reconnect.
 */
json_t *qmp_execute (struct qmp *q, const char *cmd, json_t *args,
                     int timeout_ms, struct qmp_error *err);

/* The same, building ARGS with json_pack's FMT. */
json_t *qmp_executef (struct qmp *q, const char *cmd, int timeout_ms,
                      struct qmp_error *err, const char *fmt, ...);

/* The same, passing FD to QEMU with the command (SCM_RIGHTS), as getfd
 * and add-fd need.
 */
json_t *qmp_execute_with_fd (struct qmp *q, const char *cmd, json_t *args,
                             int fd, int timeout_ms, struct qmp_error *err);

/* Events.  Each event is the whole message
 * {"event": NAME, "data": {...}, "timestamp": {...}}.
 */

/* Read what QEMU has sent, waiting at most TIMEOUT_MS for the first
 * message (0: do not wait), and queue the events.  Returns the number of
 * events queued by this call, or -1 with ERR filled.
 */
int qmp_read_events (struct qmp *q, int timeout_ms, struct qmp_error *err);

/* Take the oldest queued event (the caller owns the reference), or NULL. */
json_t *qmp_event_pop (struct qmp *q);
size_t qmp_event_count (const struct qmp *q);
/* Events dropped because the queue was full (it keeps the newest). */
size_t qmp_events_dropped (const struct qmp *q);

typedef bool (*qmp_event_pred) (const json_t *event, void *opaque);

/* Wait at most TIMEOUT_MS for an event called NAME for which PRED (if not
 * NULL) returns true.  Queued events are looked at first, oldest first.
 * The matching event is removed from the queue and returned; the others
 * stay queued in order.  Returns NULL with ERR filled on timeout or
 * disconnection.
 */
json_t *qmp_wait_event (struct qmp *q, const char *name, qmp_event_pred pred,
                        void *opaque, int timeout_ms, struct qmp_error *err);

/* Predicate helpers: OPAQUE is a const char * value that
 * event.data.id (resp. event.data.device) must equal.
 */
bool qmp_event_data_id_is (const json_t *event, void *opaque);
bool qmp_event_data_device_is (const json_t *event, void *opaque);

/* The name of an event message, or NULL if it is not one. */
const char *qmp_event_name (const json_t *event);

/* Transactions: collect actions, then run them as one "transaction"
 * command, which QEMU applies all or nothing.
 */
struct qmp_txn;

struct qmp_txn *qmp_txn_new (void);
void qmp_txn_free (struct qmp_txn *t);
/* Append an action of TYPE with DATA (stolen). */
int qmp_txn_add (struct qmp_txn *t, const char *type, json_t *data);
/* Append an action whose data is built with json_pack's FMT. */
int qmp_txn_addf (struct qmp_txn *t, const char *type, const char *fmt, ...);
size_t qmp_txn_len (const struct qmp_txn *t);
/* The actions so far (borrowed). */
const json_t *qmp_txn_actions (const struct qmp_txn *t);
/* Run the transaction.  Returns 0, or -1 with ERR filled. */
int qmp_txn_execute (struct qmp *q, const struct qmp_txn *t, int timeout_ms,
                     struct qmp_error *err);

/* Pipelining: independent commands sent without waiting for each
 * reply, then the replies read in order (batch.c).
 */
struct qmp_batch;

struct qmp_batch *qmp_batch_new (void);
void qmp_batch_free (struct qmp_batch *b);
/* Append CMD with ARGS (stolen; NULL for none). */
int qmp_batch_add (struct qmp_batch *b, const char *cmd, json_t *args);
size_t qmp_batch_len (const struct qmp_batch *b);
/* Send every command, then read every reply.  0 if all succeeded; else
 * -1 with ERR of the first that failed and its index in *FAILED (may be
 * NULL).  Commands after a failed one have run too: QEMU does not stop.
 */
int qmp_batch_run (struct qmp *q, const struct qmp_batch *b, int timeout_ms,
                   size_t *failed, struct qmp_error *err);

/* Feature detection from query-qmp-schema.  qemu-storage-daemon and
 * qemu-system offer different commands (e.g. getfd), and arguments come
 * and go between versions.
 */
struct qmp_schema;

struct qmp_schema *qmp_schema_query (struct qmp *q, int timeout_ms,
                                     struct qmp_error *err);
/* Build from the "return" value of query-qmp-schema (borrowed). */
struct qmp_schema *qmp_schema_from_json (const json_t *schema,
                                         struct qmp_error *err);
void qmp_schema_free (struct qmp_schema *s);

bool qmp_schema_has_command (const struct qmp_schema *s, const char *cmd);
bool qmp_schema_has_event (const struct qmp_schema *s, const char *event);
/* Does CMD take an argument ARG, as a member of its argument type or of
 * one of that type's union branches?  ARG may be a dotted path through
 * nested objects and arrays, e.g. "actions.type" of transaction.
 */
bool qmp_schema_command_has_arg (const struct qmp_schema *s, const char *cmd,
                                 const char *arg);
/* Does argument ARG of CMD accept the enum value VALUE (directly, or
 * through an alternate)?  E.g. blockdev-add driver=snapshot-access.
 */
bool qmp_schema_arg_has_value (const struct qmp_schema *s, const char *cmd,
                               const char *arg, const char *value);

#endif /* PULLBACK_QMP_H */
