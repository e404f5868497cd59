/** Running a command to completion and capturing its output, for CLI and script tests. */

import { waitFor } from "../../lib/common/wait_for.ts";

/** What one subprocess printed and how it exited. */
export interface ProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args…` with `NO_COLOR=1` and no stdin. `timeoutMs` kills it
 * (SIGKILL) if it has not exited by then — e.g. a prompt waiting for input.
 */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number | undefined } = {},
): Promise<ProcessRun> {
  const child = new Deno.Command(command, {
    args: [...args],
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = options.timeoutMs === undefined
    ? undefined
    : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** True while process `pid` exists (a daemon is not our child: asked through the shell). */
export async function daemonAlive(pid: number): Promise<boolean> {
  return (await runProcess("bash", ["-c", `kill -0 ${pid} 2>/dev/null`])).code === 0;
}

/**
 * Kills daemons (not our children, so through the shell, as the int
 * permission set allows) with SIGKILL and waits until every one is gone.
 */
export async function killDaemons(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  const killed = await runProcess("bash", ["-c", `kill -KILL ${pids.join(" ")}`]);
  if (killed.code !== 0) throw new Error(`kill -KILL ${pids.join(" ")}: ${killed.stderr}`);
  await waitFor(async () => {
    const alive: number[] = [];
    for (const pid of pids) if (await daemonAlive(pid)) alive.push(pid);
    return alive.length === 0
      ? { done: true, value: undefined }
      : { done: false, observed: `alive ${alive}` };
  }, { what: `pids ${pids.join(", ")} to die`, timeoutMs, intervalMs: 50 });
}

/** The CLI from source, as operators run it (`deno run -P=cli main.ts`), as argv. */
export const MN_CLI: readonly string[] = [
  "deno",
  "run",
  "-P=cli",
  "--quiet",
  "--no-prompt",
  "main.ts",
];

/** Runs the CLI from source with `args`. */
export function mnCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ProcessRun> {
  const [command, ...prefix] = MN_CLI;
  return runProcess(command!, [...prefix, ...args], { env });
}

/** A long-running subprocess whose output is collected as it arrives. */
export interface CollectingProcess {
  /** Everything printed to stdout so far. */
  stdout(): string;
  /** Everything printed to stderr so far. */
  stderr(): string;
  /** Sends a signal (no-op once it exited). */
  kill(signal: Deno.Signal): void;
  /** Resolves when it exited and its output was read to the end. */
  done: Promise<Deno.CommandStatus>;
}

/** Spawns `command args…` and collects its output while it runs. */
export function spawnCollecting(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): CollectingProcess {
  const child = new Deno.Command(command, {
    args: [...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const text = { stdout: "", stderr: "" };
  const collect = async (
    stream: ReadableStream<Uint8Array>,
    key: "stdout" | "stderr",
  ): Promise<void> => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text[key] += chunk;
  };
  const reading = Promise.all([collect(child.stdout, "stdout"), collect(child.stderr, "stderr")]);
  let exited = false;
  const done = child.status.then(async (status) => {
    exited = true;
    await reading;
    return status;
  });
  return {
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    kill: (signal) => {
      if (!exited) child.kill(signal);
    },
    done,
  };
}

/** What a test's `node start` differs in; the rest is the documented two-box form on loopback. */
export interface NodeStartArgs {
  /** `--box1-ip` and `--box2-ip`. @default {"127.0.0.1"} */
  host?: string | undefined;
  /** `--box`. */
  box: 1 | 2;
  /** `--redis-sentinels`, `host:port,…`. */
  sentinels: string;
  /** `--sentinel-master`. */
  master: string;
  /** Further flags (`--redis-port …`, `--skip-redis-ha`, `--metrics-listen …`). */
  extra?: readonly string[] | undefined;
}

/** The CLI's `node start` in sentinel mode, as argv for {@link spawnCollecting}. */
export function nodeStartArgv(options: NodeStartArgs): string[] {
  const host = options.host ?? "127.0.0.1";
  return [
    ...MN_CLI,
    "node",
    "start",
    "--box1-ip",
    host,
    "--box2-ip",
    host,
    "--box",
    String(options.box),
    "--redis-ha-mode",
    "sentinel",
    "--redis-sentinels",
    options.sentinels,
    "--sentinel-master",
    options.master,
    ...(options.extra ?? []),
  ];
}
