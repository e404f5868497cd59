/**
 * Agent snapshots: the latest snapshot of each agent within a job, ordered by
 * a writer-supplied sequence number. An older sequence never overwrites a
 * newer one.
 *
 * @module
 */

import { runScript } from "../ha/client.ts";
import {
  type FencedWriteOptions,
  operationSignal,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_CHECKED, mapScriptError } from "./_lua.ts";
import { decodeJson, encodeJson, fenceArgs, readHash } from "./_payload.ts";
import { ValidationError } from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { replyToNumber, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

/** A stored snapshot. */
export interface Snapshot {
  /** Writer-supplied sequence number. */
  readonly seq: number;
  /** The snapshot's JSON payload. */
  readonly data: unknown;
  /** Server time it was saved, ms since epoch. */
  readonly savedAt: number;
}

/** Outcome of {@link SnapshotStore.save}. */
export interface SaveSnapshotResult {
  /** False when a newer (or the same) sequence was already stored. */
  readonly stored: boolean;
  /** The sequence stored now. */
  readonly currentSeq: number;
}

const SAVE = new Script(
  "snapshot-save",
  LUA_CHECKED + `
local err = fenced(KEYS[2], ARGV[3])
if err then return err end
local current = redis.pcall('HGET', KEYS[1], 'seq')
err = failed(current, KEYS[1], 'hash')
if err then return err end
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return {0, tonumber(current)}
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'data', ARGV[2], 'savedAt', t[1] * 1000 + math.floor(t[2] / 1000))
return {1, tonumber(ARGV[1])}
`,
);

/** Agent snapshots of one namespace. Use through `StateStore.snapshots`. */
export class SnapshotStore {
  readonly #context: StoreContext;
  readonly #maxBytes: number;

  /** Creates the store; `maxBytes` limits a snapshot's JSON payload. */
  constructor(context: StoreContext, maxBytes: number) {
    this.#context = context;
    this.#maxBytes = maxBytes;
  }

  /**
   * Saves `data` as the agent's snapshot at `seq` unless a snapshot with the
   * same or a higher sequence is stored (then `stored` is false). Durable.
   */
  async save(
    jobId: string,
    agentId: string,
    seq: number,
    data: unknown,
    options: FencedWriteOptions = {},
  ): Promise<SaveSnapshotResult> {
    checkId("jobId", jobId);
    checkId("agentId", agentId);
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new ValidationError(
        "seq",
        `${seq} is not a sequence number (a whole number, 0 or more)`,
      );
    }
    const payload = encodeJson("snapshot data", data, this.#maxBytes);
    const keys = this.#context.keys;
    const fence = fenceArgs(options.fence, (name) => keys.lease(name));
    const reply = await runScript(
      this.#context.client,
      SAVE,
      [keys.snapshot(jobId, agentId), fence.key],
      [seq, payload, fence.token],
      { durable: true, idempotent: true, signal: operationSignal(options) },
    ).catch((e) => {
      throw mapScriptError(e, {
        what: `snapshot of agent "${agentId}" in job "${jobId}"`,
        lease: options.fence?.lease,
      });
    });
    const [stored, current] = reply as RespReply[];
    return { stored: replyToNumber(stored) === 1, currentSeq: replyToNumber(current) };
  }

  /** Loads the agent's latest snapshot, or `null` if none was saved. */
  async load(
    jobId: string,
    agentId: string,
    options: StateReadOptions = {},
  ): Promise<Snapshot | null> {
    checkId("jobId", jobId);
    checkId("agentId", agentId);
    const key = this.#context.keys.snapshot(jobId, agentId);
    const fields = await readHash(this.#context.client, key, readOptions(options));
    if (fields.size === 0) return null;
    return {
      seq: Number(fields.get("seq")),
      data: decodeJson(fields.get("data") ?? "null"),
      savedAt: Number(fields.get("savedAt")),
    };
  }
}
