#!/bin/sh
# pullback: install the Debian packages needed to build and test pullback.
# SPDX-License-Identifier: BSD-3-Clause
#
# Installs only what is missing and says what it installs.  Run as root
# (or with sudo available).  Safe to run again: with everything present it
# only checks and exits.

set -eu

packages="
  autoconf automake libtool pkg-config make gcc
  libjansson-dev libnbd-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev
  libcriterion-dev nbdkit nbdkit-plugin-dev libnbd-bin python3-libnbd
  qemu-system-x86 qemu-system-common qemu-utils qemu-block-extra
  qemu-guest-agent
  jq curl gnutls-bin socat e2fsprogs util-linux perl
"

missing=
for p in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *" installed") ;;
    *) missing="$missing $p" ;;
  esac
done

if [ -z "$missing" ]; then
  echo "pullback: all build and test packages are installed"
  exit 0
fi

echo "pullback: installing missing Debian packages:$missing"

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=sudo
  else
    echo "pullback: need root (or sudo) to install:$missing" >&2
    exit 1
  fi
else
  sudo=
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq $missing
