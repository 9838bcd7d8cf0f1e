/* pullback: the paths a registration request names.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * POST /v1/vms may name a QMP socket (qmp), a guest-agent socket (qga),
 * a scratch directory (scratch_dir) and an NBD server's unix socket
 * (nbd=unix:PATH).  pullbackd runs as root, so each must be plain, lie
 * under one of allowed-roots, exist with the right type (a socket, a
 * directory: pullbackd creates none of them) and be reached without a
 * symbolic link (common/safepath.h); nothing in pullbackd's state or run
 * directory and none of its API sockets is allowed.  The VMs of the
 * configuration file are the administrator's and are not checked.
 */

#ifndef PULLBACK_REQPATHS_H
#define PULLBACK_REQPATHS_H

#include <jansson.h>

#include "daemon.h"
#include "reply.h"

/* Check the paths of the registration ARGS.  Returns 0, or -1 with R set
 * to an error naming the field: 400 invalid-path, 422 path-not-allowed,
 * path-not-found or path-wrong-type.
 */
int reqpaths_check (const struct daemon_ctx *ctx, const json_t *args,
                    struct reply *r);

/* Open the regular file PATH of registration field FIELD for reading,
 * checked as above at the time of the open (the walk's object, so a
 * symlink put in its place since the registration is refused).  A
 * descriptor, or -1 with R set.
 */
int reqpaths_open (const struct daemon_ctx *ctx, const char *field,
                   const char *path, struct reply *r);

#endif /* PULLBACK_REQPATHS_H */
