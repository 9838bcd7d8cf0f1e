/* pullback: checks of a request before it is routed.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "utf8.h"
#include "status.h"

static int
hex (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

size_t
check_unescape (void *cls, struct MHD_Connection *c, char *s)
{
  char *w = s;
  const char *r = s;

  while (*r)
    {
      int hi, lo;

      if (r[0] == '%' && (hi = hex (r[1])) >= 0 && (lo = hex (r[2])) >= 0)
        {
          int v = hi * 16 + lo;

          *w++ = v == 0 ? 0x7f : (char)v;
          r += 3;
        }
      else
        *w++ = *r++;
    }
  *w = '\0';
  return (size_t)(w - s);
}

struct url_check
{
  const char *bad_key;   /* a key that is not printable UTF-8 */
  const char *bad_value; /* the key whose value is not */
};

static enum MHD_Result
check_query_text (void *cls, enum MHD_ValueKind kind, const char *key,
                  const char *value)
{
  struct url_check *u = cls;

  if (!utf8_printable (key, strlen (key)))
    {
      u->bad_key = key;
      return MHD_NO;
    }
  if (value && !utf8_printable (value, strlen (value)))
    {
      u->bad_value = key;
      return MHD_NO;
    }
  return MHD_YES;
}

bool
check_url (struct MHD_Connection *c, const char *url, struct reply *r)
{
  struct url_check u = { 0 };

  if (!utf8_printable (url, strlen (url)))
    {
      http_error_field (r, 400, "invalid-url", "path",
                        "the path has a NUL or another control character, "
                        "or is not valid UTF-8 (after %%XX decoding)");
      return false;
    }
  MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, check_query_text, &u);
  if (u.bad_key)
    {
      http_error_field (r, 400, "invalid-url", "query",
                        "a query parameter name has a NUL or another "
                        "control character, or is not valid UTF-8");
      return false;
    }
  if (u.bad_value)
    {
      http_error_field (r, 400, "invalid-url", u.bad_value,
                        "query parameter '%s' has a NUL or another control "
                        "character, or is not valid UTF-8",
                        u.bad_value);
      return false;
    }
  return true;
}

struct header_count
{
  const char *name;
  unsigned n;
  const char *value;
};

static enum MHD_Result
count_header (void *cls, enum MHD_ValueKind kind, const char *key,
              const char *value)
{
  struct header_count *h = cls;

  if (strcasecmp (key, h->name) == 0)
    {
      h->n++;
      h->value = value;
    }
  return MHD_YES;
}

unsigned
check_header_count (struct MHD_Connection *c, const char *name,
                    const char **value)
{
  struct header_count h = { name, 0, NULL };

  MHD_get_connection_values (c, MHD_HEADER_KIND, count_header, &h);
  if (value)
    *value = h.value;
  return h.n;
}

static struct header_count
header (struct MHD_Connection *c, const char *name)
{
  struct header_count h = { name, 0, NULL };

  h.n = check_header_count (c, name, &h.value);
  return h;
}

/* The body's framing must be unambiguous: MHD would take the first of
 * two Content-Lengths, and chunked over a Content-Length (a request
 * smuggling classic).  Malformed lengths MHD refuses itself.
 */
bool
check_framing (struct MHD_Connection *c, struct reply *r)
{
  struct header_count cl = header (c, MHD_HTTP_HEADER_CONTENT_LENGTH);
  struct header_count te = header (c, MHD_HTTP_HEADER_TRANSFER_ENCODING);

  if (cl.n > 1)
    {
      http_error_field (r, 400, "invalid-header", "Content-Length",
                        "Content-Length is given more than once");
      return false;
    }
  if (te.n > 0 && cl.n > 0)
    {
      http_error_field (r, 400, "invalid-header", "Transfer-Encoding",
                        "Transfer-Encoding and Content-Length together");
      return false;
    }
  if (te.n > 1 || (te.n == 1 && strcasecmp (te.value, "chunked") != 0))
    {
      http_error_field (r, 400, "invalid-header", "Transfer-Encoding",
                        "the only transfer coding understood is 'chunked'");
      return false;
    }
  return true;
}

/* 0 if A equals B; compared without leaking where the first difference
 * is (the time depends on A's length only).
 */
static unsigned char
token_diff (const char *a, const char *b)
{
  size_t na = strlen (a), nb = strlen (b);
  unsigned char d = na != nb;

  for (size_t i = 0; i < na; i++)
    d |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb ? nb : 1)];
  return d;
}

bool
check_token (struct MHD_Connection *c, char *const *tokens, size_t n)
{
  struct header_count h;
  const char *t;
  /* Volatile: every token is compared, even after a match. */
  volatile unsigned char match = 0;

  h = header (c, MHD_HTTP_HEADER_AUTHORIZATION);
  if (h.n != 1 || strncasecmp (h.value, "Bearer ", 7) != 0)
    return false;
  for (t = h.value + 7; *t == ' '; t++)
    ;
  for (size_t i = 0; i < n; i++)
    match |= token_diff (t, tokens[i]) == 0;
  return match != 0;
}

/* "application/json", any case, optionally with parameters. */
bool
check_media_type_json (const char *ctype)
{
  static const char json[] = "application/json";
  size_t n = sizeof json - 1;

  while (*ctype == ' ' || *ctype == '\t')
    ctype++;
  if (strncasecmp (ctype, json, n) != 0)
    return false;
  ctype += n;
  while (*ctype == ' ' || *ctype == '\t')
    ctype++;
  return *ctype == '\0' || *ctype == ';';
}

struct query_ctx
{
  const char *const *allowed;
  const char *bad;
  const char *dup;
  const char *novalue;
  const char *seen[8];
  int nseen;
};

static enum MHD_Result
check_query_arg (void *cls, enum MHD_ValueKind kind, const char *key,
                 const char *value)
{
  struct query_ctx *q = cls;
  bool ok = false;

  for (const char *const *a = q->allowed; a && *a; a++)
    if (strcmp (*a, key) == 0)
      ok = true;
  if (!ok)
    {
      q->bad = key;
      return MHD_NO;
    }
  for (int i = 0; i < q->nseen; i++)
    if (strcmp (q->seen[i], key) == 0)
      {
        q->dup = key;
        return MHD_NO;
      }
  if (q->nseen < 8)
    q->seen[q->nseen++] = key;
  if (value == NULL)
    {
      /* "?limit" without "=": not the same as absent. */
      q->novalue = key;
      return MHD_NO;
    }
  return MHD_YES;
}

bool
check_query (struct MHD_Connection *c, const char *const *allowed,
             struct reply *r)
{
  struct query_ctx q = { 0 };

  q.allowed = allowed;
  MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, check_query_arg, &q);
  if (q.bad)
    {
      http_error_field (r, 400, "unknown-parameter", q.bad,
                        "unknown query parameter '%s'", q.bad);
      return false;
    }
  if (q.dup)
    {
      http_error_field (r, 400, "duplicate-parameter", q.dup,
                        "query parameter '%s' is given twice", q.dup);
      return false;
    }
  if (q.novalue)
    {
      http_error_field (r, 400, "invalid-parameter", q.novalue,
                        "query parameter '%s' has no value", q.novalue);
      return false;
    }
  return true;
}
