/* pullback: validation of user-given names.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <string.h>

#include "names.h"

const char *
name_kind_label (enum name_kind kind)
{
  switch (kind)
    {
    case NAME_VM:
      return "VM id";
    case NAME_CHECKPOINT:
      return "checkpoint name";
    case NAME_DISK:
      return "disk name";
    case NAME_BACKUP:
      return "backup id";
    }
  return "name";
}

static bool
is_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9');
}

static bool
is_name_char (char c)
{
  return is_alnum (c) || c == '.' || c == '_' || c == '-';
}

#define REJECT(...)                                                           \
  do                                                                          \
    {                                                                         \
      if (err && errlen)                                                      \
        snprintf (err, errlen, __VA_ARGS__);                                  \
      return false;                                                           \
    }                                                                         \
  while (0)

bool
name_valid (enum name_kind kind, const char *s, char *err, size_t errlen)
{
  const char *label = name_kind_label (kind);
  size_t len;

  if (s == NULL || *s == '\0')
    REJECT ("%s must not be empty", label);

  len = strnlen (s, NAME_MAX_LEN + 1);
  if (len > NAME_MAX_LEN)
    REJECT ("%s is longer than %d characters", label, NAME_MAX_LEN);

  if (strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    REJECT ("%s must not be '%s'", label, s);

  if (!is_alnum (s[0]))
    REJECT ("%s must start with a letter or digit", label);

  for (size_t i = 1; i < len; i++)
    {
      if (s[i] == '/')
        REJECT ("%s must not contain '/'", label);
      if (!is_name_char (s[i]))
        REJECT ("%s may contain only letters, digits, '.', '_' and '-'",
                label);
    }

  if (kind == NAME_CHECKPOINT
      && strncmp (s, NAME_RESERVED_BITMAP_PREFIX,
                  strlen (NAME_RESERVED_BITMAP_PREFIX))
             == 0)
    REJECT ("%s must not start with '%s' (reserved for temporary bitmaps)",
            label, NAME_RESERVED_BITMAP_PREFIX);

  return true;
}
