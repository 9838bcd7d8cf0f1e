/* pullback: checks of a request head before libmicrohttpd parses it.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>
#include <strings.h>

#include "head.h"
#include "status.h"

size_t
head_length (const char *buf, size_t len)
{
  /* Lines end in CRLF, or LF alone (libmicrohttpd takes both). */
  for (size_t i = 0; i + 1 < len; i++)
    if (buf[i] == '\n')
      {
        if (buf[i + 1] == '\n')
          return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
          return i + 3;
      }
  return 0;
}

/* RFC 9110 token characters. */
static bool
tchar (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

static bool
ctl (char c)
{
  return (unsigned char)c < 0x20 || c == 0x7f;
}

/* The next line of [*P, END): its start and length without the line end;
 * false at the empty line or the end.
 */
static bool
next_line (const char **p, const char *end, const char **line, size_t *n)
{
  const char *nl = memchr (*p, '\n', (size_t)(end - *p));

  if (nl == NULL)
    return false;
  *line = *p;
  *n = (size_t)(nl - *p);
  if (*n > 0 && nl[-1] == '\r')
    (*n)--;
  *p = nl + 1;
  return *n > 0;
}

static bool
request_line (const char *l, size_t n, struct reply *r)
{
  const char *sp1 = memchr (l, ' ', n), *sp2, *v;
  size_t vn;

  if (sp1 == NULL || sp1 == l)
    goto bad;
  for (const char *q = l; q < sp1; q++)
    if (!tchar (*q))
      goto bad;
  sp2 = memchr (sp1 + 1, ' ', n - (size_t)(sp1 + 1 - l));
  if (sp2 == NULL || sp2 == sp1 + 1)
    goto bad;
  for (const char *q = sp1 + 1; q < sp2; q++)
    if (ctl (*q))
      {
        http_error_field (r, 400, "invalid-url", "path",
                          "the path has a NUL or another control character");
        return false;
      }
  v = sp2 + 1;
  vn = n - (size_t)(v - l);
  if (vn == 8
      && (memcmp (v, "HTTP/1.1", 8) == 0 || memcmp (v, "HTTP/1.0", 8) == 0))
    return true;
  if (vn == 8 && memcmp (v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9'
      && v[6] == '.' && v[7] >= '0' && v[7] <= '9')
    {
      http_error (r, 505, "unsupported-http-version",
                  "only HTTP/1.1 and HTTP/1.0 are spoken here");
      return false;
    }
bad:
  http_error (r, 400, "invalid-request-line",
              "the request line must be 'METHOD TARGET HTTP/1.1'");
  return false;
}

static bool
bad_header (struct reply *r, const char *field, const char *msg)
{
  if (field)
    http_error_field (r, 400, "invalid-header", field, "%s", msg);
  else
    http_error (r, 400, "invalid-header", "%s", msg);
  return false;
}

static bool
is_header (const char *l, size_t namelen, const char *name)
{
  return namelen == strlen (name) && strncasecmp (l, name, namelen) == 0;
}

bool
head_check (const char *head, size_t len, struct reply *r)
{
  const char *p = head, *end = head + len, *l;
  size_t n, cl = 0, te = 0;
  bool te_chunked = true;

  /* libmicrohttpd skips empty lines before the request line. */
  while (p < end && (*p == '\r' || *p == '\n'))
    p++;
  if (!next_line (&p, end, &l, &n) || !request_line (l, n, r))
    {
      if (r->status == 0)
        http_error (r, 400, "invalid-request-line",
                    "the request line must be 'METHOD TARGET HTTP/1.1'");
      return false;
    }
  while (next_line (&p, end, &l, &n))
    {
      const char *colon = memchr (l, ':', n), *v, *ve;
      size_t namelen;

      if (l[0] == ' ' || l[0] == '\t')
        return bad_header (r, NULL, "folded header lines are not accepted");
      if (colon == NULL || colon == l)
        return bad_header (r, NULL, "a header line has no name and colon");
      namelen = (size_t)(colon - l);
      for (size_t i = 0; i < namelen; i++)
        if (!tchar (l[i]))
          return bad_header (r, NULL,
                             "a header name has a character not allowed in "
                             "it (a space before the colon?)");
      v = colon + 1;
      ve = l + n;
      for (const char *q = v; q < ve; q++)
        if (ctl (*q) && *q != '\t')
          return bad_header (r, NULL,
                             "a header value has a control character");
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      if (is_header (l, namelen, "Content-Length"))
        {
          cl++;
          if (v == ve)
            goto bad_length;
          for (const char *q = v; q < ve; q++)
            if (*q < '0' || *q > '9')
              goto bad_length;
          if (ve - v > 18) /* more than API_MAX_BODY anyway */
            {
              http_error (r, 413, "body-too-large",
                          "Content-Length is far too large");
              return false;
            }
        }
      else if (is_header (l, namelen, "Transfer-Encoding"))
        {
          te++;
          te_chunked
              = (size_t)(ve - v) == 7 && strncasecmp (v, "chunked", 7) == 0;
        }
    }
  if (cl > 1)
    return bad_header (r, "Content-Length",
                       "Content-Length is given more than once");
  if (te > 0 && cl > 0)
    return bad_header (r, "Transfer-Encoding",
                       "Transfer-Encoding and Content-Length together");
  if (te > 1 || !te_chunked)
    return bad_header (r, "Transfer-Encoding",
                       "the only transfer coding understood is 'chunked'");
  return true;

bad_length:
  return bad_header (r, "Content-Length",
                     "Content-Length must be a decimal number of bytes");
}
