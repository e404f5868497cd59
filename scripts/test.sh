#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs the checks, the unit tests
# (no permissions), the doc tests (README blocks and JSDoc examples), the integration tests (real redis-server/redis-sentinel processes) and the
# fault suite's short form (three network-namespace boxes, every nemesis once),
# and ends with one plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
# Daemons the tests start inherit every descriptor not marked close-on-exec: close what this
# script inherited beyond stdio (a CI runner's pipes or locks; 255 is bash's own), so a daemon
# can never hold them open.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
bash scripts/ensure_deps.sh --for-tests
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
started=$(date +%s)
mkdir -p .tmp
log=$(mktemp .tmp/test-log-XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
deno task check || status=1
if [ "$status" -eq 0 ]; then
  deno task test:unit 2>&1 | tee -a "$log" || status=1
  # Every README code block and JSDoc example, run against a local cluster.
  deno task test:doc 2>&1 | tee -a "$log" || status=1
  deno task test:int 2>&1 | tee -a "$log" || status=1
  # The dashboard in a real browser (Debian's Chromium through puppeteer-core).
  deno task test:browser 2>&1 | tee -a "$log" || status=1
  # The fault suite's short form runs alone, after the integration tests, so its load never
  # disturbs their timings.
  deno task test:chaos 2>&1 | tee -a "$log" || status=1
fi
passed=$(grep -Eo '\| [0-9]+ passed' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo '\| [0-9]+ failed' "$log" | awk '{s+=$2} END {print s+0}')
echo "test suite finished in $(( $(date +%s) - started ))s"
echo "${passed} passed, ${failed} failed"
exit "$status"
