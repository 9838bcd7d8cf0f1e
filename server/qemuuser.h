/* pullback: the user a VM's QEMU runs as, and its way into the run
 * directory.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_QEMUUSER_H
#define PULLBACK_QEMUUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct qemu_user
{
  bool known;
  uid_t uid;
  gid_t gid;
};

/* Who the QEMU at the other end of QMP_FD runs as now.  Returns 0, or -1
 * with errno set (U->known false).
 */
int qemu_user_of (int qmp_fd, struct qemu_user *u);

/* Whether QEMU runs as another uid than pullbackd: files pullbackd makes
 * for it must be given to it.
 */
bool qemu_user_is_other (const struct qemu_user *u);

/* Let U pass through RUN_DIR, RUN_DIR/vms and RUN_DIR/vms/NAME (an ACL
 * entry "--x" for its uid: it can open what it owns there, never list),
 * when U is not us.  Returns 0, or -1 with WHY set.
 */
int qemu_user_grant (const char *run_dir, const char *name,
                     const struct qemu_user *u, char *why, size_t len);

/* Let U read the file open on FD (an ACL entry "r--"), when U is not
 * us.  Returns 0, or -1 with errno set.
 */
int qemu_user_grant_read (int fd, const struct qemu_user *u);

#endif /* PULLBACK_QEMUUSER_H */
