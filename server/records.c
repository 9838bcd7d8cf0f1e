/* pullback: the engine's records: making, copying, freeing, naming.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "records.h"

struct backup *
backup_new (size_t ndisks)
{
  struct backup *b = calloc (1, sizeof *b);

  if (b == NULL)
    return NULL;
  b->freeze_ms = -1;
  b->disks = calloc (ndisks ? ndisks : 1, sizeof *b->disks);
  if (b->disks == NULL)
    {
      free (b);
      return NULL;
    }
  b->ndisks = ndisks;
  return b;
}

void
backup_free (struct backup *b)
{
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->ndisks; i++)
    {
      free (b->disks[i].name);
      free (b->disks[i].node);
      free (b->disks[i].format);
      free (b->disks[i].scratch);
    }
  free (b->disks);
  free (b->id);
  free (b->checkpoint);
  free (b->since);
  free (b);
}

void
cleanup_backup (struct backup **b)
{
  backup_free (*b);
}

/* strdup that keeps NULL; sets *FAILED when out of memory. */
static char *
dup (const char *s, bool *failed)
{
  char *c;

  if (s == NULL)
    return NULL;
  c = strdup (s);
  if (c == NULL)
    *failed = true;
  return c;
}

struct backup *
backup_copy (const struct backup *b)
{
  struct backup *c = backup_new (b->ndisks);
  bool failed = false;

  if (c == NULL)
    return NULL;
  for (size_t i = 0; i < b->ndisks; i++)
    {
      struct backup_disk *d = &c->disks[i];

      *d = b->disks[i];
      d->name = dup (b->disks[i].name, &failed);
      d->node = dup (b->disks[i].node, &failed);
      d->format = dup (b->disks[i].format, &failed);
      d->scratch = dup (b->disks[i].scratch, &failed);
      d->delta_pid = 0; /* a process belongs to one record */
      d->delta_port = 0;
    }
  c->id = dup (b->id, &failed);
  c->phase = b->phase;
  c->checkpoint = dup (b->checkpoint, &failed);
  c->since = dup (b->since, &failed);
  c->created = b->created;
  c->expires = b->expires;
  c->ttl = b->ttl;
  c->freeze_ms = b->freeze_ms;
  c->failure = b->failure;
  c->txn_done = b->txn_done;
  c->scratch_nested = b->scratch_nested;
  c->drop_checkpoint = b->drop_checkpoint;
  if (failed)
    {
      backup_free (c);
      return NULL;
    }
  return c;
}

struct backup_disk *
backup_disk_find (const struct backup *b, const char *name)
{
  for (size_t i = 0; b && name && i < b->ndisks; i++)
    if (strcmp (b->disks[i].name, name) == 0)
      return &b->disks[i];
  return NULL;
}

void
backup_disk_objects (const struct backup_disk *d, struct disk_objects *o)
{
  int i = d->index;

  snprintf (o->fleece, sizeof o->fleece, PB_FLEECE_PREFIX "%d", i);
  snprintf (o->cbw, sizeof o->cbw, PB_CBW_PREFIX "%d", i);
  snprintf (o->job, sizeof o->job, PB_JOB_PREFIX "%d", i);
  snprintf (o->export_id, sizeof o->export_id, PB_EXPORT_PREFIX "%d", i);
  snprintf (o->scratch_node, sizeof o->scratch_node, PB_SCRATCH_PREFIX "%d",
            i);
  snprintf (o->mkfile_job, sizeof o->mkfile_job, PB_MKJOB_PREFIX "file-%d", i);
  snprintf (o->mkqcow2_job, sizeof o->mkqcow2_job, PB_MKJOB_PREFIX "qcow2-%d",
            i);
  snprintf (o->tmp_bitmap, sizeof o->tmp_bitmap, PB_TMP_BITMAP_PREFIX "%s",
            d->name);
}

void
vm_disk_vector_clear (vm_disk_vector *v)
{
  for (size_t i = 0; i < v->len; i++)
    {
      free (v->ptr[i].name);
      free (v->ptr[i].node);
      free (v->ptr[i].format);
    }
  vm_disk_vector_reset (v);
}

const struct vm_disk *
vm_disk_find (const vm_disk_vector *v, const char *name)
{
  for (size_t i = 0; name && i < v->len; i++)
    if (strcmp (v->ptr[i].name, name) == 0)
      return &v->ptr[i];
  return NULL;
}

int
vm_disk_vector_copy (const vm_disk_vector *from, vm_disk_vector *to)
{
  bool failed = false;

  for (size_t i = 0; i < from->len; i++)
    {
      const struct vm_disk *f = &from->ptr[i];
      struct vm_disk d = { .size = f->size, .ro = f->ro };

      d.name = dup (f->name, &failed);
      d.node = dup (f->node, &failed);
      d.format = dup (f->format, &failed);
      if (failed || vm_disk_vector_append (to, d) == -1)
        {
          free (d.name);
          free (d.node);
          free (d.format);
          vm_disk_vector_clear (to);
          return -1;
        }
    }
  return 0;
}

struct checkpoint *
checkpoint_new (size_t ndisks)
{
  struct checkpoint *cp = calloc (1, sizeof *cp);

  if (cp == NULL)
    return NULL;
  cp->disks = calloc (ndisks ? ndisks : 1, sizeof *cp->disks);
  if (cp->disks == NULL)
    {
      free (cp);
      return NULL;
    }
  cp->ndisks = ndisks;
  for (size_t i = 0; i < ndisks; i++)
    cp->disks[i].granularity = -1;
  return cp;
}

void
checkpoint_free (struct checkpoint *cp)
{
  if (cp == NULL)
    return;
  for (size_t i = 0; i < cp->ndisks; i++)
    {
      free (cp->disks[i].disk);
      free (cp->disks[i].node);
      free (cp->disks[i].bitmap);
    }
  free (cp->disks);
  free (cp->name);
  free (cp->parent);
  free (cp);
}

struct checkpoint *
checkpoint_copy (const struct checkpoint *cp)
{
  struct checkpoint *c = checkpoint_new (cp->ndisks);
  bool failed = false;

  if (c == NULL)
    return NULL;
  for (size_t i = 0; i < cp->ndisks; i++)
    {
      struct checkpoint_disk *d = &c->disks[i];

      *d = cp->disks[i];
      d->disk = dup (cp->disks[i].disk, &failed);
      d->node = dup (cp->disks[i].node, &failed);
      d->bitmap = dup (cp->disks[i].bitmap, &failed);
    }
  c->name = dup (cp->name, &failed);
  c->created = cp->created;
  c->parent = dup (cp->parent, &failed);
  if (failed)
    {
      checkpoint_free (c);
      return NULL;
    }
  return c;
}

int
checkpoint_disk_init (struct checkpoint_disk *d, const char *disk,
                      const char *node, const char *bitmap)
{
  d->disk = strdup (disk);
  d->node = strdup (node);
  d->bitmap = strdup (bitmap);
  d->granularity = -1;
  d->broken = REASON_NONE;
  return d->disk && d->node && d->bitmap ? 0 : -1;
}

void
cleanup_checkpoint (struct checkpoint **cp)
{
  checkpoint_free (*cp);
}

void
name_vector_clear (name_vector *v)
{
  for (size_t i = 0; i < v->len; i++)
    free (v->ptr[i]);
  name_vector_reset (v);
}

void
checkpoint_set_clear (struct checkpoint_set *s)
{
  checkpoint_vector_iter (&s->list, checkpoint_free);
  checkpoint_vector_reset (&s->list);
  for (size_t i = 0; i < s->deleted.len; i++)
    {
      free (s->deleted.ptr[i].name);
      free (s->deleted.ptr[i].before);
    }
  deleted_vector_reset (&s->deleted);
  checkpoint_free (s->pending);
  s->pending = NULL;
  s->deleting = false;
  name_vector_clear (&s->deleting_names);
}

/* ---------------------------------------------------------------- */

/* The words of each enum, by value. */
static const char *const phase_names[] = {
  [BACKUP_STARTING] = "starting",
  [BACKUP_READY] = "ready",
  [BACKUP_FAILED] = "failed",
};
static const char *const mode_names[] = {
  [DISK_FULL] = "full",
  [DISK_INCREMENTAL] = "incremental",
};
static const char *const reason_names[] = {
  [REASON_NONE] = NULL,
  [REASON_DISK_NOT_QCOW2] = "disk-not-qcow2",
  [REASON_DISK_READ_ONLY] = "disk-read-only",
  [REASON_DISK_ADDED] = "disk-added",
  [REASON_DISK_MISSING] = "disk-missing",
  [REASON_CHECKPOINT_MISSING] = "checkpoint-missing",
  [REASON_BITMAP_INCONSISTENT] = "bitmap-inconsistent",
  [REASON_BITMAP_NOT_RECORDING] = "bitmap-not-recording",
};
static const char *const failure_names[] = {
  [FAILURE_NONE] = NULL,
  [FAILURE_QEMU_SHUTDOWN] = "qemu-shutdown",
  [FAILURE_QEMU_DISCONNECTED] = "qemu-disconnected",
  [FAILURE_SCRATCH_FULL] = "scratch-full",
  [FAILURE_EXPORT_DELETED] = "export-deleted",
  [FAILURE_JOB_ERROR] = "job-error",
  [FAILURE_JOB_ENDED] = "job-ended",
};

#define NAMES(t) (sizeof (t) / sizeof (t)[0])

static const char *
name_of (const char *const *names, size_t n, unsigned v)
{
  return v < n ? names[v] : NULL;
}

static int
parse (const char *const *names, size_t n, const char *s, unsigned *v)
{
  for (unsigned i = 0; s && i < n; i++)
    if (names[i] && strcmp (names[i], s) == 0)
      {
        *v = i;
        return 0;
      }
  return -1;
}

const char *
backup_phase_name (enum backup_phase p)
{
  return name_of (phase_names, NAMES (phase_names), p);
}

const char *
disk_mode_name (enum disk_mode m)
{
  return name_of (mode_names, NAMES (mode_names), m);
}

const char *
disk_reason_name (enum disk_reason r)
{
  return name_of (reason_names, NAMES (reason_names), r);
}

const char *
backup_failure_name (enum backup_failure f)
{
  return name_of (failure_names, NAMES (failure_names), f);
}

int
backup_phase_parse (const char *s, enum backup_phase *p)
{
  unsigned v;

  if (parse (phase_names, NAMES (phase_names), s, &v) == -1)
    return -1;
  *p = (enum backup_phase)v;
  return 0;
}

int
disk_mode_parse (const char *s, enum disk_mode *m)
{
  unsigned v;

  if (parse (mode_names, NAMES (mode_names), s, &v) == -1)
    return -1;
  *m = (enum disk_mode)v;
  return 0;
}

int
disk_reason_parse (const char *s, enum disk_reason *r)
{
  unsigned v;

  if (parse (reason_names, NAMES (reason_names), s, &v) == -1)
    return -1;
  *r = (enum disk_reason)v;
  return 0;
}

int
backup_failure_parse (const char *s, enum backup_failure *f)
{
  unsigned v;

  if (parse (failure_names, NAMES (failure_names), s, &v) == -1)
    return -1;
  *f = (enum backup_failure)v;
  return 0;
}
