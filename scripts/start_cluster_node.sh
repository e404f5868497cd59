#!/usr/bin/env bash
# The user doc's runtime node starter: `bash scripts/start_cluster_node.sh --box1-ip … --box 1 …`.
# Runs `mn-redis-ha node start` with the same flags (the installed binary if there is one, else
# from source). In sentinel mode it joins Redis HA first unless --skip-redis-ha is given.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if command -v mn-redis-ha >/dev/null 2>&1; then exec mn-redis-ha node start "$@"; fi
exec deno run -P=cli --quiet --no-prompt --config "$root/deno.json" "$root/main.ts" node start "$@"
