/* pullback: the extents stream (api/extents.c) against nbdkit, whose
 * extentlist filter gives exact allocation extents and whose delay filter
 * gives a server that does not answer in time.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "extents.h"
#include "scratch-dir.h"

static char uri[256];
static pid_t nbdkit_pid;

static void
teardown (void)
{
  if (nbdkit_pid > 0)
    kill (nbdkit_pid, SIGTERM);
  scratch_dir_remove ();
}

TestSuite (extents, .init = scratch_dir_make, .fini = teardown);

/* Start nbdkit with ARGS on a socket in dir; sets uri and nbdkit_pid. */
static void
start_nbdkit (const char *args)
{
  char cmd[1024], pidfile[128];
  FILE *fp;

  snprintf (pidfile, sizeof pidfile, "%s/nbdkit.pid", dir);
  snprintf (cmd, sizeof cmd, "nbdkit -U %s/sock -P %s %s", dir, pidfile, args);
  cr_assert_eq (system (cmd), 0, "%s", cmd);
  /* The daemonized nbdkit writes its pid a moment after the parent has
   * exited.
   */
  for (int i = 0; i < 500; i++)
    {
      fp = fopen (pidfile, "r");
      if (fp)
        {
          int n = fscanf (fp, "%d", &nbdkit_pid);

          fclose (fp);
          if (n == 1)
            break;
        }
      usleep (10000);
    }
  cr_assert_gt (nbdkit_pid, 0, "no pid in %s", pidfile);
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s/sock", dir);
}

/* The whole answer for a range, as a string (caller frees). */
static char *
answer (uint64_t offset, uint64_t length, long limit)
{
  char err[256], *out = calloc (1, 1 << 16);
  size_t len = 0;
  ssize_t n;
  int status;
  struct extents *x = extents_open (uri, NULL, NULL, NULL, offset, length,
                                    limit, 5000, err, sizeof err, &status);

  cr_assert_not_null (x, "%s", err);
  while ((n = extents_read (x, out + len, 7)) > 0) /* small reads */
    len += (size_t)n;
  cr_assert_eq (n, 0, "%s", extents_error (x));
  extents_close (x);
  return out;
}

static void
start_listed (void)
{
  char list[128], args[512];
  FILE *fp;

  snprintf (list, sizeof list, "%s/list", dir);
  fp = fopen (list, "w");
  cr_assert_not_null (fp);
  fputs ("0 65536\n"
         "131072 65536\n"
         "196608 65536 zero\n",
         fp);
  fclose (fp);
  snprintf (args, sizeof args, "--filter=extentlist null 1M extentlist=%s",
            list);
  start_nbdkit (args);
}

Test (extents, whole_disk_merged)
{
  char *a;

  start_listed ();
  a = answer (0, 0, 0);
  cr_assert_str_eq (
      a, "{\"extents\":["
         "{\"start\":0,\"length\":65536,\"zero\":false,\"hole\":false},"
         "{\"start\":65536,\"length\":65536,\"zero\":true,\"hole\":true},"
         "{\"start\":131072,\"length\":65536,\"zero\":false,\"hole\":false},"
         "{\"start\":196608,\"length\":65536,\"zero\":true,\"hole\":false},"
         "{\"start\":262144,\"length\":786432,\"zero\":true,\"hole\":true}"
         "],\"next_offset\":null}\n");
  free (a);
}

Test (extents, clipped_and_paged)
{
  char *a;

  start_listed ();
  a = answer (100, 131000, 0);
  cr_assert_str_eq (
      a, "{\"extents\":["
         "{\"start\":100,\"length\":65436,\"zero\":false,\"hole\":false},"
         "{\"start\":65536,\"length\":65536,\"zero\":true,\"hole\":true},"
         "{\"start\":131072,\"length\":28,\"zero\":false,\"hole\":false}"
         "],\"next_offset\":null}\n");
  free (a);
  a = answer (0, 0, 2);
  cr_assert_str_eq (
      a, "{\"extents\":["
         "{\"start\":0,\"length\":65536,\"zero\":false,\"hole\":false},"
         "{\"start\":65536,\"length\":65536,\"zero\":true,\"hole\":true}"
         "],\"next_offset\":131072}\n");
  free (a);
}

Test (extents, offset_beyond_the_disk)
{
  char err[256];
  int status;

  start_listed ();
  cr_assert_null (extents_open (uri, NULL, NULL, NULL, 1 << 20, 0, 0, 5000,
                                err, sizeof err, &status));
  cr_assert_eq (status, 400);
}

Test (extents, a_server_that_does_not_answer_times_out)
{
  char err[256], buf[4096];
  int status;
  ssize_t n;
  struct extents *x;

  start_nbdkit ("--filter=delay null 1M delay-extents=20");
  x = extents_open (uri, NULL, NULL, NULL, 0, 0, 0, 300, err, sizeof err,
                    &status);
  cr_assert_not_null (x, "%s", err);
  while ((n = extents_read (x, buf, sizeof buf)) > 0)
    ;
  cr_assert_eq (n, -1);
  cr_assert (strstr (extents_error (x), "no answer within 300 ms") != NULL,
             "%s", extents_error (x));
  extents_close (x);
}
