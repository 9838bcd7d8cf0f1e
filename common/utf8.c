/* pullback: UTF-8 checks.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include "utf8.h"

size_t
utf8_char_len (const unsigned char *s, size_t len)
{
  unsigned char c;
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;

  if (len == 0)
    return 0;
  c = s[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef)
    {
      n = 3;
      if (c == 0xe0)
        lo = 0xa0; /* overlong */
      else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    }
  else if (c >= 0xf0 && c <= 0xf4)
    {
      n = 4;
      if (c == 0xf0)
        lo = 0x90; /* overlong */
      else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    }
  else
    return 0;
  if (len < n)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

bool
utf8_valid (const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s;

  while (len > 0)
    {
      size_t n = utf8_char_len (p, len);

      if (n == 0)
        return false;
      p += n;
      len -= n;
    }
  return true;
}

bool
utf8_printable (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return false;
  return utf8_valid (s, len);
}

char *
utf8_sanitize (const char *s, char *out, size_t outlen)
{
  static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen (s), o = 0;

  while (len > 0)
    {
      size_t n = utf8_char_len (p, len);
      const char *src = (const char *)p;
      size_t take = n;

      if (n == 0)
        {
          src = replacement;
          take = 3;
          n = 1;
        }
      if (o + take >= outlen)
        break;
      memcpy (out + o, src, take);
      o += take;
      p += n;
      len -= n;
    }
  out[o] = '\0';
  return out;
}
