/* nbdkit-pullback-plugin: the upstream NBD export (QEMU, qemu-storage-
 * daemon or qemu-nbd) and how to reach it.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_PLUGIN_UPSTREAM_H
#define PULLBACK_PLUGIN_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <libnbd.h>

/* libnbd 1.14 has no names for QEMU's contexts. */
#ifndef LIBNBD_CONTEXT_QEMU_DIRTY_BITMAP
#define LIBNBD_CONTEXT_QEMU_DIRTY_BITMAP "qemu:dirty-bitmap:"
#endif
#ifndef LIBNBD_STATE_DIRTY
#define LIBNBD_STATE_DIRTY 1
#endif

/* Handle a key=value of the command line if it is about the upstream:
 * 1 if it was, 0 if the key is not ours, -1 on error (reported).
 */
int upstream_config (const char *key, const char *value);
int upstream_config_complete (void);
void upstream_unload (void);

/* The upstream for messages: its URI or socket path. */
const char *upstream_name (void);

/* Connect in option mode (negotiation not finished), so the caller can
 * ask about the export and its contexts before nbd_opt_go.  Errors are
 * reported; NULL then.
 */
struct nbd_handle *upstream_connect (void);

/* The export this handle asks for (for messages; owned by the caller). */
char *upstream_export_name (struct nbd_handle *nbd);

/* Report a failed option request on NBD: a missing export gets a
 * message saying so, anything else libnbd's error.
 */
void upstream_option_error (struct nbd_handle *nbd, const char *what);

/* The qemu:dirty-bitmap: contexts the export offers, as a NULL-
 * terminated array (free with upstream_free_names); NULL on error
 * (reported).
 */
char **upstream_list_bitmaps (struct nbd_handle *nbd, size_t *n);
void upstream_free_names (char **names);

/* Finish negotiation asking for CONTEXT and check that the export
 * offers it.  Errors are reported.
 */
int upstream_go (struct nbd_handle *nbd, const char *context);

#endif /* PULLBACK_PLUGIN_UPSTREAM_H */
