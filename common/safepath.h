/* pullback: checking paths that an API client names.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * pullbackd runs as root, so a path that comes from a request (a VM's
 * QMP or guest-agent socket, its scratch directory) must lie under one
 * of the roots the administrator allowed, be written plainly (absolute,
 * no ".", "..", "//", trailing '/' or control characters), name an
 * existing object of the right type, and be reached without following
 * a symbolic link: the walk opens one component at a time with
 * O_PATH | O_NOFOLLOW from the root's descriptor, so nothing on the way
 * can lead out of the root.  A symlink anywhere below the root is
 * refused.  The roots themselves are the administrator's and are
 * followed as they are.
 *
 * Nothing here creates, changes or removes anything.
 */

#ifndef PULLBACK_SAFEPATH_H
#define PULLBACK_SAFEPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum safepath_result
{
  SAFEPATH_OK = 0,
  SAFEPATH_INVALID,     /* not written plainly (see safepath_plain) */
  SAFEPATH_NOT_ALLOWED, /* outside the roots, through a symlink, or one
                           of the objects the caller forbids */
  SAFEPATH_NOT_FOUND,   /* a component does not exist */
  SAFEPATH_WRONG_TYPE,  /* it exists but is not of the wanted type */
  SAFEPATH_ERROR,       /* the walk failed otherwise (e.g. EACCES) */
};

/* An object by identity (a hard link or bind mount has the same). */
struct safepath_id
{
  dev_t dev;
  ino_t ino;
};

/* Is PATH absolute, shorter than PATH_MAX, free of control characters,
 * of empty, "." and ".." components and of a trailing '/' ("/" itself
 * is plain)?  If not, says why in WHY.
 */
bool safepath_plain (const char *path, char *why, size_t len);

/* Is PATH equal to ROOT or below it (both plain)?  Compares whole
 * components: "/a/bc" is not below "/a/b".
 */
bool safepath_within (const char *path, const char *root);

/* Check PATH (plain) against ROOTS (plain directories), walking from the
 * first root it lies within without following symlinks.  TYPE is the
 * S_IFMT type the object must have (S_IFSOCK, S_IFDIR, S_IFREG).  No
 * directory on the way and not the object itself may be one of
 * FORBIDDEN (e.g. the daemon's own state directory or API socket).  On
 * SAFEPATH_OK and FD non-NULL, *FD is an O_PATH descriptor of the object
 * (close-on-exec), for the caller to close.  Otherwise WHY says what is
 * wrong, for an error message naming the path.
 */
enum safepath_result
safepath_check (const char *path, const char *const *roots, size_t nroots,
                mode_t type, const struct safepath_id *forbidden,
                size_t nforbidden, int *fd, char *why, size_t len);

/* A short name of an S_IFMT type ("socket", "directory", ...). */
const char *safepath_type_name (mode_t type);

#endif /* PULLBACK_SAFEPATH_H */
