/* pullback: the set of registered VMs.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Lookups hold the read lock for as long as they use the VM (through
 * registry_call); removal takes the write lock, so a VM is never freed
 * under a request.
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
/* Stop every VM (ending backups) and free them. */
void registry_shutdown (struct registry *reg);

/* Register the VMs of CONF and those persisted through the API. */
int registry_load (struct registry *reg, const struct config *conf);
/* SIGHUP: add VMs new in CONF, remove config VMs it no longer has. */
void registry_reload (struct registry *reg, const struct config *conf);

/* Run OP on VM NAME; 404 if there is none. */
void registry_call (struct registry *reg, const char *name, enum vm_op op,
                    json_t *args, struct reply *r);

/* Prometheus text for GET /metrics (a malloc'd string). */
char *registry_metrics (struct registry *reg);

/* The REST operations on the set itself. */
void registry_list (struct registry *reg, struct reply *r);
void registry_register (struct registry *reg, const json_t *args,
                        struct reply *r);
void registry_unregister (struct registry *reg, const char *name,
                          struct reply *r);

#endif /* PULLBACK_REGISTRY_H */
