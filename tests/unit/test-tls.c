/* pullback: what the door takes for TLS, and the HTTPS material check.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "api.h"
#include "tls.h"

/* A record header: handshake, TLS 1.0 record version, LEN bytes. */
static size_t
record (unsigned char *buf, size_t len)
{
  buf[0] = 22;
  buf[1] = 3;
  buf[2] = 1;
  buf[3] = (unsigned char)(len >> 8);
  buf[4] = (unsigned char)len;
  buf[5] = 1; /* ClientHello */
  memset (buf + 6, 0xab, len - 1);
  return 5 + len;
}

Test (tls, hello)
{
  static unsigned char buf[TLS_RECORD_MAX + 16];
  size_t n = record (buf, 512);

  cr_assert_eq (tls_hello_check (buf, 0), TLS_HELLO_MORE);
  for (size_t i = 1; i < n; i++)
    cr_assert_eq (tls_hello_check (buf, i), TLS_HELLO_MORE, "at %zu", i);
  cr_assert_eq (tls_hello_check (buf, n), TLS_HELLO_OK);
  cr_assert_eq (tls_hello_check (buf, n + 7), TLS_HELLO_OK);
  /* The largest record there may be; one byte more is not TLS. */
  n = record (buf, TLS_RECORD_MAX - 5);
  cr_assert_eq (tls_hello_check (buf, n - 1), TLS_HELLO_MORE);
  cr_assert_eq (tls_hello_check (buf, n), TLS_HELLO_OK);
  record (buf, TLS_RECORD_MAX - 4);
  cr_assert_eq (tls_hello_check (buf, 5), TLS_HELLO_BAD);
  record (buf, 0 + 1);
  buf[4] = 0;
  cr_assert_eq (tls_hello_check (buf, 5), TLS_HELLO_BAD);
  /* Another handshake message, another record type or version. */
  record (buf, 100);
  buf[5] = 2;
  cr_assert_eq (tls_hello_check (buf, 6), TLS_HELLO_BAD);
  record (buf, 100);
  buf[0] = 23;
  cr_assert_eq (tls_hello_check (buf, 1), TLS_HELLO_BAD);
  record (buf, 100);
  buf[1] = 2;
  cr_assert_eq (tls_hello_check (buf, 2), TLS_HELLO_BAD);
  /* Plain HTTP, whatever the method; SSL 2 and binary junk. */
  cr_assert_eq (tls_hello_check ((const unsigned char *)"G", 1),
                TLS_HELLO_HTTP);
  cr_assert_eq (tls_hello_check ((const unsigned char *)"PATCH /", 7),
                TLS_HELLO_HTTP);
  cr_assert_eq (tls_hello_check ((const unsigned char *)"\x80\x2e\x01", 3),
                TLS_HELLO_BAD);
  cr_assert_eq (tls_hello_check ((const unsigned char *)"get /", 5),
                TLS_HELLO_BAD);
}

Test (tls, check_names_the_files_never_the_key)
{
  struct api_tls t = {
    .cert = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
            "-----END CERTIFICATE-----\n",
    .key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n"
           "-----END PRIVATE KEY-----\n",
    .cert_path = "/etc/pullback/cert.pem",
    .key_path = "/etc/pullback/key.pem",
  };
  char err[512];

  cr_assert_eq (api_tls_check (&t, err, sizeof err), -1);
  cr_assert (strncmp (err,
                      "tls-cert /etc/pullback/cert.pem, tls-key "
                      "/etc/pullback/key.pem: ",
                      62)
                 == 0,
             "%s", err);
  cr_assert (strstr (err, "c2VjcmV0") == NULL, "%s", err);
}
