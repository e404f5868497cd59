#!/usr/bin/env -S deno run --allow-net --allow-env=MN_REDIS_*
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

const code = await runCli(Deno.args, {
  stdout: (text) => write(Deno.stdout, text),
  stderr: (text) => write(Deno.stderr, text),
  getEnv: (name) => Deno.env.get(name),
});
Deno.exit(code);
