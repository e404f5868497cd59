#!/usr/bin/env bash
# The user doc's CLI/control wrapper:
#   bash scripts/cluster_cli.sh --box1-ip IP --box2-ip IP --self-ip IP --redis-ha-mode sentinel \
#     --redis-sentinels H:P,H:P --sentinel-master NAME [--redis-wait-replicas N] -- inspect nodes
# Turns the connection flags into MN_REDIS_* variables and runs `mn-redis-ha <command…>`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
box1="" box2="" self="" mode="" sentinels="" master="" wait=""
usage() { echo "usage: bash scripts/cluster_cli.sh --box1-ip IP --box2-ip IP [--self-ip IP] [--redis-ha-mode single|sentinel] [--redis-sentinels H:P,…] [--sentinel-master NAME] [--redis-wait-replicas N] -- <mn-redis-ha command>" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --box1-ip) box1="${2:?--box1-ip needs a value}"; shift 2 ;;
    --box2-ip) box2="${2:?--box2-ip needs a value}"; shift 2 ;;
    --self-ip) self="${2:?--self-ip needs a value}"; shift 2 ;;
    --redis-ha-mode) mode="${2:?--redis-ha-mode needs a value}"; shift 2 ;;
    --redis-sentinels) sentinels="${2:?--redis-sentinels needs a value}"; shift 2 ;;
    --sentinel-master) master="${2:?--sentinel-master needs a value}"; shift 2 ;;
    --redis-wait-replicas) wait="${2:?--redis-wait-replicas needs a value}"; shift 2 ;;
    --) shift; break ;;
    -h | --help) usage ;;
    *) echo "cluster_cli.sh: unknown flag $1" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || { echo "cluster_cli.sh: nothing to run after --" >&2; usage; }
[ -n "$box1" ] && [ -n "$box2" ] || { echo "cluster_cli.sh: --box1-ip and --box2-ip are required" >&2; usage; }
[ -n "$mode" ] && export MN_REDIS_HA_MODE="$mode"
if [ "${MN_REDIS_HA_MODE:-single}" = "sentinel" ]; then
  export MN_REDIS_SENTINELS="${sentinels:-${MN_REDIS_SENTINELS:-$box1:26379,$box2:26379}}"
  export MN_REDIS_SENTINEL_MASTER="${master:-${MN_REDIS_SENTINEL_MASTER:-mirror-neuron}}"
else
  export MN_REDIS_URL="${MN_REDIS_URL:-redis://${self:-$box1}:6379}"
fi
[ -n "$wait" ] && export MN_REDIS_WAIT_REPLICAS="$wait"
if command -v mn-redis-ha >/dev/null 2>&1; then exec mn-redis-ha "$@"; fi
exec deno run -P=cli --quiet --no-prompt --config "$root/deno.json" "$root/main.ts" "$@"
