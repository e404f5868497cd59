/** The CLI's subcommand table: flags, help, examples and how each runs. */

import { UsageError } from "../errors.ts";
import {
  type CommandContext,
  type CommandSpec,
  endpointsFlag,
  hostFlag,
  intFlag,
  requiredFlag,
} from "./_spec.ts";
import { checkJoinOptions, join } from "./join.ts";
import { leave } from "./leave.ts";
import { runProbe } from "./probe.ts";
import { runLocalSmoke } from "./smoke_local.ts";
import { collectStatus, formatStatus } from "./status.ts";

/** Default data dir for `join` on a box. */
export const DEFAULT_DATA_DIR = "/var/lib/mn-redis-ha";

const CLUSTER_FLAGS = {
  "self-host": {
    type: "string",
    help: "this box's address, reachable from the other boxes (required)",
  },
  "redis-port": { type: "string", help: "local Redis port", default: "6379" },
  "sentinel-port": { type: "string", help: "local Sentinel port", default: "26379" },
  sentinels: { type: "string", help: "every Sentinel of the cluster, host:port,… (required)" },
  "master-name": { type: "string", help: "the master name the sentinels monitor (required)" },
  "timeout-ms": { type: "string", help: "how long to wait for roles to settle", default: "60000" },
} as const;

function clusterBase(flags: CommandContext["flags"]): ClusterBase {
  const masterName = requiredFlag(flags, "master-name", "a name like mirror-neuron");
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(masterName)) {
    throw new UsageError(
      `--master-name is ${JSON.stringify(masterName)}; expected 1-64 of A-Z a-z 0-9 _ . -`,
    );
  }
  return {
    selfHost: hostFlag(flags, "self-host"),
    redisPort: intFlag(flags, "redis-port", 6379, 1, 65535),
    sentinelPort: intFlag(flags, "sentinel-port", 26379, 1, 65535),
    sentinels: endpointsFlag(flags, "sentinels"),
    masterName,
    timeoutMs: intFlag(flags, "timeout-ms", 60_000, 1000, 3_600_000),
  };
}

interface ClusterBase {
  selfHost: string;
  redisPort: number;
  sentinelPort: number;
  sentinels: ReturnType<typeof endpointsFlag>;
  masterName: string;
  timeoutMs: number;
}

/** Every subcommand, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "status",
    summary: "Show mode, confirmed primary, replicas with lag, sentinels and the WAIT setting",
    usage: "mn-redis-ha status [--json] [connection flags]",
    example: "MN_REDIS_HA_MODE=sentinel MN_REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 " +
      "MN_REDIS_SENTINEL_MASTER=mirror-neuron mn-redis-ha status --json",
    flags: { json: { type: "boolean", help: "print JSON (stable fields) instead of text" } },
    connection: true,
    run: async ({ config, flags, io }) => {
      const report = await collectStatus(config);
      io.stdout(flags.json === true ? JSON.stringify(report, null, 2) : formatStatus(report));
      return 0;
    },
  },
  {
    name: "probe",
    summary: "Write a probe record as a durable write and read it back from the primary",
    usage: "mn-redis-ha probe [connection flags]",
    example: "MN_REDIS_URL=redis://127.0.0.1:6379 MN_REDIS_WAIT_REPLICAS=1 mn-redis-ha probe",
    flags: {},
    connection: true,
    run: async ({ config, io }) => {
      const result = await runProbe(config);
      io.stdout(`probe_write_read_ok primary=${result.primary}`);
      return 0;
    },
  },
  {
    name: "join",
    summary: "Start or adopt this box's Redis and Sentinel and join them to the cluster",
    usage: "mn-redis-ha join --self-host IP --sentinels H:P,… --master-name NAME [flags]",
    example: "mn-redis-ha join --self-host 192.168.4.29 --redis-port 6379 --sentinel-port 26379 " +
      "--sentinels 192.168.4.29:26379,192.168.4.35:26379 --master-name mirror-neuron --quorum 1",
    flags: {
      ...CLUSTER_FLAGS,
      quorum: {
        type: "string",
        help: "sentinels that must agree the primary is down",
        default: "majority of --sentinels",
      },
      "data-dir": {
        type: "string",
        help: "config, logs and data of the local daemons",
        default: DEFAULT_DATA_DIR,
      },
      "down-after-ms": {
        type: "string",
        help: "Sentinel down-after-milliseconds",
        default: "5000",
      },
      "failover-timeout-ms": {
        type: "string",
        help: "Sentinel failover-timeout",
        default: "60000",
      },
      bootstrap: {
        type: "boolean",
        help: "allow becoming the primary although some sentinels did not answer",
      },
      json: { type: "boolean", help: "print the result as JSON" },
    },
    connection: false,
    run: async ({ config, flags, io }) => {
      const base = clusterBase(flags);
      const options = {
        ...base,
        quorum: intFlag(flags, "quorum", Math.floor(base.sentinels.length / 2) + 1, 1, 64),
        dataDir: typeof flags["data-dir"] === "string" ? flags["data-dir"] : DEFAULT_DATA_DIR,
        downAfterMs: intFlag(flags, "down-after-ms", 5000, 100, 3_600_000),
        failoverTimeoutMs: intFlag(flags, "failover-timeout-ms", 60_000, 1000, 3_600_000),
        bootstrap: flags.bootstrap === true,
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        report: (line: string) => io.stderr(line),
      };
      checkJoinOptions(options);
      const result = await join(options);
      io.stdout(
        flags.json === true
          ? JSON.stringify(result, null, 2)
          : `join_ok role=${result.role} primary=${result.primary} redis=${result.redis} sentinel=${result.sentinel}`,
      );
      return 0;
    },
  },
  {
    name: "leave",
    summary:
      "Hand over the primary role if held, detach this box's Redis and drop its Sentinel monitor",
    usage: "mn-redis-ha leave --self-host IP --sentinels H:P,… --master-name NAME [--purge-local]",
    example:
      "mn-redis-ha leave --self-host 192.168.4.29 --sentinels 192.168.4.29:26379,192.168.4.35:26379 " +
      "--master-name mirror-neuron",
    flags: {
      ...CLUSTER_FLAGS,
      "purge-local": {
        type: "boolean",
        help: "FLUSHDB the detached local Redis (data is kept by default)",
      },
      json: { type: "boolean", help: "print the result as JSON" },
    },
    connection: false,
    run: async ({ config, flags, io }) => {
      const result = await leave({
        ...clusterBase(flags),
        purgeLocal: flags["purge-local"] === true,
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        report: (line: string) => io.stderr(line),
      });
      io.stdout(
        flags.json === true
          ? JSON.stringify(result, null, 2)
          : `leave_ok was_primary=${result.wasPrimary} primary=${result.primary} purged=${result.purged}`,
      );
      return 0;
    },
  },
  {
    name: "smoke local",
    summary:
      "Local Sentinel failover smoke: 3 redis + 3 sentinels on loopback, kill -9 the primary",
    usage: "mn-redis-ha smoke local [--dir DIR]",
    example: "mn-redis-ha smoke local",
    flags: {
      dir: { type: "string", help: "parent directory of the smoke's temp dir", default: ".tmp" },
      docker: { type: "boolean", help: "run the servers in Docker (not available in this build)" },
    },
    connection: false,
    run: async ({ flags, io, signal }) => {
      if (flags.docker === true) {
        io.stderr(
          "mn-redis-ha smoke local: --docker is not supported by this build; the smoke runs local " +
            "redis-server/redis-sentinel processes, which need no Docker",
        );
        return 2;
      }
      const baseDir = typeof flags.dir === "string" ? flags.dir : ".tmp";
      await Deno.mkdir(baseDir, { recursive: true });
      const result = await runLocalSmoke({
        baseDir,
        signal,
        report: (line) => (line.startsWith("step: ") ? io.stderr : io.stdout)(line),
      });
      io.stdout(`local_failover_smoke_ok wall_ms=${Math.round(result.wallMs)}`);
      return 0;
    },
  },
];
