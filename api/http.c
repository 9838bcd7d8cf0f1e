/* pullback: the HTTP server (libmicrohttpd).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * One MHD daemon per listen address, a thread per connection: a request
 * may wait on a VM's owner, and must not hold up requests for other VMs.
 * Bodies are collected up to API_MAX_BODY (larger: 413, at once when
 * Content-Length says so), then the route's handler runs and its reply
 * becomes the response.  TCP listeners require a bearer token.
 */

#include <config.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "cleanup.h"
#include "log.h"
#include "names.h"
#include "unixsock.h"
#include "validate.h"

#define MAX_LISTEN 16
/* Connections at once per listener, and per client address on TCP: each
 * is a thread.
 */
#define MAX_CONNECTIONS 256
#define MAX_CONNECTIONS_PER_IP 32

struct api_server;

struct listener
{
  struct api_server *s;
  bool tcp; /* requests must carry the token */
};

struct api_server
{
  struct registry *reg;
  char *token;
  struct MHD_Daemon *mhd[MAX_LISTEN];
  struct listener listeners[MAX_LISTEN];
  char *unix_paths[MAX_LISTEN];
  size_t n;
};

struct conn_state
{
  char *body;
  size_t len;
  bool too_large;
  bool answered; /* refused before the body: ignore the rest */
};

/* A streamed answer handed to MHD: see struct reply. */
struct stream_ctx
{
  ssize_t (*read) (void *stream, char *buf, size_t max);
  void (*free) (void *stream);
  void *stream;
};

static ssize_t
stream_cb (void *cls, uint64_t pos, char *buf, size_t max)
{
  struct stream_ctx *sc = cls;
  ssize_t n = sc->read (sc->stream, buf, max);

  if (n == 0)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (n < 0)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  return n;
}

static void
stream_free_cb (void *cls)
{
  struct stream_ctx *sc = cls;

  sc->free (sc->stream);
  free (sc);
}

static enum MHD_Result
send_reply (struct MHD_Connection *c, struct reply *r)
{
  struct MHD_Response *resp;
  enum MHD_Result ret;
  char *text = NULL;

  if (r->stream)
    {
      struct stream_ctx *sc = malloc (sizeof *sc);

      if (sc == NULL)
        return MHD_NO;
      *sc = (struct stream_ctx){ r->stream_read, r->stream_free, r->stream };
      resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024,
                                                stream_cb, sc, stream_free_cb);
      if (resp == NULL)
        {
          free (sc);
          return MHD_NO;
        }
      /* MHD owns the stream now. */
      r->stream = NULL;
      MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                               "application/json");
      ret = MHD_queue_response (c, (unsigned)r->status, resp);
      MHD_destroy_response (resp);
      return ret;
    }
  if (r->text)
    {
      resp = MHD_create_response_from_buffer (strlen (r->text), r->text,
                                              MHD_RESPMEM_MUST_COPY);
      if (resp == NULL)
        return MHD_NO;
      MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                               "text/plain; version=0.0.4");
      ret = MHD_queue_response (c, (unsigned)r->status, resp);
      MHD_destroy_response (resp);
      return ret;
    }
  if (r->body)
    {
      text = json_dumps (r->body, JSON_COMPACT);
      if (text == NULL)
        return MHD_NO;
      /* A newline makes curl output pleasant; JSON does not mind. */
      size_t n = strlen (text);
      char *t2 = realloc (text, n + 2);
      if (t2 == NULL)
        {
          free (text);
          return MHD_NO;
        }
      text = t2;
      text[n] = '\n';
      text[n + 1] = '\0';
      resp = MHD_create_response_from_buffer (n + 1, text,
                                              MHD_RESPMEM_MUST_FREE);
    }
  else
    resp = MHD_create_response_from_buffer (0, (void *)"",
                                            MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    {
      free (text);
      return MHD_NO;
    }
  if (r->body)
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                             "application/json");
  ret = MHD_queue_response (c, (unsigned)r->status, resp);
  MHD_destroy_response (resp);
  return ret;
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

static const char *
lookup_query (void *opaque, const char *key)
{
  return MHD_lookup_connection_value (opaque, MHD_GET_ARGUMENT_KIND, key);
}

static void
dispatch (struct api_server *s, struct MHD_Connection *c, const char *url,
          const char *method, struct conn_state *cs, struct reply *r)
{
  char params[API_MAX_PARAMS][256];
  const struct api_route *rt = api_match (method, url, params, r);
  struct query_ctx q = { 0 };
  struct api_request req = { 0 };
  const char *ctype;

  if (rt == NULL)
    return;
  if (cs->too_large)
    {
      reply_error (r, 413, "body-too-large",
                   "request body is larger than %d bytes", API_MAX_BODY);
      return;
    }

  q.allowed = rt->query;
  MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, check_query_arg, &q);
  if (q.bad)
    {
      reply_error_field (r, 400, "unknown-parameter", q.bad,
                         "unknown query parameter '%s'", q.bad);
      return;
    }
  if (q.dup)
    {
      reply_error_field (r, 400, "duplicate-parameter", q.dup,
                         "query parameter '%s' is given twice", q.dup);
      return;
    }
  if (q.novalue)
    {
      reply_error_field (r, 400, "invalid-parameter", q.novalue,
                         "query parameter '%s' has no value", q.novalue);
      return;
    }

  if (!rt->body && cs->len > 0)
    {
      reply_error (r, 400, "unexpected-body", "%s %s takes no request body",
                   method, rt->pattern);
      return;
    }
  if (rt->body && cs->len > 0)
    {
      ctype = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_CONTENT_TYPE);
      if (ctype && strncmp (ctype, "application/json", 16) != 0)
        {
          reply_error (r, 415, "unsupported-media-type",
                       "request body must be application/json");
          return;
        }
    }

  /* A {vm} in the path is always the first parameter. */
  if (strstr (rt->pattern, "{vm}")
      && !validate_path_name (NAME_VM, "vm", params[0], r))
    return;

  req.reg = s->reg;
  for (int i = 0; i < API_MAX_PARAMS; i++)
    req.params[i] = params[i];
  req.body = cs->body;
  req.body_len = cs->len;
  req.query = lookup_query;
  req.opaque = c;
  rt->handler (&req, r);
  if (r->status == 0)
    reply_error (r, 500, "internal-error", "no reply");
}

/* Compare without leaking where the first difference is. */
static bool
token_equal (const char *a, const char *b)
{
  size_t na = strlen (a), nb = strlen (b);
  unsigned char d = na != nb;

  for (size_t i = 0; i < na; i++)
    d |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb ? nb : 1)];
  return d == 0;
}

static bool
authorized (const struct listener *l, struct MHD_Connection *c)
{
  const char *h;

  if (!l->tcp)
    return true;
  h = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                   MHD_HTTP_HEADER_AUTHORIZATION);
  return h && strncmp (h, "Bearer ", 7) == 0
         && token_equal (h + 7, l->s->token);
}

/* Answer before the body is read (MHD then sends no 100 Continue). */
static enum MHD_Result
refuse_early (struct MHD_Connection *c, const char *method, const char *url,
              struct reply *r)
{
  enum MHD_Result ret;

  log_debug ("%s %s -> %d", method, url, r->status);
  ret = send_reply (c, r);
  reply_clear (r);
  return ret;
}

static enum MHD_Result
on_request (void *cls, struct MHD_Connection *c, const char *url,
            const char *method, const char *version, const char *upload_data,
            size_t *upload_size, void **con_cls)
{
  struct listener *l = cls;
  struct api_server *s = l->s;
  struct conn_state *cs = *con_cls;
  struct reply r = { 0 };
  enum MHD_Result ret;

  if (cs == NULL)
    {
      const char *clen = MHD_lookup_connection_value (
          c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

      cs = calloc (1, sizeof *cs);
      if (cs == NULL)
        return MHD_NO;
      *con_cls = cs;
      if (!authorized (l, c))
        {
          reply_error (&r, 401, "unauthorized",
                       "this address needs 'Authorization: Bearer TOKEN' "
                       "with the token of pullbackd's token-file");
          cs->answered = true;
          return refuse_early (c, method, url, &r);
        }
      if (clen && strtoull (clen, NULL, 10) > API_MAX_BODY)
        {
          reply_error (&r, 413, "body-too-large",
                       "request body is larger than %d bytes", API_MAX_BODY);
          cs->answered = true;
          return refuse_early (c, method, url, &r);
        }
      return MHD_YES;
    }
  if (cs->answered)
    {
      *upload_size = 0;
      return MHD_YES;
    }
  if (*upload_size > 0)
    {
      if (!cs->too_large && cs->len + *upload_size <= API_MAX_BODY)
        {
          char *p = realloc (cs->body, cs->len + *upload_size + 1);

          if (p == NULL)
            return MHD_NO;
          cs->body = p;
          memcpy (cs->body + cs->len, upload_data, *upload_size);
          cs->len += *upload_size;
          cs->body[cs->len] = '\0';
        }
      else
        cs->too_large = true;
      *upload_size = 0;
      return MHD_YES;
    }

  dispatch (s, c, url, method, cs, &r);
  log_debug ("%s %s -> %d", method, url, r.status);
  ret = send_reply (c, &r);
  reply_clear (&r);
  return ret;
}

static void
on_completed (void *cls, struct MHD_Connection *c, void **con_cls,
              enum MHD_RequestTerminationCode toe)
{
  struct conn_state *cs = *con_cls;

  if (cs)
    {
      free (cs->body);
      free (cs);
    }
  *con_cls = NULL;
}

static int
listen_unix (const char *path, char *err, size_t errlen)
{
  int fd = unix_listen (path, 0660);

  if (fd == -1)
    snprintf (err, errlen, "listen on %s: %s", path, strerror (errno));
  return fd;
}

static int
listen_tcp (const char *addr, char *err, size_t errlen)
{
  CLEANUP_FREE char *host = strdup (addr);
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
  struct addrinfo *res = NULL;
  char *colon, *port;
  int fd = -1, one = 1, r;

  if (host == NULL)
    return -1;
  colon = strrchr (host, ':');
  *colon = '\0';
  port = colon + 1;
  if (host[0] == '[' && colon[-1] == ']')
    {
      colon[-1] = '\0';
      memmove (host, host + 1, strlen (host));
    }
  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0)
    {
      snprintf (err, errlen, "listen on %s: %s", addr, gai_strerror (r));
      return -1;
    }
  fd = socket (res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd == -1
      || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1
      || bind (fd, res->ai_addr, res->ai_addrlen) == -1
      || listen (fd, 64) == -1)
    {
      snprintf (err, errlen, "listen on %s: %s", addr, strerror (errno));
      if (fd >= 0)
        close (fd);
      fd = -1;
    }
  freeaddrinfo (res);
  return fd;
}

struct api_server *
api_server_start (struct registry *reg, char *const *addresses, size_t n,
                  const char *token, char *err, size_t errlen)
{
  struct api_server *s = calloc (1, sizeof *s);

  if (s == NULL || (token && (s->token = strdup (token)) == NULL))
    {
      snprintf (err, errlen, "out of memory");
      free (s);
      return NULL;
    }
  s->reg = reg;
  if (n > MAX_LISTEN)
    n = MAX_LISTEN;
  for (size_t i = 0; i < n; i++)
    {
      const char *a = addresses[i];
      bool is_unix = a[0] == '/';
      int fd = is_unix ? listen_unix (a, err, errlen)
                       : listen_tcp (a, err, errlen);

      if (fd == -1)
        {
          api_server_stop (s);
          return NULL;
        }
      if (!is_unix && s->token == NULL)
        {
          /* config_check refuses this; never serve TCP without one. */
          snprintf (err, errlen, "listen on %s: TCP needs a token", a);
          close (fd);
          api_server_stop (s);
          return NULL;
        }
      s->listeners[s->n] = (struct listener){ s, !is_unix };
      s->mhd[s->n] = MHD_start_daemon (
          MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
          NULL, NULL, on_request, &s->listeners[s->n],
          MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
          on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
          MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
          MHD_OPTION_PER_IP_CONNECTION_LIMIT,
          (unsigned)(is_unix ? 0 : MAX_CONNECTIONS_PER_IP), MHD_OPTION_END);
      if (s->mhd[s->n] == NULL)
        {
          snprintf (err, errlen, "cannot start the HTTP server on %s", a);
          close (fd);
          api_server_stop (s);
          return NULL;
        }
      s->unix_paths[s->n] = is_unix ? strdup (a) : NULL;
      s->n++;
      log_info ("REST API listening on %s", a);
    }
  return s;
}

void
api_server_stop (struct api_server *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++)
    {
      MHD_stop_daemon (s->mhd[i]);
      if (s->unix_paths[i])
        unlink (s->unix_paths[i]);
      free (s->unix_paths[i]);
    }
  free (s->token);
  free (s);
}
