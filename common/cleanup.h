/* pullback: cleanup attributes for memory, descriptors and locks.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Each helper releases what a variable holds when it goes out of scope,
 * so error paths can simply return.  To keep a value, take it out of the
 * variable first (see TAKE).
 */

#ifndef PULLBACK_CLEANUP_H
#define PULLBACK_CLEANUP_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

void cleanup_free (void *ptr);
void cleanup_close (int *fd);
void cleanup_fclose (FILE **fp);
void cleanup_json (json_t **j);
void cleanup_unlock (pthread_mutex_t **m);

#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))
#define CLEANUP_CLOSE __attribute__ ((cleanup (cleanup_close)))
#define CLEANUP_FCLOSE __attribute__ ((cleanup (cleanup_fclose)))
#define CLEANUP_JSON __attribute__ ((cleanup (cleanup_json)))

/* Hold MUTEX until the end of the enclosing scope. */
#define LOCK_FOR_SCOPE_CONCAT2(a, b) a##b
#define LOCK_FOR_SCOPE_CONCAT(a, b) LOCK_FOR_SCOPE_CONCAT2 (a, b)
#define LOCK_FOR_SCOPE(mutex)                                                 \
  __attribute__ ((cleanup (cleanup_unlock))) pthread_mutex_t *                \
  LOCK_FOR_SCOPE_CONCAT (_scope_lock_, __LINE__)                              \
      = (pthread_mutex_lock (mutex), (mutex))

/* Move a value out of a cleanup variable: returns it and leaves the
 * variable empty so its cleanup does nothing.
 */
#define TAKE_PTR(var)                                                         \
  ({                                                                          \
    __typeof__ (var) _taken = (var);                                          \
    (var) = NULL;                                                             \
    _taken;                                                                   \
  })
#define TAKE_FD(fd)                                                           \
  ({                                                                          \
    int _taken = (fd);                                                        \
    (fd) = -1;                                                                \
    _taken;                                                                   \
  })

#endif /* PULLBACK_CLEANUP_H */
