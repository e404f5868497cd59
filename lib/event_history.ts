/**
 * Job event history on Redis Streams. Every event carries a writer-chosen id;
 * appending the same id twice (e.g. a retry after a dropped connection)
 * stores it once. Appends to one job from one `EventHistory` keep their
 * order: they are queued per job and written in batches, each batch one
 * atomic script, so ordering costs no throughput.
 *
 * @module
 */

import {
  type FenceToken,
  type OperationOptions,
  operationSignal,
  type StoreContext,
} from "./_context.ts";
import { LUA_PRELUDE, mapScriptError, mapWrongType } from "./_lua.ts";
import { encodeJson, fenceArgs } from "./_payload.ts";
import { AbortedError, ConnectionError, ValidationError } from "./errors.ts";
import { checkId } from "./keys.ts";
import { replyToNumber, replyToString, type RespReply } from "./resp.ts";
import { Script } from "./script.ts";

/** An event to append. */
export interface NewEvent {
  /** Writer-chosen id; appending it again is a no-op. */
  id: string;
  /** Event type, e.g. `agent.started`. */
  type: string;
  /** JSON payload. */
  data?: unknown;
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

/** Options for {@link EventHistory.append}. */
export interface AppendOptions extends OperationOptions {
  /** Fencing token of the lease the writer holds. */
  fence?: FenceToken;
}

/** Options for {@link EventHistory.read}. */
export interface ReadEventsOptions extends OperationOptions {
  /** Return events after this offset (exclusive). @default {from the start} */
  after?: string;
  /** At most this many, 1-10000. @default {100} */
  count?: number;
}

/** Options for {@link EventHistory.tail}. */
export interface TailOptions {
  /** Start after this offset. @default {"$": only new events} */
  after?: string;
  /** Stops the tail. */
  signal?: AbortSignal;
  /** How long one blocking read waits before checking `signal`. @default {1000} */
  blockMs?: number;
}

const APPEND = new Script(
  "events-append",
  LUA_PRELUDE + `
local err = expect_type(KEYS[1], 'stream') or expect_type(KEYS[2], 'hash') or fence_check(KEYS[3], ARGV[1])
if err then return err end
local out = {}
for i = 2, #ARGV, 3 do
  local existing = redis.call('HGET', KEYS[2], ARGV[i])
  if existing then
    table.insert(out, existing)
    table.insert(out, 1)
  else
    local offset = redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'type', ARGV[i + 1], 'data', ARGV[i + 2])
    redis.call('HSET', KEYS[2], ARGV[i], offset)
    table.insert(out, offset)
    table.insert(out, 0)
  end
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

const OFFSET_PATTERN = /^\d+-\d+$/;
const MAX_BATCH = 200;

/** Event histories of one namespace. Use through `StateStore.events`. */
export class EventHistory {
  readonly #context: StoreContext;
  readonly #maxBytes: number;
  readonly #queues = new Map<string, Queued[]>();

  /** Creates the history; `maxBytes` limits an event's JSON payload. */
  constructor(context: StoreContext, maxBytes: number) {
    this.#context = context;
    this.#maxBytes = maxBytes;
  }

  /**
   * Appends an event to a job's history (durable). Appending an id that is
   * already stored returns its offset with `duplicate: true`.
   */
  append(jobId: string, event: NewEvent, options: AppendOptions = {}): Promise<AppendResult> {
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
      const start = queue === undefined;
      if (queue === undefined) this.#queues.set(jobId, queue = []);
      const queued: Queued = {
        event: { id: event.id, type: event.type, data },
        fence: options.fence,
        resolve,
        reject,
      };
      queue.push(queued);
      if (start) void this.#pump(jobId, queue);
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

  /** Writes a job's queue in order, one batch (one script call) at a time. */
  async #pump(jobId: string, queue: Queued[]): Promise<void> {
    // Let appends issued in the same tick join the first batch.
    await Promise.resolve();
    while (queue.length > 0) {
      // A batch shares one fence: cut it where the fence changes.
      const first = queue[0];
      let size = 1;
      while (
        size < queue.length && size < MAX_BATCH &&
        sameFence(queue[size].fence, first.fence)
      ) size++;
      const batch = queue.splice(0, size);
      try {
        const results = await this.#write(jobId, batch.map((q) => q.event), first.fence);
        batch.forEach((q, i) => q.resolve(results[i]));
      } catch (error) {
        for (const q of batch) q.reject(error);
      }
    }
    this.#queues.delete(jobId);
  }

  async #write(
    jobId: string,
    events: { id: string; type: string; data: string }[],
    fence: FenceToken | undefined,
  ): Promise<AppendResult[]> {
    const keys = this.#context.keys;
    const f = fenceArgs(fence, (name) => keys.lease(name));
    const args: string[] = [f.token];
    for (const e of events) args.push(e.id, e.type, e.data);
    const reply = await this.#context.client.runScript(
      APPEND,
      [keys.events(jobId), keys.eventIds(jobId), f.key],
      args,
      { durable: true, idempotent: true },
    ).catch((e) => {
      throw mapScriptError(e, { what: `event history of job "${jobId}"`, lease: fence?.lease });
    });
    const flat = reply as RespReply[];
    return events.map((_, i) => ({
      offset: replyToString(flat[2 * i]) ?? "",
      duplicate: replyToNumber(flat[2 * i + 1]) === 1,
    }));
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
    const reply = await this.#context.client.command(["XRANGE", key, start, "+", "COUNT", count], {
      idempotent: true,
      signal: operationSignal(options),
    }).catch((e) => {
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
      const conn = await this.#context.client.openConnection({ signal: options.signal });
      try {
        if (after === "$") {
          // Pin "$" to a concrete offset so a reconnect does not skip events.
          const last = await conn.send(["XREVRANGE", key, "+", "-", "COUNT", 1]);
          after = (last as RespReply[]).length > 0
            ? toEvent((last as RespReply[])[0]).offset
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
