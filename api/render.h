/* pullback: the engine's answers rendered as the API's JSON.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_RENDER_H
#define PULLBACK_RENDER_H

#include "answer.h"
#include "reply.h"

/* If R carries a typed answer (server/answer.h), replace it with its
 * JSON body; out of memory, R becomes a 500.
 */
void api_render (struct reply *r);

/* A VM's summary as the API shows it; V's JSON is taken (V->head NULL
 * after).  NULL if out of memory.
 */
json_t *render_vm_brief (struct vm_brief *v);

#endif /* PULLBACK_RENDER_H */
