/**
 * The protocol's own limit for `deno task bench`: raw-socket contenders at
 * the library's depth (50 in flight) on one connection, doing the least work
 * per reply (encode, write, count replies), with the same commands the
 * library sends. A state operation's commands are captured from the library
 * itself (a recording client under a real `StateStore`), once, and only
 * their unique fields are changed per operation, so the raw contender runs
 * exactly the library's scripts with the library's arguments.
 *
 * @module
 */

import { CLIENT_INTERNALS, type RedisHaClient } from "../../lib/ha/client.ts";
import type { Endpoint } from "../../lib/protocol/endpoint.ts";
import {
  encodeCommands,
  type RespArg,
  RespReader,
  type RespReply,
} from "../../lib/protocol/resp.ts";
import type { Script } from "../../lib/protocol/script.ts";
import { StateStore } from "../../lib/state/state_store.ts";

/** One command the library would send for a state operation, and its script. */
export interface Captured {
  readonly script: Script;
  readonly keys: readonly string[];
  readonly args: readonly RespArg[];
  readonly durable: boolean;
}

/** Marks the recording client's refusal: the operation is captured, never run. */
class Captured_ extends Error {}

/**
 * Runs `op` against a `StateStore` whose client records the first script
 * call instead of sending it: what the library would send for that
 * operation, its arguments built by the library's own code.
 */
export async function capture(
  namespace: string,
  op: (store: StateStore) => Promise<unknown>,
): Promise<Captured> {
  let captured: Captured | undefined;
  const recording = {
    config: { namespace },
    [CLIENT_INTERNALS]: {
      runScript: (
        script: Script,
        keys: readonly string[],
        args: readonly RespArg[] | ((primary: unknown) => readonly RespArg[]),
        options: { durable?: boolean } = {},
      ): Promise<RespReply> => {
        const resolved = typeof args === "function" ? args({ configEpoch: 1 }) : args;
        captured ??= { script, keys, args: resolved, durable: options.durable === true };
        return Promise.reject(new Captured_());
      },
    },
  } as unknown as RedisHaClient;
  await op(new StateStore(recording)).catch((e) => {
    if (!(e instanceof Captured_) && captured === undefined) throw e;
  });
  if (captured === undefined) throw new Error("the operation ran no script");
  return captured;
}

/**
 * A command template: `captured` as `EVALSHA`, with every key or argument
 * that contains one of `markers` (a numeric argument: that equals one)
 * rebuilt per operation by `fill(marker)`.
 */
export function template(
  captured: Captured,
  sha1: string,
  markers: readonly string[],
): (fill: (marker: string) => string) => RespArg[] {
  const parts = [...captured.keys, ...captured.args];
  const marked = parts.map((a) => {
    const text = typeof a === "string" ? a : typeof a === "number" ? String(a) : undefined;
    return text !== undefined && markers.some((m) => text.includes(m));
  });
  return (fill) => [
    "EVALSHA",
    sha1,
    captured.keys.length,
    ...parts.map((a, i) => {
      if (!marked[i]) return a;
      let out = String(a);
      for (const m of markers) out = out.replaceAll(m, fill(m));
      return out;
    }),
  ];
}

/** A raw connection: writes encoded batches, hands back the next `n` replies. */
export class RawConnection implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  readonly #reader = new RespReader();
  readonly #buf = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to `endpoint` (no handshake: the bench's nodes have no password). */
  static async open(endpoint: Endpoint): Promise<RawConnection> {
    const conn = await Deno.connect({ hostname: endpoint.host, port: endpoint.port });
    conn.setNoDelay(true);
    return new RawConnection(conn);
  }

  /** Writes `commands` in one socket write. */
  async write(commands: readonly (readonly RespArg[])[]): Promise<void> {
    const bytes = encodeCommands(commands);
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  /** The next `n` replies. */
  async read(n: number): Promise<RespReply[]> {
    const out: RespReply[] = [];
    while (out.length < n) {
      let reply: RespReply | undefined;
      while (out.length < n && (reply = this.#reader.next()) !== undefined) out.push(reply);
      if (out.length === n) break;
      const got = await this.#conn.read(this.#buf);
      if (got === null) throw new Error("the raw connection was closed");
      this.#reader.push(this.#buf.subarray(0, got));
    }
    return out;
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    return Promise.resolve();
  }
}

/** `WAIT` for one replica, bounded as the library's (a second). */
const WAIT_1: RespArg[] = ["WAIT", 1, 1000];

/**
 * Submitted together: `depth` commands (and one `WAIT 1` when `wait`) per
 * socket write, the next batch once all their replies are in. Returns
 * operations per second. `onReplies` sees each batch's replies (a job
 * update takes its next version from them).
 */
export async function rawBatches(
  endpoint: Endpoint,
  ms: number,
  command: (i: number) => readonly RespArg[],
  options: {
    depth: number;
    wait: boolean;
    onReplies?: (first: number, replies: RespReply[]) => void;
  },
): Promise<number> {
  await using conn = await RawConnection.open(endpoint);
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    const batch = Array.from({ length: options.depth }, (_, k) => command(done + k));
    await conn.write(options.wait ? [...batch, WAIT_1] : batch);
    const replies = await conn.read(batch.length + (options.wait ? 1 : 0));
    options.onReplies?.(done, replies.slice(0, batch.length));
    done += batch.length;
  }
  return done / ((performance.now() - started) / 1000);
}

/**
 * Each awaited on its own: `writers` loops each issue one command and await
 * its reply; whatever is queued when the event loop turns goes out in one
 * socket write with one `WAIT 1` (the least a group commit can do).
 * Returns operations per second.
 */
export async function rawGroupCommit(
  endpoint: Endpoint,
  ms: number,
  command: (i: number) => readonly RespArg[],
  writers: number,
): Promise<number> {
  await using conn = await RawConnection.open(endpoint);
  let queued: { args: readonly RespArg[]; done: () => void }[] = [];
  let scheduled = false;
  const inFlight: { count: number; done: (() => void)[] }[] = [];
  let reading: Promise<void> | undefined;
  // One socket write after another (a write may take more than one syscall).
  let writing = Promise.resolve();
  const readLoop = async (): Promise<void> => {
    while (inFlight.length > 0) {
      const batch = inFlight[0]!;
      await conn.read(batch.count + 1);
      inFlight.shift();
      for (const done of batch.done) done();
    }
    reading = undefined;
  };
  const flush = (): void => {
    scheduled = false;
    const batch = queued;
    queued = [];
    inFlight.push({ count: batch.length, done: batch.map((b) => b.done) });
    const commands = [...batch.map((b) => b.args), WAIT_1];
    writing = writing.then(() => conn.write(commands));
    reading ??= readLoop();
  };
  let issued = 0;
  let done = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: writers }, async () => {
    while (performance.now() - started < ms) {
      const args = command(issued++);
      await new Promise<void>((resolve) => {
        queued.push({ args, done: resolve });
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(flush);
        }
      });
      done++;
    }
  }));
  await writing;
  await reading;
  return done / ((performance.now() - started) / 1000);
}
