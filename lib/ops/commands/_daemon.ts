/**
 * Box-local `redis-server` / `redis-sentinel` daemons for `join`: config
 * files in the data dir (mode 0600, secrets never on a command line),
 * `daemonize yes` so they outlive the CLI, and adoption of ones already
 * running on the port.
 */

import { RedisConnection } from "../../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../../protocol/endpoint.ts";
import { RedisHaError, UsageError } from "../../common/errors.ts";
import { parseInfo } from "../../protocol/info.ts";
import { MissingBinaryError } from "../redis_process.ts";
import { replyToString } from "../../protocol/resp.ts";
import type { Secret } from "../../common/secret.ts";
import { waitFor } from "../wait.ts";

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
  /** How long to wait for the first PING. */
  timeoutMs: number;
}

/** Whether the daemon was found running or started now. */
export type DaemonOutcome = "adopted" | "started";

/** Starts the daemon unless one already answers on the port; returns which happened. */
export async function ensureDaemon(options: DaemonOptions): Promise<DaemonOutcome> {
  const endpoint = { host: options.selfHost, port: options.port };
  const running = await probeKind(endpoint, options.password);
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
    output = await new Deno.Command(binary, {
      args: [config],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new MissingBinaryError(binary);
    throw error;
  }
  try {
    if (!output.success) {
      throw new RedisHaError("CONNECTION", `${binary} exited with code ${output.code}`);
    }
    await waitFor(async () => {
      const kind = await probeKind(endpoint, options.password);
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
    `port ${options.port}`,
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
  password: Secret | undefined,
): Promise<DaemonKind | undefined> {
  try {
    await using conn = await RedisConnection.connect(endpoint, { password, connectTimeoutMs: 500 });
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
export async function shutdownDaemon(
  endpoint: Endpoint,
  password: Secret | undefined,
): Promise<void> {
  try {
    await using conn = await RedisConnection.connect(endpoint, {
      password,
      connectTimeoutMs: 500,
    });
    // The server closes the connection instead of replying.
    await conn.send(["SHUTDOWN", "NOSAVE"], { timeoutMs: 500 }).catch(() => {});
  } catch {
    // Already gone, or not answering: nothing more to do here.
  }
}
