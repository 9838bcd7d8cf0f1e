/* pullback: feature detection from a query-qmp-schema answer.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * A hand-written schema in QEMU's SchemaInfo shape, with mangled type
 * names, a flat union like block-export-add's, an enum in both the 7.2
 * ("values") and the newer ("members") form, an alternate, an array, and
 * a union branch that refers back to itself.
 */

#include <config.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "qmp.h"

static const char schema_text[]
    = "["
      "{\"name\": \"query-version\", \"meta-type\": \"command\","
      " \"arg-type\": \"0\", \"ret-type\": \"1\"},"
      "{\"name\": \"0\", \"meta-type\": \"object\", \"members\": []},"
      "{\"name\": \"block-export-add\", \"meta-type\": \"command\","
      " \"arg-type\": \"10\", \"ret-type\": \"0\"},"
      "{\"name\": \"10\", \"meta-type\": \"object\", \"tag\": \"type\","
      " \"members\": [{\"name\": \"type\", \"type\": \"11\"},"
      "               {\"name\": \"id\", \"type\": \"str\"}],"
      " \"variants\": [{\"case\": \"nbd\", \"type\": \"12\"},"
      "                {\"case\": \"fuse\", \"type\": \"13\"}]},"
      "{\"name\": \"11\", \"meta-type\": \"enum\", \"values\": [\"nbd\", "
      "\"fuse\"]},"
      "{\"name\": \"12\", \"meta-type\": \"object\","
      " \"members\": [{\"name\": \"allocation-depth\", \"type\": \"bool\"},"
      "             {\"name\": \"bitmaps\", \"type\": \"[14]\"}]},"
      "{\"name\": \"13\", \"meta-type\": \"object\","
      " \"members\": [{\"name\": \"mountpoint\", \"type\": \"str\"}],"
      " \"variants\": [{\"case\": \"loop\", \"type\": \"13\"}]},"
      "{\"name\": \"[14]\", \"meta-type\": \"array\", \"element-type\": "
      "\"14\"},"
      "{\"name\": \"14\", \"meta-type\": \"alternate\","
      " \"members\": [{\"type\": \"str\"}, {\"type\": \"15\"}]},"
      "{\"name\": \"15\", \"meta-type\": \"enum\","
      " \"members\": [{\"name\": \"all\"}, {\"name\": \"none\"}]},"
      "{\"name\": \"blockdev-add\", \"meta-type\": \"command\","
      " \"arg-type\": \"20\", \"ret-type\": \"0\"},"
      "{\"name\": \"20\", \"meta-type\": \"object\","
      " \"members\": [{\"name\": \"driver\", \"type\": \"21\"}]},"
      "{\"name\": \"21\", \"meta-type\": \"enum\","
      " \"values\": [\"qcow2\", \"raw\", \"snapshot-access\"]},"
      "{\"name\": \"BLOCK_EXPORT_DELETED\", \"meta-type\": \"event\","
      " \"arg-type\": \"0\"},"
      "{\"name\": \"str\", \"meta-type\": \"builtin\", \"json-type\": "
      "\"string\"}"
      "]";

static struct qmp_schema *s;

static void
setup (void)
{
  CLEANUP_JSON json_t *j = json_loads (schema_text, 0, NULL);
  struct qmp_error err;

  cr_assert_not_null (j);
  s = qmp_schema_from_json (j, &err);
  cr_assert_not_null (s, "%s", err.desc);
}

static void
teardown (void)
{
  qmp_schema_free (s);
}

TestSuite (schema, .init = setup, .fini = teardown);

Test (schema, commands_and_events)
{
  cr_assert (qmp_schema_has_command (s, "query-version"));
  cr_assert (qmp_schema_has_command (s, "block-export-add"));
  cr_assert_not (qmp_schema_has_command (s, "getfd"));
  cr_assert_not (qmp_schema_has_command (s, "BLOCK_EXPORT_DELETED"));
  cr_assert_not (qmp_schema_has_command (s, "10"));
  cr_assert (qmp_schema_has_event (s, "BLOCK_EXPORT_DELETED"));
  cr_assert_not (qmp_schema_has_event (s, "query-version"));
}

Test (schema, arguments)
{
  cr_assert (qmp_schema_command_has_arg (s, "block-export-add", "id"));
  /* Only in the nbd branch of the union. */
  cr_assert (
      qmp_schema_command_has_arg (s, "block-export-add", "allocation-depth"));
  cr_assert (qmp_schema_command_has_arg (s, "block-export-add", "mountpoint"));
  cr_assert_not (
      qmp_schema_command_has_arg (s, "block-export-add", "writethrough"));
  cr_assert_not (qmp_schema_command_has_arg (s, "query-version", "id"));
  cr_assert_not (qmp_schema_command_has_arg (s, "nosuch", "id"));
  /* The self-referencing branch ends instead of looping. */
  cr_assert_not (
      qmp_schema_command_has_arg (s, "block-export-add", "not-anywhere"));
}

Test (schema, enum_values)
{
  cr_assert (qmp_schema_arg_has_value (s, "blockdev-add", "driver",
                                       "snapshot-access"));
  cr_assert_not (qmp_schema_arg_has_value (s, "blockdev-add", "driver",
                                           "copy-before-write"));
  cr_assert (qmp_schema_arg_has_value (s, "block-export-add", "type", "fuse"));
  /* Through an array of an alternate with an enum in the newer form. */
  cr_assert (
      qmp_schema_arg_has_value (s, "block-export-add", "bitmaps", "none"));
  cr_assert_not (
      qmp_schema_arg_has_value (s, "block-export-add", "bitmaps", "some"));
  /* Not an enum at all. */
  cr_assert_not (qmp_schema_arg_has_value (s, "block-export-add", "id", "x"));
}

Test (schema, dotted_paths)
{
  cr_assert (qmp_schema_command_has_arg (s, "block-export-add", "bitmaps"));
  cr_assert_not (
      qmp_schema_command_has_arg (s, "block-export-add", "id.deeper"));
  cr_assert_not (qmp_schema_command_has_arg (s, "block-export-add", ".id"));
  cr_assert_not (qmp_schema_command_has_arg (s, "block-export-add", ""));
}

Test (schema, bad_input)
{
  struct qmp_error err;
  CLEANUP_JSON json_t *obj = json_object ();
  CLEANUP_JSON json_t *noname
      = json_loads ("[{\"meta-type\": \"enum\"}]", 0, NULL);

  cr_assert_null (qmp_schema_from_json (obj, &err));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL);
  cr_assert_null (qmp_schema_from_json (noname, &err));
  cr_assert_eq (err.kind, QMP_ERR_PROTOCOL);
  cr_assert (strstr (err.desc, "no name") != NULL);
}
