/* pullback: NBD URIs.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The NBD URI format (NetworkBlockDevice/nbd doc/uri.md) takes the
 * export name from the URI's path and the unix socket from the query
 * parameter socket=, both percent-decoded; so both are percent-encoded
 * here.  Everything but RFC 3986's unreserved characters
 * (A-Z a-z 0-9 - . _ ~) is encoded, and '/' too in the export name; a
 * socket path keeps its '/'.  A run directory with '#', '%', '?', '&',
 * '+' or a space then still gives a URI that nbdinfo and libnbd read back
 * to the same socket.
 */

#ifndef PULLBACK_NBDURI_H
#define PULLBACK_NBDURI_H

/* S percent-encoded, keeping the unreserved characters and those in
 * KEEP.  malloc'd; NULL when out of memory.
 */
char *uri_encode (const char *s, const char *keep);

/* "nbd+unix:///EXPORT?socket=SOCKET".  malloc'd or NULL. */
char *nbd_uri_unix (const char *export, const char *socket);

/* "nbd://HOSTPORT/EXPORT"; HOSTPORT ("host:port", "[v6]:port") is used as
 * it is.  malloc'd or NULL.
 */
char *nbd_uri_tcp (const char *hostport, const char *export);

#endif /* PULLBACK_NBDURI_H */
