/* pullback: monotonic deadlines for timeouts.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_DEADLINE_H
#define PULLBACK_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
static inline int64_t
monotonic_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds on the monotonic clock, for measurements. */
static inline int64_t
monotonic_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A deadline TIMEOUT_MS from now; a negative timeout means "never". */
static inline int64_t
deadline_after (int timeout_ms)
{
  return timeout_ms < 0 ? INT64_MAX : monotonic_ms () + timeout_ms;
}

/* Milliseconds left until DEADLINE, clamped to [0, INT_MAX], or -1 for
 * "never", in the form poll(2) takes.
 */
static inline int
deadline_remaining (int64_t deadline)
{
  int64_t left;

  if (deadline == INT64_MAX)
    return -1;
  left = deadline - monotonic_ms ();
  if (left < 0)
    return 0;
  if (left > 0x7fffffff)
    return 0x7fffffff;
  return (int)left;
}

#endif /* PULLBACK_DEADLINE_H */
