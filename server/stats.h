/* pullback: daemon-wide counters for GET /metrics.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_STATS_H
#define PULLBACK_STATS_H

#include <stdatomic.h>

struct pb_stats
{
  atomic_ulong backups_begun;        /* became ready */
  atomic_ulong backups_begin_failed; /* undone before becoming ready */
  atomic_ulong backups_ended;        /* DELETE or shutdown */
  atomic_ulong backups_expired;      /* TTL */
  atomic_ulong backups_failed;       /* QEMU went away */
};

extern struct pb_stats pb_stats;

#endif /* PULLBACK_STATS_H */
