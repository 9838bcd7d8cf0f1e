/* pullback: the HTTP server (libmicrohttpd).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Connections are accepted by the door (door.h), which holds them until
 * their first request head is complete and checked, then hands them to
 * one MHD daemon per listen address: a small pool of epoll threads that
 * only parse, check and send, so an idle connection costs a file
 * descriptor and some memory, never a thread.  A request that passes the
 * checks (check.h: URL, framing, token, media type, query) runs its
 * route's handler on a worker thread of its own (a handler may wait
 * seconds for a VM's owner) while its connection is suspended; the
 * handler's reply is sent when the connection resumes.  A streamed reply
 * (extents) keeps its worker as the producer (pump.h).
 *
 * Bodies are collected up to API_MAX_BODY; a larger one, or one sent with
 * a refused request, is read and dropped (up to DRAIN_MAX) so that the
 * client sees the answer instead of a broken pipe.
 *
 * With TLS, every TCP listener serves HTTPS (libmicrohttpd's GnuTLS) with
 * one certificate; the door hands a connection over after its ClientHello
 * and lets go of it at its first request (on_request) or its end
 * (on_connection).  A client certificate, when asked for, is checked at
 * each connection's first request, before the token.
 */

#include <config.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "check.h"
#include "cleanup.h"
#include "door.h"
#include "log.h"
#include "names.h"
#include "pump.h"
#include "render.h"
#include "tls.h"
#include "unixsock.h"
#include "utf8.h"
#include "validate.h"

#define MAX_LISTEN 16
/* MHD's event-loop threads per listener. */
#define POOL_THREADS 2
/* Connections at once per listener (fewer if file descriptors are
 * short).  No limit per client address: every local user is 127.0.0.1.
 */
#define MAX_CONNECTIONS 4096
/* Requests being handled at once (each a thread); more get 503. */
#define MAX_INFLIGHT 64
/* Seconds a connection libmicrohttpd has may stay idle: between two
 * requests, or stalled in a body or in reading an answer.  (Before its
 * first request, a connection is the door's: HEAD_DEADLINE_MS.)
 */
#define IDLE_TIMEOUT 30
/* A body we do not want is still read, and dropped, up to this much. */
#define DRAIN_MAX (128ULL * 1024 * 1024)
/* Request head (request line and headers) and body buffer of MHD. */
#define CONNECTION_MEMORY (128 * 1024)

struct api_server;

struct listener
{
  struct api_server *s;
  bool tcp; /* requests must carry the token */
  bool tls; /* HTTPS */
};

struct api_server
{
  struct registry *reg;
  /* Bearer tokens; replaced at SIGHUP. */
  pthread_rwlock_t tokens_lock;
  char **tokens;
  size_t ntokens;
  bool need_tokens; /* there is a TCP listener */
  /* PEM texts for libmicrohttpd (kept while it runs). */
  char *tls_cert, *tls_key, *tls_client_ca;
  struct MHD_Daemon *mhd[MAX_LISTEN];
  struct listener listeners[MAX_LISTEN];
  char *unix_paths[MAX_LISTEN];
  struct stat unix_st[MAX_LISTEN]; /* the socket file we made */
  int fds[MAX_LISTEN];
  size_t n;
  unsigned limit;    /* connections per MHD daemon */
  struct door *door; /* under lock for door_release: NULL once stopped */

  pthread_mutex_t lock;
  pthread_cond_t idle;     /* inflight or answering dropped to 0 */
  unsigned inflight;       /* worker threads */
  unsigned answering;      /* requests given to a worker whose answer MHD has
                         not finished sending */
  bool quiescing;          /* no new connections, new requests get 503 */
  bool stopping;           /* streams are cut */
  struct pumping *pumping; /* streams being produced */
};

/* A TLS connection (MHD's socket context). */
struct tls_conn
{
  int fd;
  dev_t dev;
  ino_t ino;
  bool pending;  /* the door holds it, until its first request */
  bool verified; /* its client certificate is good */
};

/* A stream being produced, for api_server_stop to cut. */
struct pumping
{
  struct pump *p;
  struct pumping *next, *prev;
};

enum phase
{
  PHASE_READING, /* head and body */
  PHASE_RUNNING, /* the handler runs on a worker, connection suspended */
  PHASE_DONE,    /* resp is ready */
};

/* One request (MHD's con_cls). */
/* How long a stopping server waits for answers to be sent. */
#define ANSWER_GRACE_S 5

struct request
{
  struct api_server *s;
  struct MHD_Connection *c;
  enum phase phase;
  char *body;
  size_t len;
  unsigned long long received; /* body bytes, kept or dropped */
  bool too_large;
  /* An answer decided from the head; sent once the body is drained. */
  struct reply early;
  bool close; /* answer with Connection: close */
  /* The route and its handler's answer. */
  const struct api_route *rt;
  char params[API_MAX_PARAMS][256];
  struct reply reply;
  struct MHD_Response *resp; /* built by the worker */
  struct pump *pump;
  bool answering; /* counted in s->answering until MHD is done with it */
};

/* ---------------------------------------------------------------- */
/* Responses. */

static struct MHD_Response *
json_response (const char *text, size_t len, enum MHD_ResponseMemoryMode mode)
{
  struct MHD_Response *resp;

  resp = MHD_create_response_from_buffer (len, (void *)text, mode);
  if (resp)
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                             "application/json");
  return resp;
}

/* When even building the error failed (out of memory). */
static const char fallback_error[]
    = "{\"error\":{\"code\":\"internal-error\","
      "\"message\":\"cannot build the answer\"}}\n";

/* Turn R into a response; *STATUS may become 500.  Takes R's stream. */
static struct MHD_Response *
make_response (struct reply *r, unsigned *status)
{
  struct MHD_Response *resp;
  char *text, *t2;
  size_t n;

  *status = (unsigned)r->status;
  if (r->text)
    {
      resp = MHD_create_response_from_buffer (strlen (r->text), r->text,
                                              MHD_RESPMEM_MUST_COPY);
      if (resp)
        MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                 "text/plain; version=0.0.4");
      return resp;
    }
  if (r->body == NULL)
    {
      if (r->status < 400)
        return MHD_create_response_from_buffer (0, (void *)"",
                                                MHD_RESPMEM_PERSISTENT);
      /* An error without its body: never an empty answer. */
      return json_response (fallback_error, strlen (fallback_error),
                            MHD_RESPMEM_PERSISTENT);
    }
  text = json_dumps (r->body, JSON_COMPACT);
  if (text == NULL)
    {
      *status = 500;
      return json_response (fallback_error, strlen (fallback_error),
                            MHD_RESPMEM_PERSISTENT);
    }
  /* A newline makes curl output pleasant; JSON does not mind. */
  n = strlen (text);
  t2 = realloc (text, n + 2);
  if (t2 == NULL)
    {
      free (text);
      return NULL;
    }
  t2[n] = '\n';
  t2[n + 1] = '\0';
  resp = json_response (t2, n + 1, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL)
    free (t2);
  return resp;
}

static enum MHD_Result
queue (struct request *rq, struct MHD_Response *resp, unsigned status)
{
  enum MHD_Result ret;

  if (resp == NULL)
    return MHD_NO;
  if (rq->close)
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONNECTION, "close");
  ret = MHD_queue_response (rq->c, status, resp);
  MHD_destroy_response (resp);
  return ret;
}

/* The URL for the log: not one that could forge a log line. */
static const char *
loggable (const char *url)
{
  return utf8_printable (url, strlen (url)) ? url : "(invalid URL)";
}

/* Send R now (on an MHD thread: R is small, never a stream). */
static enum MHD_Result
answer (struct request *rq, const char *method, const char *url,
        struct reply *r)
{
  struct MHD_Response *resp;
  unsigned status;

  log_debug ("%s %s -> %d", loggable (method), loggable (url), r->status);
  resp = make_response (r, &status);
  reply_clear (r);
  return queue (rq, resp, status);
}

/* Route the request and check what can be checked without the engine.
 * Returns false with R set to the answer.
 */
static bool
route (struct request *rq, const char *url, const char *method,
       struct reply *r)
{
  struct MHD_Connection *c = rq->c;
  const struct api_route *rt;
  const char *ctype;

  rt = api_match (method, url, rq->params, r);
  if (rt == NULL)
    return false;
  if (rq->too_large)
    {
      http_error (r, 413, "body-too-large",
                  "request body is larger than %d bytes", API_MAX_BODY);
      return false;
    }

  if (!check_query (c, rt->query, r))
    return false;

  if (!rt->body && rq->len > 0)
    {
      http_error (r, 400, "unexpected-body", "%s %s takes no request body",
                  method, rt->pattern);
      return false;
    }
  if (rt->body && rq->len > 0)
    {
      ctype = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_CONTENT_TYPE);
      if (ctype && !check_media_type_json (ctype))
        {
          http_error (r, 415, "unsupported-media-type",
                      "request body must be application/json");
          return false;
        }
    }

  /* A {vm} in the path is always the first parameter. */
  if (strstr (rt->pattern, "{vm}")
      && !validate_path_name (NAME_VM, "vm", rq->params[0], r))
    return false;
  rq->rt = rt;
  return true;
}

/* ---------------------------------------------------------------- */
/* Workers. */

static const char *
lookup_query (void *opaque, const char *key)
{
  return MHD_lookup_connection_value (opaque, MHD_GET_ARGUMENT_KIND, key);
}

static void
pumping_link (struct api_server *s, struct pumping *pg)
{
  pthread_mutex_lock (&s->lock);
  if (s->stopping)
    pump_cancel (pg->p);
  pg->prev = NULL;
  pg->next = s->pumping;
  if (s->pumping)
    s->pumping->prev = pg;
  s->pumping = pg;
  pthread_mutex_unlock (&s->lock);
}

static void
pumping_unlink (struct api_server *s, struct pumping *pg)
{
  pthread_mutex_lock (&s->lock);
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    s->pumping = pg->next;
  if (pg->next)
    pg->next->prev = pg->prev;
  pthread_mutex_unlock (&s->lock);
}

static void
worker_done (struct api_server *s)
{
  pthread_mutex_lock (&s->lock);
  if (--s->inflight == 0)
    pthread_cond_broadcast (&s->idle);
  pthread_mutex_unlock (&s->lock);
}

/* Run the handler, build the response, resume the connection; then, for
 * a stream, produce it.  RQ may be freed as soon as the connection is
 * resumed: nothing of it is used after that.
 */
static void *
worker (void *arg)
{
  struct request *rq = arg;
  struct api_server *s = rq->s;
  struct MHD_Connection *c = rq->c;
  struct api_request req = { 0 };
  struct pump *pump = NULL;
  struct pumping pg;
  unsigned status = 500;

  req.reg = s->reg;
  for (int i = 0; i < API_MAX_PARAMS; i++)
    req.params[i] = rq->params[i];
  req.body = rq->body;
  req.body_len = rq->len;
  req.query = lookup_query;
  req.opaque = c;
  rq->rt->handler (&req, &rq->reply);
  api_render (&rq->reply);
  if (!rq->reply.answered)
    http_error (&rq->reply, 500, "internal-error", "no reply");
  rq->reply.status = http_status (&rq->reply);

  if (rq->reply.stream)
    {
      pump = pump_new (c, rq->reply.stream_read, rq->reply.stream_free,
                       rq->reply.stream);
      rq->reply.stream = NULL;
      rq->resp = pump ? pump_response (pump) : NULL;
      if (rq->resp)
        {
          MHD_add_response_header (rq->resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   "application/json");
          status = (unsigned)rq->reply.status;
        }
      else
        {
          http_error (&rq->reply, 500, "internal-error", "out of memory");
          if (pump)
            pump_unref (pump);
          pump = NULL;
        }
    }
  if (rq->resp == NULL)
    rq->resp = make_response (&rq->reply, &status);
  rq->reply.status = (int)status;
  rq->pump = pump;
  if (pump)
    {
      pg.p = pump;
      pumping_link (s, &pg);
    }

  pthread_mutex_lock (&s->lock);
  rq->phase = PHASE_DONE;
  pthread_mutex_unlock (&s->lock);
  MHD_resume_connection (c);

  if (pump)
    {
      pump_run (pump);
      pumping_unlink (s, &pg);
      pump_unref (pump);
    }
  worker_done (s);
  return NULL;
}

/* Start the handler on a worker; false (R set) if that cannot be. */
static bool
start_worker (struct request *rq, struct reply *r)
{
  struct api_server *s = rq->s;
  pthread_attr_t attr;
  pthread_t t;
  int err;

  pthread_mutex_lock (&s->lock);
  if (s->quiescing)
    {
      pthread_mutex_unlock (&s->lock);
      rq->close = true;
      http_error (r, 503, "shutting-down", "pullbackd is stopping");
      return false;
    }
  if (s->inflight >= MAX_INFLIGHT)
    {
      pthread_mutex_unlock (&s->lock);
      http_error (r, 503, "busy", "%d requests are being handled; try again",
                  MAX_INFLIGHT);
      return false;
    }
  s->inflight++;
  s->answering++;
  rq->answering = true;
  rq->phase = PHASE_RUNNING;
  pthread_mutex_unlock (&s->lock);

  /* Suspend first: the worker may resume it before we return. */
  MHD_suspend_connection (rq->c);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&t, &attr, worker, rq);
  pthread_attr_destroy (&attr);
  if (err != 0)
    {
      unsigned status;

      log_warnx ("cannot start a request thread: %s", strerror (err));
      http_error (&rq->reply, 503, "busy", "cannot start a thread: %s",
                  strerror (err));
      rq->resp = make_response (&rq->reply, &status);
      rq->reply.status = (int)status;
      rq->phase = PHASE_DONE;
      worker_done (s);
      MHD_resume_connection (rq->c);
    }
  return true;
}

/* ---------------------------------------------------------------- */
/* The access handler. */

static bool
token_ok (struct api_server *s, struct MHD_Connection *c)
{
  bool ok;

  pthread_rwlock_rdlock (&s->tokens_lock);
  ok = check_token (c, s->tokens, s->ntokens);
  pthread_rwlock_unlock (&s->tokens_lock);
  return ok;
}

static struct tls_conn *
tls_conn_of (struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

  return ci ? ci->socket_context : NULL;
}

/* Fill T with C's socket's identity. */
static bool
tls_conn_identify (struct MHD_Connection *c, struct tls_conn *t)
{
  const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CONNECTION_FD);
  struct stat st;

  if (ci == NULL || fstat (ci->connect_fd, &st) == -1)
    return false;
  *t = (struct tls_conn){
    .fd = ci->connect_fd, .dev = st.st_dev, .ino = st.st_ino, .pending = true
  };
  return true;
}

/* The door lets go of T (it has sent a request, or is closed). */
static void
tls_conn_release (struct api_server *s, struct tls_conn *t)
{
  if (!t->pending)
    return;
  t->pending = false;
  pthread_mutex_lock (&s->lock);
  if (s->door)
    door_release (s->door, t->fd, t->dev, t->ino);
  pthread_mutex_unlock (&s->lock);
}

/* A client certificate is asked for: is it there and good?  Checked once
 * a connection.
 */
static bool
client_cert_ok (struct MHD_Connection *c, struct reply *e)
{
  struct tls_conn *t = tls_conn_of (c);
  char why[256];

  if (t && t->verified)
    return true;
  switch (tls_client_check (c, why, sizeof why))
    {
    case TLS_CLIENT_OK:
      if (t)
        t->verified = true;
      return true;
    case TLS_CLIENT_NONE:
      http_error (e, 403, "client-certificate-required",
                  "this address needs a client certificate signed by a CA "
                  "of pullbackd's tls-client-ca");
      break;
    case TLS_CLIENT_BAD:
      log_info ("REST API: client certificate refused: %s", why);
      http_error (e, 403, "client-certificate-invalid",
                  "the client certificate is not valid here: %s", why);
      break;
    }
  return false;
}

/* The head is in: decide whatever can be decided from it.  An answer
 * decided here is sent after the body is drained, except when the client
 * waits for "100 Continue" (it sends no body then) or the framing is not
 * to be trusted (the connection is closed after the answer).
 */
static enum MHD_Result
on_head (struct listener *l, struct request *rq, const char *url,
         const char *method)
{
  struct MHD_Connection *c = rq->c;
  struct reply *e = &rq->early;
  const char *clen;
  unsigned nclen;
  const char *expect;

  if (!check_framing (c, e))
    {
      rq->close = true;
      return answer (rq, method, url, e);
    }
  if (l->tls && l->s->tls_client_ca && !client_cert_ok (c, e))
    rq->close = true;
  else if (!check_url (c, url, e))
    ;
  else if (l->tcp && !token_ok (l->s, c))
    {
      http_error (e, 401, "unauthorized",
                  "this address needs 'Authorization: Bearer TOKEN' "
                  "with a token of pullbackd's token-file");
      rq->close = true;
    }
  else
    {
      nclen = check_header_count (c, MHD_HTTP_HEADER_CONTENT_LENGTH, &clen);
      if (nclen == 1 && strtoull (clen, NULL, 10) > API_MAX_BODY)
        http_error (e, 413, "body-too-large",
                    "request body is larger than %d bytes", API_MAX_BODY);
      else
        return MHD_YES;
    }
  /* Refused.  Read the body anyway (the client is sending it and would
   * see a broken pipe instead of the answer) unless it waits for leave
   * to send, or is larger than we care to read.
   */
  nclen = check_header_count (c, MHD_HTTP_HEADER_CONTENT_LENGTH, &clen);
  expect = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_EXPECT);
  if ((expect && strcasecmp (expect, "100-continue") == 0)
      || (nclen == 1 && strtoull (clen, NULL, 10) > DRAIN_MAX))
    {
      rq->close = true;
      return answer (rq, method, url, e);
    }
  return MHD_YES;
}

static enum MHD_Result
on_body (struct request *rq, const char *url, const char *method,
         const char *data, size_t size)
{
  rq->received += size;
  if (rq->early.status)
    {
      if (rq->received > DRAIN_MAX)
        {
          rq->close = true;
          return answer (rq, method, url, &rq->early);
        }
      return MHD_YES;
    }
  if (!rq->too_large && rq->len + size <= API_MAX_BODY)
    {
      char *p = realloc (rq->body, rq->len + size + 1);

      if (p == NULL)
        return MHD_NO;
      rq->body = p;
      memcpy (rq->body + rq->len, data, size);
      rq->len += size;
      rq->body[rq->len] = '\0';
      return MHD_YES;
    }
  if (!rq->too_large)
    {
      rq->too_large = true;
      free (rq->body);
      rq->body = NULL;
      rq->len = 0;
    }
  if (rq->received > DRAIN_MAX)
    {
      http_error (&rq->early, 413, "body-too-large",
                  "request body is larger than %d bytes", API_MAX_BODY);
      rq->close = true;
      return answer (rq, method, url, &rq->early);
    }
  return MHD_YES;
}

static enum MHD_Result
on_request (void *cls, struct MHD_Connection *c, const char *url,
            const char *method, const char *version, const char *upload_data,
            size_t *upload_size, void **con_cls)
{
  struct listener *l = cls;
  struct api_server *s = l->s;
  struct request *rq = *con_cls;
  struct reply r = { 0 };
  enum phase phase;

  if (rq == NULL)
    {
      rq = calloc (1, sizeof *rq);
      if (rq == NULL)
        return MHD_NO;
      *con_cls = rq;
      rq->s = s;
      rq->c = c;
      if (l->tls)
        {
          struct tls_conn *t = tls_conn_of (c), t2;

          /* Without its context (no memory when it started), by its
           * socket.
           */
          if (t == NULL && tls_conn_identify (c, &t2))
            t = &t2;
          if (t)
            tls_conn_release (s, t);
        }
      return on_head (l, rq, url, method);
    }
  if (*upload_size > 0)
    {
      size_t size = *upload_size;

      *upload_size = 0;
      return on_body (rq, url, method, upload_data, size);
    }

  pthread_mutex_lock (&s->lock);
  phase = rq->phase;
  pthread_mutex_unlock (&s->lock);
  switch (phase)
    {
    case PHASE_READING:
      if (rq->early.status)
        return answer (rq, method, url, &rq->early);
      if (!route (rq, url, method, &r) || !start_worker (rq, &r))
        return answer (rq, method, url, &r);
      return MHD_YES;
    case PHASE_RUNNING:
      return MHD_YES; /* not resumed yet */
    case PHASE_DONE:
      break;
    }
  log_debug ("%s %s -> %d", method, loggable (url), rq->reply.status);
  {
    struct MHD_Response *resp = rq->resp;

    rq->resp = NULL;
    return queue (rq, resp, (unsigned)rq->reply.status);
  }
}

static void
on_completed (void *cls, struct MHD_Connection *c, void **con_cls,
              enum MHD_RequestTerminationCode toe)
{
  struct request *rq = *con_cls;

  if (rq && rq->answering)
    {
      /* Its answer is sent (or the client went away): a stopping
       * server may close the connection now.
       */
      pthread_mutex_lock (&rq->s->lock);
      if (--rq->s->answering == 0)
        pthread_cond_broadcast (&rq->s->idle);
      pthread_mutex_unlock (&rq->s->lock);
    }
  if (rq)
    {
      free (rq->body);
      reply_clear (&rq->early);
      reply_clear (&rq->reply);
      if (rq->resp)
        MHD_destroy_response (rq->resp);
      free (rq);
    }
  *con_cls = NULL;
}

/* A TLS connection starts or ends (MHD_OPTION_NOTIFY_CONNECTION). */
static void
on_connection (void *cls, struct MHD_Connection *c, void **socket_context,
               enum MHD_ConnectionNotificationCode code)
{
  struct listener *l = cls;
  struct tls_conn *t = *socket_context;

  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    {
      t = calloc (1, sizeof *t);
      if (t && !tls_conn_identify (c, t))
        {
          free (t);
          t = NULL;
        }
      *socket_context = t;
      return;
    }
  if (t)
    {
      tls_conn_release (l->s, t);
      free (t);
    }
  *socket_context = NULL;
}

/* ---------------------------------------------------------------- */
/* Listeners. */

static int
listen_unix (const char *path, char *err, size_t errlen)
{
  int fd = unix_listen (path, 0660);

  /* A longer queue than unix_listen's: connect(2) on a unix socket
   * blocks while the queue is full.
   */
  if (fd == -1 || listen (fd, SOMAXCONN) == -1)
    {
      snprintf (err, errlen, "listen on %s: %s", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
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
      || listen (fd, SOMAXCONN) == -1)
    {
      snprintf (err, errlen, "listen on %s: %s", addr, strerror (errno));
      if (fd >= 0)
        close (fd);
      fd = -1;
    }
  freeaddrinfo (res);
  return fd;
}

/* Connections need file descriptors: take the hard limit.  Returns how
 * many connections there may be in all (some are kept for QMP, NBD,
 * state files...).
 */
static unsigned
fd_budget (void)
{
  struct rlimit rl;
  rlim_t avail;

  if (getrlimit (RLIMIT_NOFILE, &rl) == -1)
    return 512;
  if (rl.rlim_cur < rl.rlim_max)
    {
      struct rlimit want = { rl.rlim_max, rl.rlim_max };

      if (setrlimit (RLIMIT_NOFILE, &want) == 0)
        rl = want;
    }
  avail = rl.rlim_cur > 1024 ? rl.rlim_cur - 512 : rl.rlim_cur / 2;
  if (avail > 2 * MAX_CONNECTIONS * MAX_LISTEN)
    avail = 2 * MAX_CONNECTIONS * MAX_LISTEN;
  if (avail < 256)
    log_warnx ("REST API: only %llu connections (RLIMIT_NOFILE)",
               (unsigned long long)avail);
  return (unsigned)avail;
}

/* libmicrohttpd's own messages: debug only (for a connection handed over
 * from a unix socket it reports that TCP options do not apply).
 */
static void
mhd_log (void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  size_t n;

  if (!log_debug_enabled ())
    return;
  vsnprintf (msg, sizeof msg, fmt, ap);
  n = strlen (msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  log_debug ("libmicrohttpd: %s", msg);
}

/* The door hands over a connection whose first head is complete (or,
 * TLS, whose ClientHello is).
 */
static enum door_pass
pass (void *cls, size_t index, int fd, const struct sockaddr *sa,
      socklen_t salen, size_t pending, struct reply *r)
{
  struct api_server *s = cls;
  const union MHD_DaemonInfo *info;
  bool quiescing;

  pthread_mutex_lock (&s->lock);
  quiescing = s->quiescing;
  pthread_mutex_unlock (&s->lock);
  if (quiescing)
    {
      http_error (r, 503, "shutting-down", "pullbackd is stopping");
      return DOOR_REFUSED;
    }
  /* Those that have not sent a request yet are the door's to count. */
  info = MHD_get_daemon_info (s->mhd[index],
                              MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  if (info && info->num_connections >= s->limit + pending)
    {
      http_error (r, 503, "busy",
                  "%u connections are open on this address; try again",
                  s->limit);
      return DOOR_REFUSED;
    }
  /* MHD closes FD if it cannot take it. */
  if (MHD_add_connection (s->mhd[index], fd, sa, salen) != MHD_YES)
    {
      log_warn ("REST API: cannot add a connection");
      return DOOR_LOST;
    }
  return DOOR_TAKEN;
}

static void
free_strings (char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      explicit_bzero (v[i], strlen (v[i]));
      free (v[i]);
    }
  free (v);
}

static void
free_secret (char *p)
{
  if (p)
    {
      explicit_bzero (p, strlen (p));
      free (p);
    }
}

int
api_server_set_tokens (struct api_server *s, char *const *tokens, size_t n,
                       char *err, size_t errlen)
{
  char **v, **old;
  size_t nold;

  if (n == 0 && s->need_tokens)
    {
      snprintf (err, errlen, "no bearer token, and TCP addresses need one");
      return -1;
    }
  v = calloc (n ? n : 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++)
    if ((v[i] = strdup (tokens[i])) == NULL)
      {
        free_strings (v, i);
        v = NULL;
      }
  if (v == NULL)
    {
      snprintf (err, errlen, "out of memory");
      return -1;
    }
  pthread_rwlock_wrlock (&s->tokens_lock);
  old = s->tokens;
  nold = s->ntokens;
  s->tokens = v;
  s->ntokens = n;
  pthread_rwlock_unlock (&s->tokens_lock);
  if (old)
    free_strings (old, nold);
  return 0;
}

/* libmicrohttpd with TLS: one daemon per listener, all with the same
 * certificate.
 */
static bool
copy_tls (struct api_server *s, const struct api_tls *tls)
{
  if (tls == NULL)
    return true;
  s->tls_cert = strdup (tls->cert);
  s->tls_key = strdup (tls->key);
  s->tls_client_ca = tls->client_ca ? strdup (tls->client_ca) : NULL;
  return s->tls_cert && s->tls_key && (s->tls_client_ca || !tls->client_ca);
}

static struct MHD_Daemon *
start_mhd (struct api_server *s, struct listener *l, unsigned limit)
{
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
                   | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
  struct MHD_OptionItem tls[6];
  size_t i = 0;

  if (l->tls)
    {
      flags |= MHD_USE_TLS;
      tls[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
                                          s->tls_cert };
      tls[i++]
          = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key };
      tls[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                          (void *)TLS_PRIORITIES };
      tls[i++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                          (intptr_t)on_connection, l };
      /* Asks for a client certificate; tls_client_check checks it. */
      if (s->tls_client_ca)
        tls[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                            s->tls_client_ca };
    }
  tls[i] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
  return MHD_start_daemon (
      flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
      NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_UNESCAPE_CALLBACK, check_unescape, NULL,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
      MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)CONNECTION_MEMORY, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

struct api_server *
api_server_start (struct registry *reg, char *const *addresses, size_t n,
                  char *const *tokens, size_t ntokens,
                  const struct api_tls *tls, char *err, size_t errlen)
{
  struct api_server *s = calloc (1, sizeof *s);
  bool is_tls[MAX_LISTEN];
  unsigned budget;

  if (s == NULL)
    {
      snprintf (err, errlen, "out of memory");
      return NULL;
    }
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->idle, NULL);
  pthread_rwlock_init (&s->tokens_lock, NULL);
  s->reg = reg;
  if (n > MAX_LISTEN)
    n = MAX_LISTEN;
  for (size_t i = 0; i < n; i++)
    s->need_tokens |= addresses[i][0] != '/';
  if (api_server_set_tokens (s, tokens, ntokens, err, errlen) == -1)
    {
      api_server_stop (s);
      return NULL;
    }
  if (!copy_tls (s, tls))
    {
      snprintf (err, errlen, "out of memory");
      api_server_stop (s);
      return NULL;
    }
  if (tls && !MHD_is_feature_supported (MHD_FEATURE_TLS))
    {
      snprintf (err, errlen,
                "this libmicrohttpd has no TLS support: HTTPS is impossible");
      api_server_stop (s);
      return NULL;
    }
  /* Half for connections that wait for their head, half for those
   * libmicrohttpd serves.
   */
  budget = fd_budget ();
  s->limit = budget / 2 / (n ? n : 1);
  if (s->limit > MAX_CONNECTIONS)
    s->limit = MAX_CONNECTIONS;
  for (size_t i = 0; i < n; i++)
    {
      const char *a = addresses[i];
      bool is_unix = a[0] == '/';
      int fd = is_unix ? listen_unix (a, err, errlen)
                       : listen_tcp (a, err, errlen);
      /* TLS connections stay the door's until their first request, in
       * MHD all the while: room for them too (at most half of the door's
       * budget, as each also holds the door's duplicate).
       */
      unsigned limit = s->limit;

      if (fd == -1)
        {
          api_server_stop (s);
          return NULL;
        }
      s->listeners[s->n] = (struct listener){ s, !is_unix, !is_unix && tls };
      is_tls[s->n] = s->listeners[s->n].tls;
      if (is_tls[s->n])
        limit += budget / 4;
      s->mhd[s->n] = start_mhd (s, &s->listeners[s->n], limit);
      if (s->mhd[s->n] == NULL)
        {
          snprintf (err, errlen, "cannot start the HTTP%s server on %s",
                    is_tls[s->n] ? "S" : "", a);
          close (fd);
          api_server_stop (s);
          return NULL;
        }
      s->fds[s->n] = fd;
      s->unix_paths[s->n] = is_unix ? strdup (a) : NULL;
      if (is_unix && lstat (a, &s->unix_st[s->n]) == -1)
        s->unix_st[s->n].st_ino = 0;
      s->n++;
      log_info ("REST API listening on %s%s", a,
                is_tls[s->n - 1] ? " (HTTPS)" : "");
    }
  s->door
      = door_start (s->fds, is_tls, s->n, budget / 2, pass, s, err, errlen);
  if (s->door == NULL)
    {
      api_server_stop (s);
      return NULL;
    }
  return s;
}

void
api_server_quiesce (struct api_server *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock (&s->lock);
  s->quiescing = true;
  pthread_mutex_unlock (&s->lock);
  door_quiesce (s->door);
}

void
api_server_stop (struct api_server *s)
{
  struct door *door;
  struct stat st;

  if (s == NULL)
    return;
  api_server_quiesce (s);
  /* No door_release from now on. */
  pthread_mutex_lock (&s->lock);
  door = s->door;
  s->door = NULL;
  pthread_mutex_unlock (&s->lock);
  if (door)
    door_stop (door); /* closes the listening sockets */
  else
    for (size_t i = 0; i < s->n; i++)
      close (s->fds[i]);
  /* Requests being handled finish (their VMs are still there); streams
   * are cut; then no connection is suspended and MHD may stop.
   */
  pthread_mutex_lock (&s->lock);
  s->stopping = true;
  for (struct pumping *pg = s->pumping; pg; pg = pg->next)
    pump_cancel (pg->p);
  while (s->inflight > 0)
    pthread_cond_wait (&s->idle, &s->lock);
  /* And their answers go out (a SIGTERM during a begin is answered 503,
   * not with a closed connection), as long as the clients read them.
   */
  {
    struct timespec until;

    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += ANSWER_GRACE_S;
    while (s->answering > 0
           && pthread_cond_timedwait (&s->idle, &s->lock, &until) == 0)
      ;
  }
  pthread_mutex_unlock (&s->lock);
  for (size_t i = 0; i < s->n; i++)
    {
      MHD_stop_daemon (s->mhd[i]);
      /* Only the socket file we made: another daemon may have made one
       * there since (after ours was removed by hand, say).
       */
      if (s->unix_paths[i] && lstat (s->unix_paths[i], &st) == 0
          && st.st_dev == s->unix_st[i].st_dev
          && st.st_ino == s->unix_st[i].st_ino)
        unlink (s->unix_paths[i]);
      free (s->unix_paths[i]);
    }
  pthread_cond_destroy (&s->idle);
  pthread_mutex_destroy (&s->lock);
  pthread_rwlock_destroy (&s->tokens_lock);
  if (s->tokens)
    free_strings (s->tokens, s->ntokens);
  free (s->tls_cert);
  free_secret (s->tls_key);
  free (s->tls_client_ca);
  free (s);
}
