/* pullback: checks of a request head before libmicrohttpd parses it.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "head.h"

#define LEN(s) (sizeof (s) - 1)

Test (head, length)
{
  cr_expect_eq (head_length ("GET / HTTP/1.1\r\n", 16), 0);
  cr_expect_eq (head_length ("GET / HTTP/1.1\r\n\r\n", 18), 18);
  cr_expect_eq (head_length ("GET / HTTP/1.1\r\n\r\nbody", 22), 18);
  cr_expect_eq (head_length ("GET / HTTP/1.1\n\n", 16), 16);
  cr_expect_eq (head_length ("GET / HTTP/1.1\r\nA: b\r\n\r", 23), 0);
}

/* STATUS and CODE for HEAD, or 0 if it is taken. */
static void
check (const char *head, int status, const char *code, const char *field)
{
  struct reply r = { 0 };
  size_t n = head_length (head, strlen (head));
  bool ok;

  cr_assert (n > 0, "a whole head: %s", head);
  ok = head_check (head, n, &r);
  if (status == 0)
    {
      cr_expect (ok, "taken: %s", head);
      return;
    }
  cr_assert_not (ok, "refused: %s", head);
  cr_expect_eq (r.status, status, "%s: %d", head, r.status);
  json_t *e = json_object_get (r.body, "error");
  cr_expect_str_eq (json_string_value (json_object_get (e, "code")), code);
  if (field)
    cr_expect_str_eq (json_string_value (json_object_get (e, "field")), field);
  reply_clear (&r);
}

Test (head, good)
{
  check ("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 0, NULL, NULL);
  check ("GET /v1/health HTTP/1.0\r\n\r\n", 0, NULL, NULL);
  check ("\r\nGET / HTTP/1.1\r\n\r\n", 0, NULL, NULL);
  check ("POST /v1/vms HTTP/1.1\r\nContent-Length:  12 \r\n\r\n", 0, NULL,
         NULL);
  check ("POST /v1/vms HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", 0,
         NULL, NULL);
  check ("GET /x HTTP/1.1\nA:b\n\n", 0, NULL, NULL);
  check ("GET /v1/vms/\xff HTTP/1.1\r\n\r\n", 0, NULL, NULL); /* on_request */
}

Test (head, request_line)
{
  check ("GARBAGE\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("GET /\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("GET  / HTTP/1.1\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("GET / HTTP/1.1 x\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("G(T / HTTP/1.1\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("GET / HTTP/2.0\r\n\r\n", 505, "unsupported-http-version", NULL);
  check ("GET / FTP/1.1\r\n\r\n", 400, "invalid-request-line", NULL);
  check ("GET /a\x01z HTTP/1.1\r\n\r\n", 400, "invalid-url", "path");
}

Test (head, headers)
{
  check ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "invalid-header", NULL);
  check ("GET / HTTP/1.1\r\n: v\r\n\r\n", 400, "invalid-header", NULL);
  check ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "invalid-header", NULL);
  check ("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "invalid-header", NULL);
  check ("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "invalid-header", NULL);
}

Test (head, framing)
{
  const char *p = "POST /v1/vms HTTP/1.1\r\n";
  char h[256];

#define F(hdrs, st, code, field)                                              \
  do                                                                          \
    {                                                                         \
      snprintf (h, sizeof h, "%s%s\r\n", p, hdrs);                            \
      check (h, st, code, field);                                             \
    }                                                                         \
  while (0)
  F ("Content-Length: 2\r\nContent-Length: 2\r\n", 400, "invalid-header",
     "Content-Length");
  F ("Content-Length: 2\r\nContent-Length: 3\r\n", 400, "invalid-header",
     "Content-Length");
  F ("Content-Length: -5\r\n", 400, "invalid-header", "Content-Length");
  F ("Content-Length: abc\r\n", 400, "invalid-header", "Content-Length");
  F ("Content-Length: 1 2\r\n", 400, "invalid-header", "Content-Length");
  F ("Content-Length: +2\r\n", 400, "invalid-header", "Content-Length");
  F ("Content-Length:\r\n", 400, "invalid-header", "Content-Length");
  F ("Content-Length: 99999999999999999999999\r\n", 413, "body-too-large",
     NULL);
  F ("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", 400,
     "invalid-header", "Transfer-Encoding");
  F ("Transfer-Encoding: gzip\r\n", 400, "invalid-header",
     "Transfer-Encoding");
  F ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400,
     "invalid-header", "Transfer-Encoding");
#undef F
}
