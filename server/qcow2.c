/* pullback: writing an empty qcow2 image.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A scratch overlay starts empty: a version 3 header, one refcount table
 * cluster, one refcount block and a zeroed L1 table, with 64 KiB
 * clusters and 16-bit refcounts, the layout "qemu-img create -f qcow2"
 * makes (QEMU's docs/interop/qcow2.txt).  Writing it here costs a few
 * pwrites instead of a process or two QMP jobs.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

#define CLUSTER_BITS 16
#define CLUSTER_SIZE (UINT64_C (1) << CLUSTER_BITS)
/* An L2 table fills a cluster with 8-byte entries. */
#define L2_COVERS (CLUSTER_SIZE * (CLUSTER_SIZE / 8))
#define HEADER_LENGTH 104
/* 16-bit refcounts: one block counts this many clusters. */
#define REFBLOCK_ENTRIES (CLUSTER_SIZE / 2)

static void
be32 (unsigned char *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static void
be64 (unsigned char *p, uint64_t v)
{
  be32 (p, v >> 32);
  be32 (p + 4, (uint32_t)v);
}

static int
write_all (int fd, const void *buf, size_t len, uint64_t offset)
{
  const char *p = buf;

  while (len > 0)
    {
      ssize_t n = pwrite (fd, p, len, (off_t)offset);

      if (n == -1)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      p += n;
      len -= (size_t)n;
      offset += (uint64_t)n;
    }
  return 0;
}

int
qcow2_write_empty (int fd, uint64_t size)
{
  uint64_t l1_entries = (size + L2_COVERS - 1) / L2_COVERS;
  uint64_t l1_clusters = (l1_entries * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
  uint64_t metadata = 3 + l1_clusters;
  unsigned char *c;
  int r = -1;

  /* The one refcount block must count every metadata cluster, and the
   * L1 size is a 32-bit field (QEMU allows 32 MiB of it).
   */
  if (size == 0 || size % 512 != 0 || metadata > REFBLOCK_ENTRIES
      || l1_entries > (UINT64_C (32) << 20) / 8)
    {
      errno = EINVAL;
      return -1;
    }
  c = calloc (1, CLUSTER_SIZE);
  if (c == NULL)
    return -1;

  /* Cluster 0: the header, then the end of header extensions (zeroes). */
  memcpy (c, "QFI\xfb", 4);
  be32 (c + 4, 3);                     /* version */
  be32 (c + 20, CLUSTER_BITS);         /* cluster_bits */
  be64 (c + 24, size);                 /* size */
  be32 (c + 36, (uint32_t)l1_entries); /* l1_size */
  be64 (c + 40, 3 * CLUSTER_SIZE);     /* l1_table_offset */
  be64 (c + 48, 1 * CLUSTER_SIZE);     /* refcount_table_offset */
  be32 (c + 56, 1);                    /* refcount_table_clusters */
  be32 (c + 96, 4);                    /* refcount_order: 16 bits */
  be32 (c + 100, HEADER_LENGTH);       /* header_length */
  if (write_all (fd, c, CLUSTER_SIZE, 0) == -1)
    goto out;

  /* Cluster 1: the refcount table, pointing at the block in cluster 2. */
  memset (c, 0, CLUSTER_SIZE);
  be64 (c, 2 * CLUSTER_SIZE);
  if (write_all (fd, c, CLUSTER_SIZE, CLUSTER_SIZE) == -1)
    goto out;

  /* Cluster 2: refcount 1 for every metadata cluster. */
  memset (c, 0, CLUSTER_SIZE);
  for (uint64_t i = 0; i < metadata; i++)
    {
      c[2 * i] = 0;
      c[2 * i + 1] = 1;
    }
  if (write_all (fd, c, CLUSTER_SIZE, 2 * CLUSTER_SIZE) == -1)
    goto out;

  /* Clusters 3...: the L1 table, all unallocated.  The file is extended
   * to its end; the zeroes need not be written.
   */
  if (ftruncate (fd, (off_t)(metadata * CLUSTER_SIZE)) == -1)
    goto out;
  r = 0;
out:
  free (c);
  return r;
}
