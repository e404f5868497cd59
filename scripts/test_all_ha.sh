#!/usr/bin/env bash
# Equivalent of the user doc's `python3 mn-system-tests/test_all.py --redis-ha …`:
#   deno task test:ha [--redis-ha] [--remote-host H --local-ip IP --remote-ip IP [--remote-shell CMD]]
# (`--redis-ha` selects the Redis HA suites, as test_all.py's flag does: they are all this runs; the
# --redis-ha-remote-host/-local-ip/-remote-ip spellings of the user doc are accepted too.)
# Runs the local Sentinel smoke and, when a remote box is given, the two-box smoke. Prints
# "All selected test suites passed." only when every selected suite passed.
set -uo pipefail
cd "$(dirname "$0")/.."
remote_host="" local_ip="" remote_ip="" remote_shell=""
while [ $# -gt 0 ]; do
  case "$1" in
    --redis-ha) shift ;;
    --remote-host | --redis-ha-remote-host) remote_host="${2:?$1 needs a value}"; shift 2 ;;
    --local-ip | --redis-ha-local-ip) local_ip="${2:?$1 needs a value}"; shift 2 ;;
    --remote-ip | --redis-ha-remote-ip) remote_ip="${2:?$1 needs a value}"; shift 2 ;;
    --remote-shell) remote_shell="${2:?$1 needs a value}"; shift 2 ;;
    *) echo "test_all_ha.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
two_box=0
if [ -n "$remote_host" ] || [ -n "$local_ip" ] || [ -n "$remote_ip" ]; then
  if [ -z "$remote_host" ] || [ -z "$local_ip" ] || [ -z "$remote_ip" ]; then
    echo "test_all_ha.sh: the two-box suite needs --remote-host, --local-ip and --remote-ip together" >&2
    exit 2
  fi
  two_box=1
fi
failed=0
echo "== suite: local Sentinel failover smoke"
deno run -P=smoke --quiet --no-prompt main.ts smoke local || failed=1
if [ "$two_box" -eq 1 ]; then
  echo "== suite: two-box Sentinel failover smoke"
  args=(smoke two-box --remote-host "$remote_host" --local-ip "$local_ip" --remote-ip "$remote_ip")
  [ -n "$remote_shell" ] && args+=(--remote-shell "$remote_shell")
  deno run -P=cli --quiet --no-prompt main.ts "${args[@]}" || failed=1
fi
if [ "$failed" -eq 0 ]; then
  echo "All selected test suites passed."
else
  echo "Some selected test suites FAILED." >&2
  exit 1
fi
