/* pullback: a VM's run directory, <run-dir>/vms/<vm>.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * It holds the VM's NBD socket and, by default, its scratch files.  It is
 * made when the VM is started and removed when the VM goes (unregistered,
 * or dropped from the configuration), with only what pullbackd makes in
 * it: every step goes through directory descriptors opened with
 * O_NOFOLLOW, so a symlink planted there leads nowhere.
 */

#ifndef PULLBACK_RUNDIR_H
#define PULLBACK_RUNDIR_H

/* Make <RUN_DIR>/vms/<NAME> (mode 0750) unless it is there as a real
 * directory.  Returns 0, or -1 with errno set (ENOTDIR: something else
 * is there).
 */
int rundir_make (const char *run_dir, const char *name);

/* Remove <RUN_DIR>/vms/<NAME>: its nbd.sock and pullback-NAME.N.qcow2
 * files, then the directory if that leaves it empty (anything else keeps
 * it, with a warning).  Returns 0, or -1 (logged).
 */
int rundir_remove (const char *run_dir, const char *name);

#endif /* PULLBACK_RUNDIR_H */
