/**
 * Job event history on Redis Streams. Every event carries a writer-chosen id;
 * appending the same id twice (e.g. a retry after a dropped connection)
 * stores it once. Appends issued together are written in batches, one
 * script call (and one `WAIT`) for the events of many jobs; appends to one
 * job from one `EventHistory` keep their order, since a job has at most one
 * batch in flight.
 *
 * @module
 */

import { openConnection, readWith, runScript } from "../ha/client.ts";
import {
  type FencedWriteOptions,
  type FenceToken,
  operationSignal,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_CHECKED, mapScriptError, mapWrongType } from "./_lua.ts";
import { encodeJson, fenceArgs } from "./_payload.ts";
import { AbortedError, ConnectionError, ReplyError } from "../common/errors.ts";
import { ValidationError } from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { replyToString, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

/** An event to append. */
export interface NewEvent {
  /** Writer-chosen id; appending it again is a no-op. */
  id: string;
  /** Event type, e.g. `agent.started`. */
  type: string;
  /** JSON payload. */
  data?: unknown | undefined;
}

/** A stored event. */
export interface StoredEvent {
  /** Stream entry id (`<ms>-<seq>`): the event's offset in the history. */
  readonly offset: string;
  /** Writer-chosen id. */
  readonly id: string;
  /** Event type. */
  readonly type: string;
  /** JSON payload. */
  readonly data: unknown;
}

/** Outcome of {@link EventHistory.append}. */
export interface AppendResult {
  /** The stream entry id the event is stored under. */
  readonly offset: string;
  /** True when the id was already stored (nothing was added). */
  readonly duplicate: boolean;
}

/** Options for {@link EventHistory.read}. */
export interface ReadEventsOptions extends StateReadOptions {
  /** Return events after this offset (exclusive). @default {from the start} */
  after?: string | undefined;
  /** At most this many, 1-10000. @default {100} */
  count?: number | undefined;
}

/** Options for {@link EventHistory.tail}. */
export interface TailOptions {
  /** Start after this offset. @default {"$": only new events} */
  after?: string | undefined;
  /** Stops the tail. */
  signal?: AbortSignal | undefined;
  /** How long one blocking read waits before checking `signal`. @default {1000} */
  blockMs?: number | undefined;
}

/**
 * Appends the events of several jobs in one call. Per job (a segment):
 * KEYS stream, id hash, lease; ARGV fence token, event count, then id, type
 * and data per event. Returns, per segment, either its flat
 * `[offset, duplicate, …]` list or its error reply: a failed segment (fenced,
 * wrong key type) writes nothing and leaves the others to proceed.
 */
const APPEND = new Script(
  "events-append",
  LUA_CHECKED + `
local out = {}
local a = 1
for s = 1, #KEYS / 3 do
  local stream, ids, lease = KEYS[3 * s - 2], KEYS[3 * s - 1], KEYS[3 * s]
  local token, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local err = fenced(lease, token)
  local seg = {}
  if not err then
    for j = a, a + 3 * (n - 1), 3 do
      local existing = redis.pcall('HGET', ids, ARGV[j])
      err = failed(existing, ids, 'hash')
      if err then break end
      if existing then
        seg[#seg + 1] = existing
        seg[#seg + 1] = 1
      else
        local offset = redis.pcall('XADD', stream, '*', 'id', ARGV[j], 'type', ARGV[j + 1], 'data', ARGV[j + 2])
        err = failed(offset, stream, 'stream')
        if err then break end
        redis.call('HSET', ids, ARGV[j], offset)
        seg[#seg + 1] = offset
        seg[#seg + 1] = 0
      end
    end
  end
  a = a + 3 * n
  out[s] = err or seg
end
return out
`,
);

interface Queued {
  readonly event: { id: string; type: string; data: string };
  readonly fence: FenceToken | undefined;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** One job's events in a batch: they share a fence. */
interface Segment {
  readonly jobId: string;
  readonly items: Queued[];
}

const OFFSET_PATTERN = /^\d+-\d+$/;
/** Events per script call, over all jobs in it. */
const MAX_BATCH = 200;

/** Event histories of one namespace. Use through `StateStore.events`. */
export class EventHistory {
  readonly #context: StoreContext;
  readonly #maxBytes: number;
  /** Events not yet in a batch, per job. */
  readonly #queues = new Map<string, Queued[]>();
  /** Jobs with a batch in flight: their next events wait for it (order per job). */
  readonly #busy = new Set<string>();
  #scheduled = false;

  /** Creates the history; `maxBytes` limits an event's JSON payload. */
  constructor(context: StoreContext, maxBytes: number) {
    this.#context = context;
    this.#maxBytes = maxBytes;
  }

  /**
   * Appends an event to a job's history (durable). Appending an id that is
   * already stored returns its offset with `duplicate: true`.
   *
   * Appends issued together are written together: one script call (and one
   * `WAIT`) carries the events of many jobs. Appends to one job keep their
   * order: a job has at most one batch in flight.
   */
  append(jobId: string, event: NewEvent, options: FencedWriteOptions = {}): Promise<AppendResult> {
    try {
      checkId("jobId", jobId);
      checkId("event id", event.id);
      if (typeof event.type !== "string" || event.type.length === 0 || event.type.length > 128) {
        throw new ValidationError(
          "event type",
          `${JSON.stringify(event.type)} is not a type of 1-128 characters`,
        );
      }
      const data = encodeJson("event data", event.data ?? null, this.#maxBytes);
      if (options.fence !== undefined) fenceArgs(options.fence, (n) => n);
      const signal = operationSignal(options);
      signal?.throwIfAborted();
      const { promise, resolve, reject } = Promise.withResolvers<AppendResult>();
      let queue = this.#queues.get(jobId);
      if (queue === undefined) this.#queues.set(jobId, queue = []);
      const queued: Queued = {
        event: { id: event.id, type: event.type, data },
        fence: options.fence,
        resolve,
        reject,
      };
      queue.push(queued);
      this.#schedule();
      if (signal === undefined) return promise;
      // An abort takes a queued event out (never sent); one already in a batch may be applied.
      const onAbort = (): void => {
        const index = queue.indexOf(queued);
        if (index !== -1) queue.splice(index, 1);
        reject(
          new AbortedError({
            mayHaveApplied: index === -1,
            reason: signal.reason,
            what: `Append of event "${event.id}"`,
          }),
        );
      };
      signal.addEventListener("abort", onAbort, { once: true });
      return promise.finally(() => signal.removeEventListener("abort", onAbort));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Dispatches queued events once the current tick's appends are in. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Two hops: appends issued by continuations of the batch that just finished join this one.
    queueMicrotask(() =>
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#dispatch();
      })
    );
  }

  /** Cuts the queued events of every idle job into batches and writes them. */
  #dispatch(): void {
    let batch: Segment[] = [];
    let size = 0;
    for (const [jobId, queue] of this.#queues) {
      if (this.#busy.has(jobId)) continue;
      if (queue.length === 0) {
        this.#queues.delete(jobId);
        continue;
      }
      // A segment shares one fence: cut it where the fence changes.
      const first = queue[0];
      let n = 1;
      while (
        n < queue.length && size + n < MAX_BATCH && sameFence(queue[n]!.fence, first!.fence)
      ) n++;
      batch.push({ jobId, items: queue.splice(0, n) });
      this.#busy.add(jobId);
      size += n;
      if (size >= MAX_BATCH) {
        void this.#writeBatch(batch);
        batch = [];
        size = 0;
      }
    }
    if (batch.length > 0) void this.#writeBatch(batch);
  }

  async #writeBatch(batch: Segment[]): Promise<void> {
    let results: (AppendResult[] | unknown)[];
    try {
      results = await this.#write(batch);
    } catch (error) {
      results = batch.map(() => error);
    }
    batch.forEach((segment, i) => {
      const result = results[i];
      if (Array.isArray(result)) segment.items.forEach((q, j) => q.resolve(result[j]));
      else for (const q of segment.items) q.reject(result);
      this.#busy.delete(segment.jobId);
    });
    if ([...this.#queues.values()].some((q) => q.length > 0)) this.#schedule();
  }

  /** One script call for the batch: per segment its results, or its error. */
  async #write(batch: Segment[]): Promise<(AppendResult[] | unknown)[]> {
    const keys = this.#context.keys;
    const scriptKeys: string[] = [];
    const args: string[] = [];
    for (const { jobId, items } of batch) {
      const fence = items[0]!.fence;
      const f = fenceArgs(fence, (name) => keys.lease(name));
      scriptKeys.push(keys.events(jobId), keys.eventIds(jobId), f.key);
      args.push(f.token, String(items.length));
      for (const { event } of items) args.push(event.id, event.type, event.data);
    }
    const reply = await runScript(this.#context.client, APPEND, scriptKeys, args, {
      durable: true,
      idempotent: true,
    });
    return batch.map(({ jobId, items }, i) => {
      const segment = (reply as RespReply[])[i];
      if (segment instanceof ReplyError) {
        return mapScriptError(segment, {
          what: `event history of job "${jobId}"`,
          lease: items[0]!.fence?.lease,
        });
      }
      const flat = segment as RespReply[];
      return items.map((_, j): AppendResult => ({
        offset: replyToString(flat[2 * j]) ?? "",
        duplicate: flat[2 * j + 1] === 1,
      }));
    });
  }

  /** Reads events in order, after an offset. */
  async read(jobId: string, options: ReadEventsOptions = {}): Promise<StoredEvent[]> {
    checkId("jobId", jobId);
    const count = options.count ?? 100;
    if (!Number.isInteger(count) || count < 1 || count > 10_000) {
      throw new ValidationError("count", `${count} is not in 1-10000`);
    }
    const start = options.after === undefined ? "-" : `(${checkOffset(options.after)}`;
    const key = this.#context.keys.events(jobId);
    const { reply } = await readWith(
      this.#context.client,
      (send) => send(["XRANGE", key, start, "+", "COUNT", count]),
      readOptions(options),
    ).catch((e) => {
      throw mapWrongType(e, key, "stream");
    });
    return (reply as RespReply[]).map(toEvent);
  }

  /**
   * Yields events as they are appended, on a dedicated connection (blocking
   * reads never hold up other commands). Reconnects after failures and
   * resumes after the last offset it yielded; ends when `signal` aborts.
   */
  async *tail(jobId: string, options: TailOptions = {}): AsyncGenerator<StoredEvent> {
    checkId("jobId", jobId);
    let after = options.after === undefined ? "$" : checkOffset(options.after);
    const key = this.#context.keys.events(jobId);
    const blockMs = options.blockMs ?? 1000;
    while (!options.signal?.aborted) {
      const conn = await openConnection(this.#context.client, { signal: options.signal });
      try {
        if (after === "$") {
          // Pin "$" to a concrete offset so a reconnect does not skip events.
          const last = await conn.send(["XREVRANGE", key, "+", "-", "COUNT", 1]);
          after = (last as RespReply[]).length > 0
            ? toEvent((last as RespReply[])[0]!).offset
            : "0-0";
        }
        while (!options.signal?.aborted) {
          const reply = await conn.send([
            "XREAD",
            "COUNT",
            100,
            "BLOCK",
            blockMs,
            "STREAMS",
            key,
            after,
          ]);
          if (reply === null) continue;
          const entries = ((reply as RespReply[])[0] as RespReply[])[1] as RespReply[];
          for (const entry of entries) {
            const event = toEvent(entry);
            after = event.offset;
            yield event;
          }
        }
      } catch (error) {
        // Connection trouble: reopen (openConnection re-resolves the primary).
        if (!(error instanceof ConnectionError)) throw mapWrongType(error, key, "stream");
      } finally {
        await conn.close();
      }
    }
  }
}

function sameFence(a: FenceToken | undefined, b: FenceToken | undefined): boolean {
  return a?.lease === b?.lease && a?.token === b?.token;
}

function checkOffset(offset: string): string {
  if (!OFFSET_PATTERN.test(offset)) {
    throw new ValidationError(
      "after",
      `${JSON.stringify(offset)} is not an event offset like 1700000000000-0`,
    );
  }
  return offset;
}

function toEvent(entry: RespReply): StoredEvent {
  const [offset, fields] = entry as [RespReply, RespReply[]];
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    map.set(replyToString(fields[i]) ?? "", replyToString(fields[i + 1]) ?? "");
  }
  return {
    offset: replyToString(offset) ?? "",
    id: map.get("id") ?? "",
    type: map.get("type") ?? "",
    data: JSON.parse(map.get("data") ?? "null"),
  };
}
