/**
 * Starting and stopping local `redis-server` and `redis-sentinel` processes.
 * Configuration goes into files (mode 0600), never onto the command line, so
 * passwords never show in `ps`.
 *
 * @module
 */

import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { RedisHaError } from "../common/errors.ts";
import type { Secret } from "../common/secret.ts";
import { waitFor } from "../common/wait_for.ts";

/** Options shared by Redis and Sentinel processes. */
export interface ProcessOptions {
  /** Directory for the config file, log and data. Must exist. */
  dir: string;
  /** Port; a free loopback port is picked when omitted. */
  port?: number | undefined;
  /** Address to bind. @default {"127.0.0.1"} */
  host?: string | undefined;
  /** Password clients must present (`requirepass`). */
  password?: Secret | undefined;
  /** Address to announce to peers. */
  announceIp?: string | undefined;
  /** More config lines, appended verbatim. */
  extraConfig?: readonly string[] | undefined;
  /** How long to wait for the first PING. @default {10000} */
  readyTimeoutMs?: number | undefined;
  /** Remove `dir` when the process is stopped. @default {false} */
  removeDirOnStop?: boolean | undefined;
  /** Serve TLS only (plain port off), with these PEM files written into `dir`. */
  tls?: TlsFiles | undefined;
  /** Aborts the wait for readiness; the process is then stopped. */
  signal?: AbortSignal | undefined;
}

/** PEM contents for a TLS-only process. */
export interface TlsFiles {
  /** Server certificate. */
  certPem: string;
  /** Server private key. */
  keyPem: string;
  /** CA that signed it (also used to verify peers). */
  caPem: string;
}

/** Options for {@link RedisProcess.startServer}. */
export interface RedisServerOptions extends ProcessOptions {
  /** Start as a replica of this primary. */
  replicaOf?: Endpoint | undefined;
  /** Password to use towards the primary (`masterauth`). */
  masterPassword?: Secret | undefined;
  /** An ACL user (in addition to the default user) with full access. */
  aclUser?: { name: string; password: Secret } | undefined;
}

/** One monitored master in a sentinel's config. */
export interface SentinelMonitor {
  /** Master name. */
  name: string;
  /** Initial primary. */
  primary: Endpoint;
  /** Sentinels that must agree the primary is down. */
  quorum: number;
  /** `down-after-milliseconds`. @default {1000} */
  downAfterMs?: number | undefined;
  /** `failover-timeout`. @default {10000} */
  failoverTimeoutMs?: number | undefined;
  /** Password of the data nodes (`auth-pass`). */
  authPassword?: Secret | undefined;
}

/** Options for {@link RedisProcess.startSentinel}. */
export interface SentinelOptions extends ProcessOptions {
  /** The master to monitor. */
  monitor: SentinelMonitor;
}

/** The Redis binary is missing. */
export class MissingBinaryError extends RedisHaError {
  /** Error class name. */
  override readonly name = "MissingBinaryError";

  /** Creates the error for a binary name. */
  constructor(binary: string) {
    super(
      "CONFIG",
      `${binary} is not installed or not on PATH; install it with: ` +
        "apt-get install -y redis-server redis-sentinel redis-tools",
    );
  }
}

/** Picks a free TCP port on a loopback address. */
export function freePort(host = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname: host, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running `redis-server` or `redis-sentinel`. Dispose it to stop it. */
export class RedisProcess implements AsyncDisposable {
  /** Where it listens. */
  readonly endpoint: Endpoint;
  /** `redis-server` or `redis-sentinel`. */
  readonly kind: "redis" | "sentinel";
  /** Its working directory. */
  readonly dir: string;
  /** Password clients must present, if any. */
  readonly password: Secret | undefined;
  /** CA to trust when connecting, for TLS-only processes. */
  readonly caPem: string | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #removeDir: boolean;
  #exited = false;

  private constructor(
    kind: "redis" | "sentinel",
    endpoint: Endpoint,
    dir: string,
    password: Secret | undefined,
    child: Deno.ChildProcess,
    removeDir: boolean,
    caPem: string | undefined,
  ) {
    this.#removeDir = removeDir;
    this.caPem = caPem;
    this.kind = kind;
    this.endpoint = endpoint;
    this.dir = dir;
    this.password = password;
    this.#child = child;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** Starts `redis-server` and waits until it answers PING. */
  static startServer(options: RedisServerOptions): Promise<RedisProcess> {
    return RedisProcess.#start("redis", options, (port, dir) => {
      const lines = [
        ...baseConfig("redis", port, dir, options.host),
        `dbfilename dump-${port}.rdb`,
        'save ""',
        "appendonly no",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        "repl-ping-replica-period 1",
      ];
      if (options.password !== undefined) {
        lines.push(`requirepass ${quote(options.password.reveal())}`);
      }
      if (options.masterPassword !== undefined) {
        lines.push(`masterauth ${quote(options.masterPassword.reveal())}`);
      }
      if (options.aclUser !== undefined) {
        lines.push(
          `user ${options.aclUser.name} on >${options.aclUser.password.reveal()} ~* &* +@all`,
        );
      }
      if (options.announceIp !== undefined) lines.push(`replica-announce-ip ${options.announceIp}`);
      if (options.replicaOf !== undefined) {
        lines.push(`replicaof ${options.replicaOf.host} ${options.replicaOf.port}`);
      }
      return lines;
    });
  }

  /** Starts `redis-sentinel` and waits until it answers PING. */
  static startSentinel(options: SentinelOptions): Promise<RedisProcess> {
    return RedisProcess.#start("sentinel", options, (port, dir) => {
      const m = options.monitor;
      const lines = [
        ...baseConfig("sentinel", port, dir, options.host),
        "sentinel resolve-hostnames no",
        `sentinel monitor ${m.name} ${m.primary.host} ${m.primary.port} ${m.quorum}`,
        `sentinel down-after-milliseconds ${m.name} ${m.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${m.name} ${m.failoverTimeoutMs ?? 10000}`,
        `sentinel parallel-syncs ${m.name} 1`,
      ];
      if (m.authPassword !== undefined) {
        lines.push(`sentinel auth-pass ${m.name} ${quote(m.authPassword.reveal())}`);
      }
      if (options.password !== undefined) {
        lines.push(`requirepass ${quote(options.password.reveal())}`);
        lines.push(`sentinel sentinel-pass ${quote(options.password.reveal())}`);
      }
      if (options.announceIp !== undefined) {
        lines.push(`sentinel announce-ip ${options.announceIp}`);
      }
      return lines;
    });
  }

  static async #start(
    kind: "redis" | "sentinel",
    options: ProcessOptions,
    configLines: (port: number, dir: string) => string[],
  ): Promise<RedisProcess> {
    const binary = kind === "redis" ? "redis-server" : "redis-sentinel";
    const host = options.host ?? "127.0.0.1";
    // Redis changes into `dir` before opening some files: use absolute paths.
    const dir = await Deno.realPath(options.dir);
    for (let attempt = 1;; attempt++) {
      const port = options.port ?? freePort(host);
      const configPath = `${dir}/${kind}-${port}.conf`;
      const logPath = `${dir}/${kind}-${port}.log`;
      const lines = [...configLines(port, dir), ...(options.extraConfig ?? [])];
      if (options.tls !== undefined) lines.push(...await tlsConfig(dir, port, options.tls));
      await Deno.writeTextFile(configPath, lines.join("\n") + "\n", { mode: 0o600 });
      await Deno.chmod(configPath, 0o600);
      let child: Deno.ChildProcess;
      try {
        child = spawnPrivate(
          new Deno.Command(binary, {
            args: [configPath],
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }),
          { required: false },
        );
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) throw new MissingBinaryError(binary);
        throw error;
      }
      const proc = new RedisProcess(
        kind,
        { host, port },
        dir,
        options.password,
        child,
        options.removeDirOnStop ?? false,
        options.tls?.caPem,
      );
      try {
        await proc.#waitReady(options.readyTimeoutMs ?? 10_000, options.signal);
        return proc;
      } catch (error) {
        await proc.#halt();
        options.signal?.throwIfAborted();
        const log = await Deno.readTextFile(logPath).catch(() => "");
        if (/Address already in use/.test(log) && options.port === undefined && attempt === 1) {
          continue; // Lost a race for the port; try once more on a new one.
        }
        if (/Address already in use/.test(log)) {
          throw new RedisHaError(
            "CONFIG",
            `${binary} cannot listen on ${
              formatEndpoint({ host, port })
            }: address already in use; ` +
              "stop what uses that port or pick another",
          );
        }
        const tail = log.trim().split("\n").slice(-8).join("\n");
        throw new RedisHaError(
          "CONNECTION",
          `${binary} on ${formatEndpoint({ host, port })} did not become ready: ` +
            `${error instanceof Error ? error.message : error}\n--- ${logPath} ---\n${tail}`,
          { cause: error },
        );
      }
    }
  }

  async #waitReady(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    // Stop waiting the moment the process exits: its log says why.
    const exited = new AbortController();
    void this.#status.then(() =>
      exited.abort(new RedisHaError("CONNECTION", `${this.kind} process exited`))
    );
    await waitFor(async () => {
      await using conn = await this.connect();
      await conn.send(["PING"], { timeoutMs: 1000 });
      return { done: true, value: undefined };
    }, {
      what: `${this.kind} ${formatEndpoint(this.endpoint)} to answer PING`,
      timeoutMs,
      intervalMs: 20,
      signal: signal === undefined ? exited.signal : AbortSignal.any([exited.signal, signal]),
    });
  }

  /** The OS process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a signal (e.g. `SIGKILL`, `SIGSTOP`, `SIGCONT`). No-op after exit. */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Exited between the check and the signal.
    }
  }

  /** Waits for the process to exit. */
  async waitExit(): Promise<Deno.CommandStatus> {
    return await this.#status;
  }

  /** Opens a connection to this process (authenticated if it has a password). */
  connect(): Promise<RedisConnection> {
    return RedisConnection.connect(this.endpoint, {
      password: this.password,
      connectTimeoutMs: 1000,
      tls: this.caPem !== undefined,
      caCerts: this.caPem === undefined ? undefined : [this.caPem],
    });
  }

  /**
   * Stops the process: SIGCONT (if stopped), SIGTERM, then SIGKILL after 3 s;
   * removes its dir if asked to. Idempotent.
   */
  async stop(): Promise<void> {
    await this.#halt();
    if (this.#removeDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async #halt(): Promise<void> {
    if (!this.#exited) {
      this.kill("SIGCONT");
      this.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.kill("SIGKILL");
          resolve();
        }, 3000);
      });
      await Promise.race([this.#status, killed]);
      clearTimeout(timer);
    }
    await this.#status;
  }

  /** Same as {@link RedisProcess.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Config lines every foreground test process shares. */
function baseConfig(
  kind: "redis" | "sentinel",
  port: number,
  dir: string,
  host = "127.0.0.1",
): string[] {
  return [
    `port ${port}`,
    `bind ${host}`,
    "protected-mode no",
    "daemonize no",
    `dir ${dir}`,
    `logfile ${dir}/${kind}-${port}.log`,
  ];
}

async function tlsConfig(dir: string, port: number, tls: TlsFiles): Promise<string[]> {
  const files = { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem };
  for (const [name, pem] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/tls-${port}.${name}`, pem, { mode: 0o600 });
  }
  // The port that was chosen serves TLS; the plain port is off.
  return [
    "port 0",
    `tls-port ${port}`,
    `tls-cert-file ${dir}/tls-${port}.cert`,
    `tls-key-file ${dir}/tls-${port}.key`,
    `tls-ca-cert-file ${dir}/tls-${port}.ca`,
    "tls-auth-clients no",
    "tls-replication yes",
  ];
}

function quote(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Spawns `command` under umask 0077, so every file the process creates or
 * rewrites is private to its user. Redis and Sentinel rewrite their own
 * config files (CONFIG REWRITE, every failover) with mode `0644 & ~umask`,
 * and those files hold passwords. Deno grants `umask` only with the whole
 * `sys` permission: where that is missing, `required: false` spawns with
 * the inherited umask, `required: true` throws `NotCapable`.
 */
export function spawnPrivate(
  command: Deno.Command,
  options: { required: boolean },
): Deno.ChildProcess {
  let previous: number | undefined;
  try {
    previous = Deno.umask(0o077);
  } catch (error) {
    if (options.required || !(error instanceof Deno.errors.NotCapable)) throw error;
  }
  try {
    return command.spawn();
  } finally {
    if (previous !== undefined) Deno.umask(previous);
  }
}
