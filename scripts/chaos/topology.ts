/**
 * Three "boxes" for the fault suite: each a network namespace with its own
 * `redis-server` and `redis-sentinel`, built with the project's own `join`,
 * all on one bridge; the clients run in the root namespace and reach the
 * boxes over the bridge. Names are unique per run, and everything (daemons,
 * namespaces, links, firewall rules) is removed on close.
 */

import { RedisConnection } from "../../lib/protocol/connection.ts";
import { type Endpoint, formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { replyToMap, replyToString } from "../../lib/protocol/resp.ts";
import { waitFor } from "../../lib/common/wait_for.ts";

/** Redis and Sentinel ports inside every box (each box has its own address). */
export const REDIS_PORT = 6379;
/** Sentinel port inside every box. */
export const SENTINEL_PORT = 26379;

/** One box. */
export interface Box {
  /** 1-based index. */
  readonly index: number;
  /** Network namespace name. */
  readonly ns: string;
  /** The box's address on the bridge. */
  readonly ip: string;
  /** Data dir of its daemons (config, logs, pidfiles). */
  readonly dataDir: string;
  /** Its Redis. */
  readonly redis: Endpoint;
  /** Its Sentinel. */
  readonly sentinel: Endpoint;
}

/** What a run's nemeses need of the boxes beyond the default. */
export interface TopologyOptions {
  /**
   * Every connection that arrives at a box's Redis or Sentinel goes through
   * a delay proxy in the box (see `delay_proxy.ts`); 0 ms until
   * {@link Topology.setLatency} says otherwise.
   */
  delayProxies?: boolean | undefined;
  /** Each box's data dir is a tmpfs of this many MiB (its disk can be filled). */
  tmpfsMb?: number | undefined;
}

/** The proxy ports in a box: where connections for Redis and Sentinel are sent instead. */
const PROXY_PORT = { redis: 16379, sentinel: 36379 } as const;

/** What a command run printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without inheriting our stdio (daemons must not hold our pipes). */
export async function run(command: string, args: readonly string[]): Promise<Run> {
  const out = await new Deno.Command(command, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await run("ip", args);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.trim()}`);
}

/** The three boxes, the bridge and the client address. */
export class Topology implements AsyncDisposable {
  readonly id: string;
  readonly boxes: Box[];
  readonly masterName: string;
  readonly bridge: string;
  readonly clientIp: string;
  readonly dir: string;
  readonly #options: TopologyOptions;
  /** Each box's delay proxy (its stdin takes `delay MIN MAX`). */
  readonly #proxies: Deno.ChildProcess[] = [];
  /** Rules added in the root namespace (on the bridge only), removed by {@link Topology.heal}. */
  #rootRules: string[][] = [];
  #mounted: string[] = [];
  #closed = false;

  private constructor(id: string, subnet: string, dir: string, options: TopologyOptions) {
    this.id = id;
    this.dir = dir;
    this.#options = options;
    this.bridge = `mnb${id}`;
    this.clientIp = `${subnet}.254`;
    this.masterName = `chaos-${id}`;
    this.boxes = [1, 2, 3].map((index) => ({
      index,
      ns: `mnc${id}${index}`,
      ip: `${subnet}.${index}`,
      dataDir: `${dir}/box${index}`,
      redis: { host: `${subnet}.${index}`, port: REDIS_PORT },
      sentinel: { host: `${subnet}.${index}`, port: SENTINEL_PORT },
    }));
  }

  /** `--sentinels` for every box. */
  get sentinels(): string {
    return this.boxes.map((b) => formatEndpoint(b.sentinel)).join(",");
  }

  /** Builds the network and joins all three boxes (the first bootstraps). */
  static async create(
    baseDir: string,
    report: (line: string) => void,
    options: TopologyOptions = {},
  ): Promise<Topology> {
    const id = crypto.randomUUID().replaceAll("-", "").slice(0, 6);
    const subnet = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
    await Deno.mkdir(baseDir, { recursive: true });
    const dir = await Deno.realPath(
      await Deno.makeTempDir({ dir: baseDir, prefix: `chaos-${id}-` }),
    );
    const topology = new Topology(id, subnet, dir, options);
    try {
      await topology.#network();
      if (options.tmpfsMb !== undefined) await topology.#tmpfs(options.tmpfsMb);
      if (options.delayProxies === true) await topology.#startProxies();
      // Box 1 bootstraps; the others join at once (the documented join works in any order).
      const [first, ...rest] = topology.boxes;
      report(`chaos: joining box ${first!.index} (${first!.ip})`);
      await topology.join(first!, true);
      report(`chaos: joining ${rest.map((b) => `box ${b.index} (${b.ip})`).join(", ")} at once`);
      await Promise.all(rest.map((box) => topology.join(box)));
      await topology.waitDiscovered();
      return topology;
    } catch (error) {
      await topology.close();
      throw error;
    }
  }

  async #network(): Promise<void> {
    await ip(["link", "add", this.bridge, "type", "bridge"]);
    await ip(["addr", "add", `${this.clientIp}/24`, "dev", this.bridge]);
    await ip(["link", "set", this.bridge, "up"]);
    for (const box of this.boxes) {
      const host = `mnv${this.id}${box.index}`;
      const peer = `mnp${this.id}${box.index}`;
      await ip(["netns", "add", box.ns]);
      await ip(["link", "add", host, "type", "veth", "peer", "name", peer]);
      await ip(["link", "set", host, "master", this.bridge]);
      await ip(["link", "set", host, "up"]);
      await ip(["link", "set", peer, "netns", box.ns]);
      await ip(["-n", box.ns, "addr", "add", `${box.ip}/24`, "dev", peer]);
      await ip(["-n", box.ns, "link", "set", peer, "up"]);
      await ip(["-n", box.ns, "link", "set", "lo", "up"]);
      await Deno.mkdir(box.dataDir, { recursive: true, mode: 0o700 });
    }
  }

  /** Mounts a tmpfs of `mb` MiB on every box's data dir (before anything runs there). */
  async #tmpfs(mb: number): Promise<void> {
    for (const box of this.boxes) {
      const r = await run("mount", [
        "-t",
        "tmpfs",
        "-o",
        `size=${mb}m,mode=0700`,
        "tmpfs",
        box.dataDir,
      ]);
      if (r.code !== 0) throw new Error(`mount tmpfs on box ${box.index}: ${r.stderr.trim()}`);
      this.#mounted.push(box.dataDir);
    }
  }

  /**
   * Starts a delay proxy in every box and sends the connections that arrive
   * for its Redis and Sentinel through it (`DNAT` in `PREROUTING`: traffic
   * from the other boxes and from the clients; the box's own is direct).
   */
  async #startProxies(): Promise<void> {
    for (const box of this.boxes) {
      const routes = (["redis", "sentinel"] as const).map((kind) => ({
        listen: { hostname: box.ip, port: PROXY_PORT[kind] },
        to: { hostname: box.ip, port: kind === "redis" ? REDIS_PORT : SENTINEL_PORT },
      }));
      const proxy = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          box.ns,
          "deno",
          "run",
          "-P=chaos",
          "--quiet",
          "--no-prompt",
          "scripts/chaos/delay_proxy.ts",
          JSON.stringify(routes),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      }).spawn();
      this.#proxies.push(proxy);
      const lines = proxy.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = await lines.read();
      if (!first.value?.includes("ready")) {
        throw new Error(`delay proxy of box ${box.index} did not start`);
      }
      // Its later lines ("delay …") are read and dropped, so its pipe never fills.
      void (async () => {
        while (!(await lines.read().catch(() => ({ done: true }))).done) { /* drop */ }
      })();
      for (const kind of ["redis", "sentinel"] as const) {
        const port = kind === "redis" ? REDIS_PORT : SENTINEL_PORT;
        const r = await this.exec(box, [
          "iptables",
          "-t",
          "nat",
          "-A",
          "PREROUTING",
          "-p",
          "tcp",
          "-d",
          box.ip,
          "--dport",
          String(port),
          "-j",
          "DNAT",
          "--to-destination",
          `${box.ip}:${PROXY_PORT[kind]}`,
        ]);
        if (r.code !== 0) throw new Error(`iptables nat in box ${box.index}: ${r.stderr}`);
      }
    }
  }

  /** Sets every box's proxy latency (needs `delayProxies`): each chunk waits `min`–`max` ms. */
  async setLatency(min: number, max: number): Promise<void> {
    if (this.#proxies.length === 0) {
      throw new Error("setLatency needs a topology with delayProxies");
    }
    const line = new TextEncoder().encode(`delay ${min} ${max}\n`);
    for (const proxy of this.#proxies) {
      const writer = proxy.stdin.getWriter();
      await writer.write(line);
      writer.releaseLock();
    }
  }

  /**
   * Drops each packet with probability `p` on every link: as it arrives at
   * a box (from the clients and the other boxes) and as it arrives at the
   * clients from the boxes (the root namespace, on this run's bridge only).
   */
  async lossy(p: number): Promise<void> {
    const rule = ["-m", "statistic", "--mode", "random", "--probability", String(p), "-j", "DROP"];
    for (const box of this.boxes) {
      const r = await this.exec(box, ["iptables", "-A", "INPUT", ...rule]);
      if (r.code !== 0) throw new Error(`iptables in box ${box.index}: ${r.stderr}`);
    }
    await this.#rootRule(["INPUT", "-i", this.bridge, ...rule]);
  }

  /** Cuts the clients off from every sentinel (their data path stays). */
  async cutSentinelsFromClients(): Promise<void> {
    for (const box of this.boxes) {
      for (const port of [SENTINEL_PORT, PROXY_PORT.sentinel]) {
        const r = await this.exec(box, [
          "iptables",
          "-A",
          "INPUT",
          "-s",
          this.clientIp,
          "-p",
          "tcp",
          "--dport",
          String(port),
          "-j",
          "DROP",
        ]);
        if (r.code !== 0) throw new Error(`iptables in box ${box.index}: ${r.stderr}`);
      }
    }
  }

  async #rootRule(rule: string[]): Promise<void> {
    const r = await run("iptables", ["-A", ...rule]);
    if (r.code !== 0) throw new Error(`iptables (root namespace): ${r.stderr}`);
    this.#rootRules.push(rule);
  }

  /**
   * The primary box `from`'s sentinel names, asked from inside that box
   * (works while the clients are cut off from the sentinels).
   */
  async primaryNamedFrom(from: Box): Promise<string | undefined> {
    const r = await this.exec(from, [
      "redis-cli",
      "-h",
      from.ip,
      "-p",
      String(SENTINEL_PORT),
      "SENTINEL",
      "get-master-addr-by-name",
      this.masterName,
    ]);
    const [host, port] = r.stdout.trim().split("\n");
    return r.code === 0 && host && port ? `${host}:${port}` : undefined;
  }

  /** The bytes left on a box's data dir (a tmpfs: see `tmpfsMb`). */
  async freeBytes(box: Box): Promise<number> {
    const r = await run("df", ["--output=avail", "-B1", box.dataDir]);
    const free = Number(r.stdout.trim().split("\n").at(-1));
    if (r.code !== 0 || !Number.isFinite(free)) throw new Error(`df ${box.dataDir}: ${r.stderr}`);
    return free;
  }

  /** Runs the project's `join` inside the box's namespace. */
  async join(box: Box, bootstrap = false): Promise<void> {
    const r = await this.cli(box, [
      "join",
      ...this.#memberArgs(box),
      "--quorum",
      "2",
      "--down-after-ms",
      "1000",
      "--failover-timeout-ms",
      "5000",
      "--data-dir",
      box.dataDir,
      ...(bootstrap ? ["--bootstrap"] : []),
    ]);
    if (r.code !== 0) throw new Error(`join of box ${box.index} failed: ${r.stderr.trim()}`);
  }

  /** Runs the project's `leave` inside the box's namespace. */
  async leave(box: Box): Promise<Run> {
    return await this.cli(box, ["leave", ...this.#memberArgs(box)]);
  }

  /** The flags `join` and `leave` share for a box. */
  #memberArgs(box: Box): string[] {
    return [
      "--self-host",
      box.ip,
      "--redis-port",
      String(REDIS_PORT),
      "--sentinel-port",
      String(SENTINEL_PORT),
      "--sentinels",
      this.sentinels,
      "--master-name",
      this.masterName,
    ];
  }

  /** Runs the CLI from source inside a box. */
  cli(box: Box, args: readonly string[]): Promise<Run> {
    return run("ip", [
      "netns",
      "exec",
      box.ns,
      "deno",
      "run",
      "-P=cli",
      "--quiet",
      "--no-prompt",
      "main.ts",
      ...args,
    ]);
  }

  /** Runs a command inside a box. */
  exec(box: Box, args: readonly string[]): Promise<Run> {
    return run("ip", ["netns", "exec", box.ns, ...args]);
  }

  /** The pid of a box's daemon, from its pidfile. */
  async pid(box: Box, kind: "redis" | "sentinel"): Promise<number | undefined> {
    const port = kind === "redis" ? REDIS_PORT : SENTINEL_PORT;
    const text = await Deno.readTextFile(`${box.dataDir}/${kind}-${port}.pid`).catch(() => "");
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** Sends a signal to a box's daemon. */
  async signal(
    box: Box,
    kind: "redis" | "sentinel",
    signal: "KILL" | "STOP" | "CONT",
  ): Promise<void> {
    const pid = await this.pid(box, kind);
    if (pid !== undefined) await run("kill", [`-${signal}`, String(pid)]);
  }

  /** Restarts a box's Redis from its config (inside its namespace). */
  async restartRedis(box: Box): Promise<void> {
    const r = await this.exec(box, ["redis-server", `${box.dataDir}/redis-${REDIS_PORT}.conf`]);
    if (r.code !== 0) throw new Error(`restart of box ${box.index} failed: ${r.stderr}`);
  }

  /** Restarts a box's Sentinel from its config. */
  async restartSentinel(box: Box): Promise<void> {
    const r = await this.exec(box, [
      "redis-sentinel",
      `${box.dataDir}/sentinel-${SENTINEL_PORT}.conf`,
    ]);
    if (r.code !== 0) throw new Error(`sentinel restart of box ${box.index} failed: ${r.stderr}`);
  }

  /**
   * Cuts `box` off: from everyone (`scope: "all"`, clients included) or only
   * from the other boxes (`"peers"`: clients still reach it).
   */
  async partition(box: Box, scope: "all" | "peers"): Promise<void> {
    const cut = [
      ...this.boxes.filter((b) => b !== box).map((b) => b.ip),
      ...(scope === "all" ? [this.clientIp] : []),
    ];
    for (const peer of cut) {
      for (const [chain, flag] of [["INPUT", "-s"], ["OUTPUT", "-d"]] as const) {
        const r = await this.exec(box, ["iptables", "-A", chain, flag, peer, "-j", "DROP"]);
        if (r.code !== 0) throw new Error(`iptables in box ${box.index}: ${r.stderr}`);
      }
    }
  }

  /** Removes every partition, loss and cut rule (the proxies' redirections stay). */
  async heal(): Promise<void> {
    for (const box of this.boxes) {
      await this.exec(box, ["iptables", "-F", "INPUT"]);
      await this.exec(box, ["iptables", "-F", "OUTPUT"]);
    }
    for (const rule of this.#rootRules.splice(0)) await run("iptables", ["-D", ...rule]);
  }

  /** The primary every reachable sentinel agrees on (and `ROLE` confirms), after failovers settle. */
  async waitAgreement(timeoutMs = 60_000, excluding?: Endpoint): Promise<Box> {
    return await waitFor(async () => {
      const seen = new Map<string, number>();
      let answered = 0;
      for (const box of this.boxes) {
        try {
          await using conn = await RedisConnection.connect(box.sentinel, { connectTimeoutMs: 300 });
          const m = replyToMap(
            await conn.send(["SENTINEL", "MASTER", this.masterName], { timeoutMs: 300 }),
          );
          const at = `${replyToString(m.get("ip") ?? null)}:${
            replyToString(m.get("port") ?? null)
          }`;
          const flags = replyToString(m.get("flags") ?? null) ?? "";
          answered++;
          if (flags.includes("failover_in_progress")) continue;
          seen.set(at, (seen.get(at) ?? 0) + 1);
        } catch {
          // A stopped or partitioned sentinel does not vote here.
        }
      }
      const [top] = [...seen.entries()].sort((a, b) => b[1] - a[1]);
      if (top === undefined || top[1] < Math.max(2, answered) || seen.size > 1) {
        return { done: false, observed: JSON.stringify([...seen]) };
      }
      const box = this.boxes.find((b) => formatEndpoint(b.redis) === top[0]);
      if (box === undefined || (excluding !== undefined && top[0] === formatEndpoint(excluding))) {
        return { done: false, observed: `sentinels name ${top[0]}` };
      }
      await using conn = await RedisConnection.connect(box.redis, { connectTimeoutMs: 300 });
      const role = await conn.send(["ROLE"], { timeoutMs: 300 });
      return Array.isArray(role) && replyToString(role[0]) === "master"
        ? { done: true, value: box }
        : { done: false, observed: `${top[0]} is not master yet` };
    }, { what: "the sentinels to agree on one primary", timeoutMs, intervalMs: 100 });
  }

  /** Waits until every sentinel knows both other sentinels and both replicas, healthy. */
  async waitDiscovered(timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => {
      for (const box of this.boxes) {
        await using conn = await RedisConnection.connect(box.sentinel, { connectTimeoutMs: 500 });
        const m = replyToMap(await conn.send(["SENTINEL", "MASTER", this.masterName]));
        const seen = `${replyToString(m.get("num-slaves") ?? null)}/${
          replyToString(m.get("num-other-sentinels") ?? null)
        }`;
        if (seen !== "2/2") return { done: false, observed: `box ${box.index} sentinel ${seen}` };
        // And sees both replicas healthy (what replica reads are routed by).
        const replicas = await conn.send(["SENTINEL", "REPLICAS", this.masterName]);
        for (const entry of Array.isArray(replicas) ? replicas : []) {
          const r = replyToMap(entry);
          const flags = replyToString(r.get("flags") ?? null);
          const link = replyToString(r.get("master-link-status") ?? null);
          if (flags !== "slave" || link !== "ok") {
            return {
              done: false,
              observed: `box ${box.index} sentinel: replica ${
                replyToString(r.get("name") ?? null)
              } ${flags}, link ${link}`,
            };
          }
        }
      }
      return { done: true, value: undefined };
    }, { what: "every sentinel to know the whole cluster", timeoutMs, intervalMs: 200 });
  }

  /** Stops every daemon (even stopped ones), deletes the namespaces, the bridge and the data. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const box of this.boxes) {
      for (const kind of ["redis", "sentinel"] as const) {
        const pid = await this.pid(box, kind);
        if (pid === undefined) continue;
        await run("kill", ["-CONT", String(pid)]);
        await run("kill", ["-KILL", String(pid)]);
      }
    }
    for (const proxy of this.#proxies) {
      await proxy.stdin.close().catch(() => {});
      try {
        proxy.kill("SIGKILL");
      } catch { /* exited */ }
      await proxy.status;
    }
    for (const rule of this.#rootRules.splice(0)) await run("iptables", ["-D", ...rule]);
    for (const box of this.boxes) await ip(["netns", "del", box.ns]).catch(() => {});
    await ip(["link", "del", this.bridge]).catch(() => {});
    for (const dir of this.#mounted) await run("umount", ["-l", dir]);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@link Topology.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
