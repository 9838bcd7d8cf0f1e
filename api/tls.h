/* pullback: HTTPS for the REST API: what the door knows of TLS (the
 * first record a client sends), and the client certificate check.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * libmicrohttpd does the TLS itself (GnuTLS).  It asks for a client
 * certificate when it has CAs for them (MHD_OPTION_HTTPS_MEM_TRUST) but
 * does not refuse a connection without one, nor check the one it gets:
 * that is tls_client_check's job, before a request is taken.
 */

#ifndef PULLBACK_TLS_H
#define PULLBACK_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

/* TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* The largest TLS record (RFC 8446 5.1) plus its header. */
#define TLS_RECORD_MAX (16384 + 5)

enum tls_hello
{
  TLS_HELLO_MORE, /* not enough yet to say */
  TLS_HELLO_OK,   /* a whole record holding the start of a ClientHello */
  TLS_HELLO_HTTP, /* plain HTTP (an upper case letter first) */
  TLS_HELLO_BAD,  /* anything else */
};

/* What the first N bytes a client sent on a TLS address are. */
enum tls_hello tls_hello_check (const unsigned char *buf, size_t n);

enum tls_client
{
  TLS_CLIENT_OK,   /* a certificate that a tls-client-ca signed */
  TLS_CLIENT_NONE, /* none sent */
  TLS_CLIENT_BAD,  /* one that does not verify (WHY says why) */
};

/* Check the client certificate of connection C against the CAs given to
 * libmicrohttpd: chain, dates, and purpose (TLS client, when the
 * certificate names purposes).
 */
enum tls_client tls_client_check (struct MHD_Connection *c, char *why,
                                  size_t whylen);

#endif /* PULLBACK_TLS_H */
