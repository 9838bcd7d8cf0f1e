/* pullback: the engine's answers in C types, for api/ to render.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A request about a backup, a checkpoint or a VM's disks is answered
 * with a snapshot of the records, taken on the VM's owner thread: deep
 * copies, plus what only the engine can compute (NBD URIs, the delta
 * view's URI, the TLS a client needs).  api/render.c alone turns it
 * into JSON, so no record field is written to JSON in the engine.
 */

#ifndef PULLBACK_ANSWER_H
#define PULLBACK_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "records.h"

enum answer_type
{
  ANSWER_BACKUP = 1,  /* a backup: begin, GET, PATCH */
  ANSWER_CHECKPOINT,  /* one checkpoint: GET, create */
  ANSWER_CHECKPOINTS, /* a page of checkpoints */
  ANSWER_VM,          /* GET /v1/vms/{vm} */
  ANSWER_VMS,         /* GET /v1/vms */
};

/* A VM's summary, published by its owner and readable from any thread
 * (GET /v1/vms, GET /metrics).
 */
struct vm_brief
{
  /* Its registration, status and counts; "backup" is null there,
   * holding the key's place, when the owner published it.
   */
  json_t *head;
  char *backup_id; /* its backup, or NULL */
  enum backup_phase backup_phase;
};

DEFINE_VECTOR_TYPE (vm_brief_vector, struct vm_brief)

void vm_brief_clear (struct vm_brief *v);
void vm_brief_vector_clear (vm_brief_vector *v);

/* What a backup disk's answer needs besides the record. */
struct backup_disk_answer
{
  char *uri;       /* its export's NBD URI while ready, or NULL */
  char *delta_uri; /* nbdkit's delta view of it, or NULL */
  bool delta_tcp;  /* that view is on TCP, with the TLS of the export */
};

struct backup_answer
{
  struct backup *b; /* a deep copy */
  char *vm;
  int64_t scratch_bytes;
  struct backup_disk_answer *disks; /* b->ndisks of them */
  /* On our NBD server on TCP (nbdnet.c): what a client needs for TLS. */
  const char *tls;    /* "off", "x509", "psk"; NULL: not on TCP */
  char *tls_ca_cert;  /* x509: the CA certificate, or NULL */
  char *tls_username; /* psk: the identity, or NULL */
  /* The begin answer only: the generated PSK key, or NULLs. */
  char *psk_username, *psk_key;
  /* Never in an answer: pullbackd's own reads (GET .../extents) over
   * TLS.  At most one is set.
   */
  char *client_psk_file;    /* the keys file QEMU reads */
  char *client_certs;       /* nbd-tls-x509-dir */
  char *client_unavailable; /* why pullbackd cannot read */
};

struct answer
{
  enum answer_type type;
  struct backup_answer backup;   /* ANSWER_BACKUP */
  struct checkpoint *checkpoint; /* ANSWER_CHECKPOINT */
  checkpoint_vector checkpoints; /* ANSWER_CHECKPOINTS: copies */
  char *next;                    /* the last listed when more follow */
  /* ANSWER_VM: the VM's answer but for its records ("disks" and
   * "backup" are null there, holding the keys' places), its disks and
   * the id of its backup (or NULL).
   */
  json_t *vm;
  vm_disk_vector disks;
  char *backup_id;
  vm_brief_vector vms; /* ANSWER_VMS */
};

/* A new empty answer of TYPE; NULL if out of memory. */
struct answer *answer_new (enum answer_type type);
void answer_free (struct answer *a);

#endif /* PULLBACK_ANSWER_H */
