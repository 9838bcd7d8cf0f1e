/* pullback: the set of registered VMs.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The lock protects the set only.  A request takes a reference to its VM
 * under the read lock and runs without it, so a slow VM holds up no
 * other; removal marks the VM removing (hidden from requests), stops it
 * without the lock, then takes it out of the set, and the last reference
 * frees it.
 */

#ifndef PULLBACK_REGISTRY_H
#define PULLBACK_REGISTRY_H

#include <pthread.h>

#include "conf.h"
#include "daemon.h"
#include "reply.h"
#include "vector.h"
#include "vm.h"

DEFINE_VECTOR_TYPE (vm_vector, struct vm *)

struct registry
{
  pthread_rwlock_t lock;
  vm_vector vms;
  const struct daemon_ctx *ctx;
};

void registry_init (struct registry *reg, const struct daemon_ctx *ctx);
/* Stop every VM (ending backups) and free them.  -1 if the last state
 * of a VM could not be written.
 */
int registry_shutdown (struct registry *reg);

/* Register the VMs of CONF and those persisted through the API. */
int registry_load (struct registry *reg, const struct config *conf);
/* SIGHUP: add VMs new in CONF, remove config VMs it no longer has,
 * restart those whose settings changed and those out of service.  A VM
 * with an active backup stays as it is (logged), as DELETE /v1/vms/{vm}
 * would refuse it.
 */
void registry_reload (struct registry *reg, const struct config *conf);

/* Run OP on VM NAME; 404 if there is none. */
void registry_call (struct registry *reg, const char *name, enum vm_op op,
                    json_t *args, struct reply *r);

/* A copy of every VM's summary (vm_summary) appended to the empty OUT,
 * for GET /v1/vms and GET /metrics: 0, or -1 if out of memory (OUT
 * empty).
 */
int registry_summaries (struct registry *reg, vm_brief_vector *out);

/* The REST operations on the set itself. */
void registry_list (struct registry *reg, struct reply *r);
void registry_register (struct registry *reg, const json_t *args,
                        struct reply *r);
/* ARGS: {checkpoints: "delete" | "keep"}, see VM_OP_RETIRE. */
void registry_unregister (struct registry *reg, const char *name,
                          const json_t *args, struct reply *r);

#endif /* PULLBACK_REGISTRY_H */
