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
DENORT_BIN="$(realpath "$standin")" deno compile -P=cli --no-prompt --output "$out/mn-redis-ha" main.ts >"$out/log" 2>&1 || {
  cat "$out/log" >&2
  echo "compile graph check: deno compile failed" >&2
  exit 1
}
# deno compile lists embedded files one by one, or folds a folder into "lib/*" once it holds many.
for embedded in main.ts "lib/" @logtape/logtape; do
  grep -qF "$embedded" "$out/log" || { cat "$out/log" >&2; echo "compile graph check: $embedded not embedded" >&2; exit 1; }
done
grep -Eq 'lib/(\*|cli\.ts)' "$out/log" || { cat "$out/log" >&2; echo "compile graph check: lib/cli/cli.ts not embedded" >&2; exit 1; }
echo "compile graph check: ok (module graph compiled and embedded; runtime stand-in: $standin)"
