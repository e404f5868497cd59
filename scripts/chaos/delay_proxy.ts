// deno-lint-ignore-file no-console -- a helper process: it says "ready" on stdout
/**
 * A TCP proxy that delays every byte by a chosen latency with jitter, for
 * the fault suite's `latency` nemesis (this kernel has no `netem`). It runs
 * inside a box's network namespace; the box's firewall sends every
 * connection that arrives for its Redis and Sentinel ports through it
 * (`DNAT` in `PREROUTING`), and it forwards them to the real ports on the
 * box's own address (local traffic is not redirected again).
 *
 * Each chunk read from one side is written to the other `delay` ms later,
 * `delay` drawn uniformly from `[min, max]` per chunk, never before the
 * chunk ahead of it (TCP's order is kept, so a connection sees latency with
 * jitter, not reordering). With 0–0 it forwards at once. A closed side is
 * closed on the other once what it sent was delivered.
 *
 *   deno run -P=chaos scripts/chaos/delay_proxy.ts '<json: [{ listen, to }]>'
 *
 * On stdin, one command per line: `delay MIN MAX` (ms). It prints `ready`
 * once listening, and `delay MIN MAX` after each change.
 *
 * @module
 */

/** One forwarded port: where the proxy listens and where it forwards. */
export interface ProxyRoute {
  listen: { hostname: string; port: number };
  to: { hostname: string; port: number };
}

/** Bytes held back per direction before the proxy stops reading (backpressure). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** The current latency range, shared by every connection. */
export interface Latency {
  min: number;
  max: number;
}

/**
 * Copies `from` to `to`, each chunk `latency` later (read at the time the
 * chunk arrives), in order; closes `to`'s write side when `from` ends.
 */
export async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  latency: Latency,
  random: () => number = Math.random,
): Promise<void> {
  let lastDue = 0;
  // The writes, in order; it never rejects (a failed write sets `failed` and ends the pump), so
  // no rejection is ever left unhandled while the pump waits for more to read.
  let chain = Promise.resolve();
  let failed = false;
  let queued = 0;
  const buf = new Uint8Array(64 * 1024);
  try {
    while (!failed) {
      const n = await from.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      const delay = latency.min + (latency.max - latency.min) * random();
      const due = Math.max(performance.now() + delay, lastDue);
      lastDue = due;
      queued += n;
      chain = chain.then(async () => {
        if (failed) return;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        let written = 0;
        while (written < chunk.length) written += await to.write(chunk.subarray(written));
        queued -= n;
      }).catch(() => {
        failed = true;
      });
      // A peer that stopped reading must not make this side buffer without bound.
      if (queued > MAX_QUEUED_BYTES) await chain;
    }
  } catch {
    // A reset on either side ends the pump; the other pump ends when its side closes.
  } finally {
    await chain;
    await to.closeWrite().catch(() => {});
  }
}

/** Serves one accepted connection: dials the target and pumps both ways. */
async function serve(client: Deno.Conn, route: ProxyRoute, latency: Latency): Promise<void> {
  let upstream: Deno.Conn | undefined;
  try {
    upstream = await Deno.connect(route.to);
    (upstream as Deno.TcpConn).setNoDelay(true);
    (client as Deno.TcpConn).setNoDelay(true);
    await Promise.all([pump(client, upstream, latency), pump(upstream, client, latency)]);
  } catch {
    // The target is down (a killed Redis): the client sees its connection closed.
  } finally {
    try {
      client.close();
    } catch { /* closed already */ }
    try {
      upstream?.close();
    } catch { /* closed already */ }
  }
}

/** Listens on every route's address; returns a function that stops listening. */
export function startProxy(routes: readonly ProxyRoute[], latency: Latency): () => void {
  const listeners = routes.map((route) => {
    const listener = Deno.listen(route.listen);
    (async () => {
      try {
        for await (const conn of listener) void serve(conn, route, latency);
      } catch {
        // Closed.
      }
    })();
    return listener;
  });
  return () => listeners.forEach((l) => l.close());
}

if (import.meta.main) {
  const routes = JSON.parse(Deno.args[0] ?? "[]") as ProxyRoute[];
  const latency: Latency = { min: 0, max: 0 };
  startProxy(routes, latency);
  console.log("ready");
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of Deno.stdin.readable) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const [command, min, max] = buffer.slice(0, nl).trim().split(/\s+/);
      buffer = buffer.slice(nl + 1);
      if (command === "delay" && Number(min) >= 0 && Number(max) >= Number(min)) {
        latency.min = Number(min);
        latency.max = Number(max);
        console.log(`delay ${latency.min} ${latency.max}`);
      }
    }
  }
  // The suite closed our stdin: it is done with us.
  Deno.exit(0);
}
