/* pullback: QMP error reporting.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qmp.h"

const char *
qmp_error_kind_name (enum qmp_error_kind kind)
{
  switch (kind)
    {
    case QMP_ERR_NONE:
      return "None";
    case QMP_ERR_QEMU:
      return "QEMU";
    case QMP_ERR_TIMEOUT:
      return "Timeout";
    case QMP_ERR_DISCONNECTED:
      return "Disconnected";
    case QMP_ERR_PROTOCOL:
      return "ProtocolError";
    case QMP_ERR_SYSTEM:
      return "SystemError";
    }
  return "Unknown";
}

void
qmp_error_clear (struct qmp_error *err)
{
  if (err == NULL)
    return;
  err->kind = QMP_ERR_NONE;
  err->errnum = 0;
  err->cls[0] = '\0';
  err->desc[0] = '\0';
}

void
qmp_error_set (struct qmp_error *err, enum qmp_error_kind kind,
               const char *fmt, ...)
{
  va_list ap;

  if (err == NULL)
    return;
  err->kind = kind;
  err->errnum = 0;
  snprintf (err->cls, sizeof err->cls, "%s", qmp_error_kind_name (kind));
  va_start (ap, fmt);
  vsnprintf (err->desc, sizeof err->desc, fmt, ap);
  va_end (ap);
}

bool
qmp_error_from_reply (const json_t *reply, struct qmp_error *err)
{
  const json_t *e, *cls, *desc;

  if (json_object_get (reply, "return"))
    return false;

  e = json_object_get (reply, "error");
  cls = json_object_get (e, "class");
  desc = json_object_get (e, "desc");
  if (!json_is_object (e) || !json_is_string (cls) || !json_is_string (desc))
    {
      qmp_error_set (err, QMP_ERR_PROTOCOL,
                     "reply has neither \"return\" nor a valid \"error\"");
      return true;
    }

  if (err)
    {
      err->kind = QMP_ERR_QEMU;
      err->errnum = 0;
      snprintf (err->cls, sizeof err->cls, "%s", json_string_value (cls));
      snprintf (err->desc, sizeof err->desc, "%s", json_string_value (desc));
    }
  return true;
}

bool
qmp_error_is_not_found (const struct qmp_error *err)
{
  /* QEMU 7.2 says "not found" in several ways and classes. */
  return err->kind == QMP_ERR_QEMU
         && (strstr (err->desc, "not found")
             || strstr (err->desc, "Cannot find")
             || strstr (err->desc, "Failed to find")
             || strcmp (err->cls, "DeviceNotActive") == 0
             || strcmp (err->cls, "DeviceNotFound") == 0);
}
