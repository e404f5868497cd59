#!/usr/bin/env bash
# `deno task compile [OUTPUT]`: builds the mn-redis-ha binary (default dist/mn-redis-ha) with the
# `cli` permission set baked in, then proves it is the program: it must answer `--version` with
# this version. A binary that does not (e.g. DENORT_BIN pointed at a stand-in runtime, as the
# offline graph check does) is deleted and the build fails, so nothing that merely looks like
# the program is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-dist/mn-redis-ha}"
mkdir -p "$(dirname "$output")" .tmp
building="$(dirname "$output")/.$(basename "$output").building.$$"
trap 'rm -f "$building"' EXIT
deno compile -P=cli --no-prompt --quiet --output "$building" main.ts
version=$(sed -n 's/^export const VERSION = "\(.*\)";$/\1/p' lib/common/version.ts)
answer=$("$building" --version 2>/dev/null | head -1 || true)
if [ "$answer" != "mn-redis-ha $version" ]; then
  echo "compile: the built file does not run as mn-redis-ha (--version answered: ${answer:-nothing})." >&2
  if [ -n "${DENORT_BIN:-}" ]; then
    echo "compile: DENORT_BIN=$DENORT_BIN is not a denort runtime of this Deno version ($(deno --version | head -1))." >&2
    echo "compile: download denort-<target>.zip of that version from https://dl.deno.land/release/v<version>/ or build online without DENORT_BIN." >&2
  fi
  echo "compile: nothing was written to $output" >&2
  exit 1
fi
mv -f "$building" "$output"
echo "compile: $output ($answer)"
