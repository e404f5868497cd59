/**
 * The `mn-redis-ha` command line: a table of subcommands (one or two words,
 * e.g. `join`, `node start`) over a strict flag parser (`parseFlags`), so
 * unknown flags are errors.
 *
 * Every configuration flag mirrors an `MN_REDIS_*` variable
 * (`--wait-replicas` ↔ `MN_REDIS_WAIT_REPLICAS`) and overrides it.
 * Passwords are read only from the environment, never from flags.
 *
 * @module
 */

import {
  type CliIo,
  commandEnv,
  type CommandSpec,
  connectionFlags,
  type FlagSpec,
  parseCommandFlags,
  relabelConfigError,
} from "./command_spec.ts";
import { COMMANDS } from "./command_table.ts";
import { parseConfig } from "../ha/config.ts";
import { ConfigError, RedisHaError, UsageError } from "../common/errors.ts";
import { quoteValue } from "../common/quote.ts";
import { VERSION } from "../common/version.ts";
import {
  configureCliLogging,
  formatJsonLine,
  formatTextLine,
  type LogFormat,
  resetLogging,
} from "../common/log.ts";

export type { CliIo } from "./command_spec.ts";

/** Help lines of the connection flags, by flag name. */
const CONFIG_HELP_LINES: readonly (readonly [string, string])[] = [
  ["ha-mode", "  --ha-mode single|sentinel        MN_REDIS_HA_MODE (default single)"],
  ["url", "  --url redis[s]://host:port/db    MN_REDIS_URL (default redis://127.0.0.1:6379)"],
  ["sentinels", "  --sentinels H:P,H:P              MN_REDIS_SENTINELS"],
  ["sentinel-master", "  --sentinel-master NAME           MN_REDIS_SENTINEL_MASTER"],
  ["sentinel-tls", "  --sentinel-tls true|false        MN_REDIS_SENTINEL_TLS (default false)"],
  ["db", "  --db N                           MN_REDIS_DB (default 0)"],
  ["username", "  --username NAME                  MN_REDIS_USERNAME"],
  ["sentinel-username", "  --sentinel-username NAME         MN_REDIS_SENTINEL_USERNAME"],
  ["wait-replicas", "  --wait-replicas N                MN_REDIS_WAIT_REPLICAS (default 0 = off)"],
  ["wait-timeout-ms", "  --wait-timeout-ms MS             MN_REDIS_WAIT_TIMEOUT_MS (default 100)"],
  [
    "reconnect-attempts",
    "  --reconnect-attempts N           MN_REDIS_RECONNECT_ATTEMPTS (default 10)",
  ],
  [
    "reconnect-backoff-ms",
    "  --reconnect-backoff-ms MS        MN_REDIS_RECONNECT_BACKOFF_MS (default 250)",
  ],
  [
    "reconnect-max-backoff-ms",
    "  --reconnect-max-backoff-ms MS    MN_REDIS_RECONNECT_MAX_BACKOFF_MS (default 2000)",
  ],
  ["namespace", "  --namespace NAME                 MN_REDIS_NAMESPACE (default mirror_neuron)"],
];

/** `io` whose every stdout and stderr line is also appended to `file`. */
function teeTo(io: CliIo, file: Deno.FsFile): CliIo {
  const encoder = new TextEncoder();
  const append = (text: string): void => {
    const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
    let offset = 0;
    while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
  };
  return {
    ...io,
    stdout: (text) => {
      io.stdout(text);
      append(text);
    },
    stderr: (text) => {
      io.stderr(text);
      append(text);
    },
  };
}

function configHelp(command: CommandSpec): string {
  const taken = new Set(connectionFlags(command));
  return [
    "Connection flags (each overrides its MN_REDIS_* variable):",
    ...CONFIG_HELP_LINES.filter(([flag]) => taken.has(flag)).map(([, line]) => line),
  ].join("\n");
}

const COMMON_HELP =
  `Passwords come only from MN_REDIS_PASSWORD and MN_REDIS_SENTINEL_PASSWORD (never flags).
Output flags:
  --log-format text|json           log lines on stderr (default text)
  --help                           this help
  --version                        print the version`;

/**
 * `io` whose stderr lines (a command's progress and warnings) look like the
 * log lines beside them: JSON objects under `--log-format json`, and for a
 * long-lived service (`node start`, `serve`) timestamped lines with a level
 * and a category, so its log reads as one stream. Other commands' progress
 * stays plain text for a person at a terminal.
 */
function progressAsLogLines(io: CliIo, command: CommandSpec, format: LogFormat): CliIo {
  const render = format === "json"
    ? formatJsonLine
    : command.stopsOnSignal === true
    ? formatTextLine
    : undefined;
  if (render === undefined) return io;
  const category = ["mn-redis-ha", command.name.split(" ")[0]!];
  return {
    ...io,
    stderr: (text) => {
      for (const line of text.split("\n")) {
        const warning = /^warning: /.test(line);
        io.stderr(render({
          category,
          level: warning ? "warning" : "info",
          rawMessage: warning ? line.slice("warning: ".length) : line,
          properties: {},
          timestamp: Date.now(),
        }));
      }
    },
  };
}

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "Usage: mn-redis-ha <command> [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'mn-redis-ha <command> --help' for a command's flags and an example.",
  ].join("\n");
}

function commandHelp(command: CommandSpec): string {
  const flags = Object.entries(command.flags);
  const shown = (name: string, f: FlagSpec): string =>
    f.type === "string" ? `${name} ${f.placeholder}` : name;
  const width = Math.max(0, ...flags.map(([name, f]) => shown(name, f).length));
  return [
    `Usage: ${command.usage}`,
    "",
    command.summary + ".",
    "",
    ...(flags.length > 0
      ? [
        "Flags:",
        ...flags.map(([name, f]) =>
          `  --${shown(name, f).padEnd(width + 2)}  ${f.help}` +
          (f.default === undefined ? "" : ` (default ${f.default})`)
        ),
        "",
      ]
      : []),
    ...(command.connection ? [configHelp(command)] : []),
    COMMON_HELP,
    "",
    "Example:",
    `  ${command.example}`,
  ].join("\n");
}

/** Help of a command group (`inspect`, `node`, `smoke`): its subcommands. */
function groupHelp(group: string, commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `Usage: mn-redis-ha ${group} <subcommand> [flags]`,
    "",
    "Subcommands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run 'mn-redis-ha ${group} <subcommand> --help' for its flags and an example.`,
  ].join("\n");
}

/** Shortens quoted values in a parser message (e.g. a 100 KB unknown flag). */
function truncateValues(message: string): string {
  return message.replace(/'([^']{81,})'/g, (_, value: string) => quoteValue(value));
}

function findCommand(
  args: readonly string[],
): { command: CommandSpec; rest: string[] } | undefined {
  const two = `${args[0]} ${args[1]}`;
  const byTwo = COMMANDS.find((c) => c.name === two);
  if (byTwo !== undefined) return { command: byTwo, rest: args.slice(2) };
  const byOne = COMMANDS.find((c) => c.name === args[0]);
  if (byOne !== undefined) return { command: byOne, rest: args.slice(1) };
  return undefined;
}

/** The signals that interrupt a command, and the exit code each gives (128 + signal number). */
export const INTERRUPT_EXIT_CODES: Readonly<Record<"SIGINT" | "SIGTERM", number>> = {
  SIGINT: 130,
  SIGTERM: 143,
};

/** The reason a command's signal is aborted with when the process gets SIGINT or SIGTERM. */
export class InterruptError extends Error {
  /** Error class name. */
  override readonly name = "InterruptError";
  /** The signal received. */
  readonly signal: "SIGINT" | "SIGTERM";
  /** The exit code it maps to (130 or 143). */
  readonly exitCode: number;

  /** Creates the reason for `signal`. */
  constructor(signal: "SIGINT" | "SIGTERM") {
    super(`interrupted by ${signal}`);
    this.signal = signal;
    this.exitCode = INTERRUPT_EXIT_CODES[signal];
  }
}

/**
 * Runs the CLI and returns the exit code: 0 success, 1 runtime failure,
 * 2 usage or configuration error, 130/143 when SIGINT/SIGTERM (`signal`
 * aborted with an {@link InterruptError}) cut a command short; a
 * long-lived service that stops normally on them (`node start`, `serve`)
 * returns its own code. Never throws for user mistakes.
 */
export async function runCli(
  args: readonly string[],
  io: CliIo,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const [name] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout)(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    io.stdout(`mn-redis-ha ${VERSION}`);
    return 0;
  }
  // `inspect --watch …` is `inspect watch …`.
  if (name === "inspect" && (args[1] === "--watch" || args[1]?.startsWith("--watch=") === true)) {
    args = ["inspect", "watch", ...args.slice(2)];
  }
  const found = findCommand(args);
  if (found === undefined) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${name} `)).map((c) => c.name);
    if (group.length > 0 && (args[1] === "--help" || args[1] === "-h")) {
      io.stdout(groupHelp(name, COMMANDS.filter((c) => c.name.startsWith(`${name} `))));
      return 0;
    }
    const what = group.length === 0
      ? `unknown command ${quoteValue(name)}`
      : args[1] === undefined || args[1].startsWith("-")
      ? `"${name}" needs a subcommand: ${group.join(", ")}`
      : `unknown command ${quoteValue(`${name} ${args[1]}`)}; "${name}" takes: ${group.join(", ")}`;
    io.stderr(`mn-redis-ha: ${what}\n\n${usage()}`);
    return 2;
  }
  const { command, rest } = found;
  let values: Record<string, string | boolean | undefined>;
  const split = command.passthrough === undefined ? -1 : rest.indexOf("--");
  const passthrough = split === -1 ? [] : rest.slice(split + 1);
  try {
    values = parseCommandFlags(command, split === -1 ? rest : rest.slice(0, split));
  } catch (error) {
    const message = error instanceof UsageError
      ? error.message
      : truncateValues(error instanceof Error ? error.message : String(error));
    const hint = /password/i.test(message)
      ? "\nPasswords are never accepted as flags; set MN_REDIS_PASSWORD or MN_REDIS_SENTINEL_PASSWORD"
      : "";
    io.stderr(`mn-redis-ha ${command.name}: ${message}${hint}\n\n${commandHelp(command)}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout(commandHelp(command));
    return 0;
  }
  if (values.version === true) {
    io.stdout(`mn-redis-ha ${VERSION}`);
    return 0;
  }
  const logFormat = (values["log-format"] ?? "text") as string;
  if (logFormat !== "text" && logFormat !== "json") {
    io.stderr(
      `mn-redis-ha ${command.name}: --log-format is ${
        quoteValue(logFormat)
      }; expected text or json`,
    );
    return 2;
  }
  // --log-file (node start): every line also goes to the file, for boxes without journald.
  let logFile: Deno.FsFile | undefined;
  if (typeof values["log-file"] === "string") {
    try {
      logFile = await Deno.open(values["log-file"], {
        append: true,
        create: true,
        mode: 0o640,
      });
    } catch (error) {
      io.stderr(
        `mn-redis-ha ${command.name}: --log-file ${
          quoteValue(values["log-file"])
        } cannot be opened for appending (${
          (error as Error).message
        }); expected a writable file path`,
      );
      return 2;
    }
    io = teeTo(io, logFile);
  }
  const getEnv = commandEnv(command, values, io.getEnv);
  await configureCliLogging({
    format: logFormat as LogFormat,
    write: (line) => io.stderr(line.trimEnd()),
  });
  const commandIo = progressAsLogLines(io, command, logFormat as LogFormat);
  // A failure: one line on stderr (a JSON line under --log-format json) and, with --json, a JSON
  // object on stdout, so a script reading stdout learns what went wrong.
  const fail = (code: string, message: string, exitCode: number): number => {
    const text = `mn-redis-ha ${command.name}: ${message}`;
    io.stderr(
      logFormat === "json"
        ? JSON.stringify({
          time: new Date().toISOString(),
          level: "error",
          category: "mn-redis-ha.cli",
          message: text,
          code,
          exitCode,
        })
        : text,
    );
    if (values.json === true) io.stdout(JSON.stringify({ error: { code, message } }, null, 2));
    return exitCode;
  };
  // A password on the command line shows in the process list: only the environment may carry one.
  if (typeof values.url === "string" && /^[a-z]+:\/\/[^@/]*:[^@/]*@/i.test(values.url)) {
    return fail(
      "USAGE",
      "--url carries a password, which would show in the process list; pass the URL without it " +
        "and set MN_REDIS_PASSWORD (or put the whole URL in MN_REDIS_URL)",
      2,
    );
  }
  using _closeLog = { [Symbol.dispose]: () => logFile?.close() };
  try {
    const config = parseConfig(getEnv);
    const code = await command.run({ flags: values, config, io: commandIo, signal, passthrough });
    // A command that returned because it was interrupted exits 130/143; a service (node start,
    // serve) stops normally on SIGINT/SIGTERM and its own code stands.
    if (signal.reason instanceof InterruptError && command.stopsOnSignal !== true) {
      return fail("INTERRUPTED", `${signal.reason.message}; stopped`, signal.reason.exitCode);
    }
    return code;
  } catch (error) {
    if (signal.reason instanceof InterruptError) {
      return fail("INTERRUPTED", `${signal.reason.message}; stopped`, signal.reason.exitCode);
    }
    if (error instanceof ConfigError) {
      // Name the flag when the bad value came from one.
      const relabelled = relabelConfigError(error, command, values);
      return fail(relabelled.code, relabelled.message, 2);
    }
    if (error instanceof UsageError) {
      if (logFormat === "json" || values.json === true) return fail(error.code, error.message, 2);
      io.stderr(
        `mn-redis-ha ${command.name}: ${error.message}\nRun 'mn-redis-ha ${command.name} --help' for usage.`,
      );
      return 2;
    }
    if (error instanceof Deno.errors.NotCapable) {
      return fail(
        "NOT_PERMITTED",
        `not permitted: ${error.message.replace(/, run again with.*$/, "")}. ` +
          "The permission set this runs under does not allow it (the binary reads and writes only " +
          "/var/lib/mn-redis-ha, /tmp and ./.tmp; the smoke task only loopback and ./.tmp)",
        1,
      );
    }
    if (error instanceof RedisHaError) return fail(error.code, error.message, 1);
    const message = error instanceof Error ? error.message : String(error);
    return fail("UNEXPECTED", `unexpected error: ${message}`, 1);
  } finally {
    await resetLogging();
  }
}
