/* pullback: error replies are always the documented JSON object, and
 * their kinds become the HTTP statuses users have always seen.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "reply.h"
#include "status.h"
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

  reply_error (&r, PB_ERR_MALFORMED, "invalid-name", "name '%s' is bad",
               "a\xff\xc3(z");
  cr_expect_eq (r.kind, PB_ERR_MALFORMED);
  cr_expect_eq (http_status (&r), 400);
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
  reply_error (&r, PB_ERR_QEMU_FAILED, "qemu-error", "%s", big);
  expect_error_object (&r, "qemu-error");
  reply_clear (&r);
}

Test (reply, invalid_utf8_in_field)
{
  struct reply r = { 0 };
  json_t *e;

  reply_error_field (&r, PB_ERR_MALFORMED, "unknown-parameter", "k\xff",
                     "unknown '%s'", "k\xff");
  expect_error_object (&r, "unknown-parameter");
  e = json_object_get (r.body, "error");
  cr_expect_str_eq (json_string_value (json_object_get (e, "field")),
                    "k\xef\xbf\xbd");
  reply_clear (&r);
}

/* The one table: every kind and the status it has always had. */
Test (reply, kinds_to_statuses)
{
  static const struct
  {
    enum pb_errkind kind;
    int status;
  } want[] = {
    { PB_ERR_MALFORMED, 400 },   { PB_ERR_NOT_FOUND, 404 },
    { PB_ERR_CONFLICT, 409 },    { PB_ERR_INVALID, 422 },
    { PB_ERR_INTERNAL, 500 },    { PB_ERR_QEMU_FAILED, 502 },
    { PB_ERR_UNAVAILABLE, 503 }, { PB_ERR_QEMU_TIMEOUT, 504 },
    { PB_ERR_NO_SPACE, 507 },
  };
  struct reply r = { 0 };

  cr_expect_eq (sizeof want / sizeof want[0], PB_ERRKIND_COUNT - 1);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    {
      reply_error (&r, want[i].kind, "x", "y");
      cr_expect_eq (http_status (&r), want[i].status, "kind %d",
                    (int)want[i].kind);
      reply_clear (&r);
    }
  cr_expect_eq (http_status (&r), 0, "not answered");
  reply_ok (&r, NULL);
  cr_expect_eq (http_status (&r), 204);
  reply_ok (&r, json_object ());
  cr_expect_eq (http_status (&r), 200);
  reply_created (&r, json_object ());
  cr_expect_eq (http_status (&r), 201);
  reply_clear (&r);
  http_error (&r, 413, "too-large", "z");
  cr_expect_eq (http_status (&r), 413);
  reply_clear (&r);
  cr_expect_eq (qemu_errkind (QMP_ERR_TIMEOUT), PB_ERR_QEMU_TIMEOUT);
  cr_expect_eq (qemu_errkind (QMP_ERR_DISCONNECTED), PB_ERR_QEMU_FAILED);
  cr_expect_eq (qemu_errkind (QMP_ERR_QEMU), PB_ERR_QEMU_FAILED);
}
