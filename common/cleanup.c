/* pullback: cleanup attribute helpers.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>

#include "cleanup.h"

void
cleanup_free (void *ptr)
{
  free (*(void **)ptr);
}

/* close(2) may change errno; cleanups run on error paths where the
 * caller still wants the original errno, so keep it.
 */
void
cleanup_close (int *fd)
{
  int saved = errno;

  if (*fd >= 0)
    close (*fd);
  errno = saved;
}

void
cleanup_fclose (FILE **fp)
{
  int saved = errno;

  if (*fp)
    fclose (*fp);
  errno = saved;
}

void
cleanup_json (json_t **j)
{
  json_decref (*j);
}

void
cleanup_unlock (pthread_mutex_t **m)
{
  pthread_mutex_unlock (*m);
}
