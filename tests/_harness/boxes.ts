/**
 * "Boxes" on loopback for CLI tests: port sets and data dirs for `join`, and
 * teardown that shuts down every daemon `join` started (they are daemonized,
 * so they are not our children) and removes the dirs, even on failure.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import type { Secret } from "../../lib/common/secret.ts";
import { type Config, configFromOptions, type ConfigOptions } from "../../lib/ha/config.ts";
import { tempDir, waitFor } from "./mod.ts";
import { daemonAlive, killDaemons } from "./process.ts";

/** One box: its address, ports and data dir. */
export interface Box {
  readonly host: string;
  readonly redisPort: number;
  readonly sentinelPort: number;
  readonly dataDir: string;
}

export { mnCli } from "./process.ts";

/** Credentials and TLS of the boxes' daemons, for the test's own connections. */
export interface BoxesOptions {
  password?: Secret | undefined;
  sentinelPassword?: Secret | undefined;
  /** The boxes serve TLS signed by this CA (`join --tls-*`). */
  tlsCaPem?: string | undefined;
  /** Every box's address. @default {"127.0.0.1"} (`::1` for IPv6) */
  host?: string | undefined;
}

/** A set of loopback boxes. */
export class Boxes implements AsyncDisposable {
  readonly boxes: Box[];
  readonly masterName: string;
  readonly #dir: AsyncDisposable & { path: string };
  readonly #password: Secret | undefined;
  readonly #sentinelPassword: Secret | undefined;
  readonly #tls: { tls: true; caCerts: string[] } | Record<string, never>;

  private constructor(
    dir: AsyncDisposable & { path: string },
    boxes: Box[],
    masterName: string,
    passwords: BoxesOptions,
  ) {
    this.#dir = dir;
    this.boxes = boxes;
    this.masterName = masterName;
    this.#password = passwords.password;
    this.#sentinelPassword = passwords.sentinelPassword;
    this.#tls = passwords.tlsCaPem === undefined
      ? {}
      : { tls: true, caCerts: [passwords.tlsCaPem] };
  }

  /** Allocates `count` boxes on 127.0.0.1. */
  static async create(count: number, options: BoxesOptions = {}): Promise<Boxes> {
    const dir = await tempDir("boxes-");
    const boxes = Array.from({ length: count }, (_, i) => ({
      host: options.host ?? "127.0.0.1",
      redisPort: freePort(),
      sentinelPort: freePort(),
      dataDir: `${dir.path}/box${i + 1}`,
    }));
    return new Boxes(dir, boxes, `mn-${crypto.randomUUID().slice(0, 6)}`, options);
  }

  /** `--sentinels` value listing every box's sentinel (IPv6 as `[addr]:port`). */
  get sentinels(): string {
    return this.boxes.map((b) => formatEndpoint({ host: b.host, port: b.sentinelPort })).join(",");
  }

  /**
   * A client configuration for the cluster the boxes form (sentinel mode, WAIT 1 within a
   * second, test-friendly retries), with `extra` on top.
   */
  clientConfig(extra: ConfigOptions = {}): Config {
    return configFromOptions({
      haMode: "sentinel",
      sentinels: this.sentinels,
      sentinelMaster: this.masterName,
      waitReplicas: 1,
      waitTimeoutMs: 1000,
      reconnectAttempts: 40,
      reconnectBackoffMs: 100,
      reconnectMaxBackoffMs: 1000,
      ...extra,
    });
  }

  /** Flags `join` and `leave` share for box `i`. */
  #clusterArgs(i: number): string[] {
    const b = this.boxes[i]!;
    return [
      "--self-host",
      b.host,
      "--redis-port",
      String(b.redisPort),
      "--sentinel-port",
      String(b.sentinelPort),
      "--sentinels",
      this.sentinels,
      "--master-name",
      this.masterName,
      "--timeout-ms",
      "30000",
    ];
  }

  /** Arguments for `join` on box `i`, with test-friendly Sentinel timings. */
  joinArgs(i: number, extra: string[] = []): string[] {
    return [
      "join",
      ...this.#clusterArgs(i),
      "--data-dir",
      this.boxes[i]!.dataDir,
      "--down-after-ms",
      "1000",
      "--failover-timeout-ms",
      "10000",
      ...extra,
    ];
  }

  /** Arguments for `leave` on box `i`. */
  leaveArgs(i: number, extra: string[] = []): string[] {
    return ["leave", ...this.#clusterArgs(i), ...extra];
  }

  /** Connects to box `i`'s Redis. */
  redis(i: number): Promise<RedisConnection> {
    const b = this.boxes[i]!;
    return RedisConnection.connect({ host: b.host, port: b.redisPort }, {
      password: this.#password,
      ...this.#tls,
    });
  }

  /** Connects to box `i`'s Sentinel. */
  sentinel(i: number): Promise<RedisConnection> {
    const b = this.boxes[i]!;
    return RedisConnection.connect({ host: b.host, port: b.sentinelPort }, {
      password: this.#sentinelPassword,
      ...this.#tls,
    });
  }

  /** Shuts down every daemon the boxes may run, then removes their dirs. */
  async [Symbol.asyncDispose](): Promise<void> {
    const shutdown = async (connect: () => Promise<RedisConnection>): Promise<void> => {
      try {
        await using conn = await connect();
        // NOW: a primary does not wait for its replicas; FORCE: errors do not keep it running.
        await conn.send(["SHUTDOWN", "NOSAVE", "NOW", "FORCE"], { timeoutMs: 2000 }).catch(
          () => {},
        );
      } catch {
        return; // Not running.
      }
      // Gone once it refuses connections: only then may its dir be removed.
      await waitFor(async () => {
        try {
          await (await connect()).close();
          return { done: false, observed: "still answering" };
        } catch {
          return { done: true, value: undefined };
        }
      }, { what: "a daemon to exit", timeoutMs: 10_000 }).catch(() => {});
    };
    await Promise.all(
      this.boxes.flatMap((
        _,
        i,
      ) => [shutdown(() => this.sentinel(i)), shutdown(() => this.redis(i))]),
    );
    await this.#killLeftovers();
    await this.#dir[Symbol.asyncDispose]();
  }

  /**
   * Kills any daemon still running from the boxes' pid files (one that could
   * not be reached to shut it down, e.g. credentials changed by the test),
   * and says so: a daemon outliving its test keeps its port and files.
   */
  async #killLeftovers(): Promise<void> {
    for (const box of this.boxes) {
      let entries: Deno.DirEntry[];
      try {
        entries = await Array.fromAsync(Deno.readDir(box.dataDir));
      } catch {
        continue; // Never joined.
      }
      for (const entry of entries.filter((e) => e.name.endsWith(".pid"))) {
        const pid = Number((await Deno.readTextFile(`${box.dataDir}/${entry.name}`)).trim());
        if (!Number.isInteger(pid) || pid < 2) continue;
        if (!(await daemonAlive(pid))) continue;
        // deno-lint-ignore no-console -- a leak the shutdown missed is worth a line in the log
        console.error(`Boxes: ${entry.name} (pid ${pid}) survived SHUTDOWN; killing it`);
        await killDaemons([pid]);
      }
    }
  }
}
