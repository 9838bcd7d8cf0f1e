/* pullback: the REST API v1.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * api/ validates every request and turns it into calls on the engine
 * (server/registry.h); it never talks to QEMU itself.  One table of
 * routes drives both dispatch and the endpoint list of the man page.
 */

#ifndef PULLBACK_API_H
#define PULLBACK_API_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"
#include "status.h"

struct registry;

#define API_MAX_PARAMS 3
#define API_MAX_BODY (64 * 1024)

struct api_request
{
  struct registry *reg;
  const char *params[API_MAX_PARAMS]; /* {vm}, {checkpoint}|{backup} */
  const char *body;
  size_t body_len;
  /* Query parameter lookup (NULL if absent). */
  const char *(*query) (void *opaque, const char *key);
  void *opaque;
};

typedef void (*api_handler) (struct api_request *req, struct reply *r);

struct api_route
{
  const char *method;
  const char *pattern; /* "/v1/vms/{vm}/checkpoints/{name}" */
  api_handler handler;
  const char *const *query; /* allowed query parameters, NULL-terminated */
  bool body;                /* takes a JSON body */
  const char *doc;          /* one line for the reference */
};

extern const struct api_route api_routes[];

/* Find the route for METHOD and PATH; fills PARAMS.  Returns NULL and
 * sets R to 404 (no such path) or 405 (path exists, other method).
 */
const struct api_route *api_match (const char *method, const char *path,
                                   char params[API_MAX_PARAMS][256],
                                   struct reply *r);

/* HTTP server (libmicrohttpd). */
struct api_server;

/* HTTPS: PEM texts, and the files they came from (for messages). */
struct api_tls
{
  const char *cert;      /* the server's certificate, then its chain */
  const char *key;       /* its private key */
  const char *client_ca; /* CAs of the client certificates, or NULL */
  const char *cert_path, *key_path, *client_ca_path;
};

/* Check that TLS's certificate and key can be used together, and that
 * client_ca holds certificates.  -1 with the reason in ERR (which names
 * the files, never the key).
 */
int api_tls_check (const struct api_tls *tls, char *err, size_t errlen);

/* Listen on each address ("HOST:PORT" or an absolute unix socket path).
 * Requests over TCP must carry "Authorization: Bearer TOKEN" with one of
 * TOKENS[0..NTOKENS) (there may be none only when every address is a unix
 * socket, whose mode 0660 is the access control).  With TLS (else NULL),
 * every TCP address serves HTTPS only, and with its client_ca every
 * request needs a client certificate it signed.  The strings are copied.
 */
struct api_server *api_server_start (struct registry *reg,
                                     char *const *addresses, size_t n,
                                     char *const *tokens, size_t ntokens,
                                     const struct api_tls *tls, char *err,
                                     size_t errlen);

/* Replace the bearer tokens (at SIGHUP).  -1 with ERR, the old tokens
 * kept, if there are none and a TCP address needs them, or no memory.
 */
int api_server_set_tokens (struct api_server *s, char *const *tokens, size_t n,
                           char *err, size_t errlen);

/* Stop accepting connections; requests that arrive on open connections
 * from now on get 503 "shutting-down".  Requests being handled go on.
 * Does not wait.  Call it before the engine starts to end its VMs.
 */
void api_server_quiesce (struct api_server *s);

/* Quiesce, wait for the requests being handled to finish (streamed
 * answers are cut short), close every connection and the listeners.
 */
void api_server_stop (struct api_server *s);

/* metrics.c: the Prometheus text of GET /metrics (malloc'd), or NULL. */
char *api_metrics (struct registry *reg);

#endif /* PULLBACK_API_H */
