/* pullback: QEMU's NBD server of a VM on TCP, with TLS.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * With nbd-transport = tcp, nbd.c hands the server to this file: a port
 * from nbd-ports taken at begin from a daemon-wide table (so two VMs
 * never get the same one) and tried with bind (so a port another
 * process listens on is skipped), recorded in the VM's state file before
 * QEMU listens on it (so recovery after kill -9 finds and stops the
 * server), TLS objects made (nbdtls.c), and all of it undone when the
 * server stops.
 */

#ifndef PULLBACK_NBDNET_H
#define PULLBACK_NBDNET_H

#include <stdbool.h>

#include <jansson.h>

#include "answer.h"
#include "nbdconf.h"
#include "reply.h"
#include "vm.h"

#define PB_NBD_TLS_ID "pb-nbd-tls"
#define PB_NBD_AUTHZ_ID "pb-nbd-authz"
/* The PSK keys file QEMU reads: <run-dir>/vms/<vm>/keys.psk. */
#define PB_NBD_PSK_FILE "keys.psk"

/* A VM's NBD network settings and the server it runs with them. */
struct nbdnet
{
  struct nbd_net_conf conf; /* merged: the VM's over the global ones */
  int port;                 /* the port of our server, or 0 */
  char username[64];        /* the PSK identity of our server, or "" */
  char key[65];             /* its key (hex) when generated, or "" */
  json_t *fields;           /* registered through the API: its fields */
};

/* A VM's settings: VM's own over GLOBAL's.  NULL if out of memory. */
struct nbdnet *nbdnet_new (const struct nbd_net_conf *global,
                           const struct nbd_net_conf *vm);
void nbdnet_free (struct nbdnet *n);
/* A VM registered through the API: the nbd_* fields of OBJ over GLOBAL,
 * checked.  NULL with the field in FIELD (or "" if out of memory) and
 * the reason in WHY.
 */
struct nbdnet *nbdnet_from_json (const struct nbd_net_conf *global,
                                 const json_t *obj, char *field,
                                 size_t fieldlen, char *why, size_t len);
/* Would a VM configured with VM over GLOBAL get N's settings? */
bool nbdnet_same (const struct nbdnet *n, const struct nbd_net_conf *global,
                  const struct nbd_net_conf *vm);

/* Is the VM's NBD transport TCP? */
bool nbdnet_tcp (const struct vm *vm);

/* Start our server on TCP.  0, or -1 with R set and nothing left. */
int nbdnet_start (struct vm *vm, struct reply *r);
/* After nbd-server-stop: if the server was on TCP, remove its TLS
 * objects and keys file, free its port and its record; true then.
 */
bool nbdnet_stopped (struct vm *vm);
/* After a restart: a server on TCP recorded in the state file is ours;
 * take it back (vm->nbd_ours).
 */
void nbdnet_recover (struct vm *vm);

/* The URI of EXPORT on our TCP server: malloc'd, NULL if out of memory. */
char *nbdnet_uri (const struct vm *vm, const char *export);
/* The same on PORT (another server of ours with the same address and
 * TLS: the delta view's nbdkit).
 */
char *nbdnet_uri_port (const struct vm *vm, int port, const char *export);

/* A port of the VM's nbd-ports for another server of ours (the delta
 * view's nbdkit), from the same daemon-wide table: -1 if none is free.
 * Give it back with nbdnet_port_give once that server is stopped.
 */
int nbdnet_port_take (const struct vm *vm);
void nbdnet_port_give (int port);
/* Fill in what a client needs for TLS (a->tls...).  These three return
 * 0, or -1 if out of memory.
 */
int nbdnet_describe (const struct vm *vm, struct backup_answer *a);
/* The begin answer only: the generated PSK key. */
int nbdnet_add_secret (const struct vm *vm, struct backup_answer *a);
/* For pullbackd's own reads of the export (GET .../extents), never for a
 * client (api/ never renders it): the keys file QEMU reads
 * (client_psk_file), or nbd-tls-x509-dir (client_certs, which must then
 * hold client-cert.pem and client-key.pem too when verify-peer is on),
 * or why pullbackd cannot read (client_unavailable).
 */
int nbdnet_add_client (const struct vm *vm, struct backup_answer *a);
#define NBDNET_NO_CLIENT_CERT                                                 \
  "QEMU asks clients for a certificate (nbd-tls-verify-peer) and "            \
  "nbd-tls-x509-dir has no client-cert.pem and client-key.pem for "           \
  "pullbackd's own reads"

/* nbdtls.c: the TLS objects (and keys file) of the server, and their
 * removal (what is not there is fine).
 */
int nbdtls_create (struct vm *vm, struct reply *r);
void nbdtls_remove (struct vm *vm);

#endif /* PULLBACK_NBDNET_H */
