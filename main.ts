#!/usr/bin/env -S deno run -P=cli
/**
 * The `mn-redis-ha` CLI entry point: reads `Deno.args`, runs the command and
 * maps its outcome to an exit code. All logic lives in `lib/cli.ts`.
 *
 * @module
 */

import { runCli } from "./lib/cli.ts";

const encoder = new TextEncoder();
const write = (stream: { writeSync(p: Uint8Array): number }, text: string): void => {
  const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
};

// Ctrl-C / SIGTERM abort the running command, which then cleans up and exits.
const interrupt = new AbortController();
const onSignal = (): void => interrupt.abort(new Error("interrupted by signal"));
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const code = await runCli(Deno.args, {
  stdout: (text) => write(Deno.stdout, text),
  stderr: (text) => write(Deno.stderr, text),
  getEnv: (name) => Deno.env.get(name),
  isTerminal: Deno.stdout.isTerminal(),
}, interrupt.signal);
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
Deno.exit(code);
