/* pullback: the engine's answers in C types: making and freeing.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdlib.h>

#include "answer.h"

struct answer *
answer_new (enum answer_type type)
{
  struct answer *a = calloc (1, sizeof *a);

  if (a)
    a->type = type;
  return a;
}

static void
backup_answer_clear (struct backup_answer *ba)
{
  for (size_t i = 0; ba->disks && ba->b && i < ba->b->ndisks; i++)
    {
      free (ba->disks[i].uri);
      free (ba->disks[i].delta_uri);
    }
  free (ba->disks);
  backup_free (ba->b);
  free (ba->vm);
  free (ba->tls_ca_cert);
  free (ba->tls_username);
  free (ba->psk_username);
  free (ba->psk_key);
  free (ba->client_psk_file);
  free (ba->client_certs);
  free (ba->client_unavailable);
}

void
vm_brief_clear (struct vm_brief *v)
{
  json_decref (v->head);
  free (v->backup_id);
  v->head = NULL;
  v->backup_id = NULL;
}

void
vm_brief_vector_clear (vm_brief_vector *v)
{
  for (size_t i = 0; i < v->len; i++)
    vm_brief_clear (&v->ptr[i]);
  vm_brief_vector_reset (v);
}

void
answer_free (struct answer *a)
{
  if (a == NULL)
    return;
  backup_answer_clear (&a->backup);
  checkpoint_free (a->checkpoint);
  checkpoint_vector_iter (&a->checkpoints, checkpoint_free);
  checkpoint_vector_reset (&a->checkpoints);
  free (a->next);
  json_decref (a->vm);
  vm_disk_vector_clear (&a->disks);
  free (a->backup_id);
  vm_brief_vector_clear (&a->vms);
  free (a);
}
