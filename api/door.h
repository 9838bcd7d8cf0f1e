/* pullback: the front door: accepts connections and holds them, at no
 * thread's cost, until their first request head is complete.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * One thread and one epoll set for all listeners.  A new connection must
 * send a whole request head within HEAD_DEADLINE_MS of being accepted, or
 * it is closed; when too many wait, the oldest is closed first.  A
 * complete head is looked at without being consumed (MSG_PEEK) and
 * checked (head.h): a bad one is answered here, in JSON, its connection's
 * input drained (bounded) so the client reads the answer; a good one is
 * handed over, bytes unread, to libmicrohttpd.
 */

#ifndef PULLBACK_DOOR_H
#define PULLBACK_DOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "reply.h"

#define HEAD_DEADLINE_MS 10000

struct door;

/* Take the connection FD (accepted on listener INDEX; from SA).  Returns
 * true if it has taken it (and FD is no longer the door's), false with
 * R set to the answer to send instead.
 */
typedef bool (*door_pass_fn) (void *cls, size_t index, int fd,
                              const struct sockaddr *sa, socklen_t salen,
                              struct reply *r);

/* Serve the listening sockets FDS[0..N) (the door owns them once this
 * succeeds; door_stop closes them).  At most MAX_WAITING connections
 * wait for their head.  NULL with a message in ERR on failure.
 */
struct door *door_start (const int *fds, size_t n, size_t max_waiting,
                         door_pass_fn pass, void *cls, char *err,
                         size_t errlen);

/* Accept no more connections; those waiting for their head go on. */
void door_quiesce (struct door *d);

/* Stop the thread, close what waits and the listening sockets. */
void door_stop (struct door *d);

#endif /* PULLBACK_DOOR_H */
