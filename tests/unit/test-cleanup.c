/* pullback: cleanup attributes.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cleanup.h"

Test (cleanup, close_closes_and_keeps_errno)
{
  int copy;

  {
    CLEANUP_CLOSE int fd = open ("/dev/null", O_RDONLY);

    cr_assert_geq (fd, 0);
    copy = fd;
    errno = EPERM;
  }
  cr_assert_eq (errno, EPERM);
  cr_assert_eq (fcntl (copy, F_GETFD), -1);
  cr_assert_eq (errno, EBADF);
}

Test (cleanup, take_fd_keeps_it_open)
{
  int kept;

  {
    CLEANUP_CLOSE int fd = open ("/dev/null", O_RDONLY);

    kept = TAKE_FD (fd);
    cr_assert_eq (fd, -1);
  }
  cr_assert_neq (fcntl (kept, F_GETFD), -1);
  close (kept);
}

Test (cleanup, take_ptr_keeps_memory)
{
  char *kept;

  {
    CLEANUP_FREE char *p = strdup ("hello");

    kept = TAKE_PTR (p);
    cr_assert_null (p);
  }
  cr_assert_str_eq (kept, "hello");
  free (kept);
}

Test (cleanup, json_is_released)
{
  json_t *obj = json_object ();

  json_incref (obj); /* ours */
  {
    CLEANUP_JSON json_t *j = obj;
    cr_assert_eq (obj->refcount, 2);
  }
  cr_assert_eq (obj->refcount, 1);
  json_decref (obj);
}

Test (cleanup, fclose)
{
  FILE *copy;
  int fd;

  {
    CLEANUP_FCLOSE FILE *fp = fopen ("/dev/null", "r");

    cr_assert_not_null (fp);
    copy = fp;
    fd = fileno (copy);
  }
  cr_assert_eq (fcntl (fd, F_GETFD), -1);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *
try_lock (void *arg)
{
  int r = pthread_mutex_trylock (&lock);

  if (r == 0)
    pthread_mutex_unlock (&lock);
  return (void *)(intptr_t)r;
}

static int
trylock_from_other_thread (void)
{
  pthread_t t;
  void *r;

  pthread_create (&t, NULL, try_lock, NULL);
  pthread_join (t, &r);
  return (int)(intptr_t)r;
}

Test (cleanup, lock_for_scope)
{
  {
    LOCK_FOR_SCOPE (&lock);
    cr_assert_eq (trylock_from_other_thread (), EBUSY);
  }
  cr_assert_eq (trylock_from_other_thread (), 0);
}

/* Cleanups of empty variables must do nothing: fclose (NULL) or
 * json_decref of garbage would crash the test.
 */
Test (cleanup, empty_variables)
{
  {
    CLEANUP_FREE char *p = NULL;
    CLEANUP_CLOSE int fd = -1;
    CLEANUP_JSON json_t *j = NULL;
    CLEANUP_FCLOSE FILE *fp = NULL;

    (void)p;
    (void)fd;
    (void)j;
    (void)fp;
  }
  cr_assert_eq (fcntl (-1, F_GETFD), -1); /* still running */
}
