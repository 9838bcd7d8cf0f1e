/* pullback: the QMP library against real qemu-storage-daemon and
 * qemu-system-x86_64 (-M q35 -S -accel tcg with virtio-blk disks).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Each scenario runs once per QEMU; criterion forks a process per test,
 * and each test starts its own QEMU in a private directory.
 */

#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "deadline.h"
#include "qemu-harness.h"
#include "qmp.h"

#define TIMEOUT 10000

static struct qemu_proc proc;
static struct qmp *q;

static void
start (enum qemu_kind kind, int ndisks)
{
  struct qmp_error err;

  if (!qemu_available (kind))
    cr_skip_test ("%s is not installed", qemu_kind_name (kind));
  cr_assert_eq (qemu_start (&proc, kind, ndisks), 0, "starting %s",
                qemu_kind_name (kind));
  q = qmp_connect (proc.qmp, TIMEOUT, &err);
  cr_assert_not_null (q, "qmp_connect: %s: %s", err.cls, err.desc);
}

static void
stop (void)
{
  qmp_close (q);
  q = NULL;
  qemu_stop (&proc);
}

/* Also on a failed assertion, so no QEMU or directory is left. */
TestSuite (qsd, .fini = stop);
TestSuite (system, .fini = stop);

/* Run CMD with ARGS and insist that it succeeds. */
static json_t *
must (const char *cmd, json_t *args)
{
  struct qmp_error err;
  json_t *ret = qmp_execute (q, cmd, args, TIMEOUT, &err);

  cr_assert_not_null (ret, "%s: %s: %s", cmd, err.cls, err.desc);
  return ret;
}

/* The names of the dirty bitmaps QEMU reports on NODE. */
static bool
node_has_bitmap (const char *node, const char *bitmap)
{
  CLEANUP_JSON json_t *nodes
      = must ("query-named-block-nodes", json_pack ("{s:b}", "flat", 1));
  size_t i, j;
  json_t *n, *b;

  json_array_foreach (nodes, i, n)
    {
      const char *name = json_string_value (json_object_get (n, "node-name"));

      if (name == NULL || strcmp (name, node) != 0)
        continue;
      json_array_foreach (json_object_get (n, "dirty-bitmaps"), j, b)
        {
          const char *bn = json_string_value (json_object_get (b, "name"));
          if (bn && strcmp (bn, bitmap) == 0)
            return true;
        }
    }
  return false;
}

/* ---------------------------------------------------------------- */

static void
check_version (enum qemu_kind kind)
{
  CLEANUP_JSON json_t *v = NULL;
  int major, minor, micro;
  json_int_t qmaj, qmin, qmic;

  start (kind, 1);
  qmp_version (q, &major, &minor, &micro);
  /* The greeting must agree with query-version. */
  v = must ("query-version", NULL);
  cr_assert_eq (json_unpack (v, "{s:{s:I, s:I, s:I}}", "qemu", "major", &qmaj,
                             "minor", &qmin, "micro", &qmic),
                0);
  cr_assert_eq (major, qmaj);
  cr_assert_eq (minor, qmin);
  cr_assert_eq (micro, qmic);
  cr_assert_geq (major, 7, "QEMU %d.%d is older than 7.2", major, minor);
  cr_assert_str_eq (qmp_version_package (q),
                    json_string_value (json_object_get (v, "package")));
  stop ();
}

Test (qsd, version, .timeout = 60)
{
  check_version (QEMU_QSD);
}
Test (system, version, .timeout = 60)
{
  check_version (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

static void
check_schema (enum qemu_kind kind)
{
  struct qmp_error err;
  struct qmp_schema *s;
  CLEANUP_JSON json_t *cmds = NULL;
  size_t i;
  json_t *c;

  start (kind, 1);
  s = qmp_schema_query (q, TIMEOUT, &err);
  cr_assert_not_null (s, "%s: %s", err.cls, err.desc);

  /* Every command QEMU lists is found, and nothing else. */
  cmds = must ("query-commands", NULL);
  cr_assert_gt (json_array_size (cmds), 50);
  json_array_foreach (cmds, i, c)
    {
      const char *name = json_string_value (json_object_get (c, "name"));
      cr_assert (qmp_schema_has_command (s, name), "missing %s", name);
    }
  cr_assert_not (qmp_schema_has_command (s, "no-such-command"));
  cr_assert_not (qmp_schema_has_command (s, "BLOCK_JOB_CANCELLED"));
  cr_assert (qmp_schema_has_event (s, "BLOCK_JOB_CANCELLED"));
  cr_assert (qmp_schema_has_event (s, "BLOCK_EXPORT_DELETED"));
  cr_assert_not (qmp_schema_has_event (s, "query-version"));

  /* What the backup recipe needs, in both QEMUs. */
  cr_assert (
      qmp_schema_command_has_arg (s, "blockdev-backup", "filter-node-name"));
  cr_assert (qmp_schema_command_has_arg (s, "block-export-add", "bitmaps"));
  cr_assert (
      qmp_schema_command_has_arg (s, "block-export-add", "allocation-depth"));
  cr_assert (
      qmp_schema_command_has_arg (s, "block-dirty-bitmap-add", "persistent"));
  cr_assert_not (
      qmp_schema_command_has_arg (s, "block-dirty-bitmap-add", "no-such-arg"));
  cr_assert (qmp_schema_arg_has_value (s, "blockdev-add", "driver",
                                       "snapshot-access"));
  cr_assert (qmp_schema_arg_has_value (s, "blockdev-add", "driver",
                                       "copy-before-write"));
  cr_assert_not (qmp_schema_arg_has_value (s, "blockdev-add", "driver",
                                           "no-such-driver"));
  cr_assert (qmp_schema_arg_has_value (s, "transaction", "actions.type",
                                       "block-dirty-bitmap-merge"));
  cr_assert (qmp_schema_command_has_arg (s, "transaction", "actions.data"));
  cr_assert_not (qmp_schema_arg_has_value (s, "transaction", "actions.type",
                                           "blockdev-add"));

  /* Where the two QEMUs differ. */
  if (kind == QEMU_QSD)
    {
      cr_assert_not (qmp_schema_has_command (s, "getfd"));
      cr_assert_not (qmp_schema_has_command (s, "human-monitor-command"));
    }
  else
    {
      cr_assert (qmp_schema_has_command (s, "getfd"));
      cr_assert (qmp_schema_has_command (s, "human-monitor-command"));
      cr_assert (qmp_schema_has_command (s, "query-block"));
    }
  qmp_schema_free (s);
  stop ();
}

Test (qsd, schema, .timeout = 60)
{
  check_schema (QEMU_QSD);
}
Test (system, schema, .timeout = 60)
{
  check_schema (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

static void
check_transaction (enum qemu_kind kind)
{
  struct qmp_error err;
  struct qmp_txn *t;

  start (kind, 2);

  /* The second action fails, so the first must not happen either. */
  t = qmp_txn_new ();
  cr_assert_eq (qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}",
                              "node", "disk0", "name", "cp1", "persistent", 1),
                0);
  cr_assert_eq (qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s}",
                              "node", "nosuch", "name", "cp1"),
                0);
  cr_assert_eq (qmp_txn_len (t), 2);
  cr_assert_eq (qmp_txn_execute (q, t, TIMEOUT, &err), -1);
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  cr_assert_str_eq (err.cls, "GenericError");
  cr_assert (strstr (err.desc, "nosuch"), "desc: %s", err.desc);
  qmp_txn_free (t);
  cr_assert_not (node_has_bitmap ("disk0", "cp1"));

  /* The same for two disks with valid actions: both happen. */
  t = qmp_txn_new ();
  qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}", "node",
                "disk0", "name", "cp1", "persistent", 1);
  qmp_txn_addf (t, "block-dirty-bitmap-add", "{s:s, s:s, s:b}", "node",
                "disk1", "name", "cp1", "persistent", 1);
  cr_assert_eq (qmp_txn_execute (q, t, TIMEOUT, &err), 0, "%s: %s", err.cls,
                err.desc);
  qmp_txn_free (t);
  cr_assert (node_has_bitmap ("disk0", "cp1"));
  cr_assert (node_has_bitmap ("disk1", "cp1"));

  /* A duplicate name is refused with QEMU's own message. */
  cr_assert_null (qmp_executef (q, "block-dirty-bitmap-add", TIMEOUT, &err,
                                "{s:s, s:s}", "node", "disk0", "name", "cp1"));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  cr_assert_str_eq (err.desc, "Bitmap already exists: cp1");
  /* The connection is still fine after an error. */
  json_decref (must ("query-version", NULL));
  stop ();
}

Test (qsd, transaction_atomic, .timeout = 60)
{
  check_transaction (QEMU_QSD);
}
Test (system, transaction_atomic, .timeout = 60)
{
  check_transaction (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

static bool
job_status_is (const json_t *ev, void *opaque)
{
  const char *s = json_string_value (
      json_object_get (json_object_get (ev, "data"), "status"));

  return qmp_event_data_id_is (ev, (void *)"mk") && s
         && strcmp (s, opaque) == 0;
}

static double
event_time (const json_t *ev)
{
  json_int_t sec = 0, usec = 0;

  json_unpack ((json_t *)ev, "{s:{s:I, s:I}}", "timestamp", "seconds", &sec,
               "microseconds", &usec);
  return (double)sec + (double)usec / 1e6;
}

static void
check_events (enum qemu_kind kind)
{
  static const char *const expected[]
      = { "created", "running", "waiting", "pending" };
  struct qmp_error err;
  CLEANUP_JSON json_t *concluded = NULL;
  CLEANUP_JSON json_t *deleted = NULL;
  char file[PATH_MAX + 16], sock[PATH_MAX + 16];
  double last = 0;
  json_t *ev;

  start (kind, 1);
  snprintf (file, sizeof file, "%s/new.raw", proc.dir);
  snprintf (sock, sizeof sock, "%s/nbd.sock", proc.dir);

  /* A blockdev-create job goes through a fixed series of states. */
  json_decref (
      must ("blockdev-create",
            json_pack ("{s:s, s:{s:s, s:s, s:i}}", "job-id", "mk", "options",
                       "driver", "file", "filename", file, "size", 0)));
  concluded = qmp_wait_event (q, "JOB_STATUS_CHANGE", job_status_is,
                              (void *)"concluded", TIMEOUT, &err);
  cr_assert_not_null (concluded, "%s: %s", err.cls, err.desc);

  /* The earlier changes are still queued, in the order they happened. */
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    {
      CLEANUP_JSON json_t *e = NULL;
      const char *status;

      do
        {
          json_decref (e);
          e = qmp_event_pop (q);
          cr_assert_not_null (e, "event %s missing", expected[i]);
        }
      while (!qmp_event_data_id_is (e, (void *)"mk"));
      cr_assert_str_eq (qmp_event_name (e), "JOB_STATUS_CHANGE");
      status = json_string_value (
          json_object_get (json_object_get (e, "data"), "status"));
      cr_assert_str_eq (status, expected[i]);
      cr_assert_geq (event_time (e), last);
      last = event_time (e);
    }
  cr_assert_geq (event_time (concluded), last);
  json_decref (must ("job-dismiss", json_pack ("{s:s}", "id", "mk")));
  cr_assert_eq (access (file, F_OK), 0);

  /* Waiting by id: only the export we delete matches. */
  json_decref (must ("nbd-server-start",
                     json_pack ("{s:{s:s, s:{s:s}}}", "addr", "type", "unix",
                                "data", "path", sock)));
  json_decref (must ("block-export-add",
                     json_pack ("{s:s, s:s, s:s, s:s}", "type", "nbd", "id",
                                "exp0", "node-name", "disk0", "name", "d0")));
  json_decref (must ("block-export-add",
                     json_pack ("{s:s, s:s, s:s, s:s}", "type", "nbd", "id",
                                "exp1", "node-name", "disk0", "name", "d1")));
  json_decref (must ("block-export-del", json_pack ("{s:s}", "id", "exp1")));
  deleted = qmp_wait_event (q, "BLOCK_EXPORT_DELETED", qmp_event_data_id_is,
                            (void *)"exp1", TIMEOUT, &err);
  cr_assert_not_null (deleted, "%s: %s", err.cls, err.desc);
  /* No event for exp0, which still exists. */
  ev = qmp_wait_event (q, "BLOCK_EXPORT_DELETED", qmp_event_data_id_is,
                       (void *)"exp0", 200, &err);
  cr_assert_null (ev);
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT);
  stop ();
}

Test (qsd, events_in_order, .timeout = 60)
{
  check_events (QEMU_QSD);
}
Test (system, events_in_order, .timeout = 60)
{
  check_events (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

static void *
kill_later (void *arg)
{
  usleep (300 * 1000);
  qemu_signal (arg, SIGKILL);
  return NULL;
}

static void
check_kill_pending (enum qemu_kind kind)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *v = NULL;
  pthread_t thread;
  int64_t t0, elapsed;

  start (kind, 1);

  /* QEMU stops answering, then dies while our call waits for it. */
  qemu_signal (&proc, SIGSTOP);
  pthread_create (&thread, NULL, kill_later, &proc);
  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "query-version", NULL, 10000, &err));
  elapsed = monotonic_ms () - t0;
  pthread_join (thread, NULL);
  cr_assert_eq (err.kind, QMP_ERR_DISCONNECTED, "%s: %s", err.cls, err.desc);
  cr_assert_lt (elapsed, 5000, "took %lld ms", (long long)elapsed);
  cr_assert_not (qmp_is_connected (q));

  /* Later calls fail at once. */
  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "query-version", NULL, 10000, &err));
  cr_assert_eq (err.kind, QMP_ERR_DISCONNECTED);
  cr_assert_lt (monotonic_ms () - t0, 1000);

  /* QEMU comes back on the same socket: reconnect. */
  cr_assert_eq (qemu_restart (&proc), 0);
  cr_assert_eq (qmp_reconnect (q, TIMEOUT, &err), 0, "%s: %s", err.cls,
                err.desc);
  cr_assert (qmp_is_connected (q));
  v = must ("query-version", NULL);
  cr_assert_not_null (json_object_get (v, "qemu"));
  stop ();
}

Test (qsd, kill_during_call, .timeout = 60)
{
  check_kill_pending (QEMU_QSD);
}
Test (system, kill_during_call, .timeout = 60)
{
  check_kill_pending (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

static void
check_timeout_then_stale (enum qemu_kind kind)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *v = NULL;
  int64_t t0, elapsed;

  start (kind, 1);
  qemu_signal (&proc, SIGSTOP);
  t0 = monotonic_ms ();
  cr_assert_null (qmp_execute (q, "query-status", NULL, 300, &err));
  elapsed = monotonic_ms () - t0;
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT, "%s: %s", err.cls, err.desc);
  cr_assert_geq (elapsed, 290);
  cr_assert (qmp_is_connected (q));

  /* QEMU wakes up and answers the old call first; we must skip that
   * reply and return the one for the new call.
   */
  qemu_signal (&proc, SIGCONT);
  v = must ("query-version", NULL);
  cr_assert_not_null (json_object_get (v, "qemu"), "got a stale reply");
  cr_assert_null (json_object_get (v, "status"));
  stop ();
}

Test (qsd, timeout_then_stale_reply, .timeout = 60)
{
  check_timeout_then_stale (QEMU_QSD);
}
Test (system, timeout_then_stale_reply, .timeout = 60)
{
  check_timeout_then_stale (QEMU_SYSTEM);
}

/* A QEMU that accepts but never greets (stopped) times out the connect. */
static void
check_connect_timeout (enum qemu_kind kind)
{
  struct qmp_error err;
  struct qmp *q2;
  int64_t t0;

  start (kind, 1);
  qmp_close (q); /* QEMU serves one monitor client at a time */
  q = NULL;
  qemu_signal (&proc, SIGSTOP);
  t0 = monotonic_ms ();
  q2 = qmp_connect (proc.qmp, 300, &err);
  cr_assert_null (q2);
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT, "%s: %s", err.cls, err.desc);
  cr_assert_lt (monotonic_ms () - t0, 5000);
  qemu_signal (&proc, SIGCONT);
  stop ();
}

Test (qsd, connect_timeout, .timeout = 60)
{
  check_connect_timeout (QEMU_QSD);
}
Test (system, connect_timeout, .timeout = 60)
{
  check_connect_timeout (QEMU_SYSTEM);
}

/* ---------------------------------------------------------------- */

/* getfd passes a descriptor with SCM_RIGHTS; only qemu-system has it. */
Test (system, getfd, .timeout = 60)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *ret = NULL;
  int sv[2];

  start (QEMU_SYSTEM, 1);
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ret = qmp_execute_with_fd (q, "getfd", json_pack ("{s:s}", "fdname", "t0"),
                             sv[0], TIMEOUT, &err);
  cr_assert_not_null (ret, "%s: %s", err.cls, err.desc);
  close (sv[0]);
  close (sv[1]);
  /* QEMU holds it under that name: closefd succeeds once. */
  json_decref (must ("closefd", json_pack ("{s:s}", "fdname", "t0")));
  cr_assert_null (
      qmp_executef (q, "closefd", TIMEOUT, &err, "{s:s}", "fdname", "t0"));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  /* Without a descriptor, getfd is refused. */
  cr_assert_null (
      qmp_executef (q, "getfd", TIMEOUT, &err, "{s:s}", "fdname", "t1"));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  stop ();
}

Test (qsd, no_getfd, .timeout = 60)
{
  struct qmp_error err;

  start (QEMU_QSD, 1);
  cr_assert_null (
      qmp_executef (q, "getfd", TIMEOUT, &err, "{s:s}", "fdname", "t0"));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  cr_assert_str_eq (err.cls, "CommandNotFound");
  stop ();
}

/* Device-attached disks: query-block names the device and its node. */
Test (system, query_block_devices, .timeout = 60)
{
  CLEANUP_JSON json_t *blocks = NULL;
  size_t i;
  json_t *b;
  int found = 0;

  start (QEMU_SYSTEM, 2);
  blocks = must ("query-block", NULL);
  json_array_foreach (blocks, i, b)
    {
      const char *qdev = json_string_value (json_object_get (b, "qdev"));
      const char *node = json_string_value (
          json_object_get (json_object_get (b, "inserted"), "node-name"));
      char want[64];

      cr_assert_not_null (qdev);
      cr_assert_not_null (node);
      snprintf (want, sizeof want, "/machine/peripheral/vd%c/virtio-backend",
                node[strlen (node) - 1]);
      cr_assert_str_eq (qdev, want);
      found++;
    }
  cr_assert_eq (found, 2);
  stop ();
}
