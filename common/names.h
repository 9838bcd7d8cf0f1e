/* pullback: validation of user-given names.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * VM ids, checkpoint names, disk names and backup ids all follow one rule:
 * an ASCII letter or digit, then up to NAME_MAX_LEN - 1 letters, digits,
 * '.', '_' or '-'.  Because the first character cannot be '.', the
 * names "", "." and ".." and anything with '/' are impossible.  VM ids
 * are the only names that ever appear in a host path (the state file);
 * the others live only inside JSON and QEMU object names.
 */

#ifndef PULLBACK_NAMES_H
#define PULLBACK_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 64

enum name_kind
{
  NAME_VM,
  NAME_CHECKPOINT,
  NAME_DISK,
  NAME_BACKUP,
};

/* Temporary bitmaps exported to vendors are "backup-<disk>" (libvirt's
 * shape), so no checkpoint may take a name with this prefix.
 */
#define NAME_RESERVED_BITMAP_PREFIX "backup-"

/* Returns true if S is a valid name of KIND.  Otherwise writes the reason
 * (e.g. "must not contain '/'") into ERR, which has room for ERRLEN bytes,
 * and returns false.  ERR may be NULL.
 */
bool name_valid (enum name_kind kind, const char *s, char *err, size_t errlen);

/* "VM id", "checkpoint name", ... for messages. */
const char *name_kind_label (enum name_kind kind);

#endif /* PULLBACK_NAMES_H */
