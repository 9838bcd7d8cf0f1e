/* pullback: the engine's answers rendered as the API's JSON.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The engine answers about backups, checkpoints and a VM's disks in C
 * types (server/answer.h); this file alone writes those records in the
 * API's words.  The credentials of pullbackd's own reads are never
 * rendered.
 */

#include <config.h>

#include "answer.h"
#include "render.h"
#include "status.h"

/* Add to O what a client needs for the TLS of our TCP servers. */
static void
add_tls (const struct backup_answer *ba, json_t *o)
{
  if (o == NULL || ba->tls == NULL)
    return;
  json_object_set_new (o, "tls", json_string (ba->tls));
  if (ba->tls_ca_cert)
    json_object_set_new (o, "tls_ca_cert", json_string (ba->tls_ca_cert));
  if (ba->tls_username)
    json_object_set_new (o, "tls_username", json_string (ba->tls_username));
}

/* The delta view of disk I: {"uri": URI} (over TCP with the TLS fields
 * of "nbd"), {"uri": null, "unavailable": WHY}, or null.
 */
static json_t *
delta_json (const struct backup_answer *ba, size_t i)
{
  const struct backup_disk *d = &ba->b->disks[i];
  const struct backup_disk_answer *da = &ba->disks[i];
  json_t *o;

  if (ba->b->phase != BACKUP_READY)
    return json_null ();
  if (da->delta_uri)
    {
      o = json_pack ("{s:s}", "uri", da->delta_uri);
      if (da->delta_tcp)
        add_tls (ba, o);
      return o;
    }
  if (d->delta_why)
    return json_pack ("{s:n, s:s}", "uri", "unavailable", d->delta_why);
  return json_null ();
}

static json_t *
backup_disk_json (const struct backup_answer *ba, size_t i)
{
  const struct backup_disk *d = &ba->b->disks[i];
  const struct backup_disk_answer *da = &ba->disks[i];
  struct disk_objects obj;
  json_t *nbd = json_null ();

  backup_disk_objects (d, &obj);
  if (ba->b->phase == BACKUP_READY)
    {
      nbd = json_pack ("{s:s, s:s, s:o}", "uri", da->uri, "export", d->name,
                       "dirty_bitmap_context",
                       d->mode == DISK_INCREMENTAL ? json_sprintf (
                           "qemu:dirty-bitmap:%s", obj.tmp_bitmap)
                                                   : json_null ());
      add_tls (ba, nbd);
    }
  return json_pack ("{s:s, s:I, s:s, s:s?, s:o, s:s?, s:o}", "name", d->name,
                    "size", (json_int_t)d->size, "mode",
                    disk_mode_name (d->mode), "reason",
                    disk_reason_name (d->reason), "nbd", nbd, "delta_uri",
                    da->delta_uri, "delta", delta_json (ba, i));
}

static json_t *
backup_json (const struct backup_answer *ba)
{
  const struct backup *b = ba->b;
  json_t *disks = json_array (), *o;

  for (size_t i = 0; i < b->ndisks; i++)
    json_array_append_new (disks, backup_disk_json (ba, i));
  o = json_pack (
      "{s:s, s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:o, s:I, s:s?, s:o}", "id",
      b->id, "vm", ba->vm, "phase", backup_phase_name (b->phase), "checkpoint",
      b->checkpoint, "since", b->since, "created", (json_int_t)b->created,
      "expires", (json_int_t)b->expires, "ttl", (json_int_t)b->ttl,
      "freeze_ms",
      b->freeze_ms >= 0 ? json_integer (b->freeze_ms) : json_null (),
      "scratch_bytes", (json_int_t)ba->scratch_bytes, "reason",
      backup_failure_name (b->failure), "disks", disks);
  /* The generated PSK key: in the begin answer only (the engine sets it
   * there alone).
   */
  if (o && ba->psk_key)
    json_object_set_new (o, "nbd_tls_psk",
                         json_pack ("{s:s, s:s}", "username", ba->psk_username,
                                    "key", ba->psk_key));
  return o;
}

static json_t *
checkpoint_json (const struct checkpoint *cp)
{
  json_t *disks = json_array ();

  for (size_t i = 0; i < cp->ndisks; i++)
    {
      const struct checkpoint_disk *d = &cp->disks[i];

      json_array_append_new (
          disks,
          json_pack ("{s:s, s:s, s:o, s:s, s:s?}", "name", d->disk, "bitmap",
                     d->bitmap, "granularity",
                     d->granularity >= 0 ? json_integer (d->granularity)
                                         : json_null (),
                     "state", d->broken != REASON_NONE ? "broken" : "ok",
                     "reason", disk_reason_name (d->broken)));
    }
  return json_pack ("{s:s, s:I, s:s?, s:o}", "name", cp->name, "created",
                    (json_int_t)cp->created, "parent", cp->parent, "disks",
                    disks);
}

static json_t *
checkpoints_json (const struct answer *a)
{
  json_t *list = json_array ();

  for (size_t i = 0; i < a->checkpoints.len; i++)
    json_array_append_new (list, checkpoint_json (a->checkpoints.ptr[i]));
  return json_pack ("{s:o, s:o}", "checkpoints", list, "next",
                    a->next ? json_string (a->next) : json_null ());
}

static json_t *
disks_json (const vm_disk_vector *disks)
{
  json_t *a = json_array ();

  for (size_t i = 0; i < disks->len; i++)
    {
      const struct vm_disk *d = &disks->ptr[i];

      json_array_append_new (a, json_pack ("{s:s, s:s, s:s, s:I, s:b}", "name",
                                           d->name, "node", d->node, "format",
                                           d->format, "size",
                                           (json_int_t)d->size, "ro", d->ro));
    }
  return a;
}

static json_t *
vm_json (struct answer *a)
{
  json_t *o = a->vm;

  /* "disks" and "backup" hold their places in the engine's object:
   * replaced there, they keep them.
   */
  a->vm = NULL;
  if (o
      && (json_object_set_new (o, "disks", disks_json (&a->disks)) == -1
          || json_object_set_new (o, "backup",
                                  a->backup_id ? json_string (a->backup_id)
                                               : json_null ())
                 == -1))
    {
      json_decref (o);
      return NULL;
    }
  return o;
}

json_t *
render_vm_brief (struct vm_brief *v)
{
  json_t *o = v->head;

  /* Published by the owner, "backup" holds its place; the fallback
   * before the first summary has no such key.
   */
  v->head = NULL;
  if (o && json_object_get (o, "backup")
      && json_object_set_new (o, "backup",
                              v->backup_id ? json_pack (
                                  "{s:s, s:s}", "id", v->backup_id, "phase",
                                  backup_phase_name (v->backup_phase))
                                           : json_null ())
             == -1)
    {
      json_decref (o);
      return NULL;
    }
  return o;
}

static json_t *
vms_json (struct answer *a)
{
  json_t *list = json_array ();

  for (size_t i = 0; list && i < a->vms.len; i++)
    if (json_array_append_new (list, render_vm_brief (&a->vms.ptr[i])) == -1)
      {
        json_decref (list);
        return NULL;
      }
  return json_pack ("{s:o}", "vms", list);
}

static json_t *
answer_json (struct answer *a)
{
  switch (a->type)
    {
    case ANSWER_BACKUP:
      return backup_json (&a->backup);
    case ANSWER_CHECKPOINT:
      return checkpoint_json (a->checkpoint);
    case ANSWER_CHECKPOINTS:
      return checkpoints_json (a);
    case ANSWER_VM:
      return vm_json (a);
    case ANSWER_VMS:
      return vms_json (a);
    }
  return NULL;
}

void
api_render (struct reply *r)
{
  struct answer *a = r->answer;
  json_t *body;
  bool created = r->created;

  if (a == NULL)
    return;
  body = answer_json (a);
  r->answer = NULL;
  answer_free (a);
  if (body == NULL)
    {
      http_error (r, 500, "internal-error", "out of memory");
      return;
    }
  reply_ok (r, body);
  r->created = created;
}
