/* pullback: qmpcmd, a command-line QMP and guest-agent client for tests.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 *   qmpcmd [-t MS] SOCKET COMMAND [JSON-ARGS]
 *   qmpcmd [-t MS] SOCKET -                   commands from stdin
 *   qmpcmd [-t MS] --hmp SOCKET 'HMP COMMAND LINE'
 *   qmpcmd [-t MS] --version SOCKET
 *   qmpcmd [-t MS] --has-command SOCKET NAME
 *   qmpcmd [-t MS] --has-arg SOCKET COMMAND ARG
 *   qmpcmd [-t MS] --qga SOCKET COMMAND [JSON-ARGS]
 *   qmpcmd [-t MS] --qga SOCKET fsfreeze-status | fsfreeze-freeze |
 *                               fsfreeze-thaw | fsfreeze-freeze-list MNT...
 *
 * The "return" value is printed as compact JSON on stdout.  Errors go to
 * stderr as "qmpcmd: CLASS: DESCRIPTION" and set the exit status:
 * 1 QEMU returned an error, 2 usage, 3 timeout, 4 disconnected or could
 * not connect, 5 protocol or system error.
 *
 * In stdin mode each line is "COMMAND [JSON-ARGS]" or
 * "@wait-event NAME [ID]", which waits for event NAME (whose data.id or
 * data.device is ID) and prints it; blank lines and "#" comments are
 * skipped.  It stops at the first error.
 */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "qga.h"
#include "qmp.h"

static int timeout_ms = 10000;

/* Events name their object in data.id (exports, jobs' JOB_STATUS_CHANGE)
 * or data.device (BLOCK_JOB_*): match either.
 */
static bool
id_or_device_is (const json_t *event, void *opaque)
{
  return qmp_event_data_id_is (event, opaque)
         || qmp_event_data_device_is (event, opaque);
}

static int
exit_code (const struct qmp_error *err)
{
  switch (err->kind)
    {
    case QMP_ERR_NONE:
      return 0;
    case QMP_ERR_QEMU:
      return 1;
    case QMP_ERR_TIMEOUT:
      return 3;
    case QMP_ERR_DISCONNECTED:
      return 4;
    case QMP_ERR_SYSTEM:
      return err->errnum == ENOENT || err->errnum == ECONNREFUSED ? 4 : 5;
    case QMP_ERR_PROTOCOL:
      return 5;
    }
  return 5;
}

static int
fail (const struct qmp_error *err)
{
  fprintf (stderr, "qmpcmd: %s: %s\n", err->cls, err->desc);
  return exit_code (err);
}

static __attribute__ ((noreturn)) void
usage (void)
{
  fprintf (stderr, "usage: qmpcmd [-t MS] SOCKET COMMAND [JSON-ARGS]\n"
                   "       qmpcmd [-t MS] SOCKET -\n"
                   "       qmpcmd [-t MS] --hmp SOCKET 'COMMAND LINE'\n"
                   "       qmpcmd [-t MS] --version SOCKET\n"
                   "       qmpcmd [-t MS] --has-command SOCKET NAME\n"
                   "       qmpcmd [-t MS] --has-arg SOCKET COMMAND ARG\n"
                   "       qmpcmd [-t MS] --qga SOCKET COMMAND [JSON-ARGS]\n");
  exit (2);
}

/* Parse ARGS text into an object (NULL text: no arguments). */
static int
parse_args (const char *text, json_t **out)
{
  json_error_t jerr;

  *out = NULL;
  if (text == NULL || *text == '\0')
    return 0;
  *out = json_loads (text, 0, &jerr);
  if (*out == NULL || !json_is_object (*out))
    {
      fprintf (stderr, "qmpcmd: arguments must be a JSON object: %s\n",
               *out ? "not an object" : jerr.text);
      json_decref (*out);
      return -1;
    }
  return 0;
}

static void
print_json (const json_t *j)
{
  CLEANUP_FREE char *s = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);

  printf ("%s\n", s ? s : "null");
  fflush (stdout);
}

static int
run_one (struct qmp *q, const char *cmd, const char *argtext)
{
  struct qmp_error err;
  json_t *args;
  CLEANUP_JSON json_t *ret = NULL;

  if (parse_args (argtext, &args) == -1)
    return 2;
  ret = qmp_execute (q, cmd, args, timeout_ms, &err);
  if (ret == NULL)
    return fail (&err);
  print_json (ret);
  return 0;
}

static int
run_script (struct qmp *q)
{
  char line[65536];

  while (fgets (line, sizeof line, stdin))
    {
      char *p = line, *cmd, *rest;
      int r;

      line[strcspn (line, "\n")] = '\0';
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0' || *p == '#')
        continue;
      cmd = p;
      p += strcspn (p, " \t");
      rest = NULL;
      if (*p)
        {
          *p++ = '\0';
          rest = p + strspn (p, " \t");
        }

      if (strcmp (cmd, "@wait-event") == 0)
        {
          struct qmp_error err;
          char *name = rest ? strtok (rest, " \t") : NULL;
          char *id = name ? strtok (NULL, " \t") : NULL;
          CLEANUP_JSON json_t *ev = NULL;

          if (name == NULL)
            {
              fprintf (stderr, "qmpcmd: @wait-event needs an event name\n");
              return 2;
            }
          ev = qmp_wait_event (q, name, id ? id_or_device_is : NULL, id,
                               timeout_ms, &err);
          if (ev == NULL)
            return fail (&err);
          print_json (ev);
          continue;
        }

      r = run_one (q, cmd, rest);
      if (r != 0)
        return r;
    }
  return 0;
}

static int
qga_main (const char *path, int argc, char **argv)
{
  struct qmp_error err;
  struct qga *g;
  const char *cmd;
  int r = 0, n;

  if (argc < 1)
    usage ();
  cmd = argv[0];
  g = qga_connect (path, timeout_ms, &err);
  if (g == NULL)
    return fail (&err);

  if (strcmp (cmd, "fsfreeze-status") == 0)
    {
      n = qga_fsfreeze_status (g, timeout_ms, &err);
      if (n >= 0)
        printf ("%s\n", n == QGA_FROZEN ? "frozen" : "thawed");
    }
  else if (strcmp (cmd, "fsfreeze-freeze") == 0)
    n = qga_fsfreeze_freeze (g, timeout_ms, &err);
  else if (strcmp (cmd, "fsfreeze-thaw") == 0)
    n = qga_fsfreeze_thaw (g, timeout_ms, &err);
  else if (strcmp (cmd, "fsfreeze-freeze-list") == 0)
    n = qga_fsfreeze_freeze_list (g, (const char *const *)argv + 1,
                                  (size_t)argc - 1, timeout_ms, &err);
  else
    {
      json_t *args;
      CLEANUP_JSON json_t *ret = NULL;

      if (parse_args (argc > 1 ? argv[1] : NULL, &args) == -1)
        {
          qga_close (g);
          return 2;
        }
      ret = qga_execute (g, cmd, args, timeout_ms, &err);
      n = ret ? 0 : -1;
      if (ret)
        print_json (ret);
      qga_close (g);
      return n == -1 ? fail (&err) : 0;
    }

  if (n == -1)
    r = fail (&err);
  else if (strcmp (cmd, "fsfreeze-status") != 0)
    printf ("%d\n", n);
  qga_close (g);
  return r;
}

int
main (int argc, char **argv)
{
  enum
  {
    MODE_CMD,
    MODE_HMP,
    MODE_VERSION,
    MODE_HAS_CMD,
    MODE_HAS_ARG,
    MODE_QGA
  } mode
      = MODE_CMD;
  static const struct option long_options[] = {
    { "hmp", no_argument, NULL, 'H' },
    { "version", no_argument, NULL, 'V' },
    { "has-command", no_argument, NULL, 'C' },
    { "has-arg", no_argument, NULL, 'A' },
    { "qga", no_argument, NULL, 'g' },
    { "timeout", required_argument, NULL, 't' },
    { NULL, 0, NULL, 0 },
  };
  struct qmp_error err;
  struct qmp *q;
  int c, r = 0;

  while ((c = getopt_long (argc, argv, "+t:", long_options, NULL)) != -1)
    switch (c)
      {
      case 't':
        timeout_ms = atoi (optarg);
        break;
      case 'H':
        mode = MODE_HMP;
        break;
      case 'V':
        mode = MODE_VERSION;
        break;
      case 'C':
        mode = MODE_HAS_CMD;
        break;
      case 'A':
        mode = MODE_HAS_ARG;
        break;
      case 'g':
        mode = MODE_QGA;
        break;
      default:
        usage ();
      }
  argc -= optind;
  argv += optind;
  if (argc < 1)
    usage ();

  if (mode == MODE_QGA)
    return qga_main (argv[0], argc - 1, argv + 1);

  q = qmp_connect (argv[0], timeout_ms, &err);
  if (q == NULL)
    return fail (&err);

  switch (mode)
    {
    case MODE_CMD:
      if (argc < 2)
        usage ();
      if (strcmp (argv[1], "-") == 0)
        r = run_script (q);
      else
        r = run_one (q, argv[1], argc > 2 ? argv[2] : NULL);
      break;

    case MODE_HMP:
      {
        CLEANUP_JSON json_t *ret = NULL;

        if (argc < 2)
          usage ();
        ret = qmp_executef (q, "human-monitor-command", timeout_ms, &err,
                            "{s:s}", "command-line", argv[1]);
        if (ret == NULL)
          r = fail (&err);
        else
          fputs (json_string_value (ret) ? json_string_value (ret) : "",
                 stdout);
        break;
      }

    case MODE_VERSION:
      {
        int major, minor, micro;

        qmp_version (q, &major, &minor, &micro);
        printf ("%d.%d.%d\n", major, minor, micro);
        break;
      }

    case MODE_HAS_CMD:
    case MODE_HAS_ARG:
      {
        struct qmp_schema *s;

        if (argc < (mode == MODE_HAS_CMD ? 2 : 3))
          usage ();
        s = qmp_schema_query (q, timeout_ms, &err);
        if (s == NULL)
          {
            r = fail (&err);
            break;
          }
        if (mode == MODE_HAS_CMD)
          r = qmp_schema_has_command (s, argv[1]) ? 0 : 1;
        else
          r = qmp_schema_command_has_arg (s, argv[1], argv[2]) ? 0 : 1;
        qmp_schema_free (s);
        break;
      }

    case MODE_QGA:
      break;
    }

  qmp_close (q);
  return r;
}
