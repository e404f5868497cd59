/**
 * Two "boxes" as network namespaces joined by a veth pair, for two-box tests.
 * Needs root and iproute2. Deleting the namespaces on dispose removes the
 * veth pair and every firewall rule inside them.
 */

import { type ProcessRun, runProcess } from "./process.ts";

/** Two namespaces with an address each on one /24. */
export class TwoBoxNet implements AsyncDisposable {
  readonly local: { ns: string; ip: string };
  readonly remote: { ns: string; ip: string };

  private constructor(local: { ns: string; ip: string }, remote: { ns: string; ip: string }) {
    this.local = local;
    this.remote = remote;
  }

  /** True when this process may create namespaces (root with `ip`). */
  static async available(): Promise<boolean> {
    try {
      const out = await new Deno.Command("ip", {
        args: ["netns", "list"],
        stdout: "null",
        stderr: "null",
      }).output();
      return out.success;
    } catch {
      return false;
    }
  }

  /**
   * Creates the namespaces, the veth pair and the addresses: IPv4 on a /24,
   * or with `ipv6` unique-local IPv6 on a /64 (no duplicate address detection
   * delay).
   */
  static async create(options: { ipv6?: boolean | undefined } = {}): Promise<TwoBoxNet> {
    const id = crypto.randomUUID().slice(0, 6);
    const subnet = options.ipv6 === true
      // A leading zero on purpose: Sentinel reports the canonical form (fd00:abc::1), and the
      // tools must treat both spellings as one address.
      ? `fd00:0${id.slice(0, 3)}:`
      : `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
    const [a, b] = options.ipv6 === true
      ? [`${subnet}:1`, `${subnet}:2`]
      : [`${subnet}.1`, `${subnet}.2`];
    const prefix = options.ipv6 === true ? "64" : "24";
    const dad = options.ipv6 === true ? ["nodad"] : [];
    const net = new TwoBoxNet({ ns: `mn${id}a`, ip: a! }, { ns: `mn${id}b`, ip: b! });
    try {
      const va = `v${id}a`;
      const vb = `v${id}b`;
      for (
        const args of [
          ["netns", "add", net.local.ns],
          ["netns", "add", net.remote.ns],
          ["link", "add", va, "type", "veth", "peer", "name", vb],
          ["link", "set", va, "netns", net.local.ns],
          ["link", "set", vb, "netns", net.remote.ns],
          ["-n", net.local.ns, "addr", "add", `${net.local.ip}/${prefix}`, "dev", va, ...dad],
          ["-n", net.remote.ns, "addr", "add", `${net.remote.ip}/${prefix}`, "dev", vb, ...dad],
          ["-n", net.local.ns, "link", "set", va, "up"],
          ["-n", net.remote.ns, "link", "set", vb, "up"],
          ["-n", net.local.ns, "link", "set", "lo", "up"],
          ["-n", net.remote.ns, "link", "set", "lo", "up"],
        ]
      ) await ip(args);
      return net;
    } catch (error) {
      await net[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** Drops every TCP connection the remote box opens towards the local box (one-way reachability). */
  async blockRemoteToLocal(): Promise<void> {
    await ip([
      "netns",
      "exec",
      this.remote.ns,
      "iptables",
      "-A",
      "OUTPUT",
      "-d",
      this.local.ip,
      "-p",
      "tcp",
      "--syn",
      "-j",
      "DROP",
    ]);
  }

  /** Runs a command inside a namespace; returns its output. */
  exec(ns: string, args: string[], env: Record<string, string> = {}): Promise<ProcessRun> {
    return runProcess("ip", ["netns", "exec", ns, ...args], { env });
  }

  /**
   * Shuts down the Redis/Sentinel daemons a test started on `ports` in both
   * boxes (deleting a namespace does not stop the processes inside it).
   */
  async shutdownDaemons(ports: readonly number[]): Promise<void> {
    for (const box of [this.local, this.remote]) {
      for (const port of ports) {
        await this.exec(box.ns, [
          "redis-cli",
          "-h",
          box.ip,
          "-p",
          String(port),
          "SHUTDOWN",
          "NOSAVE",
        ]);
      }
    }
  }

  /** Deletes both namespaces. Processes still running inside must be stopped first. */
  async [Symbol.asyncDispose](): Promise<void> {
    await ip(["netns", "del", this.local.ns]).catch(() => {});
    await ip(["netns", "del", this.remote.ns]).catch(() => {});
  }
}

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}
