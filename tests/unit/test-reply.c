/* pullback: error replies are always the documented JSON object.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "reply.h"
#include "utf8.h"

static void
expect_error_object (struct reply *r, const char *code)
{
  json_t *e = json_object_get (r->body, "error");
  const char *msg = json_string_value (json_object_get (e, "message"));

  cr_assert (json_is_object (e), "the body has an error object");
  cr_expect_str_eq (json_string_value (json_object_get (e, "code")), code);
  cr_assert_not_null (msg);
  cr_expect (strlen (msg) > 0);
  cr_expect (utf8_valid (msg, strlen (msg)));
}

Test (reply, invalid_utf8_in_message)
{
  struct reply r = { 0 };

  reply_error (&r, 400, "invalid-name", "name '%s' is bad", "a\xff\xc3(z");
  cr_expect_eq (r.status, 400);
  expect_error_object (&r, "invalid-name");
  reply_clear (&r);
}

Test (reply, message_cut_inside_a_character)
{
  struct reply r = { 0 };
  char big[2000];

  /* 1023 bytes fit: 'x' then 3-byte characters, the last one cut. */
  memset (big, 'x', 1);
  for (size_t i = 1; i + 3 < sizeof big; i += 3)
    memcpy (big + i, "\xe2\x82\xac", 3);
  big[sizeof big - 1] = '\0';
  reply_error (&r, 502, "qemu-error", "%s", big);
  expect_error_object (&r, "qemu-error");
  reply_clear (&r);
}

Test (reply, invalid_utf8_in_field)
{
  struct reply r = { 0 };
  json_t *e;

  reply_error_field (&r, 400, "unknown-parameter", "k\xff", "unknown '%s'",
                     "k\xff");
  expect_error_object (&r, "unknown-parameter");
  e = json_object_get (r.body, "error");
  cr_expect_str_eq (json_string_value (json_object_get (e, "field")),
                    "k\xef\xbf\xbd");
  reply_clear (&r);
}
