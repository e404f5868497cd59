/**
 * `mn-redis-ha service install|uninstall`: systemd units for a joined box's
 * Redis, Sentinel and runtime node, so the box comes back after a reboot or
 * a crash. The Redis and Sentinel units run the config files `join` wrote
 * (`daemonize yes`, so `Type=forking` with their pid files); the node unit
 * runs `node start` with the flags given, its settings and secrets in an
 * `EnvironmentFile` of mode 0600, ordered after the two daemons.
 *
 * @module
 */

import { RedisHaError, UsageError } from "../common/errors.ts";

/** Options of `service install`. */
export interface ServiceOptions {
  /** Where the units go. @default {"/etc/systemd/system"} */
  unitDir: string;
  /** The box's data dir, as given to `join`. */
  dataDir: string;
  /** The box's Redis port. */
  redisPort: number;
  /** The box's Sentinel port. */
  sentinelPort: number;
  /** The `mn-redis-ha` executable the node unit runs. */
  binary: string;
  /** `node start` flags; no node unit when undefined. */
  nodeArgs: readonly string[] | undefined;
  /** `MN_REDIS_*` settings for the node's environment file. */
  environment: ReadonlyMap<string, string>;
  /** Only write the files: no `systemctl`. */
  dryRun: boolean;
  /**
   * Install into this root (an image or a chroot): `systemctl --root`, and
   * no `daemon-reload` (no systemd runs there).
   */
  root?: string | undefined;
  /** Runs `systemctl` (injected for tests and dry runs). */
  systemctl: (args: readonly string[]) => Promise<void>;
  /** Progress lines (stderr). */
  report: (line: string) => void;
}

/** What `service install` wrote. */
export interface ServiceResult {
  /** Unit file paths. */
  readonly units: readonly string[];
  /** The node's environment file, if a node unit was written. */
  readonly environmentFile: string | undefined;
  /** Whether `systemctl enable` ran. */
  readonly enabled: boolean;
}

/** A unit's name and text. */
export interface UnitFile {
  readonly name: string;
  readonly text: string;
}

/** Unit names of a box. */
export function unitNames(
  redisPort: number,
  sentinelPort: number,
): { redis: string; sentinel: string; node: string } {
  return {
    redis: `mn-redis-${redisPort}.service`,
    sentinel: `mn-sentinel-${sentinelPort}.service`,
    node: `mn-node-${redisPort}.service`,
  };
}

/**
 * Quotes one argument for an `ExecStart=` line: systemd splits on spaces,
 * honours double quotes with C escapes, and expands `%` specifiers and `$`
 * variables, so those are escaped.
 */
export function systemdQuote(arg: string): string {
  const escaped = arg.replaceAll("%", "%%").replaceAll("$", "$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** A config file's `pidfile` and whether it daemonizes, as `join` wrote them. */
async function daemonFacts(config: string): Promise<{ pidFile: string }> {
  let text: string;
  try {
    text = await Deno.readTextFile(config);
  } catch {
    throw new UsageError(
      `${config} does not exist: this box has not joined yet (or --data-dir, --redis-port or ` +
        "--sentinel-port differ from the join's); run join first",
    );
  }
  // CONFIG REWRITE may have quoted the path.
  const pid = /^pidfile\s+"?([^"\s]+)"?\s*$/m.exec(text)?.[1];
  if (pid === undefined || !/^daemonize\s+yes\s*$/m.test(text)) {
    throw new RedisHaError(
      "CONFIG",
      `${config} was not written by join (no "daemonize yes" and pidfile); cannot make a unit of it`,
    );
  }
  return { pidFile: pid };
}

/** A unit file: its `[Unit]` and `[Service]` settings, started at boot by `multi-user.target`. */
function unitText(unit: readonly string[], service: readonly string[]): string {
  return [
    "[Unit]",
    ...unit,
    "",
    "[Service]",
    ...service,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The unit files of a box (reads the daemons' config files `join` wrote). */
export async function renderUnits(
  options: Pick<
    ServiceOptions,
    "dataDir" | "redisPort" | "sentinelPort" | "binary" | "nodeArgs"
  >,
  environmentFiles: readonly string[],
): Promise<UnitFile[]> {
  const dataDir = await Deno.realPath(options.dataDir).catch(() => {
    throw new UsageError(
      `--data-dir ${JSON.stringify(options.dataDir)} does not exist; give the join's data dir`,
    );
  });
  const names = unitNames(options.redisPort, options.sentinelPort);
  const redisConf = `${dataDir}/redis-${options.redisPort}.conf`;
  const sentinelConf = `${dataDir}/sentinel-${options.sentinelPort}.conf`;
  const redis = await daemonFacts(redisConf);
  const sentinel = await daemonFacts(sentinelConf);
  const units: UnitFile[] = [
    {
      name: names.redis,
      text: unitText(
        [
          `Description=MirrorNeuron Redis on port ${options.redisPort} (mn-redis-ha)`,
          "After=network-online.target",
          "Wants=network-online.target",
        ],
        [
          "Type=forking",
          `PIDFile=${redis.pidFile}`,
          `ExecStart=/usr/bin/redis-server ${systemdQuote(redisConf)}`,
          // Redis rewrites its config (CONFIG REWRITE, failovers) with mode 0644 & ~umask: keep
          // the passwords in it private.
          "UMask=0077",
          "Restart=on-failure",
          "RestartSec=2s",
          "LimitNOFILE=65536",
          "TimeoutStopSec=60s",
        ],
      ),
    },
    {
      name: names.sentinel,
      text: unitText(
        [
          `Description=MirrorNeuron Sentinel on port ${options.sentinelPort} (mn-redis-ha)`,
          `After=network-online.target ${names.redis}`,
          "Wants=network-online.target",
        ],
        [
          "Type=forking",
          `PIDFile=${sentinel.pidFile}`,
          `ExecStart=/usr/bin/redis-sentinel ${systemdQuote(sentinelConf)}`,
          // Sentinel rewrites its config on every failover: keep its auth-pass private.
          "UMask=0077",
          "Restart=on-failure",
          "RestartSec=2s",
        ],
      ),
    },
  ];
  if (options.nodeArgs !== undefined) {
    units.push({
      name: names.node,
      text: unitText(
        [
          "Description=MirrorNeuron runtime node (mn-redis-ha node start)",
          `After=network-online.target ${names.redis} ${names.sentinel}`,
          `Wants=network-online.target ${names.redis} ${names.sentinel}`,
        ],
        [
          "Type=simple",
          ...environmentFiles.map((f) => `EnvironmentFile=${f}`),
          // Logs go to stderr, which the journal keeps (journalctl -u); no colour there.
          "Environment=NO_COLOR=1",
          `ExecStart=${
            [options.binary, "node", "start", ...options.nodeArgs].map(systemdQuote).join(" ")
          }`,
          "Restart=on-failure",
          "RestartSec=2s",
          // SIGTERM: the node releases its leader lease and marks itself left.
          "KillSignal=SIGTERM",
          "TimeoutStopSec=30s",
        ],
      ),
    });
  }
  return units;
}

/** The node's environment file: the `MN_REDIS_*` settings, one per line, mode 0600. */
export function environmentFileText(environment: ReadonlyMap<string, string>): string {
  const lines = [
    "# Written by mn-redis-ha service install (mode 0600): the node's MN_REDIS_* settings.",
  ];
  for (const [name, value] of [...environment].sort(([a], [b]) => a.localeCompare(b))) {
    if (/[\n\r]/.test(value)) {
      throw new UsageError(`${name} holds a line break, which an EnvironmentFile cannot carry`);
    }
    lines.push(`${name}=${JSON.stringify(value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Writes the units (and the node's environment file); enables them unless a dry run. */
export async function installService(options: ServiceOptions): Promise<ServiceResult> {
  if (options.nodeArgs !== undefined && !options.binary.startsWith("/")) {
    throw new UsageError(
      `--binary is ${JSON.stringify(options.binary)}; systemd needs an absolute path, e.g. ` +
        "/usr/local/bin/mn-redis-ha",
    );
  }
  const dataDir = options.dataDir;
  const names = unitNames(options.redisPort, options.sentinelPort);
  let environmentFile: string | undefined;
  const environmentFiles: string[] = [];
  if (options.nodeArgs !== undefined) {
    environmentFile = `${await Deno.realPath(dataDir).catch(() => dataDir)}/mn-node.env`;
    environmentFiles.push(environmentFile);
    // With join --acl, the runtime's own least-privilege credentials win over the operator's.
    const runtime = `${await Deno.realPath(dataDir).catch(() => dataDir)}/mn-runtime.env`;
    if (await Deno.stat(runtime).then(() => true, () => false)) environmentFiles.push(runtime);
  }
  const units = await renderUnits(options, environmentFiles);
  const root = options.root === undefined ? [] : [`--root=${options.root}`];
  // Ask systemd first: on a host without it nothing is written (an image root needs no systemd).
  if (!options.dryRun && options.root === undefined) {
    await options.systemctl(["show", "--property=Version"]).catch((error) => {
      throw new RedisHaError(
        "CONFIG",
        `systemd does not run on this host, so no unit was written (${
          error instanceof Error ? error.message : String(error)
        }); use --dry-run --unit-dir DIR to write the unit files only, or --root DIR for an image`,
        { cause: error },
      );
    });
  }
  const written = new FileUndo();
  try {
    if (environmentFile !== undefined) {
      await written.write(environmentFile, environmentFileText(options.environment), 0o600);
      options.report(`service: wrote ${environmentFile} (mode 0600)`);
    }
    await Deno.mkdir(options.unitDir, { recursive: true });
    const paths: string[] = [];
    for (const unit of units) {
      const path = `${options.unitDir}/${unit.name}`;
      await written.write(path, unit.text, 0o644);
      paths.push(path);
      options.report(`service: wrote ${path}`);
    }
    if (options.dryRun) return { units: paths, environmentFile, enabled: false };
    if (options.root === undefined) await options.systemctl(["daemon-reload"]);
    await options.systemctl([...root, "enable", ...units.map((u) => u.name)]);
    options.report(
      `service: enabled ${units.map((u) => u.name).join(", ")}; they start at boot, and ` +
        `"systemctl start ${names.redis}" etc. hands a stopped daemon to systemd now`,
    );
    return { units: paths, environmentFile, enabled: true };
  } catch (error) {
    // Nothing half-installed: every file written is removed, every file replaced restored.
    await written.undo();
    options.report("service: install failed; the files it wrote were removed or restored");
    throw error;
  }
}

/** Files written so far, and how to put each back as it was. */
class FileUndo {
  readonly #before: { path: string; text: string | undefined; mode: number | null }[] = [];

  /** Writes `text` to `path` with `mode`, remembering what was there. */
  async write(path: string, text: string, mode: number): Promise<void> {
    const old = await Deno.readTextFile(path).catch(() => undefined);
    const oldMode = old === undefined ? null : (await Deno.stat(path)).mode;
    this.#before.push({ path, text: old, mode: oldMode });
    await Deno.writeTextFile(path, text, { mode });
    await Deno.chmod(path, mode);
  }

  /** Removes the files that were new and restores the ones that were replaced. */
  async undo(): Promise<void> {
    for (const { path, text, mode } of this.#before.reverse()) {
      if (text === undefined) await Deno.remove(path).catch(() => {});
      else {
        await Deno.writeTextFile(path, text).catch(() => {});
        if (mode !== null) await Deno.chmod(path, mode & 0o7777).catch(() => {});
      }
    }
  }
}

/** Disables and removes the box's units and the node's environment file. */
export async function uninstallService(
  options: Pick<
    ServiceOptions,
    | "unitDir"
    | "dataDir"
    | "redisPort"
    | "sentinelPort"
    | "dryRun"
    | "systemctl"
    | "report"
    | "root"
  >,
): Promise<{ removed: string[] }> {
  const names = Object.values(unitNames(options.redisPort, options.sentinelPort));
  const present: string[] = [];
  for (const name of names) {
    if (await Deno.stat(`${options.unitDir}/${name}`).then(() => true, () => false)) {
      present.push(name);
    }
  }
  const root = options.root === undefined ? [] : [`--root=${options.root}`];
  if (!options.dryRun && present.length > 0) {
    await options.systemctl([...root, "disable", ...present]);
  }
  const removed: string[] = [];
  for (const name of present) {
    await Deno.remove(`${options.unitDir}/${name}`);
    removed.push(`${options.unitDir}/${name}`);
    options.report(`service: removed ${options.unitDir}/${name}`);
  }
  const env = `${options.dataDir}/mn-node.env`;
  if (await Deno.remove(env).then(() => true, () => false)) {
    removed.push(env);
    options.report(`service: removed ${env}`);
  }
  if (!options.dryRun && present.length > 0 && options.root === undefined) {
    await options.systemctl(["daemon-reload"]);
  }
  return { removed };
}
