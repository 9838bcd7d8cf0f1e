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
unix_listen (const char *path, mode_t mode)
{
  struct sockaddr_un addr;
  CLEANUP_CLOSE int fd = -1;

  if (unix_sockaddr (path, &addr) == -1)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  unlink (path);
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
