#!/bin/sh
# Installs what the benchmark peers need, when missing:
#   libmimalloc-dev (mimalloc.h, libmimalloc.so -> libmimalloc.so.2) for the native C floor
#   and the "mimalloc via FFI" peers; a C compiler for bench/native.
# Only the Debian archive is used (apt-get). Safe to run repeatedly; never fails the bench:
# a peer that cannot be had is reported as "unavailable: <reason>" in bench/RESULTS.md.
set -u
need=""
dpkg -s libmimalloc-dev >/dev/null 2>&1 || need="$need libmimalloc-dev"
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
if [ -z "$need" ]; then
  echo "setup: peers present (libmimalloc-dev, cc)"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "setup: missing:$need (not root; install them with apt-get)" >&2
  exit 0
fi
echo "setup: installing$need"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends $need >/tmp/tsmalloc-bench-apt.log 2>&1; then
  apt-get update >>/tmp/tsmalloc-bench-apt.log 2>&1
  apt-get install -y --no-install-recommends $need >>/tmp/tsmalloc-bench-apt.log 2>&1 ||
    echo "setup: apt-get install failed (see /tmp/tsmalloc-bench-apt.log)" >&2
fi
exit 0
