/* pullback: the engine's internal interfaces, between the files that run
 * on a VM's owner thread.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Names the daemon gives QEMU objects, so a restart can find what a crash
 * left behind (for the disk at index I of a backup):
 *   fleece overlay node  pb-fleece-I     copy-before-write filter  pb-cbw-I
 *   backup job           pb-job-I        NBD export id             pb-exp-I
 *   scratch file node    pb-scratch-I    blockdev-create jobs      pb-mkfile-I,
 *                                                                  pb-mkqcow2-I
 *   exported bitmap      backup-<disk>   (libvirt's name; created only
 *                                          after checking it is free)
 *   scratch file         <scratch>/pullback-<vm>.I.qcow2
 */

#ifndef PULLBACK_ENGINE_H
#define PULLBACK_ENGINE_H

#include <stdbool.h>

#include <jansson.h>

#include "reply.h"
#include "vm.h"

#define PB_FLEECE_PREFIX "pb-fleece-"
#define PB_CBW_PREFIX "pb-cbw-"
#define PB_JOB_PREFIX "pb-job-"
#define PB_EXPORT_PREFIX "pb-exp-"
#define PB_SCRATCH_PREFIX "pb-scratch-"
#define PB_MKJOB_PREFIX "pb-mk" /* pb-mkfile-I, pb-mkqcow2-I */
#define PB_TMP_BITMAP_PREFIX "backup-"
#define PB_NBD_FDNAME "pb-nbd-listen"

/* vm.c */
int vm_save (struct vm *vm);
/* 0 if QEMU runs (or has no run state); while it waits for an incoming
 * migration, -1 with R set to 409 vm-migrating.  When the migration has
 * arrived, the disk and checkpoint checks skipped at connect run first.
 */
int vm_require_active (struct vm *vm, struct reply *r);
json_t *vm_qmp (struct vm *vm, const char *cmd, json_t *args,
                struct qmp_error *err);
/* Run the commands of B pipelined (qmp_batch_run), then free B: 0, or
 * -1 with ERR and the index of the first that failed in *FAILED.
 */
int vm_qmp_batch (struct vm *vm, struct qmp_batch *b, size_t *failed,
                  struct qmp_error *err);
/* Run CMD for its effect, treating "not found" as done and logging any
 * other failure: for teardown steps.  Returns 0 (done or not found) or -1.
 */
int vm_qmp_quietly (struct vm *vm, const char *cmd, json_t *args);
int64_t now_seconds (void);
/* The string member KEY of O (a QMP reply, a request's arguments), or
 * NULL.
 */
static inline const char *
json_str (const json_t *o, const char *key)
{
  return json_string_value (json_object_get (o, key));
}
/* Is QMP connected (as far as the owner knows)? */
bool vm_connected (const struct vm *vm);
/* connecting (no answer yet, and no failure), connected, disconnected
 * (with vm->last_error), or state-error (out of service); and the
 * reason for a status other than connected, or NULL.
 */
const char *vm_status (const struct vm *vm);
const char *vm_status_error (const struct vm *vm);
/* Publish the VM's summary for other threads (vm_summary). */
void vm_publish_summary (struct vm *vm);
/* How often a state that could not be written is tried again. */
#define VM_SAVE_RETRY_MS 1000

/* vm-loop.c: the owner thread (vm_start starts it). */
void *vm_thread (void *arg);

/* vm-requests.c: run one request on the owner thread. */
void vm_run_request (struct vm *vm, struct vm_request *req);

/* disks.c: the disks from query-block, or from the top format nodes of
 * query-named-block-nodes when there are no devices, into OUT (emptied
 * first); with BITMAPS, also what bitmaps_query returns, from the same
 * query-named-block-nodes (its answer grows with the disks: on a q35 VM
 * with 16 disks it is 19 KB).  0, or -1 with ERR set if QEMU could not
 * tell.
 */
int disks_discover (struct vm *vm, vm_disk_vector *out, json_t **bitmaps,
                    struct qmp_error *err);
/* {node: {bitmap-name: info}} of every node. */
json_t *bitmaps_query (struct vm *vm, struct qmp_error *err);

/* checkpoints.c.  Reconcile against freshly discovered vm->disks only. */
void checkpoints_reconcile (struct vm *vm, const json_t *bitmaps);
struct checkpoint *checkpoint_find (const struct vm *vm, const char *name);
int checkpoint_list (struct vm *vm, const json_t *args, struct reply *r);
int checkpoint_create (struct vm *vm, const json_t *args, struct reply *r);
int checkpoint_get (struct vm *vm, const json_t *args, struct reply *r);
int checkpoint_delete (struct vm *vm, const json_t *args, struct reply *r);
/* Delete every checkpoint (their bitmaps, then their records). */
int checkpoint_delete_all (struct vm *vm, struct reply *r);
/* Finish a deletion the state file says was begun (a crash, a failed
 * write): 0 when none is left, -1 when QEMU could not be asked.
 */
int checkpoint_settle_deleting (struct vm *vm);
/* A checkpoint whose creation was started but not recorded (a crash, a
 * timeout): remove its bitmaps.  Returns 0 when none is left, -1 when
 * QEMU could not be asked (it stays pending).
 */
int checkpoint_settle_pending (struct vm *vm);
/* Record checkpoint CP (stolen; the granularity of its bitmaps is read
 * from QEMU), its parent the newest one so far; the caller saves the
 * state.  0, or -1 if out of memory (CP is freed).
 */
int checkpoint_append (struct vm *vm, struct checkpoint *cp);
/* Take the newest checkpoint record out if it is NAME (an undone
 * begin): the caller owns it.  NULL if it is not the newest.
 */
struct checkpoint *checkpoint_take_newest (struct vm *vm, const char *name);
/* NAME is a checkpoint again: it no longer stands for a deleted one in
 * paging (after=NAME).
 */
void checkpoint_forget_deleted (struct vm *vm, const char *name);
/* A fresh checkpoint name "cp-YYYYMMDD-HHMMSS[-N]" not yet used. */
void checkpoint_generate_name (const struct vm *vm, char *buf, size_t len);
/* Is NAME used as a bitmap on any of DISKS' nodes? */
bool bitmap_name_taken (const json_t *bitmaps, const vm_disk_vector *disks,
                        const char *name);

/* backup.c */
int backup_begin (struct vm *vm, const json_t *args, struct reply *r);
int backup_get (struct vm *vm, const json_t *args, struct reply *r);
int backup_patch (struct vm *vm, const json_t *args, struct reply *r);
int backup_end (struct vm *vm, const json_t *args, struct reply *r);
/* Periodic duties of the active backup: end it when its TTL has passed,
 * fail it when its scratch budget is spent.  Returns ms until the next
 * call is due, or -1 if none.
 */
int backup_tick (struct vm *vm);
/* A BLOCK_WRITE_THRESHOLD event. */
void backup_on_write_threshold (struct vm *vm, const json_t *event);
/* BLOCK_JOB_COMPLETED/CANCELLED/ERROR, BLOCK_EXPORT_DELETED: a backup
 * whose job or export goes away outside pullbackd is over.
 */
void backup_on_block_event (struct vm *vm, const json_t *event);
/* backup-end.c: the one way a backup ends. */
enum backup_end
{
  BACKUP_END_ENDED,    /* DELETE */
  BACKUP_END_EXPIRED,  /* its TTL passed */
  BACKUP_END_FAILED,   /* over without a request: kept visible, failed */
  BACKUP_END_SHUTDOWN, /* the daemon stops */
  BACKUP_END_UNDONE,   /* its begin fails or is answered with an error
                          after all: its new checkpoint goes too */
};
/* End the VM's backup HOW (WHY: the failure, for BACKUP_END_FAILED): tear
 * it down (what QEMU does not confirm gone joins the cleanup list),
 * keep a failed one visible and forget any other, and save the state.
 * Returns -1 if the state could not be written (it is retried), else 0.
 */
int backup_finish (struct vm *vm, enum backup_end how,
                   enum backup_failure why);
/* At a connect: tear down the backup the state file records (a crash),
 * then retry the cleanup list.
 */
void backup_recover (struct vm *vm);
/* Retry the pending cleanups; returns how many are still pending. */
size_t cleanup_retry (struct vm *vm);
/* The same, before a change: 0 when nothing is pending, else -1 with R
 * set to PB_ERR_CONFLICT cleanup-pending.
 */
int cleanup_require_none (struct vm *vm, struct reply *r);

/* export.c: the NBD exports of a backup and the jobs under them; a job
 * is never cancelled while its export exists.
 */
/* Export every disk of B over NBD, the commands pipelined: 0, or -1
 * with R set.
 */
int exports_add (struct vm *vm, const struct backup *b, struct reply *r);
/* Delete export ID (safely, then hard after a grace period) and wait
 * until QEMU says it is gone: true if it is (or never existed).
 */
bool export_delete (struct vm *vm, const char *id);
/* Cancel block job JOB and wait for it to end: true if it is gone. */
bool job_cancel (struct vm *vm, const char *job);
/* Delete every export of B (each disk's "gone" says if confirmed), then
 * cancel the job of each disk whose export is gone: JOB_GONE[i] (one per
 * disk) says which jobs are.  0 when all are, else -1 (logged).
 */
int exports_then_jobs_remove (struct vm *vm, struct backup *b, bool *job_gone);
/* Cut every export of B off now (hard), without waiting: its job
 * ended outside pullbackd and the exports would serve live data.
 */
void exports_cut_off (struct vm *vm, const struct backup *b);

/* quiesce.c: freezing the guest around the snapshot.  A "quiesce"
 * marker in the state, saved before the freeze and removed once a thaw
 * is confirmed, decides which guest is ours to thaw.
 *
 * Freeze through the VM's agent for BACKUP (409 thaw-pending while an
 * earlier freeze of ours is not thawed, 409 guest-frozen when someone
 * else froze it, 502 quiesce-failed, 500 state-write-failed).  Returns
 * the agent to thaw with, FROZEN_AT_MS set to when the freeze was sent,
 * or NULL with R set: nothing of ours is frozen, or the marker stays
 * and the thaw is retried.
 */
struct qga;
struct qga *quiesce_freeze (struct vm *vm, const char *backup,
                            int64_t *frozen_at_ms, struct reply *r);
/* Thaw through G (closed), or a fresh connection if that fails.  0: the
 * marker is removed from the document (the caller's next save records
 * it).  -1: the marker stays, the thaw is retried by quiesce_tick, and R
 * (if not NULL) is set to 502 thaw-failed.
 */
int quiesce_thaw (struct vm *vm, struct qga *g, struct reply *r);
/* While the marker stands: ask the agent and thaw a frozen guest, when
 * the retry is due or NOW (a QMP connect, shutdown).  Returns ms until
 * the next retry, or -1 when nothing is pending (any more).
 */
int quiesce_tick (struct vm *vm, bool now);
/* 0 when no thaw is pending (after trying one), else -1 with R set to
 * 409 thaw-pending.
 */
int quiesce_require_thawed (struct vm *vm, struct reply *r);
/* guest_frozen (and thaw_error) for GET /v1/vms/VM. */
void quiesce_describe (const struct vm *vm, json_t *body);
/* Test-only: with PULLBACK_TEST_PAUSE=POINT, create the file
 * PULLBACK_TEST_PAUSE_FILE and wait until it is removed.  Inert without.
 */
void test_pause (const char *point);

/* scratch.c: write every disk's scratch qcow2 (or have QEMU create it,
 * blockdev-create) and add the fleece overlays over them (blockdev-add;
 * one per disk, the file node nested, when the daemon wrote the file:
 * B->scratch_nested).  Returns 0, or -1 with R set; what was made is
 * removed by backup_finish.
 */
int scratch_add_all (struct vm *vm, struct backup *b, struct reply *r);
/* Put a write threshold on every scratch at its share of the space left
 * (507 scratch-space when there is too little to begin).
 */
int scratch_arm (struct vm *vm, struct backup *b, struct reply *r);
/* A BLOCK_WRITE_THRESHOLD event: re-arm and return 0, or return -1 with
 * WHY set when the scratch space is used up and the backup must end.
 * Events of nodes that are not this backup's return 0.
 */
int scratch_threshold_reached (struct vm *vm, struct backup *b,
                               const json_t *event, char *why, size_t len);
/* The budget re-checked from the files (thresholds only fire on writes
 * submitted after they are set): true, with WHY, when it is spent.
 */
bool scratch_used_up (struct vm *vm, const struct backup *b, char *why,
                      size_t len);
/* Remove the scratch file PATH if it is a regular file, through its
 * directory's descriptor (a symlink or special file there is left, with
 * a warning).
 */
void scratch_remove_file (const char *path);
/* Bytes allocated by the backup's scratch files. */
int64_t scratch_allocated (const struct backup *b);
/* Dismiss (cancelling first if it still runs) a blockdev-create job. */
void scratch_job_remove (struct vm *vm, const char *job);

/* delta.c: nbdkit serving the delta view of each incremental disk. */
/* Start one per incremental disk of B (when delta-plugin is set); a
 * disk whose view cannot start just has no delta_uri (logged).
 */
void delta_start (struct vm *vm, struct backup *b);
/* Stop B's (before its exports go). */
void delta_stop (struct vm *vm, struct backup *b);
/* Remove the files a crash left (nbdkit itself died with the daemon). */
void delta_recover (struct vm *vm);
/* The delta view's URI for disk D (malloc'd), or NULL if none runs. */
char *delta_uri (const struct vm *vm, const struct backup_disk *d);

/* recovery.c: remove what a crash left: by the records
 * (backup_recover), then by the names above.
 */
void recovery_cleanup (struct vm *vm);

#endif /* PULLBACK_ENGINE_H */
