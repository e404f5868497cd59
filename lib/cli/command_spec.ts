/** The shape of a CLI subcommand and helpers to read its flags. */

import { type Config, CONFIG_VARIABLES, flagForVariable } from "../ha/config.ts";
import { type Endpoint, parseEndpoint } from "../protocol/endpoint.ts";
import { ConfigError, UsageError } from "../common/errors.ts";
import { quoteValue } from "../common/quote.ts";

/** Where the CLI writes and what it reads. */
export interface CliIo {
  /** Writes a result line (stdout). */
  stdout: (text: string) => void;
  /** Writes a diagnostic line (stderr). */
  stderr: (text: string) => void;
  /** Reads an environment variable. */
  getEnv: (name: string) => string | undefined;
  /** True when stdout is a terminal (colour allowed unless NO_COLOR). */
  isTerminal?: boolean | undefined;
}

/** Whether output may be coloured: a terminal, and no non-empty `NO_COLOR` (https://no-color.org). */
export function colourWanted(io: CliIo): boolean {
  const noColor = io.getEnv("NO_COLOR");
  return io.isTerminal === true && (noColor === undefined || noColor === "");
}

/** One flag of a subcommand: a switch, or a flag that takes a value. */
export type FlagSpec =
  | {
    /** A switch: no value. */
    type: "boolean";
    /** One line of help. */
    help: string;
    /** Shown in help. */
    default?: string | undefined;
  }
  | {
    /** Takes a value. */
    type: "string";
    /** What goes there, in help: `IP`, `PORT`, `H:P,…`, `MS`… */
    placeholder: string;
    /** One line of help. */
    help: string;
    /** Shown in help. */
    default?: string | undefined;
  };

/** What a subcommand's `run` receives. */
export interface CommandContext {
  /** Parsed flag values. */
  flags: Record<string, string | boolean | undefined>;
  /** The `MN_REDIS_*` configuration with connection flags applied. */
  config: Config;
  /** Output and environment. */
  io: CliIo;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** The arguments after `--`, for a command with `passthrough`. */
  passthrough: readonly string[];
}

/** A subcommand. */
export interface CommandSpec {
  /** E.g. `join`, `node start`, `inspect topology`. */
  name: string;
  /** One line. */
  summary: string;
  /** Usage line. */
  usage: string;
  /** A runnable example. */
  example: string;
  /** Its own flags. */
  flags: Record<string, FlagSpec>;
  /** Whether it takes the `MN_REDIS_*` connection flags. */
  connection: boolean;
  /** What the arguments after `--` are (help text); without it `--` is refused. */
  passthrough?: string | undefined;
  /**
   * A long-lived service (`node start`, `serve`): SIGINT and SIGTERM are its
   * normal stop, so it exits 0 then, as a service manager expects. Every
   * other command exits 130/143 when interrupted.
   */
  stopsOnSignal?: boolean | undefined;
  /**
   * Other spellings a flag is accepted under, not shown in help: the
   * MirrorNeuron documentation's (`--redis-wait-replicas` for
   * `--wait-replicas`). Alias to flag, without dashes.
   */
  aliases?: Readonly<Record<string, string>> | undefined;
  /** Runs it; returns the exit code. */
  run: (context: CommandContext) => Promise<number>;
}

/** A required string flag. */
export function requiredFlag(
  flags: CommandContext["flags"],
  name: string,
  expected: string,
): string {
  const value = flags[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`--${name} is required; expected ${expected}`);
  }
  return value.trim();
}

/** A whole-number flag within a range. */
export function intFlag(
  flags: CommandContext["flags"],
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = flags[name];
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !/^\d+$/.test(value)) {
    throw new UsageError(
      `--${name} is ${quoteValue(String(value))}; expected a whole number ${min}-${max}`,
    );
  }
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} is ${n}; expected ${min}-${max}`);
  return n;
}

/** A comma list of host:port. */
export function endpointsFlag(flags: CommandContext["flags"], name: string): Endpoint[] {
  const raw = requiredFlag(
    flags,
    name,
    "a comma list of host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379",
  );
  const problems: string[] = [];
  const out: Endpoint[] = [];
  for (const entry of raw.split(",")) {
    const parsed = parseEndpoint(entry);
    if (typeof parsed === "string") problems.push(parsed);
    else out.push(parsed);
  }
  if (problems.length > 0) throw new UsageError(`--${name}: ${problems.join("; ")}`);
  return out;
}

/** An address flag (IPv4, IPv6 or host name). */
export function hostFlag(flags: CommandContext["flags"], name: string): string {
  const host = requiredFlag(flags, name, "this box's address, e.g. 192.168.4.29");
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) {
    throw new UsageError(
      `--${name} is ${quoteValue(host)}; expected an IP address or host name`,
    );
  }
  return host;
}

/** One of a fixed set of values. */
export function choiceFlag<T extends string>(
  flags: CommandContext["flags"],
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const value = flags[name];
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    throw new UsageError(
      `--${name} is ${quoteValue(String(value))}; expected one of ${choices.join(", ")}`,
    );
  }
  return value as T;
}

const SECRET_VARIABLES = new Set(["MN_REDIS_PASSWORD", "MN_REDIS_SENTINEL_PASSWORD"]);
/** Connection flags: every variable except the secrets, by flag name. */
const CONFIG_FLAGS = new Map(
  CONFIG_VARIABLES.filter((v) => !SECRET_VARIABLES.has(v)).map((v) => [
    flagForVariable(v).slice(2),
    v,
  ]),
);

/** The connection flags a command takes: all but those its own flags replace. */
export function connectionFlags(command: CommandSpec): string[] {
  if (!command.connection) return [];
  return [...CONFIG_FLAGS.keys()].filter((flag) => !(flag in command.flags));
}

/**
 * Parses `args` as `command`'s flags (strict: unknown flags and positionals
 * are refused; empty values too). Throws {@link UsageError} for a user
 * mistake.
 */
export function parseCommandFlags(
  command: CommandSpec,
  args: readonly string[],
): Record<string, string | boolean | undefined> {
  const options: Record<string, { type: "boolean" | "string" }> = {
    help: { type: "boolean" },
    version: { type: "boolean" },
    "log-format": { type: "string" },
  };
  for (const [flag, spec] of Object.entries(command.flags)) options[flag] = { type: spec.type };
  for (const flag of connectionFlags(command)) options[flag] ??= { type: "string" };
  for (const [alias, flag] of Object.entries(command.aliases ?? {})) {
    options[alias] = options[flag]!;
  }
  const values = parseFlags(args, options);
  // An alias is its flag: given both ways, the two must agree.
  for (const [alias, flag] of Object.entries(command.aliases ?? {})) {
    if (!(alias in values)) continue;
    if (flag in values && values[flag] !== values[alias]) {
      throw new UsageError(
        `--${alias} is --${flag} (as the MirrorNeuron documentation spells it); give it once`,
      );
    }
    values[flag] = values[alias];
    delete values[alias];
  }
  const empty = Object.entries(values).find(([, v]) => v === "");
  if (empty !== undefined) {
    throw new UsageError(`--${empty[0]} is empty; give it a value or leave the flag out`);
  }
  return values;
}

/**
 * The environment `command` runs with: each `MN_REDIS_*` variable, unless a
 * connection flag of the command overrides it.
 */
export function commandEnv(
  command: CommandSpec,
  flags: CommandContext["flags"],
  getEnv: (name: string) => string | undefined,
): (name: string) => string | undefined {
  const taken = new Set(connectionFlags(command));
  return (variable) => {
    const flag = flagForVariable(variable).slice(2);
    const value = taken.has(flag) ? flags[flag] : undefined;
    return typeof value === "string" ? value : getEnv(variable);
  };
}

/**
 * `error` with each problem that came from one of the command's connection
 * flags named by that flag first: `--wait-timeout-ms (MN_REDIS_WAIT_TIMEOUT_MS)`.
 */
export function relabelConfigError(
  error: ConfigError,
  command: CommandSpec,
  flags: CommandContext["flags"],
): ConfigError {
  const taken = new Set(connectionFlags(command));
  return new ConfigError(error.issues.map((issue) => {
    const flag = flagForVariable(issue.variable).slice(2);
    return taken.has(flag) && typeof flags[flag] === "string"
      ? { ...issue, variable: `--${flag} (${issue.variable})` }
      : issue;
  }));
}

/**
 * A strict flag parser: `--name value`, `--name=value` and boolean
 * `--name`; unknown flags, positionals, a value for a switch and a missing
 * value are refused with a {@link UsageError} naming the flag. (What
 * `node:util`'s `parseArgs` does in strict mode, without the 6 ms that
 * loading Node's compatibility layer adds to every start of the CLI.)
 */
export function parseFlags(
  args: readonly string[],
  options: Readonly<Record<string, { type: "boolean" | "string" }>>,
): Record<string, string | boolean | undefined> {
  const values: Record<string, string | boolean | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--") || arg === "--") {
      throw new UsageError(`unexpected argument ${quoteValue(arg)}; every value follows its flag`);
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = Object.hasOwn(options, name) ? options[name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown flag ${quoteValue(`--${name}`)}`);
    if (spec.type === "boolean") {
      if (eq !== -1) throw new UsageError(`--${name} is a switch and takes no value`);
      values[name] = true;
      continue;
    }
    if (eq !== -1) {
      values[name] = arg.slice(eq + 1);
      continue;
    }
    const next = args[i + 1];
    if (next === undefined || next.startsWith("--")) {
      throw new UsageError(`--${name} needs a value`);
    }
    values[name] = next;
    i++;
  }
  return values;
}

/** Default data dir of a box (`join --data-dir`). */
export const DEFAULT_DATA_DIR = "/var/lib/mn-redis-ha";

/**
 * A box's `--redis-port` and `--sentinel-port` flags, their help saying
 * whose ports they are (`"local"`, `"the box's"`, …).
 */
export function portFlags(
  whose: string,
  defaults: { redis: number; sentinel: number } = { redis: 6379, sentinel: 26379 },
): Record<"redis-port" | "sentinel-port", FlagSpec> {
  return {
    "redis-port": {
      type: "string",
      placeholder: "PORT",
      help: `${whose} Redis port`,
      default: String(defaults.redis),
    },
    "sentinel-port": {
      type: "string",
      placeholder: "PORT",
      help: `${whose} Sentinel port`,
      default: String(defaults.sentinel),
    },
  };
}

/** A box's `--data-dir` flag. */
export function dataDirFlag(help: string): FlagSpec {
  return { type: "string", placeholder: "DIR", help, default: DEFAULT_DATA_DIR };
}

/** The `--redis-port` and `--sentinel-port` values (1-65535). */
export function portsOf(
  flags: CommandContext["flags"],
  defaults: { redis: number; sentinel: number } = { redis: 6379, sentinel: 26379 },
): { redisPort: number; sentinelPort: number } {
  return {
    redisPort: intFlag(flags, "redis-port", defaults.redis, 1, 65535),
    sentinelPort: intFlag(flags, "sentinel-port", defaults.sentinel, 1, 65535),
  };
}

/** `--data-dir`, or the default. */
export function dataDirOf(flags: CommandContext["flags"]): string {
  return typeof flags["data-dir"] === "string" ? flags["data-dir"] : DEFAULT_DATA_DIR;
}
