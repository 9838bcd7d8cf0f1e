/* pullback: start real QEMU processes for the QMP library tests.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qemu-harness.h"
#include "qmp.h"

#define QSD "qemu-storage-daemon"
#define QEMU_SYSTEM_BIN "qemu-system-x86_64"

static bool
in_path (const char *prog)
{
  const char *path = getenv ("PATH");
  char buf[PATH_MAX];

  while (path && *path)
    {
      size_t n = strcspn (path, ":");

      snprintf (buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
      if (access (buf, X_OK) == 0)
        return true;
      path += n + (path[n] == ':');
    }
  return false;
}

bool
qemu_available (enum qemu_kind kind)
{
  return in_path (kind == QEMU_QSD ? QSD : QEMU_SYSTEM_BIN)
         && in_path ("qemu-img");
}

const char *
qemu_kind_name (enum qemu_kind kind)
{
  return kind == QEMU_QSD ? "qemu-storage-daemon" : "qemu-system";
}

/* Run ARGV and wait; returns its exit status or -1. */
static int
run (char **argv)
{
  pid_t pid = fork ();
  int status;

  if (pid == -1)
    return -1;
  if (pid == 0)
    {
      execvp (argv[0], argv);
      _exit (127);
    }
  if (waitpid (pid, &status, 0) == -1)
    return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static int
spawn (struct qemu_proc *p)
{
  char *argv[64];
  char arg[32][PATH_MAX + 128];
  int a = 0, s = 0;
  int64_t until;
  pid_t pid;

  unlink (p->qmp);
  if (p->kind == QEMU_QSD)
    {
      argv[a++] = (char *)QSD;
      argv[a++] = (char *)"--chardev";
      snprintf (arg[s], sizeof arg[s],
                "socket,id=mon0,path=%s,server=on,wait=off", p->qmp);
      argv[a++] = arg[s++];
      argv[a++] = (char *)"--monitor";
      argv[a++] = (char *)"chardev=mon0";
    }
  else
    {
      argv[a++] = (char *)QEMU_SYSTEM_BIN;
      argv[a++] = (char *)"-M";
      argv[a++] = (char *)"q35";
      argv[a++] = (char *)"-S";
      argv[a++] = (char *)"-accel";
      argv[a++] = (char *)"tcg";
      argv[a++] = (char *)"-nodefaults";
      argv[a++] = (char *)"-display";
      argv[a++] = (char *)"none";
      argv[a++] = (char *)"-m";
      argv[a++] = (char *)"128";
      argv[a++] = (char *)"-qmp";
      snprintf (arg[s], sizeof arg[s], "unix:%s,server=on,wait=off", p->qmp);
      argv[a++] = arg[s++];
    }

  for (int i = 0; i < p->ndisks; i++)
    {
      argv[a++] = (char *)(p->kind == QEMU_QSD ? "--blockdev" : "-blockdev");
      snprintf (arg[s], sizeof arg[s],
                "driver=file,filename=%s/disk%d.qcow2,node-name=disk%d-file",
                p->dir, i, i);
      argv[a++] = arg[s++];
      argv[a++] = (char *)(p->kind == QEMU_QSD ? "--blockdev" : "-blockdev");
      snprintf (arg[s], sizeof arg[s],
                "driver=qcow2,file=disk%d-file,node-name=disk%d", i, i);
      argv[a++] = arg[s++];
      if (p->kind == QEMU_SYSTEM)
        {
          argv[a++] = (char *)"-device";
          snprintf (arg[s], sizeof arg[s],
                    "virtio-blk-pci,drive=disk%d,id=vd%d", i, i);
          argv[a++] = arg[s++];
        }
    }
  argv[a] = NULL;

  pid = fork ();
  if (pid == -1)
    {
      perror ("fork");
      return -1;
    }
  if (pid == 0)
    {
      /* Never outlive the test, even if it crashes. */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      execvp (argv[0], argv);
      perror (argv[0]);
      _exit (127);
    }
  p->pid = pid;

  /* Ready when QMP answers. */
  until = time (NULL) + 20;
  while (time (NULL) < until)
    {
      struct qmp_error err;
      struct qmp *q = qmp_connect (p->qmp, 1000, &err);
      int status;

      if (q)
        {
          qmp_close (q);
          return 0;
        }
      if (waitpid (pid, &status, WNOHANG) == pid)
        {
          fprintf (stderr, "%s exited before QMP was ready\n", argv[0]);
          p->pid = 0;
          return -1;
        }
      usleep (10000);
    }
  fprintf (stderr, "%s: QMP not ready after 20 s\n", argv[0]);
  qemu_kill (p);
  return -1;
}

int
qemu_start (struct qemu_proc *p, enum qemu_kind kind, int ndisks)
{
  memset (p, 0, sizeof *p);
  p->kind = kind;
  p->ndisks = ndisks;
  snprintf (p->dir, sizeof p->dir, "%s/pullback-qmp-XXXXXX",
            getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
  if (mkdtemp (p->dir) == NULL)
    {
      perror ("mkdtemp");
      return -1;
    }
  snprintf (p->qmp, sizeof p->qmp, "%s/qmp.sock", p->dir);

  for (int i = 0; i < ndisks; i++)
    {
      char img[PATH_MAX + 32];
      char *argv[] = { (char *)"qemu-img", (char *)"create",
                       (char *)"-q",       (char *)"-f",
                       (char *)"qcow2",    img,
                       (char *)"64M",      NULL };

      snprintf (img, sizeof img, "%s/disk%d.qcow2", p->dir, i);
      if (run (argv) != 0)
        {
          fprintf (stderr, "qemu-img create %s failed\n", img);
          return -1;
        }
    }
  return spawn (p);
}

int
qemu_restart (struct qemu_proc *p)
{
  qemu_kill (p);
  return spawn (p);
}

void
qemu_signal (struct qemu_proc *p, int sig)
{
  if (p->pid > 0)
    kill (p->pid, sig);
}

void
qemu_kill (struct qemu_proc *p)
{
  if (p->pid > 0)
    {
      kill (p->pid, SIGKILL);
      waitpid (p->pid, NULL, 0);
      p->pid = 0;
    }
}

void
qemu_stop (struct qemu_proc *p)
{
  char *argv[] = { (char *)"rm", (char *)"-rf", p->dir, NULL };

  qemu_kill (p);
  if (p->dir[0])
    run (argv);
  p->dir[0] = '\0';
}
