/** The `service install` and `service uninstall` subcommands' specs. */

import {
  commandEnv,
  type CommandSpec,
  dataDirFlag,
  dataDirOf,
  parseCommandFlags,
  portFlags,
  portsOf,
  relabelConfigError,
} from "./command_spec.ts";
import { NODE_START, nodeStartOptions } from "./membership_commands.ts";
import { CONFIG_VARIABLES, parseConfig } from "../ha/config.ts";
import { ConfigError, RedisHaError, UsageError } from "../common/errors.ts";

/** Where systemd looks for administrator units. */
export const DEFAULT_UNIT_DIR = "/etc/systemd/system";

/** The compiled binary's documented place. */
export const DEFAULT_BINARY = "/usr/local/bin/mn-redis-ha";

const BOX_FLAGS = {
  "data-dir": dataDirFlag("the box's data dir, as given to join"),
  ...portFlags("the box's"),
  "unit-dir": {
    type: "string",
    placeholder: "DIR",
    help: "where the unit files go",
    default: DEFAULT_UNIT_DIR,
  },
  "dry-run": { type: "boolean", help: "only write (or remove) the files; never run systemctl" },
  root: {
    type: "string",
    placeholder: "DIR",
    help: "act on an image or chroot: units in DIR/etc/systemd/system, systemctl --root=DIR",
  },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

/** Runs `systemctl args…`, failing with its stderr. */
async function systemctl(args: readonly string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("systemctl", { args: [...args], stdin: "null" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RedisHaError(
        "CONFIG",
        "systemctl is not installed: this box does not run systemd; use --dry-run --unit-dir DIR " +
          "to write the unit files only",
      );
    }
    throw error;
  }
  if (!output.success) {
    throw new RedisHaError(
      "CONFIG",
      `systemctl ${args.join(" ")} failed (exit ${output.code}): ${
        new TextDecoder().decode(output.stderr).trim()
      }`,
    );
  }
}

/** The options `install` and `uninstall` share, from the box flags. */
function boxOptions(
  flags: Record<string, string | boolean | undefined>,
  io: { stderr: (text: string) => void },
): {
  unitDir: string;
  root: string | undefined;
  dataDir: string;
  redisPort: number;
  sentinelPort: number;
  dryRun: boolean;
  systemctl: (args: readonly string[]) => Promise<void>;
  report: (line: string) => void;
} {
  return {
    unitDir: unitDir(flags),
    root: typeof flags.root === "string" ? flags.root : undefined,
    dataDir: dataDirOf(flags),
    ...portsOf(flags),
    dryRun: flags["dry-run"] === true,
    systemctl,
    report: (line) => io.stderr(line),
  };
}

/** The box flags a node unit must agree with, and their `node start` defaults. */
const NODE_BOX_FLAGS = ["redis-port", "sentinel-port", "data-dir"] as const;

/**
 * The `node start` flags after `--`, checked exactly as `node start` checks
 * them (flags, connection settings from the environment, every value), so a
 * unit never fails at boot on what could be seen now. The node must join
 * the box the units are for: its `--redis-port`, `--sentinel-port` and
 * `--data-dir` are the install's (given once, before `--`, or the same on
 * both sides), and the unit gets them spelled out, with absolute paths
 * (systemd starts units in `/`).
 */
async function checkedNodeArgs(
  args: readonly string[],
  box: { redisPort: number; sentinelPort: number; dataDir: string },
  getEnv: (name: string) => string | undefined,
): Promise<string[]> {
  const invalid = (error: unknown): UsageError =>
    new UsageError(
      `the node start flags after -- are not valid: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseCommandFlags(NODE_START, args);
    if (values.help === true || values.version === true) {
      throw new UsageError("--help and --version would make the unit print and exit");
    }
    nodeStartOptions(values, parseConfig(commandEnv(NODE_START, values, getEnv)));
  } catch (error) {
    throw invalid(
      error instanceof ConfigError ? relabelConfigError(error, NODE_START, values!) : error,
    );
  }
  const absolute = async (path: string): Promise<string> =>
    await Deno.realPath(path).catch(() => path.startsWith("/") ? path : `${Deno.cwd()}/${path}`);
  const wanted: Record<(typeof NODE_BOX_FLAGS)[number], string> = {
    "redis-port": String(box.redisPort),
    "sentinel-port": String(box.sentinelPort),
    "data-dir": await absolute(box.dataDir),
  };
  for (const flag of NODE_BOX_FLAGS) {
    const given = values[flag];
    if (typeof given !== "string") continue;
    const same = flag === "data-dir"
      ? await absolute(given) === wanted[flag]
      : Number(given) === Number(wanted[flag]);
    if (!same) {
      throw invalid(
        new UsageError(
          `--${flag} is ${JSON.stringify(given)} after -- but the units are for --${flag} ` +
            `${wanted[flag]}; the node must join this box: give --${flag} once, before --`,
        ),
      );
    }
  }
  const out: string[] = [];
  for (const [flag, value] of Object.entries(values)) {
    if ((NODE_BOX_FLAGS as readonly string[]).includes(flag) || value === undefined) continue;
    if (value === true) out.push(`--${flag}`);
    else if (typeof value === "string") {
      out.push(`--${flag}`, flag === "log-file" ? absoluteFile(value) : value);
    }
  }
  for (const flag of NODE_BOX_FLAGS) out.push(`--${flag}`, wanted[flag]);
  return out;
}

/** A file path made absolute against the current directory (the file may not exist yet). */
function absoluteFile(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** `--unit-dir`, else the root's or the host's systemd directory. */
function unitDir(flags: Record<string, string | boolean | undefined>): string {
  if (typeof flags["unit-dir"] === "string") return flags["unit-dir"];
  return typeof flags.root === "string" ? `${flags.root}${DEFAULT_UNIT_DIR}` : DEFAULT_UNIT_DIR;
}

function text(
  flags: Record<string, string | boolean | undefined>,
  name: string,
  fallback: string,
): string {
  const value = flags[name];
  return typeof value === "string" ? value : fallback;
}

/** `service install` and `service uninstall`. */
export const SERVICE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "service install",
    summary: "Write and enable systemd units for this box's Redis, Sentinel and runtime node",
    usage:
      "mn-redis-ha service install [--data-dir DIR] [--redis-port PORT] [--sentinel-port PORT] " +
      "[--unit-dir DIR] [--dry-run] [-- NODE START FLAGS]",
    example:
      "mn-redis-ha service install --data-dir /var/lib/mn-redis-ha -- --box1-ip 192.168.4.29 " +
      "--box2-ip 192.168.4.35 --box 1 --ha-mode sentinel --sentinel-master mirror-neuron " +
      "--wait-replicas 1",
    passthrough: "the node start flags the node unit runs (no node unit without them)",
    flags: {
      ...BOX_FLAGS,
      binary: {
        type: "string",
        placeholder: "PATH",
        help: "the mn-redis-ha executable the node unit runs",
        default: DEFAULT_BINARY,
      },
    },
    connection: false,
    run: async ({ flags, io, passthrough }) => {
      const { installService } = await import("../ops/service.ts");
      const box = boxOptions(flags, io);
      const nodeArgs = passthrough.length === 0
        ? undefined
        : await checkedNodeArgs(passthrough, box, io.getEnv);
      const environment = new Map<string, string>();
      for (const name of CONFIG_VARIABLES) {
        const value = io.getEnv(name);
        if (value !== undefined) environment.set(name, value);
      }
      const result = await installService({
        ...box,
        binary: text(flags, "binary", DEFAULT_BINARY),
        nodeArgs,
        environment,
      });
      io.stdout(
        flags.json === true
          ? JSON.stringify(result, null, 2)
          : `service_install_ok units=${result.units.length} enabled=${result.enabled}`,
      );
      return 0;
    },
  },
  {
    name: "service uninstall",
    summary: "Disable and remove this box's systemd units (the running daemons keep running)",
    usage: "mn-redis-ha service uninstall [--data-dir DIR] [--redis-port PORT] " +
      "[--sentinel-port PORT] [--unit-dir DIR] [--dry-run]",
    example: "mn-redis-ha service uninstall --redis-port 6379 --sentinel-port 26379",
    flags: BOX_FLAGS,
    connection: false,
    run: async ({ flags, io }) => {
      const { uninstallService } = await import("../ops/service.ts");
      const result = await uninstallService(boxOptions(flags, io));
      io.stdout(
        flags.json === true
          ? JSON.stringify(result, null, 2)
          : `service_uninstall_ok removed=${result.removed.length}`,
      );
      return 0;
    },
  },
];
