#!/usr/bin/env bash
# The user doc's Redis HA helper: `bash scripts/redis_ha.sh join|leave [flags]`.
# Runs `mn-redis-ha join|leave` (the installed binary if there is one, else from source).
# Passwords come from MN_REDIS_PASSWORD / MN_REDIS_SENTINEL_PASSWORD, never from flags.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  join | leave) ;;
  *)
    echo "usage: bash scripts/redis_ha.sh join|leave [flags]  (see: mn-redis-ha join --help)" >&2
    exit 2
    ;;
esac
if command -v mn-redis-ha >/dev/null 2>&1; then exec mn-redis-ha "$@"; fi
exec deno run -P=cli --quiet --no-prompt --config "$root/deno.json" "$root/main.ts" "$@"
