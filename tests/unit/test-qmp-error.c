/* pullback: mapping QMP replies to errors.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "qmp.h"

static bool
from (const char *text, struct qmp_error *err)
{
  CLEANUP_JSON json_t *j = json_loads (text, 0, NULL);

  cr_assert_not_null (j, "bad test JSON %s", text);
  return qmp_error_from_reply (j, err);
}

Test (qmp_error, success_replies)
{
  struct qmp_error err;

  qmp_error_clear (&err);
  cr_assert_not (from ("{\"return\": {}}", &err));
  cr_assert_not (from ("{\"return\": [], \"id\": \"x\"}", &err));
  cr_assert_not (from ("{\"return\": 3}", &err));
  cr_assert_eq (err.kind, QMP_ERR_NONE);
}

Test (qmp_error, qemu_error)
{
  struct qmp_error err;

  cr_assert (from ("{\"error\": {\"class\": \"GenericError\", \"desc\": "
                   "\"Bitmap already exists: cp1\"}, \"id\": \"p-1\"}",
                   &err));
  cr_assert_eq (err.kind, QMP_ERR_QEMU);
  cr_assert_str_eq (err.cls, "GenericError");
  cr_assert_str_eq (err.desc, "Bitmap already exists: cp1");

  cr_assert (from ("{\"error\": {\"class\": \"DeviceNotActive\", \"desc\": "
                   "\"Block job 'j' not found\"}}",
                   &err));
  cr_assert_str_eq (err.cls, "DeviceNotActive");
}

Test (qmp_error, long_desc_is_truncated)
{
  struct qmp_error err;
  char text[4096];
  char desc[2000];

  memset (desc, 'd', sizeof desc - 1);
  desc[sizeof desc - 1] = '\0';
  snprintf (text, sizeof text,
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}",
            desc);
  cr_assert (from (text, &err));
  cr_assert_eq (strlen (err.desc), sizeof err.desc - 1);
}

Test (qmp_error, malformed_is_a_protocol_error)
{
  static const char *const bad[] = {
    "{}",
    "{\"error\": \"x\"}",
    "{\"error\": {\"class\": 1, \"desc\": \"d\"}}",
    "{\"error\": {\"class\": \"C\"}}",
    "{\"event\": \"SHUTDOWN\"}",
  };
  struct qmp_error err;

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      cr_assert (from (bad[i], &err), "%s", bad[i]);
      cr_assert_eq (err.kind, QMP_ERR_PROTOCOL, "%s", bad[i]);
      cr_assert_str_eq (err.cls, "ProtocolError");
    }
}

Test (qmp_error, kinds_and_set)
{
  struct qmp_error err;

  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_NONE), "None");
  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_QEMU), "QEMU");
  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_TIMEOUT), "Timeout");
  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_DISCONNECTED),
                    "Disconnected");
  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_PROTOCOL), "ProtocolError");
  cr_assert_str_eq (qmp_error_kind_name (QMP_ERR_SYSTEM), "SystemError");

  qmp_error_set (&err, QMP_ERR_TIMEOUT, "no answer in %d ms", 300);
  cr_assert_eq (err.kind, QMP_ERR_TIMEOUT);
  cr_assert_str_eq (err.cls, "Timeout");
  cr_assert_str_eq (err.desc, "no answer in 300 ms");
  qmp_error_clear (&err);
  cr_assert_eq (err.kind, QMP_ERR_NONE);
  cr_assert_str_eq (err.desc, "");

  /* A caller that does not care passes NULL. */
  qmp_error_set (NULL, QMP_ERR_SYSTEM, "x");
  qmp_error_clear (NULL);
  {
    CLEANUP_JSON json_t *empty = json_object ();
    cr_assert (qmp_error_from_reply (empty, NULL));
  }
}
