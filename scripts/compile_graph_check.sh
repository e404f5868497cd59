#!/usr/bin/env bash
# Proves `deno compile` can build the mn-redis-ha binary: it type-checks, resolves and embeds
# the whole module graph with the baked-in permission set. Where the real `denort` runtime
# cannot be downloaded, DENORT_BIN points at a stand-in ELF (a copy of /bin/true), so the
# output is not a working binary; on a connected host `deno task compile` builds the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
out=$(mktemp -d .tmp/compile-XXXXXX)
trap 'rm -rf "$out"' EXIT
standin="${DENORT_BIN:-}"
if [ -z "$standin" ]; then
  standin="$out/denort-standin"
  cp /bin/true "$standin"
fi
DENORT_BIN="$(realpath "$standin")" deno compile -P=cli --no-prompt --exclude-unused-npm --output "$out/mn-redis-ha" main.ts >"$out/log" 2>&1 || {
  cat "$out/log" >&2
  echo "compile graph check: deno compile failed" >&2
  exit 1
}
# deno compile lists embedded files as a tree (colour codes stripped): a file by name, or a
# folder folded into "name/*" once it holds many.
listing=$(sed 's/\x1b\[[0-9;]*m//g' "$out/log")
for embedded in "── main.ts" "┬ lib " "@logtape/logtape"; do
  grep -qF -- "$embedded" <<<"$listing" || { echo "$listing" >&2; echo "compile graph check: $embedded not embedded" >&2; exit 1; }
done
grep -Eq -- '── cli(/\*| )' <<<"$listing" || { echo "$listing" >&2; echo "compile graph check: lib/cli/ not embedded" >&2; exit 1; }
echo "compile graph check: ok (module graph compiled and embedded; runtime stand-in: $standin)"
