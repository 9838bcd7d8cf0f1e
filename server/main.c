/* pullback: pullbackd, the pull-backup server.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "qmp.h"
#include "registry.h"
#include "state.h"

enum
{
  OPT_STATE_DIR = 256,
  OPT_RUN_DIR,
  OPT_LISTEN,
  OPT_VM,
  OPT_LOG_LEVEL,
  OPT_ALLOWED_ROOT,
};

static const char short_options[] = "c:fhnV";
static const struct option long_options[] = {
  { "config", required_argument, NULL, 'c' },
  { "foreground", no_argument, NULL, 'f' },
  { "help", no_argument, NULL, 'h' },
  { "check-config", no_argument, NULL, 'n' },
  { "version", no_argument, NULL, 'V' },
  { "state-dir", required_argument, NULL, OPT_STATE_DIR },
  { "run-dir", required_argument, NULL, OPT_RUN_DIR },
  { "listen", required_argument, NULL, OPT_LISTEN },
  { "vm", required_argument, NULL, OPT_VM },
  { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
  { "allowed-root", required_argument, NULL, OPT_ALLOWED_ROOT },
  { NULL, 0, NULL, 0 },
};

static void
usage (FILE *fp)
{
  fprintf (
      fp,
      "usage: pullbackd [-fn] [-c FILE] [--state-dir DIR] [--run-dir DIR]\n"
      "                 [--listen ADDR]... [--vm "
      "NAME=QMP[,qga=P][,scratch=D][,nbd=A]]...\n"
      "                 [--allowed-root DIR]...\n"
      "                 [--log-level error|warn|info|debug]\n"
      "See pullbackd(8).\n");
}

/* Command-line settings, applied over the file's. */
struct cmdline
{
  const char *config;
  bool foreground, check;
  const char *state_dir, *run_dir, *log_level;
  const char *listen[16];
  int nlisten;
  const char *vms[256];
  int nvms;
  const char *roots[64];
  int nroots;
};

static int
build_config (const struct cmdline *cl, struct config *conf, char *err,
              size_t errlen)
{
  const char *file = cl->config;

  config_init (conf);
  if (file == NULL && access (CONFIG_DEFAULT_FILE, F_OK) == 0)
    file = CONFIG_DEFAULT_FILE;
  if (file && config_read_file (conf, file, err, errlen) == -1)
    return -1;

  if (cl->nlisten > 0)
    config_clear_listen (conf);
  for (int i = 0; i < cl->nlisten; i++)
    if (config_set (conf, "listen", cl->listen[i], err, errlen) == -1)
      return -1;
  if ((cl->state_dir
       && config_set (conf, "state-dir", cl->state_dir, err, errlen) == -1)
      || (cl->run_dir
          && config_set (conf, "run-dir", cl->run_dir, err, errlen) == -1)
      || (cl->log_level
          && config_set (conf, "log-level", cl->log_level, err, errlen) == -1))
    return -1;
  /* In addition to the file's. */
  for (int i = 0; i < cl->nroots; i++)
    if (config_set (conf, "allowed-roots", cl->roots[i], err, errlen) == -1)
      return -1;
  for (int i = 0; i < cl->nvms; i++)
    if (config_add_vm_arg (conf, cl->vms[i], err, errlen) == -1)
      return -1;

  if (conf->state_dir == NULL)
    conf->state_dir = strdup (CONFIG_DEFAULT_STATE_DIR);
  if (conf->run_dir == NULL)
    conf->run_dir = strdup (CONFIG_DEFAULT_RUN_DIR);
  if (conf->listen.len == 0)
    {
      char path[PATH_MAX];

      snprintf (path, sizeof path, "%s/api.sock", conf->run_dir);
      if (config_set (conf, "listen", path, err, errlen) == -1)
        return -1;
    }
  return config_check (conf, err, errlen);
}

static int
make_dir (const char *path, mode_t mode)
{
  char buf[PATH_MAX];

  snprintf (buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        mkdir (buf, 0755);
        *p = '/';
      }
  if (mkdir (buf, mode) == -1 && errno != EEXIST)
    return -1;
  return 0;
}

/* One daemon per state directory: a second would overwrite the first's
 * state and end its backups.  And per run directory: it would take the
 * first's NBD sockets and scratch files for leftovers.  The lock is held, through LOCK_FD, for the
 * daemon's life (the kernel drops it when the process dies, however it
 * dies); the file holds the pid of the holder, for the message.
 */
static int
lock_dir (const char *what, const char *dir, mode_t mode, char *err,
          size_t errlen)
{
  char path[PATH_MAX], pid[32] = "";
  int fd;
  ssize_t n;

  if (make_dir (dir, mode) == -1)
    {
      snprintf (err, errlen, "%s directory %s: %s", what, dir,
                strerror (errno));
      return -1;
    }
  snprintf (path, sizeof path, "%s/pullbackd.lock", dir);
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1)
    {
      snprintf (err, errlen, "%.900s: %s", path, strerror (errno));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) == -1)
    {
      int e = errno;

      n = pread (fd, pid, sizeof pid - 1, 0);
      pid[n > 0 ? n : 0] = '\0';
      pid[strcspn (pid, "\n")] = '\0';
      if (e == EWOULDBLOCK)
        snprintf (err, errlen,
                  "another pullbackd (pid %s) uses the %s directory %s; "
                  "refusing to start",
                  pid[0] ? pid : "?", what, dir);
      else
        snprintf (err, errlen, "lock %.900s: %s", path, strerror (e));
      close (fd);
      return -1;
    }
  return fd;
}

/* Write our pid into the lock file (after daemon () forked). */
static void
lock_write_pid (int fd)
{
  char pid[32];
  int n = snprintf (pid, sizeof pid, "%ld\n", (long)getpid ());

  if (ftruncate (fd, 0) == -1 || pwrite (fd, pid, (size_t)n, 0) != n)
    log_warn ("writing the pid into the state directory's lock file");
}

/* The plugin for the delta views: delta-plugin, else the installed one
 * when it is there; NULL: no delta views.
 */
static const char *
delta_plugin (const struct config *conf)
{
  if (conf->delta_off)
    return NULL;
  if (conf->delta_plugin)
    return conf->delta_plugin;
  return access (DELTA_PLUGIN_DEFAULT, R_OK) == 0 ? DELTA_PLUGIN_DEFAULT
                                                  : NULL;
}

int
main (int argc, char **argv)
{
  struct cmdline cl = { 0 };
  struct config conf;
  struct daemon_ctx ctx;
  struct registry reg;
  struct api_server *api;
  string_vector tokens = empty_vector;
  struct tls_pem pem = { 0 };
  struct api_tls tls;
  char err[1024], vmsdir[PATH_MAX];
  sigset_t set;
  int c, sig, lock_fd, run_lock_fd, rc = EXIT_SUCCESS, rc_shutdown;

  while ((c = getopt_long (argc, argv, short_options, long_options, NULL))
         != -1)
    switch (c)
      {
      case 'c':
        cl.config = optarg;
        break;
      case 'f':
        cl.foreground = true;
        break;
      case 'n':
        cl.check = true;
        break;
      case 'h':
        usage (stdout);
        return EXIT_SUCCESS;
      case 'V':
        printf ("pullbackd %s\n", PACKAGE_VERSION);
        return EXIT_SUCCESS;
      case OPT_STATE_DIR:
        cl.state_dir = optarg;
        break;
      case OPT_RUN_DIR:
        cl.run_dir = optarg;
        break;
      case OPT_LOG_LEVEL:
        cl.log_level = optarg;
        break;
      case OPT_LISTEN:
        if (cl.nlisten == 16)
          fatalx ("too many --listen options");
        cl.listen[cl.nlisten++] = optarg;
        break;
      case OPT_ALLOWED_ROOT:
        if (cl.nroots == 64)
          fatalx ("too many --allowed-root options");
        cl.roots[cl.nroots++] = optarg;
        break;
      case OPT_VM:
        if (cl.nvms == 256)
          fatalx ("too many --vm options");
        cl.vms[cl.nvms++] = optarg;
        break;
      default:
        usage (stderr);
        return EXIT_FAILURE;
      }
  if (optind < argc)
    {
      usage (stderr);
      return EXIT_FAILURE;
    }

  log_init ("pullbackd", true, LOG_LEVEL_INFO);
  tls = (struct api_tls){ 0 };
  if (build_config (&cl, &conf, err, sizeof err) == -1
      || config_load_tokens (&conf, &tokens, err, sizeof err) == -1
      || config_load_tls (&conf, &pem, err, sizeof err) == -1)
    fatalx ("%s", err);
  if (pem.cert)
    {
      tls = (struct api_tls){ .cert = pem.cert,
                              .key = pem.key,
                              .client_ca = pem.client_ca,
                              .cert_path = conf.tls_cert,
                              .key_path = conf.tls_key,
                              .client_ca_path = conf.tls_client_ca };
      if (api_tls_check (&tls, err, sizeof err) == -1)
        fatalx ("%s", err);
    }
  if (cl.check)
    {
      printf ("configuration OK\n");
      config_free_tokens (&tokens);
      config_free_tls (&pem);
      config_free (&conf);
      return EXIT_SUCCESS;
    }

  /* Before anything in the state or run directory is touched, and while
   * errors still reach the terminal.
   */
  lock_fd = lock_dir ("state", conf.state_dir, 0700, err, sizeof err);
  if (lock_fd == -1)
    fatalx ("%s", err);
  run_lock_fd = lock_dir ("run", conf.run_dir, 0750, err, sizeof err);
  if (run_lock_fd == -1)
    fatalx ("%s", err);

  log_init ("pullbackd", cl.foreground, conf.log_level);
  if (!cl.foreground && daemon (0, 0) == -1)
    fatal ("daemon");
  lock_write_pid (lock_fd);
  lock_write_pid (run_lock_fd);

  if (state_init (conf.state_dir, err, sizeof err) == -1)
    fatalx ("state directory: %s", err);
  snprintf (vmsdir, sizeof vmsdir, "%s/vms", conf.run_dir);
  if (make_dir (conf.run_dir, 0750) == -1 || make_dir (vmsdir, 0750) == -1)
    fatal ("run directory %s", conf.run_dir);

  /* Signals go to this thread only, through sigwait. */
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);

  ctx = (struct daemon_ctx){
    .state_dir = conf.state_dir,
    .run_dir = conf.run_dir,
    .backup_ttl = conf.backup_ttl,
    .backup_ttl_max = conf.backup_ttl_max,
    .qmp_timeout_ms = QMP_DEFAULT_TIMEOUT_MS,
    .scratch_max = conf.scratch_max,
    .scratch_reserve = conf.scratch_reserve,
    .scratch_via_qemu = conf.scratch_via_qemu,
    .nbdkit = conf.nbdkit ? conf.nbdkit : "nbdkit",
    .delta_plugin = delta_plugin (&conf),
    .allowed_roots = (const char *const *)conf.allowed_roots.ptr,
    .n_allowed_roots = conf.allowed_roots.len,
    .listen = (const char *const *)conf.listen.ptr,
    .n_listen = conf.listen.len,
    .nbd_net = &conf.nbd,
  };
  registry_init (&reg, &ctx);
  registry_load (&reg, &conf);

  api = api_server_start (&reg, conf.listen.ptr, conf.listen.len, tokens.ptr,
                          tokens.len, pem.cert ? &tls : NULL, err, sizeof err);
  config_free_tokens (&tokens);
  config_free_tls (&pem);
  if (api == NULL)
    {
      log_warnx ("%s", err);
      registry_shutdown (&reg);
      config_free (&conf);
      return EXIT_FAILURE;
    }
  log_info ("pullbackd %s ready", PACKAGE_VERSION);

  for (;;)
    {
      if (sigwait (&set, &sig) != 0)
        continue;
      if (sig == SIGHUP)
        {
          struct config fresh;

          log_info ("SIGHUP: reloading the VM list");
          if (build_config (&cl, &fresh, err, sizeof err) == -1)
            {
              log_warnx ("reload: %s; keeping the current VMs", err);
              config_free (&fresh);
              continue;
            }
          registry_reload (&reg, &fresh);
          /* The tokens too; the addresses and certificates stay. */
          if (config_load_tokens (&fresh, &tokens, err, sizeof err) == -1)
            log_warnx ("reload: %s; keeping the current tokens", err);
          else if (api_server_set_tokens (api, tokens.ptr, tokens.len, err,
                                          sizeof err)
                   == -1)
            log_warnx ("reload: %s; keeping the current tokens", err);
          else if (fresh.token_file)
            log_info ("reload: %zu bearer token%s from %s", tokens.len,
                      tokens.len == 1 ? "" : "s", fresh.token_file);
          config_free_tokens (&tokens);
          config_free (&fresh);
          continue;
        }
      log_info ("signal %d: ending backups and exiting", sig);
      break;
    }

  /* No new connection or request; then the VMs finish what they are
   * doing (a begin under way is undone and answered 503) and end their
   * backups; their answers go out before the HTTP server stops.
   */
  api_server_quiesce (api);
  rc_shutdown = registry_shutdown (&reg);
  api_server_stop (api);
  if (rc_shutdown == -1)
    {
      log_warnx ("the last state of some VMs could not be written; they "
                 "are cleaned up from their older state at the next start");
      rc = EXIT_FAILURE;
    }
  config_free (&conf);
  log_info ("pullbackd stopped");
  close (run_lock_fd);
  close (lock_fd);
  return rc;
}
