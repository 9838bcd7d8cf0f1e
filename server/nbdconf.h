/* pullback: the settings of a VM's NBD server on the network.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * nbd-transport = unix | tcp, and for tcp: nbd-address, nbd-ports,
 * nbd-tls = x509 | psk | off, nbd-tls-x509-dir, nbd-tls-verify-peer,
 * nbd-tls-allowed-dn (repeatable), nbd-tls-psk-file.  Set globally,
 * in a [vm NAME] section, or in POST /v1/vms (the same names with '_'
 * for '-'); a VM's own value wins, key by key.
 */

#ifndef PULLBACK_NBDCONF_H
#define PULLBACK_NBDCONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vector.h"

#define NBDCONF_DEFAULT_ADDRESS "127.0.0.1"
#define NBDCONF_DEFAULT_PORT_LO 10809
#define NBDCONF_DEFAULT_PORT_HI 10909

enum nbd_transport
{
  NBD_TRANSPORT_UNSET,
  NBD_TRANSPORT_UNIX,
  NBD_TRANSPORT_TCP,
};

enum nbd_tls
{
  NBD_TLS_UNSET, /* x509 when nbd-tls-x509-dir is set, else psk */
  NBD_TLS_X509,
  NBD_TLS_PSK,
  NBD_TLS_OFF,
};

DEFINE_VECTOR_TYPE (dn_vector, char *)

/* Unset: zero (NULL, 0, UNSET, verify_peer -1). */
struct nbd_net_conf
{
  enum nbd_transport transport;
  char *address;
  int port_lo, port_hi;
  enum nbd_tls tls;
  char *x509_dir;
  int verify_peer; /* 1, 0, or -1 unset */
  dn_vector allowed_dn;
  char *psk_file;
};

void nbdconf_init (struct nbd_net_conf *n);
void nbdconf_free (struct nbd_net_conf *n);

/* Set KEY (nbd-transport, ...) to VALUE.  Returns 0, -1 with the reason
 * in WHY, or 1 if KEY is not one of these keys.
 */
int nbdconf_set (struct nbd_net_conf *n, const char *key, const char *value,
                 char *why, size_t len);

/* OUT = VM's settings over GLOBAL's (VM may be NULL), with the defaults
 * for what neither sets.  -1 if out of memory.
 */
int nbdconf_merge (const struct nbd_net_conf *global,
                   const struct nbd_net_conf *vm, struct nbd_net_conf *out);

/* Check merged settings: TCP without TLS only on loopback, the x509
 * files there and the key closed to others, the PSK file closed to
 * others.  -1 with the key and reason in WHY.
 */
int nbdconf_check (const struct nbd_net_conf *n, char *why, size_t len);

bool nbdconf_equal (const struct nbd_net_conf *a,
                    const struct nbd_net_conf *b);

/* Is JSON field NAME of POST /v1/vms one of these keys ("nbd_tls",...)?
 * Then check the value V (a string; nbd_tls_allowed_dn an array of
 * strings; nbd_tls_verify_peer a boolean): true, or false with WHY.
 */
bool nbdconf_json_field (const char *name);
bool nbdconf_json_check (const char *name, const json_t *v, char *why,
                         size_t len);

/* The settings among the fields of OBJ (a request or a registration)
 * into N.  -1 with the field and reason in WHY.
 */
int nbdconf_from_json (const json_t *obj, struct nbd_net_conf *n, char *why,
                       size_t len);

/* Copy the settings fields of FROM into TO (for the registration). */
void nbdconf_copy_json (const json_t *from, json_t *to);

const char *nbdconf_tls_name (enum nbd_tls t);

/* A PSK keys file: lines IDENTITY:HEXKEY (psktool's format). */
#define NBDCONF_PSK_FILE_MAX 65536
#define NBDCONF_PSK_USER_MAX 64
/* Read the keys file PATH (from FD if it is not -1, else opened by
 * name), a regular file closed to others, and check its lines: the
 * text in *TEXT (free it with nbdconf_psk_free), the first identity in
 * USER.  -1 with the reason in WHY (never a key).
 */
int nbdconf_psk_read (const char *path, int fd, char **text, char *user,
                      size_t ulen, char *why, size_t len);
/* Wipe and free TEXT. */
void nbdconf_psk_free (char *text);

/* Does HOST (a name or address, IPv6 without brackets) resolve to
 * loopback addresses only?
 */
bool host_is_loopback (const char *host);

#endif /* PULLBACK_NBDCONF_H */
