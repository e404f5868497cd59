#!/usr/bin/env bash
# Installs what mn-redis-ha needs on a fresh Debian/Ubuntu box, or says what to install:
#   Deno (pinned, from the npm registry) and Redis 7 with Sentinel (Debian packages).
# Safe to run repeatedly: it only installs what is missing.
set -euo pipefail

DENO_VERSION="2.9.6"

say() { printf 'ensure_deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root to run: $*"; return 1; fi
}

if ! command -v deno >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    say "Deno is missing and so is npm. Install Node.js (which brings npm), then rerun;"
    say "or install Deno ${DENO_VERSION} yourself: https://docs.deno.com/runtime/getting_started/installation/"
    exit 1
  fi
  say "installing Deno ${DENO_VERSION} from the npm registry (npm install -g deno@${DENO_VERSION})"
  if ! npm install -g "deno@${DENO_VERSION}" >&2; then
    as_root npm install -g "deno@${DENO_VERSION}" >&2
  fi
  hash -r
fi
if ! deno --version >/dev/null 2>&1; then
  say "deno is on PATH but does not run; reinstall it: npm install -g deno@${DENO_VERSION}"
  exit 1
fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ "${1:-}" = "--for-tests" ]; then
  # The two-box tests build two network namespaces and cut one direction with iptables.
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  # The service tests check the unit files with systemd-analyze verify.
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  # The observability tests check metrics and alert rules with promtool and scrape with Prometheus.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # The dashboard test drives Debian's Chromium.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]} and no apt-get here; install Redis 7 with Sentinel from your package manager"
    exit 1
  fi
  say "installing ${missing[*]} (apt-get install -y ${missing[*]})"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  # Debian starts the packaged services where systemd runs; the project starts its own on free ports.
fi
