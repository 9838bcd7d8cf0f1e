/* pullback: the engine's records, in C types.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Backups, checkpoints and the VM's disks are structs here; JSON exists
 * only at the two edges: the state file (state-backup.c,
 * state-checkpoint.c) and the API answer.
 * The QEMU objects of a backup disk are named from its index (engine.h)
 * and not stored.
 */

#ifndef PULLBACK_RECORDS_H
#define PULLBACK_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "names.h"
#include "vector.h"

enum backup_phase
{
  BACKUP_STARTING, /* recorded, not yet readable */
  BACKUP_READY,    /* exported */
  BACKUP_FAILED,   /* torn down; kept visible with its reason */
};

enum disk_mode
{
  DISK_FULL,
  DISK_INCREMENTAL,
};

/* Why a disk is exported full though an incremental was asked, which is
 * also why a checkpoint is broken on a disk.  The words are the API's.
 */
enum disk_reason
{
  REASON_NONE,
  REASON_DISK_NOT_QCOW2,
  REASON_DISK_READ_ONLY,
  REASON_DISK_ADDED,
  REASON_DISK_MISSING,
  REASON_CHECKPOINT_MISSING,
  REASON_BITMAP_INCONSISTENT,
  REASON_BITMAP_NOT_RECORDING,
};

/* Why a backup failed: it is over without a request. */
enum backup_failure
{
  FAILURE_NONE,
  FAILURE_QEMU_SHUTDOWN,
  FAILURE_QEMU_DISCONNECTED,
  FAILURE_SCRATCH_FULL,
  FAILURE_EXPORT_DELETED,
  FAILURE_JOB_ERROR,
  FAILURE_JOB_ENDED,
};

struct backup_disk
{
  char *name;   /* the disk's name: the export name */
  char *node;   /* the disk's format node */
  char *format; /* its driver */
  int64_t size;
  enum disk_mode mode;
  enum disk_reason reason; /* REASON_NONE unless full though asked */
  int index;               /* names its QEMU objects: pb-fleece-INDEX ... */
  bool checkpoint_bitmap;  /* the new checkpoint's bitmap is made here */
  char *scratch;           /* the scratch file's path */
  bool gone;               /* its export is confirmed deleted */
  pid_t delta_pid;         /* nbdkit serving its delta view, or 0 */
  int delta_port;          /* its TCP port (nbdnet's table), or 0 */
  const char *delta_why;   /* why no delta view runs (static), or NULL */
};

struct backup
{
  char *id;
  enum backup_phase phase;
  char *checkpoint; /* the checkpoint it creates, or NULL */
  char *since;      /* the checkpoint it is incremental from, or NULL */
  int64_t created, expires, ttl;
  int64_t freeze_ms; /* -1: not quiesced */
  enum backup_failure failure;
  bool txn_done; /* the transaction may have been applied */
  /* Each scratch file node was added inside its overlay's blockdev-add
   * (one command per disk instead of two): it goes with the overlay.
   */
  bool scratch_nested;
  bool drop_checkpoint; /* in the cleanup list: remove its checkpoint too */
  size_t ndisks;
  struct backup_disk *disks;
};

/* New backup with NDISKS zeroed disks; NULL if out of memory. */
struct backup *backup_new (size_t ndisks);
void backup_free (struct backup *b);
/* A deep copy; NULL if out of memory. */
struct backup *backup_copy (const struct backup *b);

/* The disk called NAME, or NULL. */
struct backup_disk *backup_disk_find (const struct backup *b,
                                      const char *name);

/* The names of a backup disk's QEMU objects (engine.h lists them): the
 * prefix and the disk's index, and the temporary bitmap of an
 * incremental, "backup-<disk>".
 */
struct disk_objects
{
  char fleece[32];
  char cbw[32];
  char job[32];
  char export_id[32];
  char scratch_node[32];
  char mkfile_job[32];
  char mkqcow2_job[32];
  char tmp_bitmap[NAME_MAX_LEN + 16];
};

/* The one place that builds them. */
void backup_disk_objects (const struct backup_disk *d, struct disk_objects *o);

const char *backup_phase_name (enum backup_phase p);
const char *disk_mode_name (enum disk_mode m);
/* NULL for REASON_NONE. */
const char *disk_reason_name (enum disk_reason r);
/* NULL for FAILURE_NONE. */
const char *backup_failure_name (enum backup_failure f);
/* Parse the words back (state files): 0, or -1 if unknown. */
int backup_phase_parse (const char *s, enum backup_phase *p);
int disk_mode_parse (const char *s, enum disk_mode *m);
int disk_reason_parse (const char *s, enum disk_reason *r);
int backup_failure_parse (const char *s, enum backup_failure *f);

DEFINE_VECTOR_TYPE (backup_vector, struct backup *)

/* A disk of the VM as QEMU shows it (disks.c). */
struct vm_disk
{
  char *name;   /* the device's id, or the node's name without devices */
  char *node;   /* its top format node */
  char *format; /* its driver ("unknown" if QEMU did not say) */
  int64_t size;
  bool ro;
};

DEFINE_VECTOR_TYPE (vm_disk_vector, struct vm_disk)

void vm_disk_vector_clear (vm_disk_vector *v);
/* The disk called NAME, or NULL. */
const struct vm_disk *vm_disk_find (const vm_disk_vector *v, const char *name);
/* Copy FROM to the empty TO: 0, or -1 if out of memory (TO empty). */
int vm_disk_vector_copy (const vm_disk_vector *from, vm_disk_vector *to);

/* A checkpoint's bitmap on one disk. */
struct checkpoint_disk
{
  char *disk;              /* the disk's name */
  char *node;              /* the node it was made on */
  char *bitmap;            /* the bitmap's name (the checkpoint's) */
  int64_t granularity;     /* as QEMU chose it, or -1: unknown */
  enum disk_reason broken; /* REASON_NONE while it records */
};

struct checkpoint
{
  char *name;
  int64_t created;
  char *parent; /* the checkpoint before it, or NULL */
  size_t ndisks;
  struct checkpoint_disk *disks;
};

/* New checkpoint with NDISKS zeroed disks (granularity -1); NULL if out
 * of memory.
 */
struct checkpoint *checkpoint_new (size_t ndisks);
void checkpoint_free (struct checkpoint *cp);
/* A deep copy; NULL if out of memory. */
struct checkpoint *checkpoint_copy (const struct checkpoint *cp);
/* Fill D with copies of the names (not broken, granularity unknown):
 * 0, or -1 if out of memory.
 */
int checkpoint_disk_init (struct checkpoint_disk *d, const char *disk,
                          const char *node, const char *bitmap);

#define CLEANUP_CHECKPOINT __attribute__ ((cleanup (cleanup_checkpoint)))
void cleanup_checkpoint (struct checkpoint **cp);

DEFINE_VECTOR_TYPE (checkpoint_vector, struct checkpoint *)
DEFINE_VECTOR_TYPE (name_vector, char *)

/* A deleted checkpoint and the one listed before it (or NULL): paging
 * with after=NAME goes on where NAME stood.
 */
struct deleted_checkpoint
{
  char *name;
  char *before;
};

DEFINE_VECTOR_TYPE (deleted_vector, struct deleted_checkpoint)

/* Every checkpoint record of a VM. */
struct checkpoint_set
{
  checkpoint_vector list;     /* creation order: parents first */
  deleted_vector deleted;     /* oldest first */
  struct checkpoint *pending; /* creation begun, not recorded; or NULL */
  bool deleting;              /* a deletion of these names was begun: */
  name_vector deleting_names;
};

void checkpoint_set_clear (struct checkpoint_set *s);
void name_vector_clear (name_vector *v);

#define CLEANUP_BACKUP __attribute__ ((cleanup (cleanup_backup)))
void cleanup_backup (struct backup **b);

#endif /* PULLBACK_RECORDS_H */
