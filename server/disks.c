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

static json_t *
make_disk (const char *name, const json_t *node_info)
{
  const char *drv = json_string_value (json_object_get (node_info, "drv"));
  json_t *size
      = json_object_get (json_object_get (node_info, "image"), "virtual-size");

  return json_pack (
      "{s:s, s:s, s:s, s:I}", "name", name, "node",
      json_string_value (json_object_get (node_info, "node-name")), "format",
      drv ? drv : "unknown", "size", json_integer_value (size));
}

/* The disk name of a device: its qdev id, without the peripheral prefix
 * and the "/virtio-backend" tail of virtio devices.
 */
static bool
device_disk_name (const json_t *blk, char *buf, size_t len)
{
  const char *dev = json_string_value (json_object_get (blk, "device"));
  const char *qdev = json_string_value (json_object_get (blk, "qdev"));

  if (dev && *dev)
    snprintf (buf, len, "%s", dev);
  else if (qdev && strncmp (qdev, PERIPHERAL, strlen (PERIPHERAL)) == 0)
    {
      snprintf (buf, len, "%s", qdev + strlen (PERIPHERAL));
      buf[strcspn (buf, "/")] = '\0';
    }
  else
    return false;
  return true;
}

static int
compare_name (const void *a, const void *b)
{
  return strcmp (
      json_string_value (json_object_get (*(json_t *const *)a, "name")),
      json_string_value (json_object_get (*(json_t *const *)b, "name")));
}

static void
json_array_sort_by_name (json_t *arr)
{
  size_t n = json_array_size (arr);
  json_t **items = malloc (n * sizeof *items);

  if (items == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    items[i] = json_incref (json_array_get (arr, i));
  qsort (items, n, sizeof *items, compare_name);
  json_array_clear (arr);
  for (size_t i = 0; i < n; i++)
    json_array_append_new (arr, items[i]);
  free (items);
}

json_t *
disks_discover (struct vm *vm, struct qmp_error *err)
{
  CLEANUP_JSON json_t *nodes = NULL;
  CLEANUP_JSON json_t *blocks = NULL;
  json_t *disks = json_array ();
  size_t i, j;
  json_t *n, *b;

  nodes = vm_qmp (vm, "query-named-block-nodes",
                  json_pack ("{s:b}", "flat", 1), err);
  if (nodes == NULL)
    {
      json_decref (disks);
      return NULL;
    }

  /* Devices first (qemu-system). */
  blocks = vm_qmp (vm, "query-block", NULL, err);
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
      json_array_append_new (disks, make_disk (name, info));
    }
  if (json_array_size (disks) > 0)
    return disks;

  /* No devices (qemu-storage-daemon): the top format nodes, i.e. those
   * that are not the backing image of another node and not our own.
   */
  json_array_foreach (nodes, i, n)
    {
      const char *name = json_string_value (json_object_get (n, "node-name"));
      const char *drv = json_string_value (json_object_get (n, "drv"));
      const char *file = json_string_value (json_object_get (n, "file"));
      bool is_backing = false;

      if (name == NULL || drv == NULL || !is_format_driver (drv)
          || strncmp (name, "pb-", 3) == 0 || name[0] == '#')
        continue;
      json_array_foreach (nodes, j, b)
        {
          const char *bf
              = json_string_value (json_object_get (b, "backing_file"));
          const char *bn
              = json_string_value (json_object_get (b, "node-name"));

          /* Our own fleece overlays sit on top of disks: not a chain. */
          if (bn && strncmp (bn, "pb-", 3) == 0)
            continue;
          if (b != n && file && bf && strcmp (bf, file) == 0)
            is_backing = true;
        }
      if (is_backing || !name_valid (NAME_DISK, name, NULL, 0))
        continue;
      json_array_append_new (disks, make_disk (name, n));
    }
  /* QEMU lists nodes newest first; names give a stable order. */
  json_array_sort_by_name (disks);
  return disks;
}

const json_t *
disk_find (const json_t *disks, const char *name)
{
  size_t i;
  json_t *d;

  json_array_foreach (disks, i, d)
    if (strcmp (json_string_value (json_object_get (d, "name")), name) == 0)
      return d;
  return NULL;
}

json_t *
bitmaps_query (struct vm *vm, struct qmp_error *err)
{
  CLEANUP_JSON json_t *nodes = NULL;
  json_t *out = json_object ();
  size_t i, j;
  json_t *n, *b;

  nodes = vm_qmp (vm, "query-named-block-nodes",
                  json_pack ("{s:b}", "flat", 1), err);
  if (nodes == NULL)
    {
      json_decref (out);
      return NULL;
    }
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
