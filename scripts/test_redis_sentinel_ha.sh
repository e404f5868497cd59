#!/usr/bin/env bash
# Local Sentinel failover smoke (the main job): 3 redis + 3 sentinels on free loopback ports,
# a durable write through Sentinel mode, kill -9 of the primary, a write and read through the
# promoted replica. No Docker needed. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh
export DENO_NO_UPDATE_CHECK=1
exec deno task smoke "$@"
