/* pullback: HTTPS for the REST API.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "api.h"
#include "tls.h"

enum tls_hello
tls_hello_check (const unsigned char *buf, size_t n)
{
  size_t len;

  if (n == 0)
    return TLS_HELLO_MORE;
  if (buf[0] >= 'A' && buf[0] <= 'Z')
    return TLS_HELLO_HTTP;
  /* A handshake record (22), TLS major version 3. */
  if (buf[0] != 22 || (n >= 2 && buf[1] != 3))
    return TLS_HELLO_BAD;
  if (n < 5)
    return TLS_HELLO_MORE;
  len = (size_t)buf[3] << 8 | buf[4];
  if (len == 0 || len > TLS_RECORD_MAX - 5)
    return TLS_HELLO_BAD;
  /* Handshake message type 1: ClientHello. */
  if (n >= 6 && buf[5] != 1)
    return TLS_HELLO_BAD;
  return n >= 5 + len ? TLS_HELLO_OK : TLS_HELLO_MORE;
}

int
api_tls_check (const struct api_tls *tls, char *err, size_t errlen)
{
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_datum_t cert, key, ca;
  int r;

  r = gnutls_priority_init (&prio, TLS_PRIORITIES, NULL);
  if (r < 0)
    {
      snprintf (err, errlen, "TLS priorities %s: %s", TLS_PRIORITIES,
                gnutls_strerror (r));
      return -1;
    }
  gnutls_priority_deinit (prio);
  r = gnutls_certificate_allocate_credentials (&cred);
  if (r < 0)
    {
      snprintf (err, errlen, "TLS: %s", gnutls_strerror (r));
      return -1;
    }
  cert = (gnutls_datum_t){ (unsigned char *)tls->cert,
                           (unsigned)strlen (tls->cert) };
  key = (gnutls_datum_t){ (unsigned char *)tls->key,
                          (unsigned)strlen (tls->key) };
  /* This also checks that the key is the certificate's. */
  r = gnutls_certificate_set_x509_key_mem2 (cred, &cert, &key,
                                            GNUTLS_X509_FMT_PEM, NULL, 0);
  if (r < 0)
    {
      snprintf (err, errlen, "tls-cert %s, tls-key %s: %s", tls->cert_path,
                tls->key_path, gnutls_strerror (r));
      gnutls_certificate_free_credentials (cred);
      return -1;
    }
  if (tls->client_ca)
    {
      ca = (gnutls_datum_t){ (unsigned char *)tls->client_ca,
                             (unsigned)strlen (tls->client_ca) };
      r = gnutls_certificate_set_x509_trust_mem (cred, &ca,
                                                 GNUTLS_X509_FMT_PEM);
      if (r <= 0)
        {
          snprintf (err, errlen, "tls-client-ca %s: %s", tls->client_ca_path,
                    r == 0 ? "no certificate in it" : gnutls_strerror (r));
          gnutls_certificate_free_credentials (cred);
          return -1;
        }
    }
  gnutls_certificate_free_credentials (cred);
  return 0;
}

enum tls_client
tls_client_check (struct MHD_Connection *c, char *why, size_t whylen)
{
  const union MHD_ConnectionInfo *ci;
  gnutls_session_t session;
  gnutls_typed_vdata_st purpose = {
    .type = GNUTLS_DT_KEY_PURPOSE_OID,
    .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
  };
  unsigned int status = 0, n = 0;
  gnutls_datum_t out;
  int r;

  snprintf (why, whylen, "no client certificate");
  ci = MHD_get_connection_info (c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (ci == NULL || ci->tls_session == NULL)
    return TLS_CLIENT_NONE;
  session = ci->tls_session;
  if (gnutls_certificate_type_get (session) != GNUTLS_CRT_X509
      || gnutls_certificate_get_peers (session, &n) == NULL || n == 0)
    return TLS_CLIENT_NONE;
  r = gnutls_certificate_verify_peers (session, &purpose, 1, &status);
  if (r < 0)
    {
      snprintf (why, whylen, "%s", gnutls_strerror (r));
      return TLS_CLIENT_BAD;
    }
  if (status != 0)
    {
      if (gnutls_certificate_verification_status_print (
              status, GNUTLS_CRT_X509, &out, 0)
          == 0)
        {
          snprintf (why, whylen, "%s", (const char *)out.data);
          gnutls_free (out.data);
        }
      else
        snprintf (why, whylen, "verification status %#x", status);
      return TLS_CLIENT_BAD;
    }
  return TLS_CLIENT_OK;
}
