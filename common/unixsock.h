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

/* Listen on PATH (a file there is replaced) with the socket file's mode
 * MODE.  Returns the descriptor (close-on-exec), or -1 with errno set
 * and no socket file left.
 */
int unix_listen (const char *path, mode_t mode);

#endif /* PULLBACK_UNIXSOCK_H */
