/**
 * The `mn-redis-ha` command line: a small subcommand table over
 * `node:util` `parseArgs` (strict: unknown flags are errors).
 *
 * Every configuration flag mirrors an `MN_REDIS_*` variable
 * (`--wait-replicas` ↔ `MN_REDIS_WAIT_REPLICAS`) and overrides it.
 * Passwords are read only from the environment, never from flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { collectStatus, formatStatus } from "./commands/status.ts";
import { runProbe } from "./commands/probe.ts";
import { type Config, CONFIG_VARIABLES, flagForVariable, parseConfig } from "./config.ts";
import { ConfigError, RedisHaError, UsageError } from "./errors.ts";
import { configureCliLogging, type LogFormat, resetLogging } from "./log.ts";

/** Where the CLI writes. stdout carries only results; stderr carries logs and errors. */
export interface CliIo {
  /** Writes a result line (stdout). */
  stdout: (text: string) => void;
  /** Writes a diagnostic line (stderr). */
  stderr: (text: string) => void;
  /** Reads an environment variable. */
  getEnv: (name: string) => string | undefined;
}

const SECRET_VARIABLES = new Set(["MN_REDIS_PASSWORD", "MN_REDIS_SENTINEL_PASSWORD"]);
/** Configuration flags: every variable except the secrets. */
const CONFIG_FLAGS = new Map(
  CONFIG_VARIABLES.filter((v) => !SECRET_VARIABLES.has(v)).map((
    v,
  ) => [flagForVariable(v).slice(2), v]),
);

const CONFIG_HELP = `Connection flags (each overrides its MN_REDIS_* variable):
  --ha-mode single|sentinel        MN_REDIS_HA_MODE (default single)
  --url redis[s]://host:port/db    MN_REDIS_URL (default redis://127.0.0.1:6379)
  --sentinels h1:p1,h2:p2          MN_REDIS_SENTINELS
  --sentinel-master NAME           MN_REDIS_SENTINEL_MASTER
  --sentinel-tls true|false        MN_REDIS_SENTINEL_TLS (default false)
  --db N                           MN_REDIS_DB (default 0)
  --username NAME                  MN_REDIS_USERNAME
  --sentinel-username NAME         MN_REDIS_SENTINEL_USERNAME
  --wait-replicas N                MN_REDIS_WAIT_REPLICAS (default 0 = off)
  --wait-timeout-ms MS             MN_REDIS_WAIT_TIMEOUT_MS (default 100)
  --reconnect-attempts N           MN_REDIS_RECONNECT_ATTEMPTS (default 10)
  --reconnect-backoff-ms MS        MN_REDIS_RECONNECT_BACKOFF_MS (default 250)
  --reconnect-max-backoff-ms MS    MN_REDIS_RECONNECT_MAX_BACKOFF_MS (default 2000)
  --namespace NAME                 MN_REDIS_NAMESPACE (default mirror_neuron)
Passwords come only from MN_REDIS_PASSWORD and MN_REDIS_SENTINEL_PASSWORD (never flags).
Output flags:
  --log-format text|json           log lines on stderr (default text)
  --help                           this help`;

interface Subcommand {
  readonly summary: string;
  readonly usage: string;
  readonly example: string;
  readonly flags: Record<string, { type: "boolean" | "string" }>;
  readonly run: (config: Config, flags: Record<string, unknown>, io: CliIo) => Promise<number>;
}

const COMMANDS: Record<string, Subcommand> = {
  status: {
    summary: "Show mode, confirmed primary, replicas with lag, sentinels and the WAIT setting",
    usage: "mn-redis-ha status [--json] [connection flags]",
    example: "MN_REDIS_HA_MODE=sentinel MN_REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 \\\n" +
      "  MN_REDIS_SENTINEL_MASTER=mirror-neuron mn-redis-ha status --json",
    flags: { json: { type: "boolean" } },
    run: async (config, flags, io) => {
      const report = await collectStatus(config);
      io.stdout(flags.json === true ? JSON.stringify(report, null, 2) : formatStatus(report));
      return 0;
    },
  },
  probe: {
    summary: "Write a probe record as a durable write and read it back from the primary",
    usage: "mn-redis-ha probe [connection flags]",
    example: "MN_REDIS_URL=redis://127.0.0.1:6379 MN_REDIS_WAIT_REPLICAS=1 mn-redis-ha probe",
    flags: {},
    run: async (config, _flags, io) => {
      const result = await runProbe(config);
      io.stdout(`probe_write_read_ok primary=${result.primary}`);
      return 0;
    },
  },
};

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "Usage: mn-redis-ha <command> [flags]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'mn-redis-ha <command> --help' for a command's flags and an example.",
  ].join("\n");
}

function commandHelp(name: string, command: Subcommand): string {
  return [
    `Usage: ${command.usage}`,
    "",
    command.summary + ".",
    "",
    ...(Object.keys(command.flags).length > 0
      ? [`Command flags:\n${Object.keys(command.flags).map((f) => `  --${f}`).join("\n")}`, ""]
      : []),
    CONFIG_HELP,
    "",
    `Example (${name}):`,
    `  ${command.example}`,
  ].join("\n");
}

/**
 * Runs the CLI and returns the exit code: 0 success, 1 runtime failure,
 * 2 usage or configuration error. Never throws for user mistakes.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout)(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`mn-redis-ha: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  let values: Record<string, unknown>;
  try {
    const options: Record<string, { type: "boolean" | "string" }> = {
      ...command.flags,
      help: { type: "boolean" },
      "log-format": { type: "string" },
    };
    for (const flag of CONFIG_FLAGS.keys()) options[flag] = { type: "string" };
    values = parseArgs({ args: [...rest], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = /password/i.test(message)
      ? "\nPasswords are never accepted as flags; set MN_REDIS_PASSWORD or MN_REDIS_SENTINEL_PASSWORD"
      : "";
    io.stderr(`mn-redis-ha ${name}: ${message}${hint}\n\n${commandHelp(name, command)}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout(commandHelp(name, command));
    return 0;
  }
  const logFormat = (values["log-format"] ?? "text") as string;
  if (logFormat !== "text" && logFormat !== "json") {
    io.stderr(`mn-redis-ha ${name}: --log-format is "${logFormat}"; expected text or json`);
    return 2;
  }
  const getEnv = (variable: string): string | undefined => {
    const flag = flagForVariable(variable).slice(2);
    const value = CONFIG_FLAGS.has(flag) ? values[flag] : undefined;
    return typeof value === "string" ? value : io.getEnv(variable);
  };
  await configureCliLogging({
    format: logFormat as LogFormat,
    write: (line) => io.stderr(line.trimEnd()),
  });
  try {
    const config = parseConfig(getEnv);
    return await command.run(config, values, io);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Name the flag when the bad value came from one.
      const relabelled = new ConfigError(error.issues.map((issue) => {
        const flag = flagForVariable(issue.variable);
        return typeof values[flag.slice(2)] === "string"
          ? { ...issue, variable: `${flag} (${issue.variable})` }
          : issue;
      }));
      io.stderr(`mn-redis-ha ${name}: ${relabelled.message}`);
      return 2;
    }
    if (error instanceof UsageError) {
      io.stderr(`mn-redis-ha ${name}: ${error.message}`);
      return 2;
    }
    if (error instanceof RedisHaError) {
      io.stderr(`mn-redis-ha ${name}: ${error.message}`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`mn-redis-ha ${name}: unexpected error: ${message}`);
    return 1;
  } finally {
    await resetLogging();
  }
}
