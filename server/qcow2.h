/* pullback: writing an empty qcow2 image.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_QCOW2_H
#define PULLBACK_QCOW2_H

#include <stdint.h>

/* Write an empty qcow2 (version 3, 64 KiB clusters, no backing file in
 * the header) of virtual SIZE bytes into the empty file FD.  SIZE must be
 * a positive multiple of 512, below 256 TiB.  Returns 0, or -1 with
 * errno set.
 */
int qcow2_write_empty (int fd, uint64_t size);

#endif /* PULLBACK_QCOW2_H */
