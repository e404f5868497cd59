import { runCli } from "../../lib/cli/cli.ts";

/** What one in-process CLI run produced. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with a given environment, capturing its output. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(args, {
    stdout: (t) => stdout.push(t),
    stderr: (t) => stderr.push(t),
    getEnv: (name) => env[name],
  });
  return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
}
