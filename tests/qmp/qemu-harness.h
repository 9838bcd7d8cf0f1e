/* pullback: start real QEMU processes for the QMP library tests.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_TESTS_QEMU_HARNESS_H
#define PULLBACK_TESTS_QEMU_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

enum qemu_kind
{
  QEMU_QSD,    /* qemu-storage-daemon: disks are bare nodes */
  QEMU_SYSTEM, /* qemu-system-x86_64 -M q35 -S -accel tcg, virtio-blk */
};

struct qemu_proc
{
  enum qemu_kind kind;
  int ndisks;
  pid_t pid;
  char dir[PATH_MAX];      /* private temporary directory */
  char qmp[PATH_MAX + 16]; /* QMP socket */
};

/* Is the QEMU binary for KIND installed? */
bool qemu_available (enum qemu_kind kind);
const char *qemu_kind_name (enum qemu_kind kind);

/* Make a temporary directory with NDISKS 64 MiB qcow2 images and start
 * QEMU on them; returns when QMP accepts connections.  Returns -1 (with
 * a message on stderr) on failure.
 */
int qemu_start (struct qemu_proc *p, enum qemu_kind kind, int ndisks);
/* Start QEMU again on the same images and socket after it died. */
int qemu_restart (struct qemu_proc *p);
/* Send SIG to QEMU. */
void qemu_signal (struct qemu_proc *p, int sig);
/* Kill QEMU (SIGKILL) and reap it. */
void qemu_kill (struct qemu_proc *p);
/* Kill QEMU and remove the directory. */
void qemu_stop (struct qemu_proc *p);

#endif /* PULLBACK_TESTS_QEMU_HARNESS_H */
