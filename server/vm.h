/* pullback: a registered VM and the thread that owns it.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Each VM has one owner thread.  It alone holds the VM's QMP connection,
 * its state document and its backup.  Other threads (the HTTP server)
 * hand it requests with vm_call and wait for the reply; QMP events are
 * handled on the same thread, so nothing about a VM is ever done twice
 * at once, and a slow or dead QEMU blocks only its own VM.
 */

#ifndef PULLBACK_VM_H
#define PULLBACK_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qmp.h"
#include "answer.h"
#include "qemuuser.h"
#include "records.h"
#include "reply.h"

struct daemon_ctx; /* settings shared by all VMs (server/daemon.h) */
struct nbdnet;     /* the NBD server on TCP (server/nbdnet.h) */

enum vm_op
{
  VM_OP_GET,               /* the VM: disks, connection, backup */
  VM_OP_CHECKPOINT_LIST,   /* args: limit, after */
  VM_OP_CHECKPOINT_CREATE, /* args: name? */
  VM_OP_CHECKPOINT_GET,    /* args: name */
  VM_OP_CHECKPOINT_DELETE, /* args: name */
  VM_OP_BACKUP_BEGIN,      /* args: checkpoint?, since?, disks?, ttl? */
  VM_OP_BACKUP_GET,        /* args: id */
  VM_OP_BACKUP_PATCH,      /* args: id, ttl */
  VM_OP_BACKUP_END,        /* args: id */
  VM_OP_RETIRE, /* unregister; args: checkpoints = "delete" | "keep" |
                   absent, reload (bool).  409 if a backup is active, or
                   if checkpoints exist and neither delete nor keep was
                   asked; else 204 and every later request is answered
                   404 (503 vm-reloading with reload) */
};

struct vm_request
{
  enum vm_op op;
  json_t *args; /* borrowed from the caller */
  struct reply reply;
  bool done;
  struct vm_request *next;
};

struct vm
{
  /* Fixed at creation. */
  char *name;
  char *qmp_path;
  char *qga_path;        /* NULL: none */
  char *scratch_dir;     /* where fleece overlays go */
  char *nbd_adopt;       /* an NBD server QEMU already runs, or NULL */
  struct nbdnet *nbdnet; /* nbd-transport...; NULL: unix (registry.c) */
  bool from_api;         /* registered through POST /v1/vms (persisted) */
  /* Why the state file could not be used (it names the file), or NULL.
   * Such a VM is out of service: it never touches QEMU and never writes
   * its state file, which is kept for the administrator.
   */
  char *state_error;
  const struct daemon_ctx *ctx;

  /* Request queue, protected by lock. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct vm_request *head, *tail;
  bool stopping;
  unsigned refs;           /* the registry's, and one per registry_call */
  struct vm_brief summary; /* name, status, backup: published by the owner */
  int wake[2];             /* a pipe: written to wake the owner */
  pthread_t thread;
  bool started;

  /* Protected by the registry's lock. */
  bool removing; /* being stopped: hidden from requests */

  /* Owned by the thread. */
  struct qmp *qmp;
  struct qmp_schema *schema;
  struct qemu_user qemu_user; /* who QEMU runs as, since it connected */
  /* The persisted document (registration, quiesce marker), but for the
   * records, which join it in the file only:
   */
  json_t *state;
  struct checkpoint_set cps; /* the checkpoints */
  struct backup *backup;     /* the active (or failed) backup, or NULL */
  backup_vector cleanup;     /* torn down, QEMU has not confirmed it yet */
  vm_disk_vector disks;      /* as last discovered */
  int64_t next_connect_ms;
  bool up;          /* connected as far as the owner has noticed */
  bool retired;     /* VM_OP_RETIRE succeeded */
  bool reloading;   /* retired to be replaced: answer 503, not 404 */
  bool keep_state;  /* retired with checkpoints=keep */
  bool save_failed; /* the state in memory is newer than the file */
  int64_t save_retry_ms;
  bool final_save_failed; /* the last save, at exit, failed */
  char last_error[512];
  bool nbd_ours;           /* we started QEMU's NBD server */
  int64_t cleanup_next_ms; /* no cleanup retry before (monotonic) */
  bool incoming;           /* QEMU waits for an incoming migration */
  char nbd_socket[256];
  int64_t thaw_next_ms; /* no thaw retry before (monotonic) */
  int thaw_backoff_ms;  /* the last wait between thaw retries */
};

/* Create a VM from its settings and load its state.  Returns NULL with
 * the reason in ERR.
 */
/* Put VM out of service (its state cannot be used), with the reason,
 * which names its state file.  -1 if out of memory.
 */
int vm_out_of_service (struct vm *vm, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

struct vm *vm_new (const struct daemon_ctx *ctx, const char *name,
                   const char *qmp, const char *qga, const char *scratch,
                   const char *nbd, bool from_api, char *err, size_t errlen);

/* Start the owner thread. */
int vm_start (struct vm *vm);

/* The VM's run directory, RUN-DIR/vms/NAME, into BUF: 0, or -1 if it
 * does not fit.
 */
int vm_run_dir (const struct vm *vm, char *buf, size_t len);

/* Ask the owner to end any backup, save state and exit, without waiting
 * (requests made after that are answered 503); wait for it to exit.
 * Several VMs stop at once when all are asked before any is waited for.
 */
void vm_request_stop (struct vm *vm);
void vm_join (struct vm *vm);

/* vm_request_stop, then vm_join. */
void vm_stop (struct vm *vm);

/* vm_stop, then free the VM. */
void vm_stop_and_free (struct vm *vm);

/* Take a reference (vm_new gives the first), or drop one: the last
 * vm_unref stops and frees the VM.
 */
void vm_ref (struct vm *vm);
void vm_unref (struct vm *vm);

/* Run OP with ARGS on the owner thread and wait for the reply, which the
 * caller must reply_clear.
 */
void vm_call (struct vm *vm, enum vm_op op, json_t *args, struct reply *out);

/* A copy of the VM's summary (name, qmp, status, backup, ...) in OUT,
 * readable from any thread without waiting for the owner: 0, or -1 if
 * out of memory (OUT empty).
 */
int vm_summary (struct vm *vm, struct vm_brief *out);

/* The registration as JSON (name, qmp, qga, scratch_dir, nbd). */
json_t *vm_registration (const struct vm *vm);

#endif /* PULLBACK_VM_H */
