/* pullback: the disks of a VM and their bitmaps, as QEMU reports them.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "names.h"

#define PERIPHERAL "/machine/peripheral/"

/* Drivers of format nodes: the layer a guest (or qsd export) writes. */
static bool
is_format_driver (const char *drv)
{
  static const char *const formats[]
      = { "qcow2", "raw",       "qed",  "vmdk",  "vdi",   "vpc", "vhdx",
          "luks",  "parallels", "qcow", "bochs", "cloop", "dmg" };

  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp (drv, formats[i]) == 0)
      return true;
  return false;
}

static json_t *
find_node (const json_t *nodes, const char *node)
{
  size_t i;
  json_t *n;

  json_array_foreach (nodes, i, n)
    {
      const char *name = json_string_value (json_object_get (n, "node-name"));
      if (name && strcmp (name, node) == 0)
        return n;
    }
  return NULL;
}

/* Append the disk NAME whose format node QEMU describes as NODE_INFO:
 * 0, or -1 if out of memory.
 */
static int
add_disk (vm_disk_vector *disks, const char *name, const json_t *node_info)
{
  const char *drv = json_string_value (json_object_get (node_info, "drv"));
  const json_t *size
      = json_object_get (json_object_get (node_info, "image"), "virtual-size");
  struct vm_disk d = {
    .name = strdup (name),
    .node
    = strdup (json_string_value (json_object_get (node_info, "node-name"))),
    .format = strdup (drv ? drv : "unknown"),
    .size = json_integer_value (size),
    .ro = json_is_true (json_object_get (node_info, "ro")),
  };

  if (d.name == NULL || d.node == NULL || d.format == NULL
      || vm_disk_vector_append (disks, d) == -1)
    {
      free (d.name);
      free (d.node);
      free (d.format);
      return -1;
    }
  return 0;
}

/* The disk name of a device: its qdev id, without the peripheral prefix
 * and the "/virtio-backend" tail of virtio devices; failing that (a
 * device without an id, a drive without a device), the legacy drive id.
 */
static bool
device_disk_name (const json_t *blk, char *buf, size_t len)
{
  const char *dev = json_string_value (json_object_get (blk, "device"));
  const char *qdev = json_string_value (json_object_get (blk, "qdev"));

  if (qdev && strncmp (qdev, PERIPHERAL, strlen (PERIPHERAL)) == 0
      && qdev[strlen (PERIPHERAL)] != '\0' && qdev[strlen (PERIPHERAL)] != '/')
    {
      snprintf (buf, len, "%s", qdev + strlen (PERIPHERAL));
      buf[strcspn (buf, "/")] = '\0';
    }
  else if (dev && *dev)
    snprintf (buf, len, "%s", dev);
  else
    return false;
  return true;
}

static int
compare_name (const void *a, const void *b)
{
  return strcmp (((const struct vm_disk *)a)->name,
                 ((const struct vm_disk *)b)->name);
}

static bool
is_ours (const char *node)
{
  return strncmp (node, "pb-", 3) == 0;
}

static const json_t *
graph_node_by_id (const json_t *graph, json_int_t id)
{
  size_t i;
  json_t *g;

  json_array_foreach (json_object_get (graph, "nodes"), i, g)
    if (json_integer_value (json_object_get (g, "id")) == id)
      return g;
  return NULL;
}

static const json_t *
graph_node_by_name (const json_t *graph, const char *node)
{
  size_t i;
  json_t *g;

  json_array_foreach (json_object_get (graph, "nodes"), i, g)
    {
      const char *type = json_string_value (json_object_get (g, "type"));
      const char *name = json_string_value (json_object_get (g, "name"));

      if (type && strcmp (type, "block-driver") == 0 && name
          && strcmp (name, node) == 0)
        return g;
    }
  return NULL;
}

/* Does a format node sit above graph node ID, directly (ID is its
 * backing image, or the image under a raw layer) or through filters
 * (throttle, copy-on-read, ...)?  Parents that are not nodes (devices'
 * backends, block jobs, exports) and our own pb-* nodes do not count.
 */
static bool
graph_under_format (const json_t *graph, const json_t *nodes, json_int_t id,
                    int depth)
{
  size_t i;
  json_t *e;

  json_array_foreach (json_object_get (graph, "edges"), i, e)
    {
      json_int_t pid = json_integer_value (json_object_get (e, "parent"));
      const json_t *p;
      const char *type, *name, *drv;

      if (json_integer_value (json_object_get (e, "child")) != id)
        continue;
      p = graph_node_by_id (graph, pid);
      type = json_string_value (json_object_get (p, "type"));
      name = json_string_value (json_object_get (p, "name"));
      if (type == NULL || strcmp (type, "block-driver") != 0 || name == NULL
          || is_ours (name))
        continue;
      drv = json_string_value (
          json_object_get (find_node (nodes, name), "drv"));
      if (drv && is_format_driver (drv))
        return true;
      if (depth < 32 && graph_under_format (graph, nodes, pid, depth + 1))
        return true;
    }
  return false;
}

/* Without the graph: is node N the backing image of another node?
 * QEMU 7.2 gives the backing node's filename in "backing_file" and the
 * name in the image header, resolved, in "full-backing-filename";
 * either may be what matches N's "file".
 */
static bool
named_as_backing (const json_t *nodes, const json_t *n)
{
  const char *file = json_string_value (json_object_get (n, "file"));
  size_t i;
  json_t *b;

  if (file == NULL)
    return false;
  json_array_foreach (nodes, i, b)
    {
      const char *bn = json_string_value (json_object_get (b, "node-name"));
      const char *bf = json_string_value (json_object_get (b, "backing_file"));
      const char *fbf = json_string_value (json_object_get (
          json_object_get (b, "image"), "full-backing-filename"));

      /* Our own fleece overlays sit on top of disks: not a chain. */
      if (b == n || (bn && is_ours (bn)))
        continue;
      if ((bf && strcmp (bf, file) == 0) || (fbf && strcmp (fbf, file) == 0))
        return true;
    }
  return false;
}

/* {node: {bitmap-name: info}} from query-named-block-nodes' NODES. */
static json_t *
bitmaps_of (const json_t *nodes)
{
  json_t *out = json_object ();
  size_t i, j;
  json_t *n, *b;

  if (out == NULL)
    return NULL;
  json_array_foreach (nodes, i, n)
    {
      const char *node = json_string_value (json_object_get (n, "node-name"));
      json_t *map;

      if (node == NULL)
        continue;
      map = json_object ();
      /* Anonymous bitmaps (a running job's) have no name: skip them. */
      json_array_foreach (json_object_get (n, "dirty-bitmaps"), j, b)
        {
          const char *name = json_string_value (json_object_get (b, "name"));
          if (name)
            json_object_set (map, name, b);
        }
      json_object_set_new (out, node, map);
    }
  return out;
}

int
disks_discover (struct vm *vm, vm_disk_vector *out, json_t **bitmaps,
                struct qmp_error *err)
{
  CLEANUP_JSON json_t *nodes = NULL;
  CLEANUP_JSON json_t *blocks = NULL;
  CLEANUP_JSON json_t *graph = NULL;
  vm_disk_vector disks = empty_vector;
  size_t i;
  json_t *n, *b;

  nodes = vm_qmp (vm, "query-named-block-nodes",
                  json_pack ("{s:b}", "flat", 1), err);
  if (nodes == NULL)
    return -1;
  /* qemu-storage-daemon has query-block too (and answers []): a failure
   * is a failure, not "no devices".
   */
  blocks = vm_qmp (vm, "query-block", NULL, err);
  if (blocks == NULL)
    return -1;

  /* Devices first (qemu-system). */
  json_array_foreach (blocks, i, b)
    {
      const char *node = json_string_value (
          json_object_get (json_object_get (b, "inserted"), "node-name"));
      const json_t *info = node ? find_node (nodes, node) : NULL;
      char name[256];

      if (info == NULL || !device_disk_name (b, name, sizeof name))
        continue;
      if (!name_valid (NAME_DISK, name, NULL, 0))
        {
          log_warnx ("VM %s: device %s: not a usable disk name, skipped",
                     vm->name, name);
          continue;
        }
      if (add_disk (&disks, name, info) == -1)
        goto oom;
    }
  if (disks.len > 0)
    goto done;

  /* No devices (qemu-storage-daemon): the top format nodes, i.e. those
   * no other format node uses (as its backing image, say), and not our
   * own.  The node graph says so exactly; without it, file names.
   */
  if (vm->schema
      && qmp_schema_has_command (vm->schema, "x-debug-query-block-graph"))
    {
      graph = vm_qmp (vm, "x-debug-query-block-graph", NULL, err);
      if (graph == NULL)
        return -1;
    }
  json_array_foreach (nodes, i, n)
    {
      const char *name = json_string_value (json_object_get (n, "node-name"));
      const char *drv = json_string_value (json_object_get (n, "drv"));
      bool used;

      if (name == NULL || drv == NULL || !is_format_driver (drv)
          || is_ours (name) || name[0] == '#')
        continue;
      if (graph)
        {
          const json_t *g = graph_node_by_name (graph, name);

          used = g
                 && graph_under_format (
                     graph, nodes,
                     json_integer_value (json_object_get (g, "id")), 0);
        }
      else
        used = named_as_backing (nodes, n);
      if (used || !name_valid (NAME_DISK, name, NULL, 0))
        continue;
      if (add_disk (&disks, name, n) == -1)
        goto oom;
    }
  /* QEMU lists nodes newest first; names give a stable order. */
  if (disks.len > 0)
    qsort (disks.ptr, disks.len, sizeof *disks.ptr, compare_name);
done:
  if (bitmaps)
    {
      *bitmaps = bitmaps_of (nodes);
      if (*bitmaps == NULL)
        goto oom;
    }
  vm_disk_vector_clear (out);
  *out = disks;
  return 0;

oom:
  vm_disk_vector_clear (&disks);
  qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
  return -1;
}

json_t *
bitmaps_query (struct vm *vm, struct qmp_error *err)
{
  CLEANUP_JSON json_t *nodes = vm_qmp (vm, "query-named-block-nodes",
                                       json_pack ("{s:b}", "flat", 1), err);
  json_t *out;

  if (nodes == NULL)
    return NULL;
  out = bitmaps_of (nodes);
  if (out == NULL)
    qmp_error_set (err, QMP_ERR_SYSTEM, "out of memory");
  return out;
}
