/** The `service install` and `service uninstall` subcommands' specs. */

import type { CommandSpec } from "./_spec.ts";
import { intFlag } from "./_spec.ts";
import { DEFAULT_DATA_DIR } from "./specs_cluster.ts";

/** Where systemd looks for administrator units. */
export const DEFAULT_UNIT_DIR = "/etc/systemd/system";

/** The compiled binary's documented place. */
export const DEFAULT_BINARY = "/usr/local/bin/mn-redis-ha";

const BOX_FLAGS = {
  "data-dir": {
    type: "string",
    placeholder: "DIR",
    help: "the box's data dir, as given to join",
    default: DEFAULT_DATA_DIR,
  },
  "redis-port": {
    type: "string",
    placeholder: "PORT",
    help: "the box's Redis port",
    default: "6379",
  },
  "sentinel-port": {
    type: "string",
    placeholder: "PORT",
    help: "the box's Sentinel port",
    default: "26379",
  },
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
  const { RedisHaError } = await import("../../common/errors.ts");
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
    dataDir: text(flags, "data-dir", DEFAULT_DATA_DIR),
    redisPort: intFlag(flags, "redis-port", 6379, 1, 65535),
    sentinelPort: intFlag(flags, "sentinel-port", 26379, 1, 65535),
    dryRun: flags["dry-run"] === true,
    systemctl,
    report: (line) => io.stderr(line),
  };
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
      "--box2-ip 192.168.4.35 --box 1 --redis-ha-mode sentinel --sentinel-master mirror-neuron " +
      "--redis-wait-replicas 1",
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
      const { installService } = await import("./service.ts");
      const { CONFIG_VARIABLES } = await import("../../ha/config.ts");
      let nodeArgs: string[] | undefined;
      if (passthrough.length > 0) {
        // Checked now, not at boot: the node start flags must parse.
        const { parseCommandFlags } = await import("../cli.ts");
        const { NODE_START } = await import("./specs_cluster.ts");
        const { UsageError } = await import("../../common/errors.ts");
        try {
          parseCommandFlags(NODE_START, passthrough);
        } catch (error) {
          throw new UsageError(
            `the node start flags after -- are not valid: ${(error as Error).message}`,
          );
        }
        nodeArgs = [...passthrough];
      }
      const environment = new Map<string, string>();
      for (const name of CONFIG_VARIABLES) {
        const value = io.getEnv(name);
        if (value !== undefined) environment.set(name, value);
      }
      const result = await installService({
        ...boxOptions(flags, io),
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
      const { uninstallService } = await import("./service.ts");
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
