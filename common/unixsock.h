/* pullback: unix socket addresses and listeners.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_UNIXSOCK_H
#define PULLBACK_UNIXSOCK_H

#include <sys/stat.h>
#include <sys/un.h>

/* Fill *ADDR with PATH.  Returns 0, or -1 with errno ENAMETOOLONG when
 * PATH does not fit.
 */
int unix_sockaddr (const char *path, struct sockaddr_un *addr);

/* Listen on PATH with the socket file's mode MODE.  A stale socket file
 * there is replaced; a live one (a server listens on it) or any other
 * file is left alone: -1 with EADDRINUSE.  Returns the descriptor
 * (close-on-exec), or -1 with errno set and no socket file left.
 */
int unix_listen (const char *path, mode_t mode);

/* Does something listen on the unix socket PATH?  1 yes, 0 no (nothing
 * there, or a socket file nobody listens on), -1 cannot tell (errno).
 */
int unix_listening (const char *path);

#endif /* PULLBACK_UNIXSOCK_H */
