/* pullback: splitting a byte stream into QMP/QGA messages.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

#define READ_CHUNK 65536

void
framer_init (struct framer *f, size_t max)
{
  memset (f, 0, sizeof *f);
  f->max = max;
}

void
framer_free (struct framer *f)
{
  free (f->buf);
  f->buf = NULL;
  f->len = f->cap = f->start = f->scanned = 0;
}

void
framer_reset (struct framer *f)
{
  f->len = f->start = f->scanned = 0;
  f->want_delim = false;
}

/* Move unconsumed bytes to the front so the buffer never grows past
 * about MAX + READ_CHUNK.
 */
static void
compact (struct framer *f)
{
  if (f->start == 0)
    return;
  memmove (f->buf, f->buf + f->start, f->len - f->start);
  f->len -= f->start;
  f->start = 0;
}

char *
framer_space (struct framer *f, size_t *avail)
{
  compact (f);
  if (f->cap - f->len < READ_CHUNK)
    {
      size_t newcap = f->len + READ_CHUNK;
      char *p = realloc (f->buf, newcap);

      if (p == NULL)
        return NULL;
      f->buf = p;
      f->cap = newcap;
    }
  *avail = f->cap - f->len;
  return f->buf + f->len;
}

void
framer_commit (struct framer *f, size_t n)
{
  f->len += n;
}

int
framer_feed (struct framer *f, const char *data, size_t len)
{
  while (len > 0)
    {
      size_t avail, n;
      char *p = framer_space (f, &avail);

      if (p == NULL)
        return -1;
      n = len < avail ? len : avail;
      memcpy (p, data, n);
      framer_commit (f, n);
      data += n;
      len -= n;
    }
  return 0;
}

void
framer_expect_delimiter (struct framer *f)
{
  f->want_delim = true;
}

static bool
is_blank (const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

int
framer_next (struct framer *f, char **msg, size_t *len)
{
  for (;;)
    {
      char *begin = f->buf + f->start;
      size_t avail = f->len - f->start;
      char *nl;
      size_t n;

      if (f->want_delim)
        {
          char *d = avail ? memchr (begin, 0xff, avail) : NULL;

          if (d == NULL)
            {
              /* Everything held so far is stale. */
              f->start = f->len;
              f->scanned = 0;
              return 0;
            }
          f->start += (size_t)(d - begin) + 1;
          f->scanned = 0;
          f->want_delim = false;
          continue;
        }

      nl = avail > f->scanned
               ? memchr (begin + f->scanned, '\n', avail - f->scanned)
               : NULL;
      if (nl == NULL)
        {
          f->scanned = avail;
          if (avail > f->max)
            {
              errno = EMSGSIZE;
              return -1;
            }
          return 0;
        }

      n = (size_t)(nl - begin);
      f->start += n + 1;
      f->scanned = 0;
      if (n > f->max)
        {
          errno = EMSGSIZE;
          return -1;
        }
      /* 0xFF never starts a JSON text.  The agent sends one before its
       * reply to guest-sync-delimited; if an earlier (stale) one was
       * taken as the delimiter, this one is still here.
       */
      while (n > 0 && (unsigned char)*begin == 0xff)
        {
          begin++;
          n--;
        }
      if (is_blank (begin, n))
        continue;
      if (n > 0 && begin[n - 1] == '\r')
        n--;
      begin[n] = '\0';
      *msg = begin;
      *len = n;
      return 1;
    }
}
