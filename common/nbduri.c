/* pullback: NBD URIs.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "nbduri.h"

static bool
unreserved (unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

char *
uri_encode (const char *s, const char *keep)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen (s);
  char *out = malloc (3 * n + 1), *o = out;

  if (out == NULL)
    return NULL;
  for (; *s; s++)
    {
      unsigned char c = (unsigned char)*s;

      if (unreserved (c) || (keep && strchr (keep, c)))
        *o++ = (char)c;
      else
        {
          *o++ = '%';
          *o++ = hex[c >> 4];
          *o++ = hex[c & 15];
        }
    }
  *o = '\0';
  return out;
}

char *
nbd_uri_unix (const char *export, const char *socket)
{
  CLEANUP_FREE char *e = uri_encode (export, NULL);
  CLEANUP_FREE char *s = uri_encode (socket, "/");
  char *uri;

  if (e == NULL || s == NULL
      || asprintf (&uri, "nbd+unix:///%s?socket=%s", e, s) == -1)
    return NULL;
  return uri;
}

char *
nbd_uri_tcp (const char *hostport, const char *export)
{
  CLEANUP_FREE char *e = uri_encode (export, NULL);
  char *uri;

  if (e == NULL || asprintf (&uri, "nbd://%s/%s", hostport, e) == -1)
    return NULL;
  return uri;
}
