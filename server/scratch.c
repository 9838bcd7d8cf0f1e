/* pullback: scratch overlays (the fleece targets).
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * For every disk of a backup an empty qcow2 of the disk's size is made,
 * added as a protocol node (pb-scratch-I) and, on top, as the fleece node
 * backed by the disk (pb-fleece-I).  The file belongs to QEMU's user, so
 * a QEMU running as another user than pullbackd can write it.
 *
 * Two ways to make the file:
 *  - pullbackd writes it (qcow2.c) and gives it to QEMU's user, known
 *    from the QMP socket's peer (its pid; the user it runs as now, from
 *    /proc, as -runas drops root after the socket is made): a few
 *    pwrites;
 *  - QEMU makes it: blockdev-create of the file, then of the qcow2 in
 *    it, two jobs per disk, all disks at each step together.  Used when
 *    pullbackd cannot chown (it is not root) or cannot write the
 *    directory, or with
 *    scratch-create = qemu (e.g. for MAC labelling).
 * Either is far cheaper than a qemu-img process per disk.
 *
 * A full scratch filesystem would fail the guest's own writes (the
 * copy-before-write filter cannot save the old data), and QEMU says
 * nothing.  So each scratch file node gets a write threshold at its
 * share of the space left above scratch-reserve (and under scratch-max),
 * unless the file cannot grow that far; when one fires the shares are
 * recomputed, and when too little is left the backup is ended, which
 * stops the copying before the guest is hurt.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "deadline.h"
#include "engine.h"
#include "log.h"
#include "qcow2.h"
#include "qemuuser.h"

/* The scratch file PATH is reached only through its directory's
 * descriptor: *DIRFD (close it) and the file's name in it.  Returns the
 * name, or NULL with errno set.
 */
static const char *
open_dir_of (const char *path, int *dirfd)
{
  const char *slash = path ? strrchr (path, '/') : NULL;
  char dir[PATH_MAX];

  *dirfd = -1;
  if (slash == NULL || slash[1] == '\0'
      || (size_t)(slash - path) >= sizeof dir)
    {
      errno = EINVAL;
      return NULL;
    }
  if (slash == path)
    snprintf (dir, sizeof dir, "/");
  else
    snprintf (dir, sizeof dir, "%.*s", (int)(slash - path), path);
  *dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return *dirfd == -1 ? NULL : slash + 1;
}

/* fstatat of disk D's scratch file, not following a symlink there. */
static int
stat_scratch (const struct backup_disk *d, struct stat *st)
{
  CLEANUP_CLOSE int dirfd = -1;
  const char *name = open_dir_of (d->scratch, &dirfd);

  if (name == NULL)
    return -1;
  return fstatat (dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}

void
scratch_remove_file (const char *path)
{
  CLEANUP_CLOSE int dirfd = -1;
  const char *name = open_dir_of (path, &dirfd);
  struct stat st;

  if (name == NULL || fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
    return;
  /* Ours are regular files; anything else someone else put there. */
  if (!S_ISREG (st.st_mode))
    {
      log_warnx ("leaving %s: a %s, not a scratch file of pullbackd", path,
                 S_ISLNK (st.st_mode) ? "symbolic link" : "special file");
      return;
    }
  if (unlinkat (dirfd, name, 0) == -1 && errno != ENOENT)
    log_warn ("unlink %s", path);
}

/* Nothing may be at any scratch file's name before one is made: a
 * leftover of ours was removed by recovery, so whatever is there is not
 * ours, and following a symlink there (QEMU's blockdev-create does)
 * would overwrite its target.  Returns 0, or -1 with R set.
 */
static int
require_free_names (struct vm *vm, const struct backup *b, struct reply *r)
{
  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct stat st;

      if (stat_scratch (d, &st) == 0)
        return reply_error (
            r, PB_ERR_CONFLICT, "scratch-exists",
            "disk %s: %s already exists (a %s) and pullbackd did not make "
            "it; remove it",
            d->name, d->scratch,
            S_ISLNK (st.st_mode)   ? "symbolic link"
            : S_ISREG (st.st_mode) ? "regular file"
                                   : "special file");
      if (errno != ENOENT)
        return reply_error (r, PB_ERR_INTERNAL, "scratch-failed",
                            "disk %s: %s: %s", d->name, d->scratch,
                            strerror (errno));
    }
  (void)vm;
  return 0;
}

/* Make disk D's scratch file QEMU made (scratch-create = qemu) private,
 * through a descriptor: never chmod a path, which would follow a
 * symlink put there since.
 */
static void
make_private (struct vm *vm, const struct backup_disk *d)
{
  CLEANUP_CLOSE int dirfd = -1, fd = -1;
  const char *name = open_dir_of (d->scratch, &dirfd);
  struct stat st;

  if (name)
    fd = openat (dirfd, name,
                 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd == -1 || fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)
      || fchmod (fd, 0600) == -1)
    log_warnx ("VM %s: cannot make %s private (mode 0600): %s", vm->name,
               d->scratch,
               fd != -1 && !S_ISREG (st.st_mode) ? "not a regular file"
                                                 : strerror (errno));
}

static bool
job_concluded (const json_t *ev, void *opaque)
{
  const json_t *data = json_object_get (ev, "data");
  const char *id = json_string_value (json_object_get (data, "id"));
  const char *status = json_string_value (json_object_get (data, "status"));

  return id && status && strcmp (id, opaque) == 0
         && strcmp (status, "concluded") == 0;
}

void
scratch_job_remove (struct vm *vm, const char *job)
{
  struct qmp_error err;
  json_t *ret;

  ret = vm_qmp (vm, "job-dismiss", json_pack ("{s:s}", "id", job), &err);
  if (ret == NULL && err.kind == QMP_ERR_QEMU
      && !qmp_error_is_not_found (&err))
    {
      /* Not concluded yet: cancel, then dismiss once it is. */
      vm_qmp_quietly (vm, "job-cancel", json_pack ("{s:s}", "id", job));
      json_decref (qmp_wait_event (vm->qmp, "JOB_STATUS_CHANGE", job_concluded,
                                   (void *)job, vm->ctx->qmp_timeout_ms,
                                   &err));
      vm_qmp_quietly (vm, "job-dismiss", json_pack ("{s:s}", "id", job));
    }
  json_decref (ret);
}

/* Start blockdev-create with the options of STEP ("file" or "qcow2") for
 * every disk, wait until every job has concluded, read their errors and
 * dismiss them.  Returns 0, or -1 with R set.
 */
/* The blockdev-create job of a disk's scratch FILE, or of its qcow2. */
static const char *
mkjob (const struct disk_objects *o, bool file)
{
  return file ? o->mkfile_job : o->mkqcow2_job;
}

static int
create_step (struct vm *vm, const struct backup *b, const char *step,
             struct reply *r)
{
  bool file = strcmp (step, "file") == 0;
  size_t i, started = 0;
  CLEANUP_JSON json_t *jobs = NULL;
  int64_t deadline = deadline_after (vm->ctx->qmp_timeout_ms);
  enum qmp_error_kind why_kind = QMP_ERR_NONE;
  struct qmp_error err;
  char why[600] = "";
  json_t *j;

  for (i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects o;
      json_t *opts, *ret;

      backup_disk_objects (d, &o);
      if (file)
        opts = json_pack ("{s:s, s:s, s:i}", "driver", "file", "filename",
                          d->scratch, "size", 0);
      else
        opts = json_pack ("{s:s, s:s, s:I}", "driver", "qcow2", "file",
                          o.scratch_node, "size", (json_int_t)d->size);
      ret = vm_qmp (vm, "blockdev-create",
                    json_pack ("{s:s, s:o}", "job-id", mkjob (&o, file),
                               "options", opts),
                    &err);
      if (ret == NULL)
        {
          snprintf (why, sizeof why, "disk %s: blockdev-create: %s", d->name,
                    err.desc);
          why_kind = err.kind;
          break;
        }
      json_decref (ret);
      started++;
    }

  for (i = 0; i < started; i++)
    {
      struct disk_objects o;
      json_t *ev;

      backup_disk_objects (&b->disks[i], &o);
      ev = qmp_wait_event (vm->qmp, "JOB_STATUS_CHANGE", job_concluded,
                           (void *)mkjob (&o, file),
                           deadline_remaining (deadline), &err);
      if (ev == NULL && why[0] == '\0')
        {
          snprintf (why, sizeof why, "disk %s: creating the scratch %s: %s",
                    b->disks[i].name, step, err.desc);
          why_kind = err.kind;
        }
      json_decref (ev);
    }

  /* A concluded job tells its error only here. */
  if (started && why[0] == '\0')
    {
      jobs = vm_qmp (vm, "query-jobs", NULL, &err);
      if (jobs == NULL)
        {
          snprintf (why, sizeof why, "query-jobs: %s", err.desc);
          why_kind = err.kind;
        }
    }
  json_array_foreach (jobs, i, j)
    {
      for (size_t k = 0; k < started; k++)
        {
          struct disk_objects o;

          backup_disk_objects (&b->disks[k], &o);
          if (json_is_string (json_object_get (j, "error"))
              && strcmp (json_str (j, "id") ?: "", mkjob (&o, file)) == 0
              && why[0] == '\0')
            snprintf (why, sizeof why, "disk %s: creating the scratch %s: %s",
                      b->disks[k].name, step, json_str (j, "error"));
        }
    }

  for (i = 0; i < started; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      scratch_job_remove (vm, mkjob (&o, file));
    }
  if (why[0])
    return reply_error (r, qemu_errkind (why_kind), "scratch-failed", "%s",
                        why);
  return 0;
}

/* The file node of disk D's scratch. */
static json_t *
scratch_file_args (const struct backup_disk *d, const struct disk_objects *o)
{
  return json_pack ("{s:s, s:s, s:s, s:{s:b}}", "driver", "file", "node-name",
                    o->scratch_node, "filename", d->scratch, "cache",
                    "no-flush", 1);
}

/* Add every disk's scratch file node (STEP_FILE), its fleece overlay
 * (STEP_FLEECE), or both in one blockdev-add per disk (STEP_BOTH: the
 * file node nested in the overlay's options, so it goes with the
 * overlay).  QEMU reads a command one byte per turn of its loop, so one
 * command where two would do saves about 2 ms per disk.
 */
enum add_step
{
  STEP_FILE,
  STEP_FLEECE,
  STEP_BOTH,
};

static int
add_nodes (struct vm *vm, const struct backup *b, enum add_step step,
           struct reply *r)
{
  struct qmp_batch *batch = qmp_batch_new ();
  struct qmp_error err;
  size_t failed;

  for (size_t i = 0; i < b->ndisks; i++)
    {
      const struct backup_disk *d = &b->disks[i];
      struct disk_objects o;

      backup_disk_objects (d, &o);
      qmp_batch_add (batch, "blockdev-add",
                     step == STEP_FILE
                         ? scratch_file_args (d, &o)
                         : json_pack ("{s:s, s:s, s:o, s:s}", "driver",
                                      "qcow2", "node-name", o.fleece, "file",
                                      step == STEP_BOTH
                                          ? scratch_file_args (d, &o)
                                          : json_string (o.scratch_node),
                                      "backing", d->node));
    }
  if (vm_qmp_batch (vm, batch, &failed, &err) == -1)
    return reply_error (r, qemu_errkind (err.kind), "scratch-failed",
                        "disk %s: adding the %s: %s",
                        failed < b->ndisks ? b->disks[failed].name : "?",
                        step == STEP_FILE ? "scratch file" : "fleece overlay",
                        err.desc);
  /* They will hold a copy of the guest's data: private before any is
   * written.  QEMU made them; if QEMU runs as another user and pullbackd
   * is not root, only the scratch directory's mode protects them.
   */
  if (step == STEP_FILE)
    for (size_t i = 0; i < b->ndisks; i++)
      make_private (vm, &b->disks[i]);
  return 0;
}

/* Write disk D's scratch file, owned by QEMU's user (CRED).  Returns 0,
 * or -1 with errno set (EPERM: it cannot be given to that user; EEXIST:
 * something is at its name, see require_free_names).
 */
static int
write_scratch (const struct backup_disk *d, const struct qemu_user *qemu)
{
  CLEANUP_CLOSE int dirfd = -1, fd = -1;
  const char *name = open_dir_of (d->scratch, &dirfd);
  int e;

  if (name == NULL)
    return -1;
  fd = openat (dirfd, name,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd == -1)
    return -1;
  if ((qemu_user_is_other (qemu) && fchown (fd, qemu->uid, qemu->gid) == -1)
      || qcow2_write_empty (fd, (uint64_t)d->size) == -1)
    {
      e = errno;
      unlinkat (dirfd, name, 0); /* made by us just now (O_EXCL) */
      errno = e;
      return -1;
    }
  return 0;
}

/* Whether VM's scratch directory is its run directory. */
static bool
scratch_in_rundir (const struct vm *vm)
{
  char dir[PATH_MAX];

  return vm_run_dir (vm, dir, sizeof dir) == 0
         && strcmp (dir, vm->scratch_dir) == 0;
}

/* Make every scratch file here.  Returns 1 when done, 0 when QEMU must
 * make them (nothing left behind), -1 with R set on failure.
 */
static int
write_scratches (struct vm *vm, const struct backup *b, struct reply *r)
{
  const struct qemu_user *qemu = &vm->qemu_user;
  char why[PATH_MAX + 256];
  size_t i, k;

  if (vm->ctx->scratch_via_qemu)
    return 0;
  if (!qemu->known)
    {
      log_debug ("VM %s: QEMU's user is unknown; QEMU makes the scratch "
                 "files",
                 vm->name);
      return 0;
    }
  /* In the run directory, QEMU needs a way through to them. */
  if (scratch_in_rundir (vm)
      && qemu_user_grant (vm->ctx->run_dir, vm->name, qemu, why, sizeof why)
             == -1)
    log_warnx ("VM %s: %s", vm->name, why);
  for (i = 0; i < b->ndisks; i++)
    if (write_scratch (&b->disks[i], qemu) == -1)
      {
        const struct backup_disk *d = &b->disks[i];
        int e = errno;

        for (k = 0; k < i; k++)
          scratch_remove_file (b->disks[k].scratch);
        if (e == EPERM || e == EACCES || e == EROFS)
          {
            log_debug ("VM %s: cannot make scratch files for uid %u (%s); "
                       "QEMU makes them",
                       vm->name, (unsigned)qemu->uid, strerror (e));
            return 0;
          }
        return reply_error (r, PB_ERR_INTERNAL, "scratch-failed",
                            "disk %s: creating %s: %s", d->name, d->scratch,
                            strerror (e));
      }
  return 1;
}

int
scratch_add_all (struct vm *vm, struct backup *b, struct reply *r)
{
  int here;

  if (require_free_names (vm, b, r) == -1)
    return -1;
  here = write_scratches (vm, b, r);
  if (here == -1)
    return -1;
  /* Files we wrote (0600 already): file and overlay in one command
   * each, as plan_backup recorded (scratch_nested).
   */
  if (here == 1)
    return add_nodes (vm, b, STEP_BOTH, r);
  /* QEMU makes them: its blockdev-create jobs need the file node first.
   * The record says nested until it is saved at ready; after a crash
   * before that, recovery removes the file nodes by name.
   */
  b->scratch_nested = false;
  if (create_step (vm, b, "file", r) == -1
      || add_nodes (vm, b, STEP_FILE, r) == -1
      || create_step (vm, b, "qcow2", r) == -1
      || add_nodes (vm, b, STEP_FLEECE, r) == -1)
    return -1;
  return 0;
}

/* Less than this per disk left: the backup ends. */
#define SCRATCH_MIN_SHARE (INT64_C (1) << 20)

int64_t
scratch_allocated (const struct backup *b)
{
  int64_t total = 0;
  struct stat st;

  for (size_t i = 0; i < b->ndisks; i++)
    if (stat_scratch (&b->disks[i], &st) == 0 && S_ISREG (st.st_mode))
      total += (int64_t)st.st_blocks * 512;
  return total;
}

/* What each disk's scratch may still grow by, or -1 with WHY set when
 * too little is left.
 */
static int64_t
scratch_share (struct vm *vm, const struct backup *b, char *why, size_t len)
{
  size_t n = b->ndisks;
  int64_t avail, budget;
  struct statvfs st;

  if (statvfs (vm->scratch_dir, &st) == -1)
    {
      snprintf (why, len, "statvfs %s: %m", vm->scratch_dir);
      return -1;
    }
  avail = (int64_t)st.f_bavail * (int64_t)st.f_frsize;
  budget = avail - vm->ctx->scratch_reserve;
  if (vm->ctx->scratch_max > 0
      && vm->ctx->scratch_max - scratch_allocated (b) < budget)
    budget = vm->ctx->scratch_max - scratch_allocated (b);
  if (n == 0 || budget / (int64_t)n < SCRATCH_MIN_SHARE)
    {
      snprintf (why, len,
                "the scratch space of VM %s is used up: %" PRId64
                " bytes free in %s (scratch-reserve %" PRId64
                "), %lld bytes used by this backup (scratch-max %" PRId64 ")",
                vm->name, avail, vm->scratch_dir, vm->ctx->scratch_reserve,
                (long long)scratch_allocated (b), vm->ctx->scratch_max);
      return -1;
    }
  return budget / (int64_t)n;
}

/* The furthest a scratch qcow2 of a disk of SIZE bytes can be written:
 * every cluster of the disk copied once, plus its metadata (an 8-byte L2
 * entry and a 2-byte refcount per 64 KiB cluster, tables moved as they
 * grow), with a wide margin.
 */
static int64_t
scratch_bound (int64_t size)
{
  return size + size / 64 + (INT64_C (64) << 20);
}

/* Add to BATCH the threshold of disk D's scratch: SHARE above the
 * larger of its size and the end of the write that fired the last event
 * (AT).  A threshold the file can never reach is not sent: it could not
 * fire, and each command costs QEMU about 1.5 ms to read (conn.c).
 * Returns whether one was added.
 */
static bool
add_threshold (struct qmp_batch *batch, const struct backup_disk *d,
               int64_t at, int64_t share)
{
  struct stat st;
  struct disk_objects o;

  if (stat_scratch (d, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > at)
    at = st.st_size;
  if (at + share >= scratch_bound (d->size))
    return false;
  backup_disk_objects (d, &o);
  qmp_batch_add (batch, "block-set-write-threshold",
                 json_pack ("{s:s, s:I}", "node-name", o.scratch_node,
                            "write-threshold", (json_int_t)(at + share)));
  return true;
}

/* Set every disk's threshold, the one of AT_DISK from AT (see
 * add_threshold): 0, or -1 with ERR and the disk's index in *FAILED.
 */
static int
set_thresholds (struct vm *vm, const struct backup *b,
                const struct backup_disk *at_disk, int64_t at, int64_t share,
                size_t *failed, struct qmp_error *err)
{
  struct qmp_batch *batch = qmp_batch_new ();
  CLEANUP_FREE size_t *disk_of = calloc (b->ndisks + 1, sizeof *disk_of);
  size_t n = 0, i;

  if (batch == NULL || disk_of == NULL)
    {
      qmp_batch_free (batch);
      qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
      *failed = b->ndisks;
      return -1;
    }
  for (i = 0; i < b->ndisks; i++)
    if (add_threshold (batch, &b->disks[i], &b->disks[i] == at_disk ? at : 0,
                       share))
      disk_of[n++] = i;
  if (n == 0)
    {
      qmp_batch_free (batch);
      return 0;
    }
  if (vm_qmp_batch (vm, batch, &i, err) == -1)
    {
      *failed = i < n ? disk_of[i] : b->ndisks;
      return -1;
    }
  return 0;
}

int
scratch_arm (struct vm *vm, struct backup *b, struct reply *r)
{
  struct qmp_error err;
  char why[512];
  int64_t share = scratch_share (vm, b, why, sizeof why);
  size_t failed;

  if (share == -1)
    return reply_error (r, PB_ERR_NO_SPACE, "scratch-space", "%s", why);
  if (set_thresholds (vm, b, NULL, 0, share, &failed, &err) == -1)
    return reply_error (r, qemu_errkind (err.kind), "qemu-error",
                        "disk %s: block-set-write-threshold: %s",
                        failed < b->ndisks ? b->disks[failed].name : "?",
                        err.desc);
  return 0;
}

int
scratch_threshold_reached (struct vm *vm, struct backup *b, const json_t *ev,
                           char *why, size_t len)
{
  const json_t *data = json_object_get (ev, "data");
  const char *node = json_string_value (json_object_get (data, "node-name"));
  int64_t at
      = json_integer_value (json_object_get (data, "write-threshold"))
        + json_integer_value (json_object_get (data, "amount-exceeded"));
  const struct backup_disk *disk = NULL;
  struct qmp_error err;
  int64_t share;
  size_t i;

  for (i = 0; i < b->ndisks; i++)
    {
      struct disk_objects o;

      backup_disk_objects (&b->disks[i], &o);
      if (node && strcmp (node, o.scratch_node) == 0)
        disk = &b->disks[i];
    }
  if (disk == NULL)
    return 0; /* not ours */
  share = scratch_share (vm, b, why, len);
  if (share == -1)
    return -1;
  /* Every disk gets the new, smaller share: the old ones were cut from
   * more free space and could overrun the reserve together.
   */
  if (set_thresholds (vm, b, disk, at, share, &i, &err) == -1)
    {
      snprintf (why, len, "disk %s: block-set-write-threshold: %s",
                i < b->ndisks ? b->disks[i].name : "?", err.desc);
      return -1;
    }
  log_debug ("VM %s: scratch of disk %s may grow %" PRId64 " bytes more",
             vm->name, disk->name, share);
  return 0;
}

bool
scratch_used_up (struct vm *vm, const struct backup *b, char *why, size_t len)
{
  return scratch_share (vm, b, why, len) == -1;
}
