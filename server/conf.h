/* pullback: pullbackd's configuration.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * The file is "key = value" lines, "#" comments, and "[vm NAME]"
 * sections for per-VM settings.  Command-line options set the same keys
 * (--vm NAME=QMP[,qga=..][,scratch=..][,nbd=..] is a whole section).
 * Every setting has a safe default so that no configuration at all is
 * valid.  Errors name the file, the line and the key.
 */

#ifndef PULLBACK_CONF_H
#define PULLBACK_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "nbdconf.h"
#include "vector.h"

#define CONFIG_DEFAULT_FILE "/etc/pullback/pullbackd.conf"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/pullback"
#define CONFIG_DEFAULT_RUN_DIR "/run/pullback"
#define CONFIG_DEFAULT_BACKUP_TTL 3600      /* seconds */
#define CONFIG_DEFAULT_BACKUP_TTL_MAX 86400 /* seconds */
/* Free space kept on a scratch filesystem: a backup that would eat into
 * it is failed (the guest's writes must never see ENOSPC).
 */
#define CONFIG_DEFAULT_SCRATCH_RESERVE (INT64_C (256) << 20)

struct vm_config
{
  char *name;    /* a valid VM id */
  char *qmp;     /* QMP socket path */
  char *qga;     /* guest-agent socket path, or NULL */
  char *scratch; /* directory for fleece overlays, or NULL: run dir */
  char *nbd;     /* an NBD server the VM manager runs, to adopt, or NULL */
  struct nbd_net_conf net; /* nbd-transport...: this VM's own */
  char *origin;            /* "FILE:LINE" or "--vm", for messages */
};

DEFINE_VECTOR_TYPE (vm_config_vector, struct vm_config *)
DEFINE_VECTOR_TYPE (string_vector, char *)

struct config
{
  char *state_dir;
  char *run_dir;
  string_vector listen; /* "HOST:PORT" or an absolute unix socket path */
  string_vector listen_origin; /* "FILE:LINE" or "--listen", per listen */
  /* Directories under which the paths a request names (qmp, qga,
   * scratch_dir, nbd=unix:) must lie; none: requests cannot name paths.
   */
  string_vector allowed_roots;
  char *token_file; /* bearer tokens for TCP clients, or NULL */
  /* HTTPS on every TCP listener: PEM files of the certificate (chain)
   * and its private key, and of the CAs whose client certificates are
   * required (NULL: none asked for).  Each with where it was set.
   */
  char *tls_cert, *tls_key, *tls_client_ca;
  char *tls_cert_origin, *tls_key_origin, *tls_client_ca_origin;
  enum log_level log_level;
  int backup_ttl;          /* default TTL of a backup, seconds */
  int backup_ttl_max;      /* largest TTL a request may ask for */
  int64_t scratch_max;     /* bytes one backup's scratch may take; 0: any */
  int64_t scratch_reserve; /* bytes kept free on the scratch filesystem */
  bool scratch_via_qemu;   /* scratch-create = qemu: QEMU makes the files */
  /* delta-plugin: nbdkit-pullback-plugin.so for the delta views, or
   * NULL (off); by default the installed one, if it is there.
   */
  char *delta_plugin;
  bool delta_off;
  char *nbdkit;            /* nbdkit = PROGRAM (default "nbdkit") */
  struct nbd_net_conf nbd; /* nbd-transport...: every VM's default */
  vm_config_vector vms;
};

/* Fill C with the defaults. */
void config_init (struct config *c);
void config_free (struct config *c);

/* Read PATH into C.  Returns 0, or -1 with the reason in ERR
 * ("PATH:LINE: key 'K': ...").  On error C may hold part of the file:
 * read into a fresh config and keep the old one until this succeeds.
 */
int config_read_file (struct config *c, const char *path, char *err,
                      size_t errlen);

/* Set a global KEY to VALUE (as from the command line).  Returns -1 with
 * the reason in ERR.
 */
int config_set (struct config *c, const char *key, const char *value,
                char *err, size_t errlen);

/* Add a VM from "NAME=QMP[,qga=PATH][,scratch=DIR][,nbd=ADDR]". */
int config_add_vm_arg (struct config *c, const char *arg, char *err,
                       size_t errlen);

/* Forget the listen addresses (the command line's replace the file's). */
void config_clear_listen (struct config *c);

/* Final checks once every source is read: TTLs consistent, every VM with
 * a QMP socket, TCP listeners only with a token-file, and off loopback
 * only with HTTPS (tls-cert and tls-key); tls-cert, tls-key and
 * tls-client-ca make sense together.
 */
int config_check (const struct config *c, char *err, size_t errlen);

/* Read the bearer tokens of token-file into TOKENS (malloc'd strings;
 * none when there is no token-file): one a line, blank lines and lines
 * starting with '#' skipped, at least one.  The file must not be open to
 * others nor writable by its group.  Errors name the file and line,
 * never a token.
 */
int config_load_tokens (const struct config *c, string_vector *tokens,
                        char *err, size_t errlen);

/* Free the strings of TOKENS (zeroed first) and TOKENS itself. */
void config_free_tokens (string_vector *tokens);

/* The PEM texts of tls-cert, tls-key and tls-client-ca (malloc'd, NUL
 * terminated; NULL where the key is not set).  tls-key must not be open
 * to others nor writable by its group.  Free with config_free_tls.
 */
struct tls_pem
{
  char *cert, *key, *client_ca;
};
int config_load_tls (const struct config *c, struct tls_pem *pem, char *err,
                     size_t errlen);
void config_free_tls (struct tls_pem *pem);

const struct vm_config *config_find_vm (const struct config *c,
                                        const char *name);

#endif /* PULLBACK_CONF_H */
