/* pullback: settings shared by the whole daemon.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#ifndef PULLBACK_DAEMON_H
#define PULLBACK_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nbd_net_conf;

struct daemon_ctx
{
  const char *state_dir;
  const char *run_dir;
  int backup_ttl;
  int backup_ttl_max;
  int qmp_timeout_ms;
  int64_t scratch_max; /* see struct config */
  int64_t scratch_reserve;
  bool scratch_via_qemu;    /* scratch-create = qemu */
  const char *nbdkit;       /* the nbdkit program */
  const char *delta_plugin; /* nbdkit-pullback-plugin.so, or NULL: off */
  /* allowed-roots (fixed at start: SIGHUP does not change them). */
  const char *const *allowed_roots;
  size_t n_allowed_roots;
  /* The API's addresses: unix socket paths are never a VM's. */
  const char *const *listen;
  size_t n_listen;
  /* The global NBD network settings (nbdconf.h), which VMs registered
   * through the API start from (fixed at start).
   */
  const struct nbd_net_conf *nbd_net;
};

#endif /* PULLBACK_DAEMON_H */
