/* pullback: freezing the guest's filesystems around a snapshot, and
 * never leaving them frozen.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Before guest-fsfreeze-freeze is sent, the state document gets a
 * "quiesce" marker ({state: "freezing", backup, agent, since}), written
 * and synced; it goes once a thaw is confirmed.  The marker decides: a
 * guest is thawed only while it is there, so a guest frozen by someone
 * else (an administrator, another tool) is never thawed by us, and a
 * guest we froze is thawed whatever happened in between (a crash, a
 * lost agent connection, a timeout).  While it stands, the thaw is
 * retried at every QMP connect, periodically from the owner loop (the
 * agent may answer while QMP does not), before a quiesced begin and
 * before the daemon exits; no new freeze is made.
 */

#include <config.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "qga.h"

#define CONNECT_MS 5000
#define FREEZE_MS 10000
#define THAW_MS 10000
/* A retry runs on the owner thread and holds up the VM's requests:
 * shorter.
 */
#define RETRY_CONNECT_MS 3000
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

static json_t *
marker (const struct vm *vm)
{
  json_t *q = json_object_get (vm->state, "quiesce");

  return json_is_object (q) ? q : NULL;
}

static void
marker_clear (struct vm *vm)
{
  json_object_del (vm->state, "quiesce");
  vm->thaw_backoff_ms = 0;
  vm->thaw_next_ms = 0;
}

/* The guest as the marker left it: a fresh connection to the agent we
 * froze through, and a thaw if it says frozen.  0 when it is thawed (the
 * marker is removed; the caller saves), -1 when that could not be
 * confirmed (the marker keeps the error; the next retry is scheduled).
 */
static int
settle (struct vm *vm, int timeout_ms)
{
  json_t *q = marker (vm);
  const char *path = json_str (q, "agent") ?: vm->qga_path;
  struct qmp_error err;
  struct qga *g = NULL;
  int st = -1, n = 0;

  qmp_error_clear (&err);
  if (path == NULL)
    qmp_error_set (&err, QMP_ERR_PROTOCOL, "no guest agent socket known");
  else if ((g = qga_connect (path, timeout_ms, &err)) != NULL
           && (st = qga_fsfreeze_status (g, timeout_ms, &err)) == QGA_FROZEN)
    n = qga_fsfreeze_thaw (g, THAW_MS, &err);
  qga_close (g);
  if (st == -1 || n == -1)
    {
      const char *before = json_str (q, "error");

      if (before == NULL || strcmp (before, err.desc) != 0)
        log_warnx ("VM %s: the guest filesystems pullbackd froze (backup "
                   "%s) are not thawed yet: %s; retrying",
                   vm->name, json_str (q, "backup") ?: "?", err.desc);
      json_object_set_new (q, "error", json_string (err.desc));
      vm->thaw_backoff_ms = vm->thaw_backoff_ms == 0 ? RETRY_FIRST_MS
                            : vm->thaw_backoff_ms >= RETRY_MAX_MS / 2
                                ? RETRY_MAX_MS
                                : vm->thaw_backoff_ms * 2;
      vm->thaw_next_ms = monotonic_ms () + vm->thaw_backoff_ms;
      return -1;
    }
  if (st == QGA_FROZEN)
    log_info ("VM %s: thawed the guest filesystems pullbackd had frozen "
              "(backup %s, %d filesystems)",
              vm->name, json_str (q, "backup") ?: "?", n);
  else
    log_info ("VM %s: the guest filesystems pullbackd had frozen (backup "
              "%s) are thawed",
              vm->name, json_str (q, "backup") ?: "?");
  marker_clear (vm);
  return 0;
}

int
quiesce_tick (struct vm *vm, bool now)
{
  if (marker (vm) == NULL)
    return -1;
  if (!now && monotonic_ms () < vm->thaw_next_ms)
    return (int)(vm->thaw_next_ms - monotonic_ms ());
  if (settle (vm, RETRY_CONNECT_MS) == 0)
    {
      vm_save (vm);
      return -1;
    }
  return (int)(vm->thaw_next_ms - monotonic_ms ());
}

int
quiesce_require_thawed (struct vm *vm, struct reply *r)
{
  if (quiesce_tick (vm, true) == -1)
    return 0;
  return reply_error (r, PB_ERR_CONFLICT, "thaw-pending",
                      "pullbackd froze the guest filesystems of VM %s "
                      "(backup %s) and could not thaw them yet: %s; it "
                      "keeps trying",
                      vm->name, json_str (marker (vm), "backup") ?: "?",
                      json_str (marker (vm), "error") ?: "?");
}

struct qga *
quiesce_freeze (struct vm *vm, const char *backup, int64_t *frozen_at_ms,
                struct reply *r)
{
  struct qmp_error err;
  struct qga *g;
  int st;

  if (vm->qga_path == NULL)
    {
      reply_error_field (r, PB_ERR_INVALID, "no-guest-agent", "quiesce",
                         "VM %s has no guest agent socket (qga=)", vm->name);
      return NULL;
    }
  /* One freeze of ours at a time: an earlier one is thawed first. */
  if (quiesce_require_thawed (vm, r) == -1)
    return NULL;
  g = qga_connect (vm->qga_path, CONNECT_MS, &err);
  st = g ? qga_fsfreeze_status (g, CONNECT_MS, &err) : -1;
  if (st != QGA_THAWED)
    {
      qga_close (g);
      if (st == QGA_FROZEN)
        reply_error (r, PB_ERR_CONFLICT, "guest-frozen",
                     "the guest filesystems of VM %s are frozen already, "
                     "not by pullbackd, which leaves them as they are",
                     vm->name);
      else
        reply_error (r, PB_ERR_QEMU_FAILED, "quiesce-failed",
                     "freezing the guest filesystems of VM %s: %s", vm->name,
                     err.desc);
      return NULL;
    }

  /* On disk before the guest is touched: whatever happens next, a
   * restart knows the guest may be frozen by us.
   */
  json_object_set_new (vm->state, "quiesce",
                       json_pack ("{s:s, s:s, s:s, s:I}", "state", "freezing",
                                  "backup", backup, "agent", vm->qga_path,
                                  "since", (json_int_t)now_seconds ()));
  if (vm_save (vm) == -1)
    {
      marker_clear (vm);
      qga_close (g);
      reply_error (r, PB_ERR_INTERNAL, "state-write-failed",
                   "cannot record the freeze in the state directory; the "
                   "guest was not frozen");
      return NULL;
    }

  *frozen_at_ms = monotonic_ms ();
  if (qga_fsfreeze_freeze (g, FREEZE_MS, &err) == -1)
    {
      qga_close (g);
      reply_error (r, PB_ERR_QEMU_FAILED, "quiesce-failed",
                   "freezing the guest filesystems of VM %s: %s", vm->name,
                   err.desc);
      /* An agent that answered with an error has undone what it froze
       * (qemu-ga thaws before it answers a failed freeze).  Without an
       * answer (a timeout, a lost connection) the freeze may have
       * happened: the marker stays until the guest says it is thawed.
       * The caller's next save records either.
       */
      if (err.kind == QMP_ERR_QEMU)
        marker_clear (vm);
      else
        settle (vm, CONNECT_MS);
      return NULL;
    }
  return g;
}

int
quiesce_thaw (struct vm *vm, struct qga *g, struct reply *r)
{
  struct qmp_error err;
  int n = qga_fsfreeze_thaw (g, THAW_MS, &err);

  qga_close (g);
  if (n >= 0)
    {
      marker_clear (vm);
      return 0;
    }
  /* The connection may be all that failed: a fresh one, at once. */
  log_warnx ("VM %s: thawing the guest filesystems: %s", vm->name, err.desc);
  if (settle (vm, CONNECT_MS) == 0)
    return 0;
  if (r)
    reply_error (r, PB_ERR_QEMU_FAILED, "thaw-failed",
                 "the guest filesystems of VM %s were frozen but could not "
                 "be thawed: %s; pullbackd keeps trying",
                 vm->name, err.desc);
  return -1;
}

void
quiesce_describe (const struct vm *vm, json_t *body)
{
  const json_t *q = marker (vm);

  json_object_set_new (body, "guest_frozen", json_boolean (q != NULL));
  if (q && json_str (q, "error"))
    json_object_set_new (body, "thaw_error",
                         json_string (json_str (q, "error")));
}

/* Test-only hook, inert unless the environment names POINT in
 * PULLBACK_TEST_PAUSE: the owner thread creates the file named by
 * PULLBACK_TEST_PAUSE_FILE and waits, holding whatever it holds (a
 * frozen guest), until the file is removed.  A test can then kill -9
 * the daemon, or change the world, at exactly that point.
 */
void
test_pause (const char *point)
{
  const char *want = getenv ("PULLBACK_TEST_PAUSE");
  const char *file = getenv ("PULLBACK_TEST_PAUSE_FILE");
  int fd;

  if (want == NULL || file == NULL || strcmp (want, point) != 0)
    return;
  fd = open (file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd == -1)
    {
      log_warn ("test pause: %s", file);
      return;
    }
  close (fd);
  log_info ("test pause at %s until %s is removed", point, file);
  while (access (file, F_OK) == 0)
    usleep (10 * 1000);
  log_info ("test pause at %s: resumed", point);
}
