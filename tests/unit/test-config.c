/* pullback: pullbackd configuration parsing.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "conf.h"

static char path[] = "/tmp/pullback-config-XXXXXX";
static struct config c;
static char err[1024];

static void
write_conf (const char *text)
{
  int fd = mkstemp (path);
  FILE *fp;

  cr_assert_geq (fd, 0);
  fp = fdopen (fd, "w");
  fputs (text, fp);
  fclose (fp);
}

static void
setup (void)
{
  config_init (&c);
  err[0] = '\0';
}

static void
teardown (void)
{
  config_free (&c);
  if (strcmp (path + strlen (path) - 6, "XXXXXX") != 0)
    unlink (path);
}

TestSuite (config, .init = setup, .fini = teardown);

Test (config, defaults_are_valid)
{
  cr_assert_eq (config_check (&c, err, sizeof err), 0, "%s", err);
  cr_assert_eq (c.backup_ttl, CONFIG_DEFAULT_BACKUP_TTL);
  cr_assert_eq (c.backup_ttl_max, CONFIG_DEFAULT_BACKUP_TTL_MAX);
  cr_assert_eq (c.log_level, LOG_LEVEL_INFO);
  cr_assert_eq (c.vms.len, 0);
}

Test (config, full_file)
{
  const struct vm_config *v;

  write_conf ("# pullbackd test\n"
              "state-dir = /var/tmp/pb-state\n"
              "run-dir=/run/pb\n"
              "listen = 127.0.0.1:9000\n"
              "listen = /run/pb/api.sock\n"
              "token-file = /etc/pullback/token\n"
              "log-level = debug\n"
              "backup-ttl = 600\n"
              "  backup-ttl-max = 7200  \n"
              "\n"
              "[vm web1]\n"
              "qmp = /run/qemu/web1.qmp\n"
              "qga = /run/qemu/web1.qga\n"
              "scratch = /var/tmp/scratch\n"
              "nbd = unix:/run/qemu/web1.nbd\n"
              "[vm db.2]\n"
              "qmp = /run/qemu/db.qmp\n"
              "nbd = 127.0.0.1:10809\n");
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  cr_assert_eq (config_check (&c, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq (c.state_dir, "/var/tmp/pb-state");
  cr_assert_str_eq (c.run_dir, "/run/pb");
  cr_assert_eq (c.listen.len, 2);
  cr_assert_str_eq (c.listen.ptr[1], "/run/pb/api.sock");
  cr_assert_eq (c.log_level, LOG_LEVEL_DEBUG);
  cr_assert_eq (c.backup_ttl, 600);
  cr_assert_eq (c.backup_ttl_max, 7200);
  cr_assert_eq (c.vms.len, 2);
  v = config_find_vm (&c, "web1");
  cr_assert_not_null (v);
  cr_assert_str_eq (v->qmp, "/run/qemu/web1.qmp");
  cr_assert_str_eq (v->qga, "/run/qemu/web1.qga");
  cr_assert_str_eq (v->scratch, "/var/tmp/scratch");
  cr_assert_str_eq (v->nbd, "unix:/run/qemu/web1.nbd");
  v = config_find_vm (&c, "db.2");
  cr_assert_not_null (v);
  cr_assert_null (v->qga);
  cr_assert_str_eq (v->nbd, "127.0.0.1:10809");
  cr_assert_null (config_find_vm (&c, "nosuch"));
}

struct bad
{
  const char *text;
  const char *want; /* substring of the error */
};

/* Each error names the file and line, and the key where there is one. */
static const struct bad bad_files[] = {
  { "nosuch = 1\n", ":1: unknown key 'nosuch'" },
  { "state-dir = relative/path\n",
    ":1: key 'state-dir': must be an absolute path" },
  { "\n\nlisten = 127.0.0.1:99999\n", ":3: key 'listen': port must be" },
  { "listen = nohost\n", ":1: key 'listen': must be HOST:PORT" },
  { "listen = :80\n", ":1: key 'listen': must be HOST:PORT" },
  { "log-level = loud\n", ":1: key 'log-level': must be error, warn" },
  { "backup-ttl = 0\n", ":1: key 'backup-ttl': must be a whole number" },
  { "backup-ttl = 12x\n", ":1: key 'backup-ttl': must be a whole number" },
  { "backup-ttl = 99999999999999999999\n", ":1: key 'backup-ttl'" },
  { "just words\n", ":1: expected 'key = value'" },
  { "= 3\n", ":1: missing key" },
  { "listen =\n", ":1: key 'listen': missing value" },
  { "[vm]\n", ":1: a section must look like [vm NAME]" },
  { "[vm   ]\n", ":1: VM id must not be empty" },
  { "[vm ../etc]\n", ":1: VM id must start with a letter or digit" },
  { "[vm a/b]\n", ":1: VM id must not contain '/'" },
  { "[machine x]\n", ":1: a section must look like [vm NAME]" },
  { "[vm x] junk\n", ":1: a section must look like [vm NAME]" },
  { "[vm x]\nqmp = /a\n[vm x]\nqmp = /b\n", ":3: VM 'x' is defined twice" },
  { "[vm x]\nqmp = a.sock\n",
    ":2: key 'qmp' of VM 'x': must be an absolute path" },
  { "[vm x]\nqmp = /a\nnbd = /b.sock\n",
    ":3: key 'nbd' of VM 'x': write a unix socket as unix:PATH" },
  { "[vm x]\nqmp = /a\nnbd = unix:rel\n",
    ":3: key 'nbd' of VM 'x': unix: must be followed" },
  { "[vm x]\nqmp = /a\nstate-dir = /x\n",
    ":3: unknown key 'state-dir' in [vm x]" },
  { "scratch-max = 12Q\n", ":1: key 'scratch-max': must be a size" },
  { "scratch-max = -1\n", ":1: key 'scratch-max': must be a size" },
  { "scratch-reserve = M\n", ":1: key 'scratch-reserve': must be a size" },
  { "scratch-reserve = 99999999999T\n",
    ":1: key 'scratch-reserve': must be a size" },
  { "nbd-transport = udp\n", ":1: key 'nbd-transport': must be unix or tcp" },
  { "nbd-ports = 10-9\n", ":1: key 'nbd-ports': must be LO-HI" },
  { "nbd-ports = 1-70000\n", ":1: key 'nbd-ports': must be LO-HI" },
  { "nbd-tls = yes\n", ":1: key 'nbd-tls': must be x509, psk or off" },
  { "nbd-address = 1.2.3.4:80\n", ":1: key 'nbd-address': must be a host" },
  { "nbd-tls-verify-peer = 1\n",
    ":1: key 'nbd-tls-verify-peer': must be yes or no" },
  { "[vm x]\nqmp = /a\nnbd-tls-x509-dir = rel\n",
    ":3: key 'nbd-tls-x509-dir' of VM 'x': must be an absolute path" },
};

Test (config, bad_files)
{
  for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++)
    {
      struct config c2;

      strcpy (path, "/tmp/pullback-config-XXXXXX");
      write_conf (bad_files[i].text);
      config_init (&c2);
      cr_assert_eq (config_read_file (&c2, path, err, sizeof err), -1,
                    "accepted: %s", bad_files[i].text);
      cr_expect (strstr (err, bad_files[i].want) != NULL,
                 "for %s got \"%s\", want \"%s\"", bad_files[i].text, err,
                 bad_files[i].want);
      cr_expect (strncmp (err, path, strlen (path)) == 0,
                 "error does not name the file: %s", err);
      config_free (&c2);
      unlink (path);
    }
}

/* Files that read well but do not hold together: config_check says
 * where.
 */
static const struct bad bad_checks[] = {
  { "token-file = /t\nlisten = 10.0.0.1:80\n",
    ":2: key 'listen': 10.0.0.1:80 is not a loopback address; off loopback "
    "the API is served over HTTPS only" },
  { "token-file = /t\nlisten = [::]:80\ntls-cert = /c\n",
    ":3: key 'tls-cert': needs 'tls-key' too" },
  { "tls-key = /k\n", ":1: key 'tls-key': needs 'tls-cert' too" },
  { "\ntls-client-ca = /ca\n",
    ":2: key 'tls-client-ca': client certificates need HTTPS" },
  { "tls-cert = /c\ntls-key = /k\nlisten = 0.0.0.0:80\n",
    ":3: key 'listen': TCP address 0.0.0.0:80 needs 'token-file'" },
  { "listen = 127.0.0.1:80\n",
    ":1: key 'listen': TCP address 127.0.0.1:80 needs 'token-file'" },
};

Test (config, bad_checks)
{
  for (size_t i = 0; i < sizeof bad_checks / sizeof bad_checks[0]; i++)
    {
      struct config c2;

      strcpy (path, "/tmp/pullback-config-XXXXXX");
      write_conf (bad_checks[i].text);
      config_init (&c2);
      cr_assert_eq (config_read_file (&c2, path, err, sizeof err), 0, "%s",
                    err);
      cr_assert_eq (config_check (&c2, err, sizeof err), -1, "accepted: %s",
                    bad_checks[i].text);
      cr_expect (strstr (err, bad_checks[i].want) != NULL,
                 "for %s got \"%s\", want \"%s\"", bad_checks[i].text, err,
                 bad_checks[i].want);
      cr_expect (strncmp (err, path, strlen (path)) == 0,
                 "error does not name the file: %s", err);
      config_free (&c2);
      unlink (path);
    }
}

/* TCP off loopback with HTTPS; loopback without; TLS on every TCP
 * address once set.
 */
Test (config, tls)
{
  write_conf ("token-file = /t\n"
              "listen = 0.0.0.0:8961\n"
              "listen = 127.0.0.1:8960\n"
              "tls-cert = /etc/pullback/cert.pem\n"
              "tls-key = /etc/pullback/key.pem\n"
              "tls-client-ca = /etc/pullback/clients.pem\n");
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  cr_assert_eq (config_check (&c, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq (c.tls_cert, "/etc/pullback/cert.pem");
  cr_assert_str_eq (c.tls_key, "/etc/pullback/key.pem");
  cr_assert_str_eq (c.tls_client_ca, "/etc/pullback/clients.pem");
  cr_assert_eq (c.listen_origin.len, 2);
  cr_assert (strstr (c.listen_origin.ptr[1], ":3") != NULL);
  /* From the command line, the error says so. */
  config_free (&c);
  config_init (&c);
  cr_assert_eq (config_set (&c, "token-file", "/t", err, sizeof err), 0);
  cr_assert_eq (config_set (&c, "listen", "192.0.2.1:80", err, sizeof err), 0);
  cr_assert_eq (config_check (&c, err, sizeof err), -1);
  cr_assert (strncmp (err, "--listen: key 'listen': 192.0.2.1:80 is not", 42)
                 == 0,
             "%s", err);
  cr_assert_eq (config_set (&c, "tls-key", "relative", err, sizeof err), -1);
  cr_assert (strstr (err, "must be an absolute path") != NULL, "%s", err);
}

/* token-file: several tokens, comments, blank lines; errors name the
 * line and never the token; the file closed to others.
 */
Test (config, tokens)
{
  string_vector tokens;
  char tpath[] = "/tmp/pullback-tokens-XXXXXX";
  int fd = mkstemp (tpath);
  FILE *fp;

  cr_assert_geq (fd, 0);
  fp = fdopen (fd, "w");
  fputs ("# clients\n\n  first-token-0123456789\n"
         "second-token-0123456789 # proxy\n\t\n",
         fp);
  fclose (fp);
  c.token_file = strdup (tpath);
  cr_assert_eq (config_load_tokens (&c, &tokens, err, sizeof err), 0, "%s",
                err);
  cr_assert_eq (tokens.len, 2);
  cr_assert_str_eq (tokens.ptr[0], "first-token-0123456789");
  cr_assert_str_eq (tokens.ptr[1], "second-token-0123456789");
  config_free_tokens (&tokens);

  fp = fopen (tpath, "w");
  fputs ("first-token-0123456789\nsecret-but-short\x01x\n", fp);
  fclose (fp);
  cr_assert_eq (config_load_tokens (&c, &tokens, err, sizeof err), -1);
  cr_assert (strstr (err, ":2: a token must be printable ASCII") != NULL, "%s",
             err);
  cr_assert (strstr (err, "secret") == NULL, "%s", err);
  cr_assert_eq (tokens.len, 0);

  fp = fopen (tpath, "w");
  fputs ("first-token-0123456789\n", fp);
  fclose (fp);
  chmod (tpath, 0604);
  cr_assert_eq (config_load_tokens (&c, &tokens, err, sizeof err), -1);
  cr_assert (strstr (err, "others may access it") != NULL, "%s", err);
  chmod (tpath, 0620);
  cr_assert_eq (config_load_tokens (&c, &tokens, err, sizeof err), -1);
  chmod (tpath, 0640);
  cr_assert_eq (config_load_tokens (&c, &tokens, err, sizeof err), 0, "%s",
                err);
  config_free_tokens (&tokens);
  unlink (tpath);
}

Test (config, overlong_line)
{
  char *text = malloc (10000);

  memset (text, 'x', 9998);
  text[9998] = '\n';
  text[9999] = '\0';
  write_conf (text);
  free (text);
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), -1);
  cr_assert (strstr (err, ":1: line longer than") != NULL, "%s", err);
}

Test (config, missing_file)
{
  cr_assert_eq (
      config_read_file (&c, "/nonexistent/pullbackd.conf", err, sizeof err),
      -1);
  cr_assert_str_eq (err,
                    "/nonexistent/pullbackd.conf: No such file or directory");
}

Test (config, vm_without_qmp)
{
  write_conf ("[vm x]\nqga = /q\n");
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  cr_assert_eq (config_check (&c, err, sizeof err), -1);
  cr_assert (strstr (err, ":1: VM 'x' has no 'qmp' socket") != NULL, "%s",
             err);
}

Test (config, sizes)
{
  cr_assert_eq (c.scratch_max, 0);
  cr_assert_eq (c.scratch_reserve, CONFIG_DEFAULT_SCRATCH_RESERVE);
  cr_assert_eq (config_set (&c, "scratch-max", "4096", err, sizeof err), 0);
  cr_assert_eq (c.scratch_max, 4096);
  cr_assert_eq (config_set (&c, "scratch-max", "3K", err, sizeof err), 0);
  cr_assert_eq (c.scratch_max, 3072);
  cr_assert_eq (config_set (&c, "scratch-reserve", "2G", err, sizeof err), 0);
  cr_assert_eq (c.scratch_reserve, INT64_C (2) << 30);
  cr_assert_eq (config_set (&c, "scratch-reserve", "1T", err, sizeof err), 0);
  cr_assert_eq (c.scratch_reserve, INT64_C (1) << 40);
  cr_assert_eq (config_set (&c, "scratch-reserve", "0", err, sizeof err), 0);
  cr_assert_eq (c.scratch_reserve, 0);
  cr_assert_eq (config_set (&c, "scratch-max", "1.5G", err, sizeof err), -1);
  cr_assert_eq (config_set (&c, "scratch-max", "", err, sizeof err), -1);
  cr_assert_eq (c.scratch_max, 3072, "a failed set changed the value");
}

Test (config, ttl_order)
{
  cr_assert_eq (config_set (&c, "backup-ttl", "100", err, sizeof err), 0);
  cr_assert_eq (config_set (&c, "backup-ttl-max", "50", err, sizeof err), 0);
  cr_assert_eq (config_check (&c, err, sizeof err), -1);
  cr_assert (strstr (err, "'backup-ttl' (100) is larger than") != NULL);
}

Test (config, vm_args)
{
  const struct vm_config *v;

  cr_assert_eq (config_add_vm_arg (&c,
                                   "vm1=/run/vm1.qmp,qga=/run/vm1.qga,"
                                   "scratch=/scratch,nbd=unix:/run/vm1.nbd",
                                   err, sizeof err),
                0, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "vm2=/run/vm2.qmp", err, sizeof err), 0,
                "%s", err);
  v = config_find_vm (&c, "vm1");
  cr_assert_str_eq (v->qmp, "/run/vm1.qmp");
  cr_assert_str_eq (v->qga, "/run/vm1.qga");
  cr_assert_str_eq (v->scratch, "/scratch");
  cr_assert_str_eq (v->nbd, "unix:/run/vm1.nbd");
  cr_assert_str_eq (config_find_vm (&c, "vm2")->qmp, "/run/vm2.qmp");
  cr_assert_eq (config_check (&c, err, sizeof err), 0, "%s", err);

  cr_assert_eq (config_add_vm_arg (&c, "vm1=/x", err, sizeof err), -1);
  cr_assert (strstr (err, "defined twice") != NULL, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "novalue", err, sizeof err), -1);
  cr_assert (strstr (err, "expected NAME=QMP_SOCKET") != NULL, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "v3=", err, sizeof err), -1);
  cr_assert (strstr (err, "missing QMP socket path") != NULL, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "v4=/q,bogus=1", err, sizeof err), -1);
  cr_assert (strstr (err, "unknown key 'bogus'") != NULL, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "v5=/q,qga", err, sizeof err), -1);
  cr_assert (strstr (err, "'qga' is not key=value") != NULL, "%s", err);
  cr_assert_eq (config_add_vm_arg (&c, "..=/q", err, sizeof err), -1);
  cr_assert (strstr (err, "VM id must not be '..'") != NULL, "%s", err);
}

Test (config, allowed_roots)
{
  cr_assert_eq (c.allowed_roots.len, 0); /* none by default */
  cr_assert_eq (config_set (&c, "allowed-roots", "/run/vms", err, sizeof err),
                0, "%s", err);
  cr_assert_eq (config_set (&c, "allowed-roots", "/srv/a b", err, sizeof err),
                0, "%s", err);
  cr_assert_eq (c.allowed_roots.len, 2);
  cr_assert_str_eq (c.allowed_roots.ptr[1], "/srv/a b");
  cr_assert_eq (config_set (&c, "allowed-roots", "run", err, sizeof err), -1);
  cr_assert (strstr (err, "absolute") != NULL, "%s", err);
  cr_assert_eq (config_set (&c, "allowed-roots", "/a/../b", err, sizeof err),
                -1);
  cr_assert_eq (config_set (&c, "allowed-roots", "/a/", err, sizeof err), -1);
  cr_assert_eq (c.allowed_roots.len, 2);
}

/* NBD over TCP: the VM's keys over the global ones, defaults, and the
 * start-time refusals.
 */
Test (config, nbd_net)
{
  struct nbd_net_conf m;

  write_conf ("nbd-transport = tcp\nnbd-tls = off\nnbd-ports = 2000-2001\n"
              "nbd-tls-allowed-dn = CN=a\n"
              "[vm x]\nqmp = /a\nnbd-address = 0.0.0.0\nnbd-tls = psk\n"
              "[vm y]\nqmp = /b\nnbd-transport = unix\n");
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  /* Allowed DNs need x509. */
  cr_assert_eq (config_check (&c, err, sizeof err), -1);
  cr_expect (strstr (err, "key 'nbd-tls-allowed-dn'") != NULL, "%s", err);
  cr_assert_eq (config_set (&c, "nbd-tls", "psk", err, sizeof err), 0);
  for (size_t i = 0; i < c.nbd.allowed_dn.len; i++)
    free (c.nbd.allowed_dn.ptr[i]);
  c.nbd.allowed_dn.len = 0;
  cr_assert_eq (config_check (&c, err, sizeof err), 0, "%s", err);

  cr_assert_eq (nbdconf_merge (&c.nbd, &c.vms.ptr[0]->net, &m), 0);
  cr_expect_eq (m.transport, NBD_TRANSPORT_TCP);
  cr_expect_str_eq (m.address, "0.0.0.0");
  cr_expect_eq (m.port_lo, 2000);
  cr_expect_eq (m.port_hi, 2001);
  cr_expect_eq (m.tls, NBD_TLS_PSK);
  cr_expect_eq (m.verify_peer, 1);
  nbdconf_free (&m);
  cr_assert_eq (nbdconf_merge (&c.nbd, &c.vms.ptr[1]->net, &m), 0);
  cr_expect_eq (m.transport, NBD_TRANSPORT_UNIX);
  nbdconf_free (&m);

  /* TLS off off loopback: refused, naming the VM and the key. */
  cr_assert_eq (config_add_vm_arg (&c, "z=/c,nbd-address=0.0.0.0,nbd-tls=off",
                                   err, sizeof err),
                0, "%s", err);
  cr_assert_eq (config_check (&c, err, sizeof err), -1);
  cr_expect (strstr (err, "VM 'z': key 'nbd-tls': off is allowed on a "
                          "loopback")
                 != NULL,
             "%s", err);
}

Test (config, nbd_net_defaults)
{
  struct nbd_net_conf m;

  cr_assert_eq (nbdconf_merge (&c.nbd, NULL, &m), 0);
  cr_expect_eq (m.transport, NBD_TRANSPORT_UNIX);
  cr_expect_str_eq (m.address, NBDCONF_DEFAULT_ADDRESS);
  cr_expect_eq (m.port_lo, NBDCONF_DEFAULT_PORT_LO);
  cr_expect_eq (m.port_hi, NBDCONF_DEFAULT_PORT_HI);
  cr_expect_eq (m.tls, NBD_TLS_PSK);
  nbdconf_free (&m);
  cr_assert_eq (config_set (&c, "nbd-tls-x509-dir", "/x", err, sizeof err), 0);
  cr_assert_eq (nbdconf_merge (&c.nbd, NULL, &m), 0);
  cr_expect_eq (m.tls, NBD_TLS_X509);
  nbdconf_free (&m);
}

/* expect_check_error TEXT: the settings TEXT are refused at start with a
 * message holding WANT.
 */
static void
expect_check_error (const char *text, const char *want)
{
  config_free (&c);
  config_init (&c);
  write_conf (text);
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  unlink (path);
  strcpy (path + strlen (path) - 6, "XXXXXX");
  cr_assert_eq (config_check (&c, err, sizeof err), -1, "accepted: %s", text);
  cr_expect (strstr (err, want) != NULL, "got '%s', want '%s'", err, want);
}

/* A PSK keys file of mode 0600 holding TEXT, at PSK. */
static char psk[64];

static void
write_psk (const char *text)
{
  int fd;

  unlink (psk);
  fd = open (psk, O_WRONLY | O_CREAT | O_EXCL, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (write (fd, text, strlen (text)), (ssize_t)strlen (text));
  close (fd);
}

/* What would let clients in that the settings mean to keep out, or make
 * every begin fail with a misleading error, is refused at start.
 */
Test (config, nbd_net_refusals)
{
  char conf[512];

  snprintf (psk, sizeof psk, "/tmp/pullback-psk-%d", (int)getpid ());
  /* QEMU ignores tls-authz without verify-peer: any client would do. */
  snprintf (conf, sizeof conf,
            "nbd-transport = tcp\nnbd-tls = x509\nnbd-tls-x509-dir = /\n"
            "nbd-tls-verify-peer = no\nnbd-tls-allowed-dn = CN=a\n");
  expect_check_error (conf, "key 'nbd-tls-allowed-dn': client DNs are "
                            "checked only with nbd-tls-verify-peer = yes");
  /* An address that does not resolve: not "no free port" at each begin. */
  expect_check_error ("nbd-transport = tcp\nnbd-tls = psk\n"
                      "nbd-address = no-such-host.invalid\n",
                      "key 'nbd-address': cannot resolve "
                      "no-such-host.invalid");
  /* A keys file that is not IDENTITY:HEXKEY lines, and never a key in
   * the message.
   */
  snprintf (conf, sizeof conf,
            "nbd-transport = tcp\nnbd-tls = psk\nnbd-tls-psk-file = %s\n",
            psk);
  write_psk ("alice:abc\n");
  expect_check_error (conf, "key 'nbd-tls-psk-file': ");
  cr_expect (strstr (err, "line 1 is not IDENTITY:HEXKEY") != NULL, "%s", err);
  cr_expect (strstr (err, "abc") == NULL, "%s", err);
  unlink (psk);
  write_psk ("alice:0123456789abcdeF\nbob:zz99\n");
  expect_check_error (conf, "line 2 is not IDENTITY:HEXKEY");
  cr_expect (strstr (err, "zz99") == NULL, "%s", err);
  unlink (psk);
  write_psk ("nokey\n");
  expect_check_error (conf, "line 1 is not IDENTITY:HEXKEY");
  unlink (psk);
  write_psk ("\n");
  expect_check_error (conf, "no IDENTITY:HEXKEY line");
  unlink (psk);
  /* Missing: the path and the reason. */
  expect_check_error (conf, ": No such file or directory");
  write_psk ("alice:0123456789abcdef\n");
  chmod (psk, 0644);
  expect_check_error (conf, "not a regular file of mode 0600 or 0640");
  chmod (psk, 0600);
  config_free (&c);
  config_init (&c);
  write_conf (conf);
  cr_assert_eq (config_read_file (&c, path, err, sizeof err), 0, "%s", err);
  cr_expect_eq (config_check (&c, err, sizeof err), 0, "%s", err);
  unlink (psk);
}
