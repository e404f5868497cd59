#!/usr/bin/env bash
# The user doc's two-box smoke:
#   bash scripts/test_redis_sentinel_two_box_ha.sh --remote-host H --local-ip IP --remote-ip IP \
#     [--remote-network auto|host|bridge] [--initial-primary auto|local|remote] [--remote-shell CMD]
# Runs `mn-redis-ha smoke two-box` (the installed binary if there is one, else from source).
# The remote box needs redis-server, redis-sentinel and redis-cli; it is driven over
# `ssh <remote-host>` unless --remote-shell says otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if command -v mn-redis-ha >/dev/null 2>&1; then exec mn-redis-ha smoke two-box "$@"; fi
exec deno run -P=cli --quiet --no-prompt --config "$root/deno.json" "$root/main.ts" smoke two-box "$@"
