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
  parseCommandFlags,
  relabelConfigError,
} from "./command_spec.ts";
import { COMMANDS } from "./command_table.ts";
import { commandHelp, groupHelp, usage } from "./help.ts";
import { failureReporter, progressAsLogLines, teeTo } from "./output.ts";
import { parseConfig } from "../ha/config.ts";
import { ConfigError, RedisHaError, UsageError } from "../common/errors.ts";
import { quoteValue } from "../common/quote.ts";
import { VERSION } from "../common/version.ts";
import { configureCliLogging, type LogFormat, resetLogging } from "../common/log.ts";

export type { CliIo } from "./command_spec.ts";

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

/** A command found and its flags parsed: what runs it. */
interface Invocation {
  readonly command: CommandSpec;
  readonly values: Record<string, string | boolean | undefined>;
  readonly passthrough: readonly string[];
  readonly logFormat: LogFormat;
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
  const invocation = parseInvocation(args, io);
  if (typeof invocation === "number") return invocation;
  const { command, values, passthrough, logFormat } = invocation;
  // --log-file (node start): every line also goes to the file, for boxes without journald.
  const logFile = await openLogFile(command, values["log-file"], io);
  if (typeof logFile === "number") return logFile;
  if (logFile !== undefined) io = teeTo(io, logFile);
  using _closeLog = { [Symbol.dispose]: () => logFile?.close() };
  await configureCliLogging({ format: logFormat, write: (line) => io.stderr(line.trimEnd()) });
  const fail = failureReporter(io, command.name, logFormat, values.json === true);
  // A password on the command line shows in the process list: only the environment may carry one.
  if (typeof values.url === "string" && /^[a-z]+:\/\/[^@/]*:[^@/]*@/i.test(values.url)) {
    return fail(
      "USAGE",
      "--url carries a password, which would show in the process list; pass the URL without it " +
        "and set MN_REDIS_PASSWORD (or put the whole URL in MN_REDIS_URL)",
      2,
    );
  }
  try {
    const config = parseConfig(commandEnv(command, values, io.getEnv));
    const commandIo = progressAsLogLines(io, command, logFormat);
    const code = await command.run({ flags: values, config, io: commandIo, signal, passthrough });
    // A command that returned because it was interrupted exits 130/143; a service (node start,
    // serve) stops normally on SIGINT/SIGTERM and its own code stands.
    if (signal.reason instanceof InterruptError && command.stopsOnSignal !== true) {
      return fail("INTERRUPTED", `${signal.reason.message}; stopped`, signal.reason.exitCode);
    }
    return code;
  } catch (error) {
    return reportFailure(error, invocation, { io, signal, fail });
  } finally {
    await resetLogging();
  }
}

/**
 * The top level and the command's flags: help, version and mistakes are
 * answered here (an exit code); otherwise the command and what it runs with.
 */
function parseInvocation(args: readonly string[], io: CliIo): Invocation | number {
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
  if (found === undefined) return unknownCommand(args, io);
  const { command, rest } = found;
  const split = command.passthrough === undefined ? -1 : rest.indexOf("--");
  let values: Record<string, string | boolean | undefined>;
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
  const logFormat = values["log-format"] ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    io.stderr(
      `mn-redis-ha ${command.name}: --log-format is ${
        quoteValue(String(logFormat))
      }; expected text or json`,
    );
    return 2;
  }
  const passthrough = split === -1 ? [] : rest.slice(split + 1);
  return { command, values, passthrough, logFormat };
}

/** An unknown command, or a group without its subcommand: usage and exit 2 (the group's help: 0). */
function unknownCommand(args: readonly string[], io: CliIo): number {
  const name = args[0]!;
  const members = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
  const group = members.map((c) => c.name);
  if (group.length > 0 && (args[1] === "--help" || args[1] === "-h")) {
    io.stdout(groupHelp(name, members));
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

/** `--log-file`, opened for appending; exit code 2 when it cannot be. */
async function openLogFile(
  command: CommandSpec,
  path: string | boolean | undefined,
  io: CliIo,
): Promise<Deno.FsFile | undefined | number> {
  if (typeof path !== "string") return undefined;
  try {
    return await Deno.open(path, { append: true, create: true, mode: 0o640 });
  } catch (error) {
    io.stderr(
      `mn-redis-ha ${command.name}: --log-file ${quoteValue(path)} cannot be opened for ` +
        `appending (${(error as Error).message}); expected a writable file path`,
    );
    return 2;
  }
}

/** A command's error as its exit code: interrupts, usage and configuration, permissions, the rest. */
function reportFailure(
  error: unknown,
  invocation: Invocation,
  context: {
    io: CliIo;
    signal: AbortSignal;
    fail: (code: string, message: string, exitCode: number) => number;
  },
): number {
  const { command, values, logFormat } = invocation;
  const { io, signal, fail } = context;
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
}
