/* pullback: QEMU's NBD server for a VM.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_NBD_H
#define PULLBACK_NBD_H

#include <jansson.h>

#include "reply.h"
#include "vm.h"

/* <run-dir>/vms/<vm>/nbd.sock */
int nbd_socket_path (const struct vm *vm, char *buf, size_t len);
/* Start the server unless we already did or adopt one.  Returns 0, or -1
 * with R set.
 */
int nbd_ensure_server (struct vm *vm, struct reply *r);
/* Answer R for an nbd-server-start that failed with ERR (unix or TCP):
 * 409 nbd-server-busy if QEMU runs a server we did not start.  -1.
 */
int nbd_start_failed (const struct vm *vm, const struct qmp_error *err,
                      struct reply *r);
/* After (re)connecting: if a server answers on our socket, it is one we
 * started before; take it back, and stop it if it is idle.  A socket file
 * nobody answers on is removed.
 */
void nbd_recover (struct vm *vm);
/* Stop the server if we started it and it has no exports left. */
void nbd_stop_if_idle (struct vm *vm);
/* The URI of EXPORT on the VM's server: malloc'd, NULL if out of
 * memory.
 */
char *nbd_uri (const struct vm *vm, const char *export);

#endif /* PULLBACK_NBD_H */
