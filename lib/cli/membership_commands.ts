/** CLI specs of the cluster commands: join, leave, node start. */

import { listenFlag } from "./serve_command.ts";
import type { Config } from "../ha/config.ts";
import type { NodeStartOptions } from "../node/node.ts";
import { UsageError } from "../common/errors.ts";
import {
  choiceFlag,
  type CommandContext,
  type CommandSpec,
  dataDirFlag,
  dataDirOf,
  endpointsFlag,
  hostFlag,
  intFlag,
  portFlags,
  portsOf,
  requiredFlag,
} from "./command_spec.ts";

const CLUSTER_FLAGS = {
  "self-host": {
    type: "string",
    placeholder: "IP",
    help: "this box's address, reachable from the other boxes (required)",
  },
  ...portFlags("local"),
  sentinels: {
    type: "string",
    placeholder: "H:P,…",
    help: "every Sentinel of the cluster, host:port,… (required)",
  },
  "master-name": {
    type: "string",
    placeholder: "NAME",
    help: "the master name the sentinels monitor (required)",
  },
  "timeout-ms": {
    type: "string",
    placeholder: "MS",
    help: "how long to wait for roles to settle",
    default: "60000",
  },
  "tls-cert-file": {
    type: "string",
    placeholder: "FILE",
    help: "this box's certificate (PEM): Redis and Sentinel serve TLS only (join)",
  },
  "tls-key-file": {
    type: "string",
    placeholder: "FILE",
    help: "the certificate's private key (PEM, join)",
  },
  "tls-ca-cert-file": {
    type: "string",
    placeholder: "FILE",
    help: "CA that signed every box's certificate (PEM): trusted for every connection",
  },
} as const;

/** The TLS flags as file paths. */
function tlsFiles(flags: CommandContext["flags"]): {
  certFile: string | undefined;
  keyFile: string | undefined;
  caCertFile: string | undefined;
} {
  const text = (name: string): string | undefined =>
    typeof flags[name] === "string" ? flags[name] : undefined;
  return {
    certFile: text("tls-cert-file"),
    keyFile: text("tls-key-file"),
    caCertFile: text("tls-ca-cert-file"),
  };
}

function clusterBase(flags: CommandContext["flags"]): ClusterBase {
  const masterName = requiredFlag(flags, "master-name", "a name like mirror-neuron");
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(masterName)) {
    throw new UsageError(
      `--master-name is ${JSON.stringify(masterName)}; expected 1-64 of A-Z a-z 0-9 _ . -`,
    );
  }
  return {
    selfHost: hostFlag(flags, "self-host"),
    ...portsOf(flags),
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

const NODE_START: CommandSpec = {
  name: "node start",
  summary:
    "Run a MirrorNeuron runtime node: join Redis HA, register, heartbeat, compete for leader",
  usage: "mn-redis-ha node start --box1-ip IP --box2-ip IP --box 1|2 [--ha-mode sentinel] [flags]",
  example: "mn-redis-ha node start --box1-ip 192.168.4.29 --box2-ip 192.168.4.35 --box 1 " +
    "--ha-mode sentinel --sentinels 192.168.4.29:26379,192.168.4.35:26379 " +
    "--sentinel-master mirror-neuron --wait-replicas 1",
  flags: {
    "box1-ip": { type: "string", placeholder: "IP", help: "box 1's address (required)" },
    "box2-ip": { type: "string", placeholder: "IP", help: "box 2's address (required)" },
    box: { type: "string", placeholder: "1|2", help: "which box this is: 1 or 2 (required)" },
    "ha-mode": {
      type: "string",
      placeholder: "single|sentinel",
      help: "single or sentinel",
      default: "MN_REDIS_HA_MODE or single",
    },
    sentinels: {
      type: "string",
      placeholder: "H:P,…",
      help: "sentinels, host:port,…",
      default: "box1-ip:26379,box2-ip:26379",
    },
    "sentinel-master": {
      type: "string",
      placeholder: "NAME",
      help: "master name",
      default: "MN_REDIS_SENTINEL_MASTER or mirror-neuron",
    },
    "wait-replicas": {
      type: "string",
      placeholder: "N",
      help: "replicas a durable write waits for",
      default: "MN_REDIS_WAIT_REPLICAS",
    },
    "skip-redis-ha": {
      type: "boolean",
      help: "do not run join: Redis and Sentinel are managed externally",
    },
    "node-id": { type: "string", placeholder: "ID", help: "this node's id", default: "box<N>" },
    "metrics-listen": {
      type: "string",
      placeholder: "HOST:PORT",
      help: "serve /metrics (with this node's client series), /health, /cluster and / there",
    },
    "log-file": {
      type: "string",
      placeholder: "FILE",
      help: "also append every output and log line to FILE (stderr alone suits journald)",
    },
    ...portFlags("the join's local"),
    quorum: {
      type: "string",
      placeholder: "N",
      help: "Sentinel quorum for the join",
      default: "1 on two boxes",
    },
    "data-dir": dataDirFlag("data dir for the join"),
    "heartbeat-ttl-ms": {
      type: "string",
      placeholder: "MS",
      help: "node heartbeat TTL",
      default: "15000",
    },
    "lease-ttl-ms": {
      type: "string",
      placeholder: "MS",
      help: "leader lease TTL",
      default: "10000",
    },
  },
  connection: true,
  // The MirrorNeuron documentation spells these with a "redis-" prefix (start_cluster_node.sh).
  aliases: {
    "redis-ha-mode": "ha-mode",
    "redis-sentinels": "sentinels",
    "redis-wait-replicas": "wait-replicas",
  },
  stopsOnSignal: true,
  run: async ({ flags, config, io, signal }) => {
    const options = nodeStartOptions(flags, config);
    const { runNode } = await import("../node/node.ts");
    await runNode(options, config, (line) => io.stdout(line), (line) => io.stderr(line), signal);
    return 0;
  },
};

/**
 * `node start`'s options from its flags, with every check `node start`
 * makes (so `service install` refuses at install time the flags a unit
 * would fail on at boot). Throws {@link UsageError} naming the flag.
 */
export function nodeStartOptions(
  flags: CommandContext["flags"],
  config: Config,
): NodeStartOptions {
  const box1Ip = hostFlag(flags, "box1-ip");
  const box2Ip = hostFlag(flags, "box2-ip");
  if (flags.box === undefined) throw new UsageError("--box is required; expected 1 or 2");
  const box = choiceFlag(flags, "box", ["1", "2"], "1");
  const haMode = choiceFlag(flags, "ha-mode", ["single", "sentinel"], config.haMode);
  const { redisPort, sentinelPort } = portsOf(flags);
  const sentinels = flags.sentinels === undefined
    ? (config.sentinels.length > 0
      ? [...config.sentinels]
      : [box1Ip, box2Ip].map((host) => ({ host, port: sentinelPort })))
    : endpointsFlag(flags, "sentinels");
  const sentinelMaster = typeof flags["sentinel-master"] === "string"
    ? flags["sentinel-master"]
    : config.sentinelMaster ?? "mirror-neuron";
  return {
    box1Ip,
    box2Ip,
    box: Number(box) as 1 | 2,
    haMode,
    sentinels,
    sentinelMaster,
    waitReplicas: intFlag(flags, "wait-replicas", config.waitReplicas, 0, 64),
    skipRedisHa: flags["skip-redis-ha"] === true,
    nodeId: typeof flags["node-id"] === "string" ? flags["node-id"] : `box${box}`,
    redisPort,
    sentinelPort,
    quorum: intFlag(
      flags,
      "quorum",
      sentinels.length <= 2 ? 1 : Math.floor(sentinels.length / 2) + 1,
      1,
      64,
    ),
    dataDir: dataDirOf(flags),
    heartbeatTtlMs: intFlag(flags, "heartbeat-ttl-ms", 15_000, 300, 3_600_000),
    leaseTtlMs: intFlag(flags, "lease-ttl-ms", 10_000, 300, 3_600_000),
    metricsListen: listenFlag(flags, "metrics-listen", undefined),
  };
}

/** `join` and `leave`. */
export const MEMBERSHIP_COMMANDS: readonly CommandSpec[] = [
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
        placeholder: "N",
        help: "sentinels that must agree the primary is down",
        default: "majority of --sentinels",
      },
      "data-dir": dataDirFlag("config, logs and data of the local daemons"),
      "down-after-ms": {
        type: "string",
        placeholder: "MS",
        help: "Sentinel down-after-milliseconds",
        default: "5000",
      },
      "failover-timeout-ms": {
        type: "string",
        placeholder: "MS",
        help: "Sentinel failover-timeout",
        default: "60000",
      },
      bootstrap: {
        type: "boolean",
        help: "become the primary at once although some sentinels did not answer (first box of a " +
          "new cluster whose peers join later)",
      },
      "min-replicas-to-write": {
        type: "string",
        placeholder: "N",
        help: "the primary refuses writes with fewer connected replicas: bounds the writes a " +
          "split brain can lose (0 = off)",
        default: "0",
      },
      "min-replicas-max-lag": {
        type: "string",
        placeholder: "SECONDS",
        help: "a replica counts for --min-replicas-to-write while its lag is at most this",
        default: "10",
      },
      acl: {
        type: "boolean",
        help: "create least-privilege ACL users for the runtime (MN_REDIS_USERNAME, default " +
          "mn-runtime), replication and Sentinel, passwords derived from MN_REDIS_PASSWORD",
      },
      "peer-timeout": {
        type: "string",
        placeholder: "SECONDS",
        help: "wait this long for listed sentinels that do not answer yet, then refuse",
        default: "120",
      },
      json: { type: "boolean", help: "print the result as JSON" },
    },
    connection: false,
    run: async ({ config, flags, io, signal }) => {
      const base = clusterBase(flags);
      const { readBoxTls } = await import("../ops/daemon.ts");
      const tls = await readBoxTls(tlsFiles(flags), "serve");
      const options = {
        ...base,
        quorum: intFlag(flags, "quorum", Math.floor(base.sentinels.length / 2) + 1, 1, 64),
        dataDir: dataDirOf(flags),
        downAfterMs: intFlag(flags, "down-after-ms", 5000, 100, 3_600_000),
        failoverTimeoutMs: intFlag(flags, "failover-timeout-ms", 60_000, 1000, 3_600_000),
        bootstrap: flags.bootstrap === true,
        peerTimeoutMs: intFlag(flags, "peer-timeout", 120, 0, 86_400) * 1000,
        minReplicasToWrite: intFlag(flags, "min-replicas-to-write", 0, 0, 64),
        minReplicasMaxLagS: intFlag(flags, "min-replicas-max-lag", 10, 1, 3600),
        tls,
        acl: flags.acl === true
          ? { runtimeUser: config.username ?? "mn-runtime", namespace: config.namespace }
          : undefined,
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        report: (line: string) => io.stderr(line),
        signal,
      };
      const { checkJoinOptions, join } = await import("../ops/join.ts");
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
    usage:
      "mn-redis-ha leave --self-host IP --sentinels H:P,… --master-name NAME [--purge-local] [--stop]",
    example:
      "mn-redis-ha leave --self-host 192.168.4.29 --sentinels 192.168.4.29:26379,192.168.4.35:26379 " +
      "--master-name mirror-neuron",
    flags: {
      ...CLUSTER_FLAGS,
      "purge-local": {
        type: "boolean",
        help: "FLUSHDB the detached local Redis (data is kept by default)",
      },
      stop: {
        type: "boolean",
        help: "then shut the local Sentinel and Redis down (Redis saves its data first); " +
          "run service uninstall first where units would start them again",
      },
      json: { type: "boolean", help: "print the result as JSON" },
    },
    connection: false,
    run: async ({ config, flags, io, signal }) => {
      const { leave } = await import("../ops/leave.ts");
      const { readBoxTls } = await import("../ops/daemon.ts");
      const result = await leave({
        ...clusterBase(flags),
        tls: await readBoxTls(tlsFiles(flags), "connect"),
        purgeLocal: flags["purge-local"] === true,
        stop: flags.stop === true,
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        report: (line: string) => io.stderr(line),
        signal,
      });
      io.stdout(
        flags.json === true
          ? JSON.stringify(result, null, 2)
          : `leave_ok was_primary=${result.wasPrimary} primary=${result.primary} purged=${result.purged}` +
            (result.stopped ? " stopped=true" : ""),
      );
      return 0;
    },
  },
];

/** `node start`. */
export { NODE_START };
