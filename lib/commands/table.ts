/** The CLI's subcommand table: flags, help, examples and how each runs. */

import { UsageError } from "../errors.ts";
import { JOB_STATUSES, type JobStatus } from "../jobs.ts";
import {
  choiceFlag,
  type CommandContext,
  type CommandSpec,
  endpointsFlag,
  hostFlag,
  intFlag,
  requiredFlag,
} from "./_spec.ts";
import { checkJoinOptions, join } from "./join.ts";
import { leave } from "./leave.ts";
import {
  formatTable,
  formatWarnings,
  inspectJobs,
  inspectLeases,
  inspectNodes,
  inspectTopology,
} from "./inspect.ts";
import { runNode } from "./node.ts";
import { runProbe } from "./probe.ts";
import { runLocalSmoke } from "./smoke_local.ts";
import { parseRemoteShell, runTwoBoxSmoke } from "./smoke_two_box.ts";
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

const INSPECT_FLAGS = {
  json: { type: "boolean", help: "print stable JSON instead of a table" },
} as const;

function colourAllowed(context: CommandContext): boolean {
  return context.io.isTerminal === true && context.io.getEnv("NO_COLOR") === undefined;
}

function printView(
  context: CommandContext,
  json: unknown,
  table: string,
  warnings: readonly string[],
): number {
  if (context.flags.json === true) {
    context.io.stdout(JSON.stringify(json, null, 2));
  } else {
    context.io.stdout(
      table +
        (warnings.length > 0 ? "\n\n" + formatWarnings(warnings, colourAllowed(context)) : ""),
    );
  }
  return 0;
}

const INSPECT: readonly CommandSpec[] = [
  {
    name: "inspect topology",
    summary: "Primary, replicas (lag, link), every sentinel (epoch, CKQUORUM) and warnings",
    usage: "mn-redis-ha inspect topology [--json] [connection flags]",
    example:
      "mn-redis-ha inspect topology --ha-mode sentinel --sentinels 10.0.0.1:26379,10.0.0.2:26379 " +
      "--sentinel-master mirror-neuron",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const view = await inspectTopology(context.config);
      const lines = [
        `primary  ${view.primary.address}  role ${view.primary.role}  config-epoch ${
          view.primary.configEpoch ?? "-"
        }  replid ${view.primary.replid}`,
        `leader   ${view.leader ?? "-"}`,
        "",
        formatTable(
          ["REPLICA", "STATE", "LAG(s)", "BEHIND(bytes)"],
          view.replicas.map((r) => [r.address, r.state, String(r.lagSeconds), String(r.offsetLag)]),
        ),
      ];
      if (view.sentinels.length > 0) {
        lines.push(
          "",
          formatTable(
            ["SENTINEL", "REACHABLE", "REPORTS", "EPOCH", "QUORUM", "CKQUORUM"],
            view.sentinels.map((s) => [
              s.address,
              s.reachable ? "yes" : "no",
              s.reports ?? "-",
              String(s.configEpoch ?? "-"),
              String(s.quorum ?? "-"),
              s.ckquorum ?? s.error ?? "-",
            ]),
          ),
        );
      }
      return printView(context, view, lines.join("\n"), view.warnings);
    },
  },
  {
    name: "inspect nodes",
    summary: "Runtime nodes with status, last heartbeat age and who is leader",
    usage: "mn-redis-ha inspect nodes [--json] [connection flags]",
    example: "mn-redis-ha inspect nodes --json",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const view = await inspectNodes(context.config);
      const table = formatTable(
        ["NODE", "STATUS", "LAST-SEEN", "LEADER", "META"],
        view.nodes.map((
          n,
        ) => [
          n.id,
          n.status,
          `${(n.lastSeenAgeMs / 1000).toFixed(1)}s`,
          n.leader ? "*" : "",
          JSON.stringify(n.meta),
        ]),
      );
      return printView(context, view, table, view.warnings);
    },
  },
  {
    name: "inspect leases",
    summary: "Every lease in the namespace: holder, fencing token, time left",
    usage: "mn-redis-ha inspect leases [--json] [connection flags]",
    example: "mn-redis-ha inspect leases",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const view = await inspectLeases(context.config);
      const rows =
        (view.leases as { lease: string; holder: string; token: number; ttlMs: number }[])
          .map((l) => [l.lease, l.holder, String(l.token), `${(l.ttlMs / 1000).toFixed(1)}s`]);
      return printView(
        context,
        view,
        formatTable(["LEASE", "HOLDER", "TOKEN", "TTL"], rows),
        view.warnings,
      );
    },
  },
  {
    name: "inspect jobs",
    summary: "Jobs with status and version (first page)",
    usage: "mn-redis-ha inspect jobs [--status S] [--limit N] [--json] [connection flags]",
    example: "mn-redis-ha inspect jobs --status running",
    flags: {
      ...INSPECT_FLAGS,
      status: { type: "string", help: `only this status (${JOB_STATUSES.join(", ")})` },
      limit: { type: "string", help: "page size", default: "100" },
    },
    connection: true,
    run: async (context) => {
      const status = context.flags.status === undefined
        ? undefined
        : choiceFlag(context.flags, "status", JOB_STATUSES, "pending" as JobStatus);
      const view = await inspectJobs(context.config, {
        status,
        limit: intFlag(context.flags, "limit", 100, 1, 1000),
      });
      const rows =
        (view.jobs as { id: string; status: string; version: number; updatedAt: string }[])
          .map((j) => [j.id, j.status, String(j.version), j.updatedAt]);
      return printView(
        context,
        view,
        formatTable(["JOB", "STATUS", "VERSION", "UPDATED"], rows),
        [],
      );
    },
  },
];

const NODE_START: CommandSpec = {
  name: "node start",
  summary:
    "Run a MirrorNeuron runtime node: join Redis HA, register, heartbeat, compete for leader",
  usage:
    "mn-redis-ha node start --box1-ip IP --box2-ip IP --box 1|2 [--redis-ha-mode sentinel] [flags]",
  example: "mn-redis-ha node start --box1-ip 192.168.4.29 --box2-ip 192.168.4.35 --box 1 " +
    "--redis-ha-mode sentinel --redis-sentinels 192.168.4.29:26379,192.168.4.35:26379 " +
    "--sentinel-master mirror-neuron --redis-wait-replicas 1",
  flags: {
    "box1-ip": { type: "string", help: "box 1's address (required)" },
    "box2-ip": { type: "string", help: "box 2's address (required)" },
    box: { type: "string", help: "which box this is: 1 or 2 (required)" },
    "redis-ha-mode": {
      type: "string",
      help: "single or sentinel",
      default: "MN_REDIS_HA_MODE or single",
    },
    "redis-sentinels": {
      type: "string",
      help: "sentinels, host:port,…",
      default: "box1-ip:26379,box2-ip:26379",
    },
    "sentinel-master": {
      type: "string",
      help: "master name",
      default: "MN_REDIS_SENTINEL_MASTER or mirror-neuron",
    },
    "redis-wait-replicas": {
      type: "string",
      help: "replicas a durable write waits for",
      default: "MN_REDIS_WAIT_REPLICAS",
    },
    "skip-redis-ha": {
      type: "boolean",
      help: "do not run join: Redis and Sentinel are managed externally",
    },
    "node-id": { type: "string", help: "this node's id", default: "box<N>" },
    "redis-port": { type: "string", help: "local Redis port for the join", default: "6379" },
    "sentinel-port": { type: "string", help: "local Sentinel port for the join", default: "26379" },
    quorum: { type: "string", help: "Sentinel quorum for the join", default: "1 on two boxes" },
    "data-dir": { type: "string", help: "data dir for the join", default: DEFAULT_DATA_DIR },
    "heartbeat-ttl-ms": { type: "string", help: "node heartbeat TTL", default: "15000" },
    "lease-ttl-ms": { type: "string", help: "leader lease TTL", default: "10000" },
  },
  connection: true,
  run: async (context) => {
    const { flags, config, io, signal } = context;
    const box1Ip = hostFlag(flags, "box1-ip");
    const box2Ip = hostFlag(flags, "box2-ip");
    const box = choiceFlag(flags, "box", ["1", "2"], "1");
    if (flags.box === undefined) throw new UsageError("--box is required; expected 1 or 2");
    const haMode = choiceFlag(flags, "redis-ha-mode", ["single", "sentinel"], config.haMode);
    const sentinelPort = intFlag(flags, "sentinel-port", 26379, 1, 65535);
    const sentinels = flags["redis-sentinels"] === undefined
      ? (config.sentinels.length > 0
        ? [...config.sentinels]
        : [box1Ip, box2Ip].map((host) => ({ host, port: sentinelPort })))
      : endpointsFlag(flags, "redis-sentinels");
    const sentinelMaster = typeof flags["sentinel-master"] === "string"
      ? flags["sentinel-master"]
      : config.sentinelMaster ?? "mirror-neuron";
    await runNode(
      {
        box1Ip,
        box2Ip,
        box: Number(box) as 1 | 2,
        haMode,
        sentinels,
        sentinelMaster,
        waitReplicas: intFlag(flags, "redis-wait-replicas", config.waitReplicas, 0, 64),
        skipRedisHa: flags["skip-redis-ha"] === true,
        nodeId: typeof flags["node-id"] === "string" ? flags["node-id"] : `box${box}`,
        redisPort: intFlag(flags, "redis-port", 6379, 1, 65535),
        sentinelPort,
        quorum: intFlag(
          flags,
          "quorum",
          sentinels.length <= 2 ? 1 : Math.floor(sentinels.length / 2) + 1,
          1,
          64,
        ),
        dataDir: typeof flags["data-dir"] === "string" ? flags["data-dir"] : DEFAULT_DATA_DIR,
        heartbeatTtlMs: intFlag(flags, "heartbeat-ttl-ms", 15_000, 300, 3_600_000),
        leaseTtlMs: intFlag(flags, "lease-ttl-ms", 10_000, 300, 3_600_000),
      },
      config,
      (line) => io.stdout(line),
      (line) => io.stderr(line),
      signal,
    );
    return 0;
  },
};

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
  ...INSPECT,
  NODE_START,
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
  {
    name: "smoke two-box",
    summary: "Two-box failover smoke against a remote box driven over a remote shell (default ssh)",
    usage: "mn-redis-ha smoke two-box --remote-host HOST --local-ip IP --remote-ip IP [flags]",
    example: "mn-redis-ha smoke two-box --remote-host 192.168.4.173 --local-ip 192.168.4.25 " +
      "--remote-ip 192.168.4.173 --remote-network auto --initial-primary auto",
    flags: {
      "remote-host": {
        type: "string",
        help: "the remote box (for the default remote shell) (required)",
      },
      "local-ip": {
        type: "string",
        help: "this box's address, reachable from the remote (required)",
      },
      "remote-ip": { type: "string", help: "the remote box's address (required)" },
      "remote-network": {
        type: "string",
        help:
          "auto, host or bridge: host binds --remote-ip, bridge binds all remote interfaces and " +
          "announces --remote-ip; auto chooses host",
        default: "auto",
      },
      "initial-primary": {
        type: "string",
        help:
          "auto, local or remote: auto falls back to remote when the remote cannot reach the local Redis",
        default: "auto",
      },
      "remote-shell": {
        type: "string",
        help: "command prefix that runs a command on the remote box",
        default: "ssh <remote-host>",
      },
      "redis-port": { type: "string", help: "test Redis port on both boxes", default: "6390" },
      "sentinel-port": {
        type: "string",
        help: "test Sentinel port on both boxes",
        default: "26390",
      },
      dir: { type: "string", help: "parent of the local temp dir", default: "/tmp" },
      "timeout-ms": { type: "string", help: "deadline of each step", default: "60000" },
    },
    connection: false,
    run: async ({ flags, io, signal }) => {
      const remoteHost = hostFlag(flags, "remote-host");
      await runTwoBoxSmoke({
        remoteHost,
        localIp: hostFlag(flags, "local-ip"),
        remoteIp: hostFlag(flags, "remote-ip"),
        remoteNetwork: choiceFlag(
          flags,
          "remote-network",
          ["auto", "host", "bridge"] as const,
          "auto",
        ),
        initialPrimary: choiceFlag(
          flags,
          "initial-primary",
          ["auto", "local", "remote"] as const,
          "auto",
        ),
        remoteShell: parseRemoteShell(
          typeof flags["remote-shell"] === "string" ? flags["remote-shell"] : undefined,
          remoteHost,
        ),
        redisPort: intFlag(flags, "redis-port", 6390, 1, 65535),
        sentinelPort: intFlag(flags, "sentinel-port", 26390, 1, 65535),
        dir: typeof flags.dir === "string" ? flags.dir : "/tmp",
        timeoutMs: intFlag(flags, "timeout-ms", 60_000, 1000, 3_600_000),
        out: (line) => io.stdout(line),
        progress: (line) => io.stderr(line),
        signal,
      });
      return 0;
    },
  },
];
