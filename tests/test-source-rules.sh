#!/usr/bin/env bash
# pullback: rules of the sources that the compiler cannot check.
#  - The engine reports errors as kinds (enum pb_errkind), never as HTTP
#    statuses: C turns an integer into the enum silently, so
#    reply_error (r, 502, ...) builds and then answers the wrong status.
#  - HTTP statuses are api/'s: the engine never calls http_error.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
set -e

cd "$abs_top_srcdir"
bad=$(grep -nE 'reply_error(_field)? *\([^,]*, *[0-9]' server/*.c || true)
if [ -n "$bad" ]; then
  echo "FAIL: a status number where the engine needs an error kind:" >&2
  echo "$bad" >&2
  exit 1
fi
bad=$(grep -nE '\bhttp_(error|status)' server/*.c server/*.h || true)
if [ -n "$bad" ]; then
  echo "FAIL: HTTP in the engine:" >&2
  echo "$bad" >&2
  exit 1
fi
