/* pullback: the REST API v1: routes and handlers.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "answer.h"
#include "api.h"
#include "log.h"
#include "cleanup.h"
#include "extents.h"
#include "registry.h"
#include "validate.h"

#define PACKAGE_VERSION_STRING PACKAGE_VERSION

#define NAME(n, k, req)                                                       \
  {                                                                           \
    .name = (n), .type = FIELD_NAME, .required = (req), .kind = (k)           \
  }
#define END                                                                   \
  {                                                                           \
    .name = NULL                                                              \
  }

static const struct field vm_fields[] = {
  NAME ("name", NAME_VM, true),
  { .name = "qmp", .type = FIELD_PATH, .required = true },
  { .name = "qga", .type = FIELD_PATH },
  { .name = "scratch_dir", .type = FIELD_PATH },
  { .name = "nbd", .type = FIELD_NBD_ADDR },
  { .name = "nbd_transport", .type = FIELD_NBD_NET },
  { .name = "nbd_address", .type = FIELD_NBD_NET },
  { .name = "nbd_ports", .type = FIELD_NBD_NET },
  { .name = "nbd_tls", .type = FIELD_NBD_NET },
  { .name = "nbd_tls_x509_dir", .type = FIELD_NBD_NET },
  { .name = "nbd_tls_verify_peer", .type = FIELD_NBD_NET },
  { .name = "nbd_tls_allowed_dn", .type = FIELD_NBD_NET },
  { .name = "nbd_tls_psk_file", .type = FIELD_NBD_NET },
  END,
};

static const struct field checkpoint_fields[] = {
  NAME ("name", NAME_CHECKPOINT, false),
  END,
};

/* ttl bounds here are the absolute ones; the configured maximum is the
 * engine's to check (422).
 */
static const struct field backup_fields[] = {
  { .name = "checkpoint", .type = FIELD_NAME_OR_OFF, .kind = NAME_CHECKPOINT },
  NAME ("since", NAME_CHECKPOINT, false),
  { .name = "disks", .type = FIELD_NAME_LIST, .kind = NAME_DISK },
  { .name = "quiesce", .type = FIELD_BOOL },
  { .name = "ttl", .type = FIELD_INT, .min = 1, .max = 366 * 86400 },
  END,
};

static const struct field patch_fields[] = {
  { .name = "ttl",
    .type = FIELD_INT,
    .required = true,
    .min = 1,
    .max = 366 * 86400 },
  END,
};

static json_t *
body (struct api_request *req, const struct field *fields, struct reply *r)
{
  return validate_body (req->body, req->body_len, fields, r);
}

/* ---------------------------------------------------------------- */

static void
h_health (struct api_request *req, struct reply *r)
{
  reply_ok (r, json_pack ("{s:s, s:s}", "status", "ok", "version",
                          PACKAGE_VERSION_STRING));
}

static void
h_metrics (struct api_request *req, struct reply *r)
{
  r->text = api_metrics (req->reg);
  if (r->text == NULL)
    http_error (r, 500, "internal-error", "out of memory");
  else
    r->answered = true;
}

static void
h_vms_list (struct api_request *req, struct reply *r)
{
  registry_list (req->reg, r);
}

static void
h_vms_register (struct api_request *req, struct reply *r)
{
  CLEANUP_JSON json_t *args = body (req, vm_fields, r);

  if (args)
    registry_register (req->reg, args, r);
}

static void
h_vm_get (struct api_request *req, struct reply *r)
{
  registry_call (req->reg, req->params[0], VM_OP_GET, NULL, r);
}

static void
h_vm_delete (struct api_request *req, struct reply *r)
{
  CLEANUP_JSON json_t *args = json_object ();
  const char *cps = req->query (req->opaque, "checkpoints");

  if (cps && strcmp (cps, "delete") != 0 && strcmp (cps, "keep") != 0)
    {
      http_error_field (r, 400, "invalid-parameter", "checkpoints",
                        "checkpoints must be 'delete' or 'keep'");
      return;
    }
  if (cps)
    json_object_set_new (args, "checkpoints", json_string (cps));
  registry_unregister (req->reg, req->params[0], args, r);
}

static void
h_checkpoints_list (struct api_request *req, struct reply *r)
{
  CLEANUP_JSON json_t *args = json_object ();
  const char *limit = req->query (req->opaque, "limit");
  const char *after = req->query (req->opaque, "after");
  long long n;

  if (limit)
    {
      if (!validate_query_int ("limit", limit, 1, 1000, &n, r))
        return;
      json_object_set_new (args, "limit", json_integer (n));
    }
  if (after)
    {
      if (!validate_path_name (NAME_CHECKPOINT, "after", after, r))
        return;
      json_object_set_new (args, "after", json_string (after));
    }
  registry_call (req->reg, req->params[0], VM_OP_CHECKPOINT_LIST, args, r);
}

static void
h_checkpoints_create (struct api_request *req, struct reply *r)
{
  CLEANUP_JSON json_t *args = body (req, checkpoint_fields, r);

  if (args)
    registry_call (req->reg, req->params[0], VM_OP_CHECKPOINT_CREATE, args, r);
}

static void
checkpoint_op (struct api_request *req, struct reply *r, enum vm_op op)
{
  CLEANUP_JSON json_t *args = NULL;

  if (!validate_path_name (NAME_CHECKPOINT, "checkpoint", req->params[1], r))
    return;
  args = json_pack ("{s:s}", "name", req->params[1]);
  registry_call (req->reg, req->params[0], op, args, r);
}

static void
h_checkpoint_get (struct api_request *req, struct reply *r)
{
  checkpoint_op (req, r, VM_OP_CHECKPOINT_GET);
}

static void
h_checkpoint_delete (struct api_request *req, struct reply *r)
{
  checkpoint_op (req, r, VM_OP_CHECKPOINT_DELETE);
}

static void
h_backup_begin (struct api_request *req, struct reply *r)
{
  CLEANUP_JSON json_t *args = body (req, backup_fields, r);

  if (args)
    registry_call (req->reg, req->params[0], VM_OP_BACKUP_BEGIN, args, r);
}

static void
backup_op (struct api_request *req, struct reply *r, enum vm_op op,
           json_t *args)
{
  if (!validate_path_name (NAME_BACKUP, "backup", req->params[1], r))
    {
      json_decref (args);
      return;
    }
  if (args == NULL)
    args = json_object ();
  json_object_set_new (args, "id", json_string (req->params[1]));
  registry_call (req->reg, req->params[0], op, args, r);
  json_decref (args);
}

static void
h_backup_get (struct api_request *req, struct reply *r)
{
  backup_op (req, r, VM_OP_BACKUP_GET, NULL);
}

static void
h_backup_patch (struct api_request *req, struct reply *r)
{
  json_t *args = body (req, patch_fields, r);

  if (args)
    backup_op (req, r, VM_OP_BACKUP_PATCH, args);
}

static void
h_backup_end (struct api_request *req, struct reply *r)
{
  backup_op (req, r, VM_OP_BACKUP_END, NULL);
}

/* GET .../disks/{disk}/extents?context=&offset=&length=&limit= */

#define EXTENTS_MAX_LIMIT 100000
/* Connecting to the export, and each block-status request on it. */
#define EXTENTS_TIMEOUT_MS 30000

static ssize_t
extents_stream_read (void *stream, char *buf, size_t max)
{
  ssize_t n = extents_read (stream, buf, max);

  /* The status line is gone already: the client sees a cut answer
   * (invalid JSON); the reason goes to the log.
   */
  if (n == -1)
    log_warnx ("extents: %s", extents_error (stream));
  return n;
}

static void
extents_stream_free (void *stream)
{
  extents_close (stream);
}

static void
h_extents (struct api_request *req, struct reply *r)
{
  const char *context = req->query (req->opaque, "context");
  const char *q_offset = req->query (req->opaque, "offset");
  const char *q_length = req->query (req->opaque, "length");
  const char *q_limit = req->query (req->opaque, "limit");
  long long offset = 0, length = 0, limit = 0;
  CLEANUP_JSON json_t *args = NULL;
  struct reply b = { 0 };
  const struct backup_answer *ba;
  const struct backup_disk *disk = NULL;
  const char *uri = NULL;
  struct disk_objects obj;
  char ctx[sizeof obj.tmp_bitmap + 32] = "";
  struct extents *x;
  char err[512];
  int status;

  if (context && strcmp (context, "zero") != 0
      && strcmp (context, "dirty") != 0)
    {
      http_error_field (r, 400, "invalid-parameter", "context",
                        "parameter 'context' must be 'zero' or 'dirty'");
      return;
    }
  if ((q_offset
       && !validate_query_int ("offset", q_offset, 0, INT64_MAX, &offset, r))
      || (q_length
          && !validate_query_int ("length", q_length, 1, INT64_MAX, &length,
                                  r))
      || (q_limit
          && !validate_query_int ("limit", q_limit, 1, EXTENTS_MAX_LIMIT,
                                  &limit, r))
      || !validate_path_name (NAME_BACKUP, "backup", req->params[1], r)
      || !validate_path_name (NAME_DISK, "disk", req->params[2], r))
    return;

  /* "internal": with the credentials of our own reads over TLS. */
  args = json_pack ("{s:s, s:b}", "id", req->params[1], "internal", 1);
  registry_call (req->reg, req->params[0], VM_OP_BACKUP_GET, args, &b);
  if (b.kind != PB_OK)
    {
      *r = b;
      return;
    }
  if (b.answer == NULL || b.answer->type != ANSWER_BACKUP)
    {
      http_error (r, 500, "internal-error", "no backup in the answer");
      reply_clear (&b);
      return;
    }
  ba = &b.answer->backup;
  if (ba->client_unavailable)
    {
      http_error (r, 502, "nbd-tls-unavailable",
                  "pullbackd cannot read backup %s over TLS: %s",
                  req->params[1], ba->client_unavailable);
      reply_clear (&b);
      return;
    }
  if (ba->b->phase != BACKUP_READY)
    {
      http_error (r, 409, "backup-not-ready", "backup %s is %s",
                  req->params[1], backup_phase_name (ba->b->phase));
      reply_clear (&b);
      return;
    }
  for (size_t i = 0; i < ba->b->ndisks; i++)
    if (strcmp (ba->b->disks[i].name, req->params[2]) == 0)
      {
        disk = &ba->b->disks[i];
        uri = ba->disks[i].uri;
      }
  if (disk == NULL)
    {
      http_error (r, 404, "disk-not-found", "backup %s has no disk '%s'",
                  req->params[1], req->params[2]);
      reply_clear (&b);
      return;
    }
  if (uri == NULL)
    {
      http_error (r, 502, "nbd-error", "disk %s of backup %s has no export",
                  req->params[2], req->params[1]);
      reply_clear (&b);
      return;
    }
  if (context && strcmp (context, "dirty") == 0)
    {
      if (disk->mode != DISK_INCREMENTAL)
        {
          http_error (r, 404, "no-dirty-context",
                      "disk %s of backup %s is a full backup (%s): it has "
                      "no dirty-bitmap context",
                      req->params[2], req->params[1],
                      disk->reason != REASON_NONE
                          ? disk_reason_name (disk->reason)
                          : "no 'since'");
          reply_clear (&b);
          return;
        }
      backup_disk_objects (disk, &obj);
      snprintf (ctx, sizeof ctx, "qemu:dirty-bitmap:%s", obj.tmp_bitmap);
    }

  x = extents_open (uri, ba->client_psk_file, ba->client_certs,
                    ctx[0] ? ctx : NULL, (uint64_t)offset, (uint64_t)length,
                    (long)limit, EXTENTS_TIMEOUT_MS, err, sizeof err, &status);
  reply_clear (&b);
  if (x == NULL)
    {
      if (status == 400)
        http_error_field (r, 400, "invalid-parameter", "offset", "%s", err);
      else
        http_error (r, status, "nbd-error", "%s", err);
      return;
    }
  r->answered = true;
  r->stream = x;
  r->stream_read = extents_stream_read;
  r->stream_free = extents_stream_free;
}

static const char *const checkpoint_list_query[] = { "limit", "after", NULL };
static const char *const vm_delete_query[] = { "checkpoints", NULL };
static const char *const extents_query[]
    = { "context", "offset", "length", "limit", NULL };

const struct api_route api_routes[] = {
  { "GET", "/v1/health", h_health, NULL, false, "liveness and version" },
  { "GET", "/metrics", h_metrics, NULL, false,
    "Prometheus text: VMs, connections, checkpoints, backup counters" },
  { "GET", "/v1/vms", h_vms_list, NULL, false,
    "registered VMs and their state" },
  { "POST", "/v1/vms", h_vms_register, NULL, true,
    "register a VM {name, qmp, qga?, scratch_dir?, nbd?}" },
  { "GET", "/v1/vms/{vm}", h_vm_get, NULL, false,
    "a VM: disks (name, node, size, format), connection, backup" },
  { "DELETE", "/v1/vms/{vm}", h_vm_delete, vm_delete_query, false,
    "unregister a VM registered through the API; with checkpoints, "
    "?checkpoints=delete (bitmaps too) or ?checkpoints=keep" },
  { "GET", "/v1/vms/{vm}/checkpoints", h_checkpoints_list,
    checkpoint_list_query, false,
    "checkpoints, parents first, paged: ?limit=&after= -> {checkpoints, "
    "next}" },
  { "POST", "/v1/vms/{vm}/checkpoints", h_checkpoints_create, NULL, true,
    "create a checkpoint without a backup {name?}" },
  { "GET", "/v1/vms/{vm}/checkpoints/{checkpoint}", h_checkpoint_get, NULL,
    false, "one checkpoint, with its state on each disk" },
  { "DELETE", "/v1/vms/{vm}/checkpoints/{checkpoint}", h_checkpoint_delete,
    NULL, false, "delete a checkpoint (its bitmaps only)" },
  { "POST", "/v1/vms/{vm}/backups", h_backup_begin, NULL, true,
    "begin a backup {checkpoint?, since?, disks?, quiesce?, ttl?}" },
  { "GET", "/v1/vms/{vm}/backups/{backup}", h_backup_get, NULL, false,
    "a backup: phase, disks with mode, reason and NBD address" },
  { "PATCH", "/v1/vms/{vm}/backups/{backup}", h_backup_patch, NULL, true,
    "extend or shorten a backup's lifetime {ttl}" },
  { "DELETE", "/v1/vms/{vm}/backups/{backup}", h_backup_end, NULL, false,
    "end a backup and remove its snapshot" },
  { "GET", "/v1/vms/{vm}/backups/{backup}/disks/{disk}/extents", h_extents,
    extents_query, false,
    "changed (context=dirty) or allocated (context=zero) extents of a disk, "
    "streamed: {extents: [{start, length, dirty|hole, zero}], next_offset}" },
  { NULL },
};

/* ---------------------------------------------------------------- */

/* Compare PATH to PATTERN segment by segment; "{x}" segments match any
 * non-empty segment, which is copied to PARAMS.
 */
static bool
match_path (const char *pattern, const char *path,
            char params[API_MAX_PARAMS][256], char *too_long, size_t tlen)
{
  int np = 0;

  while (*pattern && *path)
    {
      size_t pl, sl;

      if (*pattern != '/' || *path != '/')
        return false;
      pattern++;
      path++;
      pl = strcspn (pattern, "/");
      sl = strcspn (path, "/");
      if (*pattern == '{')
        {
          if (sl == 0 || np >= API_MAX_PARAMS)
            return false;
          if (sl >= 256)
            {
              /* Name the parameter: "{vm}" -> "vm". */
              snprintf (too_long, tlen, "%.*s", (int)(pl - 2), pattern + 1);
              sl = 255;
            }
          memcpy (params[np], path, sl);
          params[np][sl] = '\0';
          np++;
        }
      else if (pl != sl || strncmp (pattern, path, pl) != 0)
        return false;
      pattern += pl;
      path += strcspn (path, "/");
    }
  return *pattern == '\0' && *path == '\0';
}

const struct api_route *
api_match (const char *method, const char *path,
           char params[API_MAX_PARAMS][256], struct reply *r)
{
  bool path_known = false;

  for (const struct api_route *rt = api_routes; rt->method; rt++)
    {
      char too_long[32] = "";

      if (!match_path (rt->pattern, path, params, too_long, sizeof too_long))
        continue;
      path_known = true;
      if (strcmp (rt->method, method) != 0)
        continue;
      if (too_long[0])
        {
          http_error_field (r, 400, "invalid-name", too_long,
                            "%s is longer than %d characters", too_long,
                            NAME_MAX_LEN);
          return NULL;
        }
      return rt;
    }
  if (path_known)
    http_error (r, 405, "method-not-allowed", "%s is not allowed on %s",
                method, path);
  else
    http_error (r, 404, "not-found", "no such endpoint: %s", path);
  return NULL;
}
