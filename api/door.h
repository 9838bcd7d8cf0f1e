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
 *
 * On a TLS listener the head is encrypted.  The door waits for the first
 * TLS record (the ClientHello, tls.h) instead, and hands the connection
 * over as soon as it is complete, but keeps a duplicate of its socket
 * until the connection's first request head has been read by
 * libmicrohttpd (door_release): until then it is still waiting, under the
 * same deadline (from accept) and in the same count, and the door ends it
 * (shutdown(2) on the duplicate, which libmicrohttpd sees as the client
 * gone) when its time is up or when it is the oldest and room is needed.
 * Plain HTTP sent to a TLS listener is answered 400 https-required, in
 * the clear; anything else that is not TLS is closed.
 */

#ifndef PULLBACK_DOOR_H
#define PULLBACK_DOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "reply.h"

#define HEAD_DEADLINE_MS 10000

struct door;

enum door_pass
{
  DOOR_TAKEN,   /* FD is no longer the door's */
  DOOR_REFUSED, /* not taken: the door answers R (closes, on TLS) */
  DOOR_LOST,    /* not taken, and closed */
};

/* Take the connection FD (accepted on listener INDEX; from SA).  PENDING:
 * how many other connections of that listener were handed over and have
 * not sent their first request yet (TLS listeners; else 0).
 */
typedef enum door_pass (*door_pass_fn) (void *cls, size_t index, int fd,
                                        const struct sockaddr *sa,
                                        socklen_t salen, size_t pending,
                                        struct reply *r);

/* Serve the listening sockets FDS[0..N) (the door owns them once this
 * succeeds; door_stop closes them); TLS[i]: listener i speaks TLS.  At
 * most MAX_WAITING file descriptors are held for connections that wait
 * for their head (a TLS one handed over counts twice: its own and the
 * door's duplicate).  NULL with a message in ERR on failure.
 */
struct door *door_start (const int *fds, const bool *tls, size_t n,
                         size_t max_waiting, door_pass_fn pass, void *cls,
                         char *err, size_t errlen);

/* The TLS connection whose socket is FD (as handed over) and has device
 * DEV and inode INO has sent its first request head, or is being closed:
 * the door lets go of it.  Any thread.
 */
void door_release (struct door *d, int fd, dev_t dev, ino_t ino);

/* Accept no more connections; those waiting for their head go on. */
void door_quiesce (struct door *d);

/* Stop the thread, close what waits and the listening sockets. */
void door_stop (struct door *d);

#endif /* PULLBACK_DOOR_H */
