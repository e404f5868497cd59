/**
 * Node state: runtime nodes register, heartbeat with a TTL and leave. A node
 * that stops heartbeating is listed as `down` (never silently dropped); a
 * graceful leave marks it `left`. Ages come from the Redis server clock, so
 * node clocks may differ.
 *
 * @module
 */

import { readWith, runScript } from "../ha/client.ts";
import {
  type OperationOptions,
  operationSignal,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_PRELUDE, mapScriptError } from "./_lua.ts";
import { encodeJson } from "./_payload.ts";
import { ValidationError } from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

/** A node's state as listed. */
export type NodeStatus = "up" | "down" | "left";

/** One node. */
export interface NodeInfo {
  /** Node id. */
  readonly id: string;
  /** `up` while heartbeating within its TTL, `down` after, `left` after a graceful leave. */
  readonly status: NodeStatus;
  /** Milliseconds since its last heartbeat (server clock). */
  readonly lastSeenAgeMs: number;
  /** Server time of the last heartbeat, ms since epoch. */
  readonly lastSeen: number;
  /** Server time of registration. */
  readonly registeredAt: number;
  /** The heartbeat TTL it registered with. */
  readonly ttlMs: number;
  /** What it registered with (address, version, …). */
  readonly meta: unknown;
}

/** Options for {@link NodeRegistry.register}. */
export interface RegisterNodeOptions extends OperationOptions {
  /** A node not heartbeating for this long is listed as down. */
  ttlMs: number;
  /** JSON metadata (address, version, …). */
  meta?: unknown | undefined;
}

const NOW = `local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
`;

const REGISTER = new Script(
  "node-register",
  LUA_PRELUDE + NOW + `
local err = expect_type(KEYS[1], 'hash') or expect_type(KEYS[2], 'set')
if err then return err end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'up', 'ttlMs', ARGV[2], 'meta', ARGV[3],
  'registeredAt', now, 'lastSeen', now)
redis.call('HDEL', KEYS[1], 'leftAt')
redis.call('SADD', KEYS[2], ARGV[1])
return now
`,
);

const HEARTBEAT = new Script(
  "node-heartbeat",
  LUA_PRELUDE + NOW + `
local err = expect_type(KEYS[1], 'hash')
if err then return err end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return redis.error_reply('MNNOTFOUND record') end
if status == 'left' then return redis.error_reply('MNTRANSITION left up') end
redis.call('HSET', KEYS[1], 'lastSeen', now)
return now
`,
  "allow-oom",
);

const LEAVE = new Script(
  "node-leave",
  LUA_PRELUDE + NOW + `
local err = expect_type(KEYS[1], 'hash')
if err then return err end
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('MNNOTFOUND record') end
redis.call('HSET', KEYS[1], 'status', 'left', 'leftAt', now)
return now
`,
);

const LIST = new Script(
  "node-list",
  LUA_PRELUDE + NOW + `
local err = expect_type(KEYS[1], 'set')
if err then return err end
local out = {now}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'status', 'lastSeen', 'registeredAt', 'ttlMs', 'meta')
  if f[1] then
    table.insert(out, {id, f[1], f[2], f[3], f[4], f[5]})
  end
end
return out
`,
  "no-writes",
);

/** Node registry of one namespace. Use through `StateStore.nodes`. */
export class NodeRegistry {
  readonly #context: StoreContext;

  /** Creates the registry. */
  constructor(context: StoreContext) {
    this.#context = context;
  }

  /** Registers (or re-registers) a node as up. Durable. */
  async register(nodeId: string, options: RegisterNodeOptions): Promise<void> {
    checkId("nodeId", nodeId);
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 100 || options.ttlMs > 86_400_000) {
      throw new ValidationError(
        "ttlMs",
        `${options.ttlMs} is not a heartbeat TTL in 100-86400000 ms`,
      );
    }
    const meta = encodeJson("node meta", options.meta ?? null, 64 * 1024);
    const keys = this.#context.keys;
    await runScript(this.#context.client, REGISTER, [keys.node(nodeId), keys.nodeIndex()], [
      nodeId,
      options.ttlMs,
      meta,
    ], { durable: true, idempotent: true, signal: operationSignal(options) }).catch((e) => {
      throw mapScriptError(e, { what: `node "${nodeId}"` });
    });
  }

  /**
   * Records a heartbeat. Throws `NotFoundError` if never registered,
   * `InvalidTransitionError` after leave. A hot write (no WAIT), like a lease
   * renewal: a node stays up while a replica is away; registration and leave
   * stay durable.
   */
  async heartbeat(nodeId: string, options: OperationOptions = {}): Promise<void> {
    checkId("nodeId", nodeId);
    await runScript(this.#context.client, HEARTBEAT, [this.#context.keys.node(nodeId)], [], {
      durable: false,
      idempotent: true,
      signal: operationSignal(options),
    }).catch((e) => {
      throw mapScriptError(e, { what: `node "${nodeId}"` });
    });
  }

  /** Marks a node as gracefully left. */
  async leave(nodeId: string, options: OperationOptions = {}): Promise<void> {
    checkId("nodeId", nodeId);
    await runScript(this.#context.client, LEAVE, [this.#context.keys.node(nodeId)], [], {
      durable: true,
      idempotent: true,
      signal: operationSignal(options),
    }).catch((e) => {
      throw mapScriptError(e, { what: `node "${nodeId}"` });
    });
  }

  /** Lists every registered node with its status and last-seen age, by id. */
  async list(options: StateReadOptions = {}): Promise<NodeInfo[]> {
    const keys = this.#context.keys;
    const { reply } = await readWith(
      this.#context.client,
      (send) => LIST.run(send, [keys.nodeIndex()], [keys.node("")]),
      readOptions(options),
    ).catch((e) => {
      throw mapScriptError(e, { what: "node index" });
    });
    const [nowReply, ...rows] = reply as RespReply[];
    const now = replyToNumber(nowReply);
    return rows.map((row) => {
      const [id = "", status, lastSeen, registeredAt, ttlMs, meta = ""] = (row as RespReply[]).map((
        v,
      ) => replyToString(v) ?? "");
      const age = now - Number(lastSeen);
      const shown: NodeStatus = status === "left" ? "left" : age > Number(ttlMs) ? "down" : "up";
      return {
        id,
        status: shown,
        lastSeenAgeMs: age,
        lastSeen: Number(lastSeen),
        registeredAt: Number(registeredAt),
        ttlMs: Number(ttlMs),
        meta: JSON.parse(meta === "" ? "null" : meta),
      };
    }).sort((a, b) => a.id.localeCompare(b.id));
  }
}
