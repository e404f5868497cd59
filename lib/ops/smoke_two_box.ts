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

/** What every step of one run works with. */
interface TwoBoxRun {
  readonly o: TwoBoxOptions;
  /** The local temp dir. */
  readonly dir: string;
  /** Local processes, stopped at the end. */
  readonly locals: RedisProcess[];
  /** Remote processes, killed at the end. */
  readonly remotes: RemoteProcess[];
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly localSentinel: Endpoint;
  readonly remoteSentinel: Endpoint;
}

/** Runs the smoke; throws naming the failed step. */
export async function runTwoBoxSmoke(o: TwoBoxOptions): Promise<void> {
  let step = "prepare";
  const run = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    step = name;
    o.signal?.throwIfAborted();
    o.progress(`step: ${name}`);
    return await fn();
  };
  await Deno.mkdir(o.dir, { recursive: true });
  const r: TwoBoxRun = {
    o,
    dir: await Deno.makeTempDir({ dir: o.dir, prefix: "two-box-" }),
    locals: [],
    remotes: [],
    local: { host: o.localIp, port: o.redisPort },
    remote: { host: o.remoteIp, port: o.redisPort },
    localSentinel: { host: o.localIp, port: o.sentinelPort },
    remoteSentinel: { host: o.remoteIp, port: o.sentinelPort },
  };
  try {
    // 0: the remote shell itself, so a broken one is reported as such (with what it said), not
    // mistaken for an unreachable Redis later.
    await run("0. check the remote shell", () => checkRemoteShell(o.remoteShell));
    // 1 + 2: the local Redis first, so the remote box can try to reach it.
    const localRedis = await run("1. start Redis on the local box", async () => {
      const started = await RedisProcess.startServer({
        dir: r.dir,
        host: o.localIp,
        port: o.redisPort,
        announceIp: o.localIp,
      });
      r.locals.push(started);
      return started;
    });
    const reachable = await run(
      "2. check that the remote box reaches the local Redis",
      () => remoteReaches(o.remoteShell, r.local),
    );
    const primarySide = choosePrimarySide(r, reachable);
    const [primary, replica] = primarySide === "local" ? [r.local, r.remote] : [r.remote, r.local];
    await run(
      `3. start ${primarySide} as the initial primary and the other side as a replica`,
      () => startPair(r, primarySide, primary, replica),
    );
    const configOptions = smokeConfig(r);
    await using store = await run(
      "4. write MirrorNeuron state through Sentinel mode",
      () => writeBefore(configOptions),
    );
    o.out(`two_box_initial_write_ok=${store.client.primary?.address}`);
    await run(
      `5. kill the initial primary Redis (${primarySide}, ${formatEndpoint(primary)})`,
      () => killPrimary(r, primarySide, localRedis),
    );
    await run("6. wait for Sentinel promotion", () => waitPromotion(r, replica));
    await run(
      "7. write and read MirrorNeuron state through the promoted replica",
      () => writeReadAfter(store, configOptions, replica),
    );
    o.out("two_box_post_failover_write_read_ok");
  } catch (error) {
    throw new RedisHaError(
      "CONNECTION",
      `Two-box smoke failed at step "${step}": ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  } finally {
    for (const remote of r.remotes) await killRemote(o.remoteShell, remote).catch(() => {});
    await Promise.all(r.locals.map((p) => p.stop()));
    await Deno.remove(r.dir, { recursive: true }).catch(() => {});
  }
}

/** Step 2's outcome: which side starts as the primary (the documented fallback included). */
function choosePrimarySide(r: TwoBoxRun, reachable: boolean): "local" | "remote" {
  const o = r.o;
  if (o.initialPrimary === "auto") {
    if (!reachable) {
      o.out(
        `Remote cannot reach local Redis at ${o.localIp}:${o.redisPort}; using remote as initial primary.`,
      );
      o.out(
        "warning: this fallback is a smoke-test convenience, not a production Sentinel topology; production " +
          "needs independently reachable Redis and Sentinel nodes with at least three sentinel voters",
      );
    }
    return reachable ? "local" : "remote";
  }
  if (o.initialPrimary === "local" && !reachable) {
    throw new RedisHaError(
      "CONNECTION",
      `--initial-primary local, but the remote box cannot reach ${formatEndpoint(r.local)}; ` +
        "use --initial-primary auto or remote, or open the port",
    );
  }
  return o.initialPrimary;
}

/**
 * Step 3: the remote Redis (a replica of the local one, or the primary the
 * local one then follows) and a sentinel on each side, until the replica is
 * in sync and the sentinels know each other and the replica.
 */
async function startPair(
  r: TwoBoxRun,
  primarySide: "local" | "remote",
  primary: Endpoint,
  replica: Endpoint,
): Promise<void> {
  const o = r.o;
  const remoteBind = (o.remoteNetwork === "bridge") ? "0.0.0.0" : o.remoteIp;
  const remoteConfig = [
    `port ${o.redisPort}`,
    `bind ${remoteBind}`,
    "protected-mode no",
    'save ""',
    "appendonly no",
    `replica-announce-ip ${o.remoteIp}`,
    ...(primarySide === "local" ? [`replicaof ${o.localIp} ${o.redisPort}`] : []),
  ];
  r.remotes.push(
    await startRemote(o.remoteShell, "redis-server", remoteConfig, r.remote, o.timeoutMs),
  );
  if (primarySide === "remote") {
    await using conn = await RedisConnection.connect(r.local);
    await conn.send(["REPLICAOF", o.remoteIp, o.redisPort]);
  }
  // The sentinel next to the replica notices the failure first and leads the failover: it can
  // always reach the replica it promotes, even when the other side cannot reach this box.
  const downAfter = (side: "local" | "remote"): number => side === primarySide ? 3000 : 1000;
  r.locals.push(
    await RedisProcess.startSentinel({
      dir: r.dir,
      host: o.localIp,
      port: o.sentinelPort,
      monitor: { name: MASTER, primary, quorum: 1, downAfterMs: downAfter("local") },
      announceIp: o.localIp,
    }),
  );
  const remoteSentinelConfig = [
    `port ${o.sentinelPort}`,
    `bind ${remoteBind}`,
    "protected-mode no",
    `sentinel announce-ip ${o.remoteIp}`,
    `sentinel monitor ${MASTER} ${primary.host} ${primary.port} 1`,
    `sentinel down-after-milliseconds ${MASTER} ${downAfter("remote")}`,
    `sentinel failover-timeout ${MASTER} 10000`,
  ];
  r.remotes.push(
    await startRemote(
      o.remoteShell,
      "redis-sentinel",
      remoteSentinelConfig,
      r.remoteSentinel,
      o.timeoutMs,
    ),
  );
  await waitPairReady(r, replica);
}

/** The replica in sync; the local sentinel sees the replica and the other sentinel. */
async function waitPairReady(r: TwoBoxRun, replica: Endpoint): Promise<void> {
  const waiting = { timeoutMs: r.o.timeoutMs, intervalMs: 200, signal: r.o.signal };
  await waitFor(async () => {
    await using conn = await RedisConnection.connect(replica, { connectTimeoutMs: 1000 });
    const link = parseInfo(replyToString(await conn.send(["INFO", "replication"])) ?? "").get(
      "master_link_status",
    );
    return link === "up"
      ? { done: true, value: undefined }
      : { done: false, observed: `replica link ${link}` };
  }, { ...waiting, what: "the replica to sync" });
  await waitFor(async () => {
    await using conn = await RedisConnection.connect(r.localSentinel, { connectTimeoutMs: 1000 });
    const m = replyToMap(await conn.send(["SENTINEL", "MASTER", MASTER]));
    const slaves = replyToString(m.get("num-slaves") ?? null);
    const peers = replyToString(m.get("num-other-sentinels") ?? null);
    return slaves === "1" && peers === "1"
      ? { done: true, value: undefined }
      : { done: false, observed: `local sentinel sees ${slaves} replicas, ${peers} peers` };
  }, { ...waiting, what: "the sentinels to discover each other and the replica" });
}

/** The client settings of the smoke's writes: sentinel mode through both sentinels, WAIT 1. */
function smokeConfig(r: TwoBoxRun): ConfigOptions {
  return {
    haMode: "sentinel",
    sentinels: [formatEndpoint(r.localSentinel), formatEndpoint(r.remoteSentinel)],
    sentinelMaster: MASTER,
    waitReplicas: 1, // the initial write must reach the replica that will be promoted
    waitTimeoutMs: 2000,
    reconnectAttempts: 40,
    reconnectBackoffMs: 100,
    reconnectMaxBackoffMs: 1000,
    namespace: `two_box_${crypto.randomUUID().slice(0, 8)}`,
  };
}

/** Step 4: a job, an event and a snapshot through Sentinel mode; the store stays open. */
async function writeBefore(configOptions: ConfigOptions): Promise<StateStore> {
  const store = await StateStore.connect(configFromOptions(configOptions));
  try {
    const job = await store.jobs.create("smoke-job", { phase: "before-failover" });
    await store.events.append(job.id, { id: "evt-before", type: "smoke.write" });
    await store.snapshots.save(job.id, "agent-1", 1, { step: 1 });
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** Step 5: kill -9 the initial primary, on whichever side it runs. */
async function killPrimary(
  r: TwoBoxRun,
  primarySide: "local" | "remote",
  localRedis: RedisProcess,
): Promise<void> {
  if (primarySide === "local") {
    localRedis.kill("SIGKILL");
    await localRedis.waitExit();
  } else {
    await killRemote(r.o.remoteShell, r.remotes[0]!);
  }
}

/** Step 6: the local sentinel names the replica as the primary. */
function waitPromotion(r: TwoBoxRun, replica: Endpoint): Promise<void> {
  return waitFor(async () => {
    await using conn = await RedisConnection.connect(r.localSentinel, { connectTimeoutMs: 1000 });
    const addr = await conn.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
    const now = Array.isArray(addr)
      ? formatHostPort(replyToString(addr[0]), replyToString(addr[1]))
      : "none";
    return now === formatEndpoint(replica)
      ? { done: true, value: undefined }
      : { done: false, observed: `sentinel reports ${now}` };
  }, {
    what: `promotion of ${formatEndpoint(replica)}`,
    timeoutMs: r.o.timeoutMs,
    intervalMs: 200,
    signal: r.o.signal,
  });
}

/** Step 7: the client that wrote before reads through the promoted replica, and writes go on. */
async function writeReadAfter(
  store: StateStore,
  configOptions: ConfigOptions,
  replica: Endpoint,
): Promise<void> {
  const job = await store.jobs.get("smoke-job");
  if (job === null || (job.data as { phase?: string | undefined }).phase !== "before-failover") {
    throw new Error(`read ${JSON.stringify(job)}`);
  }
  if (store.client.primary?.address !== formatEndpoint(replica)) {
    throw new Error(
      `client is on ${store.client.primary?.address}, expected ${formatEndpoint(replica)}`,
    );
  }
  // Writes go on with WAIT off: with one box down no replica is left to acknowledge.
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
