/* pullback: NBD URIs (common/nbduri.c).
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nbduri.h"

static void
expect_str (char *got, const char *want)
{
  cr_assert_not_null (got);
  cr_expect_str_eq (got, want);
  free (got);
}

Test (nbduri, encode)
{
  expect_str (uri_encode ("", NULL), "");
  expect_str (uri_encode ("AZaz09-._~", NULL), "AZaz09-._~");
  expect_str (uri_encode ("a b#c%d?e&f+g=h", NULL),
              "a%20b%23c%25d%3Fe%26f%2Bg%3Dh");
  expect_str (uri_encode ("/a/b", NULL), "%2Fa%2Fb");
  expect_str (uri_encode ("/a/b", "/"), "/a/b");
  expect_str (uri_encode ("\x01\x7f\xc3\xa9", NULL), "%01%7F%C3%A9");
}

Test (nbduri, unix_socket)
{
  expect_str (nbd_uri_unix ("disk0", "/run/pullback/vms/vm1/nbd.sock"),
              "nbd+unix:///disk0?socket=/run/pullback/vms/vm1/nbd.sock");
  expect_str (nbd_uri_unix ("d 1", "/r #%?&+/vms/a b/nbd.sock"),
              "nbd+unix:///d%201?socket=/r%20%23%25%3F%26%2B/vms/a%20b/"
              "nbd.sock");
}

Test (nbduri, tcp)
{
  expect_str (nbd_uri_tcp ("localhost:10809", "disk0"),
              "nbd://localhost:10809/disk0");
  expect_str (nbd_uri_tcp ("[::1]:10809", "a/b"), "nbd://[::1]:10809/a%2Fb");
}
