/* pullback: the engine's answers rendered as the API's JSON.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_RENDER_H
#define PULLBACK_RENDER_H

#include "reply.h"

/* If R carries a typed answer (server/answer.h), replace it with its
 * JSON body; out of memory, R becomes a 500.
 */
void api_render (struct reply *r);

#endif /* PULLBACK_RENDER_H */
