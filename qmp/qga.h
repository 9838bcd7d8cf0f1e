/* pullback: qemu-guest-agent client.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The agent speaks the same JSON protocol as QMP but without a greeting,
 * and a socket to it may hold stale replies from an earlier client or a
 * guest reboot.  Every session therefore starts with guest-sync-delimited
 * and a random id; everything before the matching reply is discarded.
 * Errors are reported through struct qmp_error, as in qmp.h.
 */

#ifndef PULLBACK_QGA_H
#define PULLBACK_QGA_H

#include <stddef.h>

#include "qmp.h"

struct qga;

/* Connect to the agent's socket and synchronise within TIMEOUT_MS. */
struct qga *qga_connect (const char *path, int timeout_ms,
                         struct qmp_error *err);
void qga_close (struct qga *g);

/* Flush stale data: guest-sync-delimited with a fresh random id. */
int qga_sync (struct qga *g, int timeout_ms, struct qmp_error *err);

/* Run any agent command; a new reference to "return", or NULL. */
json_t *qga_execute (struct qga *g, const char *cmd, json_t *args,
                     int timeout_ms, struct qmp_error *err);

enum qga_freeze_status
{
  QGA_THAWED = 0,
  QGA_FROZEN = 1,
};

/* Returns QGA_THAWED or QGA_FROZEN, or -1 with ERR filled. */
int qga_fsfreeze_status (struct qga *g, int timeout_ms, struct qmp_error *err);

/* Freeze exactly the N MOUNTPOINTS (N must be at least 1: the agent
 * reads an absent list as "everything").  Returns the number of
 * filesystems frozen, or -1.
 */
int qga_fsfreeze_freeze_list (struct qga *g, const char *const *mountpoints,
                              size_t n, int timeout_ms, struct qmp_error *err);

/* Freeze every filesystem the agent sees.  Returns the count, or -1. */
int qga_fsfreeze_freeze (struct qga *g, int timeout_ms, struct qmp_error *err);

/* Thaw.  Returns the number of filesystems thawed, or -1. */
int qga_fsfreeze_thaw (struct qga *g, int timeout_ms, struct qmp_error *err);

#endif /* PULLBACK_QGA_H */
