#!/usr/bin/env bash
# pullback: rules of the sources that the compiler cannot check.
#  - The engine reports errors as kinds (enum pb_errkind), never as HTTP
#    statuses: C turns an integer into the enum silently, so
#    reply_error (r, 502, ...) builds and then answers the wrong status.
#  - HTTP statuses are api/'s: the engine never calls http_error.
#  - The API's JSON of records is api/'s (api/render.c): the engine
#    answers with typed answers (server/answer.h), no *_to_api renderer,
#    no record's words (phase, mode, reason, failure) packed into JSON
#    outside the state file code.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
set -e

cd "$abs_top_srcdir"
bad=$(grep -nE 'reply_error(_field)? *\([^,]*, *[0-9]' server/*.c || true)
if [ -n "$bad" ]; then
  say_fail "a status number where the engine needs an error kind:"
  echo "$bad" >&2
  exit 1
fi
bad=$(grep -nE '\bhttp_(error|status)' server/*.c server/*.h || true)
if [ -n "$bad" ]; then
  say_fail "HTTP in the engine:"
  echo "$bad" >&2
  exit 1
fi
bad=$(grep -nE '[a-z_]+_to_api *\(' server/*.c server/*.h || true)
if [ -n "$bad" ]; then
  say_fail "the engine renders an API answer (api/render.c does):"
  echo "$bad" >&2
  exit 1
fi
bad=$(grep -nE 'json.*\b(backup_phase_name|disk_mode_name|disk_reason_name|backup_failure_name) *\(' \
        server/*.c | grep -vE '^server/(state-[a-z]+|records)\.c:' || true)
if [ -n "$bad" ]; then
  say_fail "a record's words in JSON outside the state file code:"
  echo "$bad" >&2
  exit 1
fi
