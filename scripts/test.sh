#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs the checks, the unit tests
# (no permissions) and the integration tests (real redis-server/redis-sentinel processes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh
export DENO_NO_UPDATE_CHECK=1
started=$(date +%s)
deno task check
deno task test:unit
deno task test:int
echo "test suite finished in $(( $(date +%s) - started ))s"
