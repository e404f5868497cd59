/** Running a command to completion and capturing its output, for CLI and script tests. */

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
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
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
  return runProcess(command, [...prefix, ...args], { env });
}
