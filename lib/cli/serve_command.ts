/** The `serve` subcommand's spec. */

import type { CommandContext, CommandSpec } from "./command_spec.ts";
import {
  choiceFlag,
  endpointsFlag,
  hostFlag,
  intFlag,
  portFlags,
  portsOf,
  requiredFlag,
} from "./command_spec.ts";
import { type Endpoint, formatEndpoint, parseEndpoint } from "../protocol/endpoint.ts";
import { configFromOptions, configToOptions, READ_FROM_VALUES } from "../ha/config.ts";
import { UsageError } from "../common/errors.ts";

/** Default `--listen`: loopback only, unless told otherwise. */
export const DEFAULT_LISTEN = "127.0.0.1:9121";

/** Reads `--listen HOST:PORT` (IPv6 as `[addr]:port`). */
export function listenFlag(
  flags: CommandContext["flags"],
  name: string,
  fallback: string | undefined,
): Endpoint | undefined {
  const value = flags[name];
  const text = typeof value === "string" ? value : fallback;
  if (text === undefined) return undefined;
  const endpoint = parseEndpoint(text);
  if (typeof endpoint === "string") {
    throw new UsageError(`--${name}: ${endpoint}; expected HOST:PORT, e.g. ${DEFAULT_LISTEN}`);
  }
  return endpoint;
}

/** `serve`. */
export const SERVE: CommandSpec = {
  name: "serve",
  summary: "Serve read-only /metrics, /health, /cluster and a dashboard page for this box",
  usage: "mn-redis-ha serve --self-host IP --sentinels H:P,… --master-name NAME " +
    "[--listen HOST:PORT] [--redis-port PORT] [--read-from POLICY] [--read-max-lag-ms MS]",
  example: "mn-redis-ha serve --listen 127.0.0.1:9121 --self-host 192.168.4.29 --redis-port 6379 " +
    "--sentinels 192.168.4.29:26379,192.168.4.35:26379 --master-name mirror-neuron",
  flags: {
    listen: {
      type: "string",
      placeholder: "HOST:PORT",
      help: "where to serve HTTP (loopback unless told otherwise)",
      default: DEFAULT_LISTEN,
    },
    "self-host": { type: "string", placeholder: "IP", help: "this box's address (required)" },
    ...portFlags("this box's"),
    sentinels: {
      type: "string",
      placeholder: "H:P,…",
      help: "every Sentinel of the cluster (required)",
    },
    "master-name": { type: "string", placeholder: "NAME", help: "the master name (required)" },
    "read-from": {
      type: "string",
      placeholder: "POLICY",
      help: "where /cluster reads state (the leader lease): primary, replica-preferred or " +
        "replica (default MN_REDIS_READ_FROM, else primary)",
    },
    "read-max-lag-ms": {
      type: "string",
      placeholder: "MS",
      help: "how stale a replica read may be (default MN_REDIS_READ_MAX_LAG_MS, else 500)",
    },
  },
  connection: false,
  stopsOnSignal: true,
  run: async ({ flags, config, io, signal }) => {
    const { serve } = await import("../views/serve.ts");
    const { inspectTopology } = await import("../views/inspect.ts");
    const sentinels = endpointsFlag(flags, "sentinels");
    const masterName = requiredFlag(flags, "master-name", "a name like mirror-neuron");
    const cluster = configFromOptions({
      ...configToOptions(config),
      haMode: "sentinel",
      sentinels: sentinels.map(formatEndpoint),
      sentinelMaster: masterName,
      readFrom: choiceFlag(flags, "read-from", READ_FROM_VALUES, config.readFrom),
      readMaxLagMs: intFlag(flags, "read-max-lag-ms", config.readMaxLagMs, 0, 3_600_000),
    });
    await serve({
      listen: listenFlag(flags, "listen", DEFAULT_LISTEN)!,
      redis: {
        host: hostFlag(flags, "self-host"),
        port: portsOf(flags).redisPort,
      },
      sentinels,
      masterName,
      config: cluster,
      signal,
      onListen: (address) => io.stdout(`serve_listening http://${address}/`),
      topology: () => inspectTopology(cluster),
    });
    return 0;
  },
};
