#!/usr/bin/env bash
# `deno task compile [OUTPUT]`: builds the mn-redis-ha binary (default dist/mn-redis-ha) with the
# `cli` permission set baked in, then proves it is the program: it must answer `--version` with
# this version. A binary that does not (e.g. DENORT_BIN pointed at a stand-in runtime, as the
# offline graph check does) is deleted and the build fails, so nothing that merely looks like
# the program is left behind. Every failure says what failed and what to do, and leaves nothing
# behind (not even the output directory, when this run created it).
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-dist/mn-redis-ha}"
deno_version=$(deno --version | sed -n '1s/^deno \([^ ]*\).*/\1/p')
target=$(deno --version | sed -n '1s/.*(\(.*\)).*/\1/p' | awk -F', ' '{print $NF}')
offline_help() {
  echo "compile: offline route: download denort-${target}.zip of Deno ${deno_version} on a connected" >&2
  echo "compile:   host (https://dl.deno.land/release/v${deno_version}/denort-${target}.zip), copy it here," >&2
  echo "compile:   unzip it and run: DENORT_BIN=/path/to/denort deno task compile" >&2
}
if [ -n "${DENORT_BIN:-}" ] && [ ! -f "$DENORT_BIN" ]; then
  echo "compile: DENORT_BIN=$DENORT_BIN is not a file; it must be the unzipped denort runtime." >&2
  offline_help
  echo "compile: nothing was written" >&2
  exit 1
fi
out_dir=$(dirname "$output")
created_dir=""
if [ ! -d "$out_dir" ]; then
  mkdir -p "$out_dir"
  created_dir="$out_dir"
fi
mkdir -p .tmp
building="$out_dir/.$(basename "$output").building.$$"
log=$(mktemp .tmp/compile-log-XXXXXX)
cleanup() {
  rm -f "$building" "$log"
  # An output directory this run made and left empty goes too.
  if [ -n "$created_dir" ]; then rmdir "$created_dir" 2>/dev/null || true; fi
}
trap cleanup EXIT
if ! deno compile -P=cli --no-prompt --quiet --exclude-unused-npm --output "$building" main.ts 2>"$log"; then
  if grep -q "dl.deno.land\|denort" "$log"; then
    # The innermost cause deno printed (e.g. a DNS failure), without colour codes.
    cause=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +[1-9][0-9]*: ' | grep -v '<unknown>' |
      sed -n '1s/^ *[0-9]*: //p')
    echo "compile: deno compile could not download the denort runtime it builds on (${cause:-see above})." >&2
    echo "compile: online, deno downloads it from dl.deno.land on first use; this host cannot reach it." >&2
    offline_help
  else
    echo "compile: deno compile failed:" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -v "^Stack backtrace:\|^ *0: <unknown>" |
      sed 's/^/compile:   /' >&2
  fi
  echo "compile: nothing was written to $output" >&2
  exit 1
fi
version=$(sed -n 's/^export const VERSION = "\(.*\)";$/\1/p' lib/common/version.ts)
answer=$("$building" --version 2>/dev/null | head -1 || true)
if [ "$answer" != "mn-redis-ha $version" ]; then
  echo "compile: the built file does not run as mn-redis-ha (--version answered: ${answer:-nothing})." >&2
  if [ -n "${DENORT_BIN:-}" ]; then
    echo "compile: DENORT_BIN=$DENORT_BIN is not a denort runtime of this Deno version (${deno_version})." >&2
    offline_help
  fi
  echo "compile: nothing was written to $output" >&2
  exit 1
fi
mv -f "$building" "$output"
created_dir=""
echo "compile: $output ($answer)"
