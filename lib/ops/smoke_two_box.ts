/**
 * `mn-redis-ha smoke two-box`: the user doc's two-box failover smoke, with
 * local `redis-server`/`redis-sentinel` processes instead of Docker. The
 * remote box is driven through a remote shell (default `ssh <remote-host>`).
 *
 * 1. starts Redis and Sentinel on both boxes
 * 2. checks whether the remote box can reach the local Redis test port
 * 3. starts the reachable side as the initial primary and the other as a replica
 * 4. writes MirrorNeuron state through Sentinel mode
 * 5. kills the initial primary Redis
 * 6. waits for Sentinel promotion
 * 7. verifies MirrorNeuron can write and read through the promoted replica
 *
 * @module
 */

import { quoteValue } from "../common/quote.ts";
import { configFromOptions, type ConfigOptions } from "../ha/config.ts";
import { RedisConnection } from "../protocol/connection.ts";
import { type Endpoint, formatEndpoint, formatHostPort } from "../protocol/endpoint.ts";
import { RedisHaError, UsageError } from "../common/errors.ts";
import { parseInfo } from "../protocol/info.ts";
import { RedisProcess } from "../process/redis_process.ts";
import { replyToMap, replyToString } from "../protocol/resp.ts";
import { StateStore } from "../state/state_store.ts";
import { waitFor } from "../common/wait_for.ts";

/** Options of `smoke two-box`, one per flag. */
export interface TwoBoxOptions {
  /** `--remote-host`. */
  remoteHost: string;
  /** `--local-ip`. */
  localIp: string;
  /** `--remote-ip`. */
  remoteIp: string;
  /** `--remote-network auto|host|bridge`. */
  remoteNetwork: "auto" | "host" | "bridge";
  /** `--initial-primary auto|local|remote`. */
  initialPrimary: "auto" | "local" | "remote";
  /** `--remote-shell`: the command prefix that runs a command on the remote box. */
  remoteShell: readonly string[];
  /** `--redis-port`: test Redis port on both boxes. */
  redisPort: number;
  /** `--sentinel-port`: test Sentinel port on both boxes. */
  sentinelPort: number;
  /** `--dir`: local temp dir parent. */
  dir: string;
  /** `--timeout-ms` per step. */
  timeoutMs: number;
  /** Marker and message lines (stdout). */
  out: (line: string) => void;
  /** Progress lines (stderr). */
  progress: (line: string) => void;
  /** Aborts the smoke. */
  signal?: AbortSignal | undefined;
}

const MASTER = "mn-two-box";

/** A process on the remote box, known by its pid there. */
interface RemoteProcess {
  readonly child: Deno.ChildProcess;
  pid: number | undefined;
  /** A file it needs on the remote box (redis-sentinel's config), removed with it. */
  readonly file?: string | undefined;
}

/** Runs the smoke; throws naming the failed step. */
export async function runTwoBoxSmoke(o: TwoBoxOptions): Promise<void> {
  const remoteNetwork = o.remoteNetwork === "auto" ? "host" : o.remoteNetwork;
  const local = { host: o.localIp, port: o.redisPort };
  const remote = { host: o.remoteIp, port: o.redisPort };
  const localSentinel = { host: o.localIp, port: o.sentinelPort };
  const remoteSentinel = { host: o.remoteIp, port: o.sentinelPort };
  const remoteBind = remoteNetwork === "bridge" ? "0.0.0.0" : o.remoteIp;
  let step = "prepare";
  const run = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    step = name;
    o.signal?.throwIfAborted();
    o.progress(`step: ${name}`);
    return await fn();
  };
  await Deno.mkdir(o.dir, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: o.dir, prefix: "two-box-" });
  const locals: RedisProcess[] = [];
  const remotes: RemoteProcess[] = [];
  try {
    // 0: the remote shell itself, so a broken one is reported as such (with what it said), not
    // mistaken for an unreachable Redis later.
    await run("0. check the remote shell", () => checkRemoteShell(o.remoteShell));
    // 1 + 2: the local Redis first, so the remote box can try to reach it.
    const localRedis = await run(
      "1. start Redis on the local box",
      () =>
        RedisProcess.startServer({
          dir,
          host: o.localIp,
          port: o.redisPort,
          announceIp: o.localIp,
        }),
    );
    locals.push(localRedis);
    const reachable = await run(
      "2. check that the remote box reaches the local Redis",
      () => remoteReaches(o.remoteShell, local),
    );
    let primarySide: "local" | "remote";
    if (o.initialPrimary === "auto") {
      primarySide = reachable ? "local" : "remote";
      if (!reachable) {
        o.out(
          `Remote cannot reach local Redis at ${o.localIp}:${o.redisPort}; using remote as initial primary.`,
        );
        o.out(
          "warning: this fallback is a smoke-test convenience, not a production Sentinel topology; production " +
            "needs independently reachable Redis and Sentinel nodes with at least three sentinel voters",
        );
      }
    } else {
      primarySide = o.initialPrimary;
      if (primarySide === "local" && !reachable) {
        throw new RedisHaError(
          "CONNECTION",
          `--initial-primary local, but the remote box cannot reach ${formatEndpoint(local)}; ` +
            "use --initial-primary auto or remote, or open the port",
        );
      }
    }
    const primary = primarySide === "local" ? local : remote;
    const replica = primarySide === "local" ? remote : local;
    await run(
      `3. start ${primarySide} as the initial primary and the other side as a replica`,
      async () => {
        const remoteConfig = [
          `port ${o.redisPort}`,
          `bind ${remoteBind}`,
          "protected-mode no",
          'save ""',
          "appendonly no",
          `replica-announce-ip ${o.remoteIp}`,
          ...(primarySide === "local" ? [`replicaof ${o.localIp} ${o.redisPort}`] : []),
        ];
        remotes.push(
          await startRemote(o.remoteShell, "redis-server", remoteConfig, remote, o.timeoutMs),
        );
        if (primarySide === "remote") {
          await using conn = await RedisConnection.connect(local);
          await conn.send(["REPLICAOF", o.remoteIp, o.redisPort]);
        }
        // The sentinel next to the replica notices the failure first and leads the failover: it can
        // always reach the replica it promotes, even when the other side cannot reach this box.
        const downAfter = (side: "local" | "remote"): number => side === primarySide ? 3000 : 1000;
        const sentinelConfig = (announce: string, bind: string): string[] => [
          `port ${o.sentinelPort}`,
          `bind ${bind}`,
          "protected-mode no",
          `sentinel announce-ip ${announce}`,
          `sentinel monitor ${MASTER} ${primary.host} ${primary.port} 1`,
          `sentinel down-after-milliseconds ${MASTER} ${downAfter("remote")}`,
          `sentinel failover-timeout ${MASTER} 10000`,
        ];
        locals.push(
          await RedisProcess.startSentinel({
            dir,
            host: o.localIp,
            port: o.sentinelPort,
            monitor: { name: MASTER, primary, quorum: 1, downAfterMs: downAfter("local") },
            announceIp: o.localIp,
          }),
        );
        remotes.push(
          await startRemote(
            o.remoteShell,
            "redis-sentinel",
            sentinelConfig(o.remoteIp, remoteBind),
            remoteSentinel,
            o.timeoutMs,
          ),
        );
        await waitFor(async () => {
          await using conn = await RedisConnection.connect(replica, { connectTimeoutMs: 1000 });
          const link = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "").get(
            "master_link_status",
          );
          return link === "up"
            ? { done: true, value: undefined }
            : { done: false, observed: `replica link ${link}` };
        }, {
          what: "the replica to sync",
          timeoutMs: o.timeoutMs,
          intervalMs: 200,
          signal: o.signal,
        });
        await waitFor(async () => {
          await using conn = await RedisConnection.connect(localSentinel, {
            connectTimeoutMs: 1000,
          });
          const m = replyToMap(await conn.send(["SENTINEL", "MASTER", MASTER]));
          const slaves = replyToString(m.get("num-slaves") ?? null);
          const peers = replyToString(m.get("num-other-sentinels") ?? null);
          return slaves === "1" && peers === "1"
            ? { done: true, value: undefined }
            : { done: false, observed: `local sentinel sees ${slaves} replicas, ${peers} peers` };
        }, {
          what: "the sentinels to discover each other and the replica",
          timeoutMs: o.timeoutMs,
          intervalMs: 200,
          signal: o.signal,
        });
      },
    );

    const configOptions: ConfigOptions = {
      haMode: "sentinel",
      sentinels: [formatEndpoint(localSentinel), formatEndpoint(remoteSentinel)],
      sentinelMaster: MASTER,
      waitReplicas: 1, // the initial write must reach the replica that will be promoted
      waitTimeoutMs: 2000,
      reconnectAttempts: 40,
      reconnectBackoffMs: 100,
      reconnectMaxBackoffMs: 1000,
      namespace: `two_box_${crypto.randomUUID().slice(0, 8)}`,
    };
    const config = configFromOptions(configOptions);
    await using store = await run("4. write MirrorNeuron state through Sentinel mode", async () => {
      const s = await StateStore.connect(config);
      try {
        const job = await s.jobs.create("smoke-job", { phase: "before-failover" });
        await s.events.append(job.id, { id: "evt-before", type: "smoke.write" });
        await s.snapshots.save(job.id, "agent-1", 1, { step: 1 });
        return s;
      } catch (error) {
        await s.close();
        throw error;
      }
    });
    o.out(`two_box_initial_write_ok=${store.client.primary?.address}`);

    await run(
      `5. kill the initial primary Redis (${primarySide}, ${formatEndpoint(primary)})`,
      async () => {
        if (primarySide === "local") {
          localRedis.kill("SIGKILL");
          await localRedis.waitExit();
        } else {
          await killRemote(o.remoteShell, remotes[0]!);
        }
      },
    );
    await run("6. wait for Sentinel promotion", () =>
      waitFor(async () => {
        await using conn = await RedisConnection.connect(localSentinel, { connectTimeoutMs: 1000 });
        const addr = await conn.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
        const now = Array.isArray(addr)
          ? formatHostPort(replyToString(addr[0]), replyToString(addr[1]))
          : "none";
        return now === formatEndpoint(replica)
          ? { done: true, value: undefined }
          : { done: false, observed: `sentinel reports ${now}` };
      }, {
        what: `promotion of ${formatEndpoint(replica)}`,
        timeoutMs: o.timeoutMs,
        intervalMs: 200,
        signal: o.signal,
      }));
    await run("7. write and read MirrorNeuron state through the promoted replica", async () => {
      // The client that wrote before the failover reads through the promoted replica…
      const job = await store.jobs.get("smoke-job");
      if (
        job === null || (job.data as { phase?: string | undefined }).phase !== "before-failover"
      ) {
        throw new Error(`read ${JSON.stringify(job)}`);
      }
      if (store.client.primary?.address !== formatEndpoint(replica)) {
        throw new Error(
          `client is on ${store.client.primary?.address}, expected ${formatEndpoint(replica)}`,
        );
      }
      // …and writes go on with WAIT off: with one box down no replica is left to acknowledge.
      await using after = await StateStore.connect(
        configFromOptions({ ...configOptions, waitReplicas: 0 }),
      );
      const updated = await after.jobs.update("smoke-job", {
        expectedVersion: job.version,
        status: "succeeded",
      });
      await after.events.append("smoke-job", { id: "evt-after", type: "smoke.write" });
      const events = (await store.events.read("smoke-job")).map((e) => e.id);
      if (updated.status !== "succeeded" || events.join(",") !== "evt-before,evt-after") {
        throw new Error(`read back status ${updated.status}, events ${events.join(",")}`);
      }
    });
    o.out("two_box_post_failover_write_read_ok");
  } catch (error) {
    throw new RedisHaError(
      "CONNECTION",
      `Two-box smoke failed at step "${step}": ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  } finally {
    for (const r of remotes) await killRemote(o.remoteShell, r).catch(() => {});
    await Promise.all(locals.map((p) => p.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `<remote shell> args…` and returns its output. */
async function remoteRun(
  shell: readonly string[],
  args: string[],
  timeoutMs = 10_000,
): Promise<Deno.CommandOutput> {
  const [command, ...prefix] = shell;
  const child = new Deno.Command(command!, {
    args: [...prefix, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a trivial command through the remote shell; throws naming the shell,
 * its exit code and what it printed on stderr when it does not work, or
 * when the remote box lacks the Redis binaries.
 */
async function checkRemoteShell(shell: readonly string[]): Promise<void> {
  const shown = quoteValue(shell.join(" "));
  let out: Deno.CommandOutput;
  try {
    out = await remoteRun(shell, [
      "sh",
      "-c",
      "command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null && " +
      "command -v redis-cli >/dev/null && echo remote-shell-ok",
    ]);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RedisHaError(
        "CONNECTION",
        `the remote shell ${shown} cannot be started: ${shell[0]} is not installed here; ` +
          "check --remote-shell",
      );
    }
    throw error;
  }
  const said = new TextDecoder().decode(out.stdout).trim();
  if (out.code === 0 && said.endsWith("remote-shell-ok")) return;
  const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join(" | ");
  if (out.code === 0 || out.code === 1) {
    throw new RedisHaError(
      "CONNECTION",
      `the remote shell ${shown} works but the remote box lacks redis-server, redis-sentinel or ` +
        "redis-cli; install them there (apt-get install redis-server redis-sentinel redis-tools)",
    );
  }
  throw new RedisHaError(
    "CONNECTION",
    `the remote shell ${shown} failed (exit ${out.code})${stderr === "" ? "" : `: ${stderr}`}; ` +
      "check --remote-shell (default: ssh <remote-host>, which needs key-based login)",
  );
}

async function remoteReaches(shell: readonly string[], target: Endpoint): Promise<boolean> {
  const out = await remoteRun(shell, [
    "timeout",
    "3",
    "redis-cli",
    "-h",
    target.host,
    "-p",
    String(target.port),
    "PING",
  ]);
  return new TextDecoder().decode(out.stdout).trim() === "PONG";
}

/** Starts a daemon on the remote box with its config on stdin (never on a command line). */
async function startRemote(
  shell: readonly string[],
  binary: "redis-server" | "redis-sentinel",
  config: string[],
  endpoint: Endpoint,
  timeoutMs: number,
): Promise<RemoteProcess> {
  const [command, ...prefix] = shell;
  // redis-sentinel needs a writable config file: one under /tmp on the remote box, removed with it.
  const file = binary === "redis-sentinel"
    ? `/tmp/mn-sentinel-${crypto.randomUUID().slice(0, 12)}.conf`
    : undefined;
  const args = file === undefined ? [...prefix, "redis-server", "-"] : [
    ...prefix,
    "sh",
    "-c",
    `umask 077 && cat > ${file} && exec redis-sentinel ${file}`,
  ];
  const child = new Deno.Command(command!, { args, stdin: "piped", stdout: "null", stderr: "null" })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(config.join("\n") + "\n"));
  await writer.close();
  const proc: RemoteProcess = { child, pid: undefined, file };
  await waitFor(async () => {
    await using conn = await RedisConnection.connect(endpoint, { connectTimeoutMs: 1000 });
    const info = parseInfo(replyToString(await conn.send(["INFO", "server"])) ?? "");
    proc.pid = Number(info.get("process_id"));
    return { done: true, value: undefined };
  }, {
    what: `${binary} on the remote box at ${formatEndpoint(endpoint)}`,
    timeoutMs,
    intervalMs: 100,
  }).catch(async (error) => {
    await killRemote(shell, proc).catch(() => {});
    throw error;
  });
  return proc;
}

async function killRemote(shell: readonly string[], proc: RemoteProcess): Promise<void> {
  if (proc.pid !== undefined) await remoteRun(shell, ["kill", "-9", String(proc.pid)]);
  if (proc.file !== undefined) await remoteRun(shell, ["rm", "-f", proc.file]).catch(() => {});
  try {
    proc.child.kill("SIGKILL");
  } catch {
    // The remote-shell process already exited.
  }
  await proc.child.status;
}

/** Splits a `--remote-shell` value into argv (whitespace-separated; no quoting). */
export function parseRemoteShell(value: string | undefined, remoteHost: string): string[] {
  const shell = (value ?? `ssh ${remoteHost}`).trim().split(/\s+/).filter((p) => p !== "");
  if (shell.length === 0) {
    throw new UsageError('--remote-shell is empty; expected e.g. "ssh 192.168.4.173"');
  }
  return shell;
}
