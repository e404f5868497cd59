/**
 * Box-local `redis-server` / `redis-sentinel` daemons for `join`: config
 * files in the data dir (mode 0600, secrets never on a command line),
 * `daemonize yes` so they outlive the CLI, and adoption of ones already
 * running on the port.
 */

import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { RedisHaError, UsageError } from "../common/errors.ts";
import { parseInfo } from "../protocol/info.ts";
import { MissingBinaryError, spawnPrivate } from "../process/redis_process.ts";
import { replyToString } from "../protocol/resp.ts";
import type { Secret } from "../common/secret.ts";
import { waitFor } from "../common/wait_for.ts";

/**
 * TLS of a box (`join --tls-cert-file/--tls-key-file/--tls-ca-cert-file`):
 * its Redis and Sentinel serve TLS only, replicate and talk to each other
 * over TLS, and every connection the CLI makes trusts `caPem`.
 */
export interface BoxTls {
  /** Absolute path of the box's certificate (PEM). */
  certFile: string;
  /** Absolute path of its private key (PEM). */
  keyFile: string;
  /** Absolute path of the CA that signed every box's certificate (PEM). */
  caCertFile: string;
  /** The CA's contents, trusted by the CLI's own connections. */
  caPem: string;
}

/** What every command on a box (`join`, `leave`) takes: the box, the cluster, credentials, TLS. */
export interface BoxOptions {
  /** Aborts the command at its next wait (SIGINT/SIGTERM in the CLI); what it changed is undone where it can be. */
  signal?: AbortSignal | undefined;
  /** `--self-host`: this box's address, reachable from the other boxes. */
  selfHost: string;
  /** `--redis-port`. @default {6379} */
  redisPort: number;
  /** `--sentinel-port`. @default {26379} */
  sentinelPort: number;
  /** `--sentinels`: every sentinel of the cluster, this box's included. */
  sentinels: readonly Endpoint[];
  /** `--master-name`. */
  masterName: string;
  /** `--timeout-ms`: how long to wait for each step to settle. */
  timeoutMs: number;
  /** `MN_REDIS_PASSWORD`. */
  password?: Secret | undefined;
  /** `MN_REDIS_SENTINEL_PASSWORD`. */
  sentinelPassword?: Secret | undefined;
  /** The box's TLS (`--tls-*`): its daemons serve TLS only. */
  tls?: BoxTls | undefined;
  /** Progress and warning lines (stderr). */
  report: (line: string) => void;
}

/** Connection options for a box's daemons: the password, and TLS trusting the box CA. */
export function boxConnect(password: Secret | undefined, tls: BoxTls | undefined): ConnectOptions {
  return {
    password,
    ...(tls === undefined ? {} : {
      tls: true,
      caCerts: [tls.caPem],
      tlsVariable: "--tls-ca-cert-file",
    }),
  };
}

/** Options to reach a box's Redis: `MN_REDIS_PASSWORD` and the box TLS. */
export function redisAuth(
  options: { password?: Secret | undefined; tls?: BoxTls | undefined },
): ConnectOptions {
  return boxConnect(options.password, options.tls);
}

/** Options to reach the sentinels: `MN_REDIS_SENTINEL_PASSWORD` and the box TLS. */
export function sentinelAuth(
  options: { sentinelPassword?: Secret | undefined; tls?: BoxTls | undefined },
): ConnectOptions {
  return boxConnect(options.sentinelPassword, options.tls);
}

/**
 * Reads the TLS flags of `join`/`leave`: all three files or none. The files
 * must exist and be readable; paths become absolute, because Redis resolves
 * relative ones from its data dir.
 */
export async function readBoxTls(
  files: {
    certFile?: string | undefined;
    keyFile?: string | undefined;
    caCertFile?: string | undefined;
  },
  need: "serve" | "connect",
): Promise<BoxTls | undefined> {
  const given = [
    ["--tls-cert-file", files.certFile],
    ["--tls-key-file", files.keyFile],
    ["--tls-ca-cert-file", files.caCertFile],
  ] as const;
  const wanted = need === "serve" ? given : given.slice(2);
  if (given.every(([, v]) => v === undefined)) return undefined;
  const missing = wanted.filter(([, v]) => v === undefined).map(([f]) => f);
  if (missing.length > 0) {
    throw new UsageError(
      `TLS needs ${wanted.map(([f]) => f).join(", ")}; missing ${missing.join(", ")}`,
    );
  }
  const absolute: string[] = [];
  for (const [flag, path] of given) {
    if (path === undefined) {
      absolute.push("");
      continue;
    }
    try {
      absolute.push(await Deno.realPath(path));
      if (flag !== "--tls-key-file") await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `${flag} is ${JSON.stringify(path)}, which cannot be read (${(error as Error).message}); ` +
          "expected a PEM file",
      );
    }
  }
  const caPem = await Deno.readTextFile(absolute[2]!);
  if (!caPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(
      `--tls-ca-cert-file ${JSON.stringify(files.caCertFile)} holds no PEM certificate`,
    );
  }
  return { certFile: absolute[0]!, keyFile: absolute[1]!, caCertFile: absolute[2]!, caPem };
}

/** What a daemon is. */
export type DaemonKind = "redis" | "sentinel";

/** Options for {@link ensureDaemon}. */
export interface DaemonOptions {
  /** Which daemon. */
  kind: DaemonKind;
  /** The box's reachable address (bound and announced). */
  selfHost: string;
  /** Port. */
  port: number;
  /** Data dir (config, log, pid and data files). */
  dataDir: string;
  /** Password clients must present. */
  password?: Secret | undefined;
  /** Password towards the primary (redis) or other sentinels (sentinel). */
  peerPassword?: Secret | undefined;
  /** Serve TLS only, replicate and reach peers over TLS. */
  tls?: BoxTls | undefined;
  /** Redis `min-replicas-to-write` (redis only). @default {0} */
  minReplicasToWrite?: number | undefined;
  /** Redis `min-replicas-max-lag` in seconds (redis only). @default {10} */
  minReplicasMaxLagS?: number | undefined;
  /** How long to wait for the first PING. */
  timeoutMs: number;
}

/** Whether the daemon was found running or started now. */
export type DaemonOutcome = "adopted" | "started";

/** Starts the daemon unless one already answers on the port; returns which happened. */
export async function ensureDaemon(options: DaemonOptions): Promise<DaemonOutcome> {
  const endpoint = { host: options.selfHost, port: options.port };
  const running = await probeKind(endpoint, boxConnect(options.password, options.tls));
  if (running !== undefined) {
    if (running !== options.kind) {
      throw new UsageError(
        `Port ${options.port} on ${options.selfHost} runs a ${running}, not a ${options.kind}; ` +
          `pick another --${options.kind === "redis" ? "redis" : "sentinel"}-port`,
      );
    }
    return "adopted";
  }
  await Deno.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  // Redis resolves some paths after changing into `dir`: use absolute ones.
  const dataDir = await Deno.realPath(options.dataDir);
  options = { ...options, dataDir };
  const name = `${options.kind}-${options.port}`;
  const config = `${dataDir}/${name}.conf`;
  const log = `${dataDir}/${name}.log`;
  const existing = await Deno.readTextFile(config).catch(() => undefined);
  // A sentinel rewrites its own config (learned peers, epochs): keep it across restarts.
  if (existing === undefined || options.kind === "redis") {
    await Deno.writeTextFile(config, daemonConfig(options, log).join("\n") + "\n", { mode: 0o600 });
  }
  await Deno.chmod(config, 0o600);
  const binary = options.kind === "redis" ? "redis-server" : "redis-sentinel";
  let output: Deno.CommandOutput;
  try {
    // Private umask: the daemon rewrites its config (passwords inside) on failovers.
    output = await spawnPrivate(
      new Deno.Command(binary, {
        args: [config],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
      { required: true },
    ).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new MissingBinaryError(binary);
    throw error;
  }
  try {
    if (!output.success) {
      throw new RedisHaError("CONNECTION", `${binary} exited with code ${output.code}`);
    }
    await waitFor(async () => {
      const kind = await probeKind(endpoint, boxConnect(options.password, options.tls));
      return kind !== undefined
        ? { done: true, value: undefined }
        : { done: false, observed: "no answer" };
    }, {
      what: `${binary} on ${formatEndpoint(endpoint)} to answer PING`,
      timeoutMs: options.timeoutMs,
      intervalMs: 50,
    });
  } catch (error) {
    const text = (await Deno.readTextFile(log).catch(() => "")) +
      new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    if (/Address already in use/.test(text)) {
      throw new RedisHaError(
        "CONFIG",
        `${binary} cannot listen on ${
          formatEndpoint(endpoint)
        }: the port is already in use by another ` +
          "program; free it or pick another port",
      );
    }
    if (/Cannot assign requested address/.test(text)) {
      throw new RedisHaError(
        "CONFIG",
        `${binary} cannot bind ${options.selfHost}: it is not an address of this box; check --self-host`,
      );
    }
    const tail = text.trim().split("\n").slice(-6).join("\n");
    throw new RedisHaError(
      "CONNECTION",
      `${binary} did not start: ${(error as Error).message}\n${tail}`,
      { cause: error },
    );
  }
  return "started";
}

function daemonConfig(options: DaemonOptions, log: string): string[] {
  const binds = options.selfHost === "127.0.0.1" ? "127.0.0.1" : `${options.selfHost} 127.0.0.1`;
  const name = `${options.kind}-${options.port}`;
  const lines = [
    // With TLS the port serves TLS only; the plain port is off.
    ...(options.tls === undefined ? [`port ${options.port}`] : [
      "port 0",
      `tls-port ${options.port}`,
      `tls-cert-file ${options.tls.certFile}`,
      `tls-key-file ${options.tls.keyFile}`,
      `tls-ca-cert-file ${options.tls.caCertFile}`,
      // Clients authenticate with passwords/ACL users; certificates are optional for them.
      "tls-auth-clients optional",
      // Replication, and Sentinel's links to Redis and to other sentinels, use TLS too.
      "tls-replication yes",
    ]),
    `bind ${binds}`,
    "protected-mode no",
    "daemonize yes",
    `pidfile ${options.dataDir}/${name}.pid`,
    `logfile ${log}`,
    `dir ${options.dataDir}`,
  ];
  if (options.kind === "redis") {
    lines.push(
      `dbfilename dump-${options.port}.rdb`,
      "appendonly yes",
      `appenddirname appendonly-${options.port}`,
      `replica-announce-ip ${options.selfHost}`,
      `replica-announce-port ${options.port}`,
      // A full sync waits this long for more replicas to share one transfer (Redis: 5 s). With the
      // few replicas of a cluster, that wait is most of a join's or a rejoin's time.
      "repl-diskless-sync-delay 1",
      `min-replicas-to-write ${options.minReplicasToWrite ?? 0}`,
      `min-replicas-max-lag ${options.minReplicasMaxLagS ?? 10}`,
    );
    if (options.password !== undefined) {
      lines.push(`requirepass ${quote(options.password.reveal())}`);
    }
    if (options.peerPassword !== undefined) {
      lines.push(`masterauth ${quote(options.peerPassword.reveal())}`);
    }
  } else {
    lines.push(
      `sentinel announce-ip ${options.selfHost}`,
      `sentinel announce-port ${options.port}`,
      "sentinel resolve-hostnames yes",
    );
    if (options.password !== undefined) {
      lines.push(`requirepass ${quote(options.password.reveal())}`);
      lines.push(`sentinel sentinel-pass ${quote(options.password.reveal())}`);
    }
  }
  return lines;
}

/** Which kind of Redis answers at `endpoint`, or undefined if nothing does. */
export async function probeKind(
  endpoint: Endpoint,
  auth: ConnectOptions,
): Promise<DaemonKind | undefined> {
  try {
    await using conn = await RedisConnection.connect(endpoint, { ...auth, connectTimeoutMs: 500 });
    const info = parseInfo(
      replyToString(await conn.send(["INFO", "server"], { timeoutMs: 1000 })) ?? "",
    );
    return info.get("redis_mode") === "sentinel" ? "sentinel" : "redis";
  } catch (error) {
    if (error instanceof RedisHaError && error.code === "AUTH") throw error;
    return undefined;
  }
}

function quote(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** Stops a daemon this process started (`SHUTDOWN NOSAVE`), within a second; errors are ignored. */
export async function shutdownDaemon(endpoint: Endpoint, auth: ConnectOptions): Promise<void> {
  try {
    await using conn = await RedisConnection.connect(endpoint, { ...auth, connectTimeoutMs: 500 });
    // The server closes the connection instead of replying.
    await conn.send(["SHUTDOWN", "NOSAVE"], { timeoutMs: 500 }).catch(() => {});
  } catch {
    // Already gone, or not answering: nothing more to do here.
  }
}
