/**
 * The latency nemesis's TCP delay proxy: every byte arrives the chosen
 * latency later in each direction, in order whatever the jitter, and a
 * change of latency applies to open connections at once.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { type Latency, startProxy } from "../../scripts/chaos/delay_proxy.ts";

/** An echo server on a free loopback port; closing it ends every connection. */
function echoServer(): { port: number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        served.push((async () => {
          const buf = new Uint8Array(16 * 1024);
          try {
            for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
              await conn.write(buf.subarray(0, n));
            }
          } catch { /* reset */ }
          conn.close();
        })());
      }
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      listener.close();
      await accepting;
      await Promise.all(served);
    },
  };
}

/** Reads until `bytes` bytes arrived. */
async function readExactly(conn: Deno.Conn, bytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  let filled = 0;
  while (filled < bytes) {
    const n = await conn.read(out.subarray(filled));
    if (n === null) throw new Error(`closed after ${filled} of ${bytes} bytes`);
    filled += n;
  }
  return out;
}

Deno.test("delay proxy: each direction is delayed by the latency, bytes keep their order under jitter, a change applies at once", async () => {
  const echo = echoServer();
  const port = freePort();
  const latency: Latency = { min: 40, max: 40 };
  const stop = startProxy([{
    listen: { hostname: "127.0.0.1", port },
    to: { hostname: "127.0.0.1", port: echo.port },
  }], latency);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // 40 ms each way.
    let started = performance.now();
    await conn.write(new TextEncoder().encode("ping"));
    assertEquals(new TextDecoder().decode(await readExactly(conn, 4)), "ping");
    const roundTrip = performance.now() - started;
    assert(roundTrip >= 78 && roundTrip < 400, `round trip ${roundTrip} ms at 40 ms each way`);
    // Jitter (0-100 ms per chunk) never reorders: 300 numbered writes come back in order.
    latency.min = 0;
    latency.max = 100;
    const sent: number[] = [];
    for (let i = 0; i < 300; i++) {
      sent.push(i % 256);
      await conn.write(new Uint8Array([i % 256]));
    }
    assertEquals([...await readExactly(conn, 300)], sent);
    // Back to no delay: the next round trip is fast.
    latency.min = 0;
    latency.max = 0;
    started = performance.now();
    await conn.write(new TextEncoder().encode("pong"));
    await readExactly(conn, 4);
    assert(performance.now() - started < 60, `round trip ${performance.now() - started} ms at 0`);
    // Closing one side closes the other once what it sent arrived.
    await conn.closeWrite();
    assertEquals(await conn.read(new Uint8Array(1)), null);
  } finally {
    conn.close();
    stop();
    await echo.close();
  }
});

Deno.test("delay proxy: a target that dies with writes queued ends that connection only", async () => {
  // A target that reads nothing and closes at once: the proxy's delayed writes to it fail.
  const dying = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closing = (async () => {
    for await (const conn of dying) conn.close();
  })().catch(() => {});
  const echo = echoServer();
  const latency: Latency = { min: 30, max: 30 };
  const ports = [freePort(), freePort()];
  const stop = startProxy([
    {
      listen: { hostname: "127.0.0.1", port: ports[0]! },
      to: { hostname: "127.0.0.1", port: (dying.addr as Deno.NetAddr).port },
    },
    {
      listen: { hostname: "127.0.0.1", port: ports[1]! },
      to: { hostname: "127.0.0.1", port: echo.port },
    },
  ], latency);
  try {
    const doomed = await Deno.connect({ hostname: "127.0.0.1", port: ports[0]! });
    for (let i = 0; i < 20; i++) await doomed.write(new Uint8Array(32 * 1024)).catch(() => 0);
    // The proxy's delayed writes to the dead target fail while it waits for more from us.
    const buf = new Uint8Array(16);
    while ((await doomed.read(buf).catch(() => null)) !== null) { /* drain */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
    doomed.close();
    // The proxy still serves other connections.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[1]! });
    await conn.write(new TextEncoder().encode("still"));
    assertEquals(new TextDecoder().decode(await readExactly(conn, 5)), "still");
    conn.close();
  } finally {
    stop();
    dying.close();
    await closing;
    await echo.close();
  }
});
