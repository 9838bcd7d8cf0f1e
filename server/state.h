/* pullback: the state directory, one JSON file per VM.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * <state-dir>/vms/<vm>.json holds a VM's registration, its checkpoints
 * and its active backup.  The VM id is validated before it becomes part
 * of a path; no other user-given name ever does.  Every write goes to a
 * temporary file that is fsync'd and renamed over the old one, and then
 * the directory is fsync'd: a crash leaves the old or the new file,
 * never a torn one.
 */

#ifndef PULLBACK_STATE_H
#define PULLBACK_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The format of the files this version writes ("version" in each).
 * Files without a version are version 1.
 */
#define STATE_VERSION 1

/* Create <dir>/vms (mode 0700) if needed and remove temporary files a
 * crash left there.  Returns -1 with the reason in ERR.
 */
int state_init (const char *dir, char *err, size_t errlen);

/* Atomically replace the state of VM with DOC. */
int state_save (const char *dir, const char *vm, const json_t *doc, char *err,
                size_t errlen);

/* Load the state of VM: a new reference, or NULL with *ERR empty if there
 * is none, or NULL with the reason in ERR.
 */
json_t *state_load (const char *dir, const char *vm, char *err, size_t errlen);

/* Check the shape of DOC, the state of VM, as state_load returned it:
 * 0, or -1 with what is wrong in ERR (state-check.c).
 */
int state_check (const json_t *doc, const char *vm, char *err, size_t errlen);

struct backup;

/* A backup record as the state file holds it (state-backup.c); with
 * CLEANUP, as an entry of the cleanup list.
 */
json_t *state_backup_to_json (const struct backup *b, bool cleanup);
/* Read one back, checking it (WHERE names it in the message): NULL with
 * the problem in ERR.
 */
struct backup *state_backup_from_json (const json_t *o, const char *vm,
                                       const char *where, char *err,
                                       size_t errlen);

struct checkpoint_set;

/* The checkpoint records of the state document DOC ("checkpoints",
 * "deleted", "checkpoint_pending", "checkpoint_deleting"), checked as
 * they are read, into S (empty): 0, or -1 with the problem in ERR and S
 * left empty (state-checkpoint.c).
 */
int state_checkpoints_from_json (const json_t *doc, struct checkpoint_set *s,
                                 char *err, size_t errlen);
/* Set them in DOC: 0, or -1 if out of memory. */
int state_checkpoints_to_json (json_t *doc, const struct checkpoint_set *s);

/* Keep the state file of VM for the administrator, renamed aside to
 * <vm>.json.rejected-<seconds since the epoch>; its new name goes to
 * NEWNAME.  No error if there is none.
 */
int state_set_aside (const char *dir, const char *vm, char *newname,
                     size_t len, char *err, size_t errlen);

/* Remove the state of VM (no error if there is none). */
int state_remove (const char *dir, const char *vm, char *err, size_t errlen);

/* Call FN for each VM with a state file.  Files whose names are not
 * valid VM ids are ignored.
 */
int state_foreach (const char *dir, void (*fn) (const char *vm, void *opaque),
                   void *opaque, char *err, size_t errlen);

#endif /* PULLBACK_STATE_H */
