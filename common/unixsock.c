/* pullback: unix socket addresses and listeners.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "unixsock.h"

int
unix_sockaddr (const char *path, struct sockaddr_un *addr)
{
  size_t n = strlen (path);

  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (n >= sizeof addr->sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  memcpy (addr->sun_path, path, n + 1);
  return 0;
}

int
unix_listening (const char *path)
{
  struct sockaddr_un addr;
  CLEANUP_CLOSE int fd = -1;

  if (unix_sockaddr (path, &addr) == -1)
    return -1;
  /* Non-blocking: a full backlog (EAGAIN) is a live listener too. */
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd == -1)
    return -1;
  if (connect (fd, (struct sockaddr *)&addr, sizeof addr) == 0
      || errno == EAGAIN || errno == EINPROGRESS)
    return 1;
  if (errno == ECONNREFUSED || errno == ENOENT)
    return 0;
  return -1;
}

int
unix_listen (const char *path, mode_t mode)
{
  struct sockaddr_un addr;
  CLEANUP_CLOSE int fd = -1;
  struct stat st;

  if (unix_sockaddr (path, &addr) == -1)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  /* A stale socket file is replaced; a live one is someone's server. */
  switch (unix_listening (path))
    {
    case 1:
      errno = EADDRINUSE;
      return -1;
    case 0:
      /* Only a socket file: bind then fails on anything else. */
      if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
        unlink (path);
      break;
    default:
      return -1;
    }
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) == -1)
    return -1;
  if (chmod (path, mode) == -1 || listen (fd, 64) == -1)
    {
      int e = errno;

      unlink (path);
      errno = e;
      return -1;
    }
  return TAKE_FD (fd);
}
