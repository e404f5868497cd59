#!/usr/bin/env -S deno run -P=cli
/**
 * The `mn-redis-ha` CLI entry point: reads `Deno.args`, runs the command and
 * maps its outcome to an exit code. All logic lives in `lib/cli/cli.ts`.
 *
 * @module
 */

import { INTERRUPT_EXIT_CODES, InterruptError, runCli } from "./lib/cli/cli.ts";

/** How long a command may clean up after SIGINT/SIGTERM before the process exits anyway. */
const CLEANUP_GRACE_MS = 900;

const encoder = new TextEncoder();
const write = (stream: { writeSync(p: Uint8Array): number }, text: string): void => {
  const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
};

// Ctrl-C / SIGTERM abort the running command, which cleans up and returns 130 / 143. Should the
// cleanup not finish within the grace period, the process exits with that code anyway.
const interrupt = new AbortController();
const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
  const listener = (): void => {
    if (interrupt.signal.aborted) return;
    interrupt.abort(new InterruptError(signal));
    const timer = setTimeout(() => Deno.exit(INTERRUPT_EXIT_CODES[signal]), CLEANUP_GRACE_MS);
    Deno.unrefTimer(timer);
  };
  Deno.addSignalListener(signal, listener);
  return { signal, listener };
});
const code = await runCli(Deno.args, {
  stdout: (text) => write(Deno.stdout, text),
  stderr: (text) => write(Deno.stderr, text),
  getEnv: (name) => Deno.env.get(name),
  isTerminal: Deno.stdout.isTerminal(),
}, interrupt.signal);
for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
Deno.exit(code);
