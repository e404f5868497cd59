#!/usr/bin/env bash
# The main job: a local Sentinel failover smoke on free loopback ports (3 redis + 3 sentinels).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh
export DENO_NO_UPDATE_CHECK=1
exec deno task smoke "$@"
