/**
 * Job records: create, get, list by status (paged), and update with
 * optimistic concurrency. Terminal statuses cannot be left. Every write is
 * one server-side script (atomic) and a durable write (WAIT per config), and
 * carries a request id so a retry after a lost reply is recognised, never
 * applied twice.
 *
 * @module
 */

import { type ReadOptions, readWith, runScript } from "../ha/client.ts";
import { ReadScope, ScopeLostError } from "../ha/replica_reads.ts";
import {
  type FenceToken,
  type OperationOptions,
  operationSignal,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_CHECKED, LUA_PRELUDE, mapScriptError } from "./_lua.ts";
import { decodeJson, encodeJson, fenceArgs, readHash } from "./_payload.ts";
import { ValidationError } from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { replyToNumber, replyToString, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

import { JOB_STATUSES, type JobStatus, TERMINAL_STATUSES } from "./job_status.ts";

export { JOB_STATUSES, TERMINAL_STATUSES };
export type { JobStatus };

/** A stored job. */
export interface Job {
  /** Job id. */
  readonly id: string;
  /** Current status. */
  readonly status: JobStatus;
  /** Starts at 1; every update adds 1. */
  readonly version: number;
  /** The job's JSON payload. */
  readonly data: unknown;
  /** Server time of creation, ms since epoch. */
  readonly createdAt: number;
  /** Server time of the last write, ms since epoch. */
  readonly updatedAt: number;
}

/** Options for {@link JobStore.create}. */
export interface CreateJobOptions extends OperationOptions {
  /** Initial status. @default {"pending"} */
  status?: JobStatus | undefined;
  /** Identifies this request so a retry is recognised. @default {a random UUID} */
  requestId?: string | undefined;
}

/** A change for {@link JobStore.update}. */
export interface JobUpdate {
  /** The version the caller read; a different stored version is a conflict. */
  expectedVersion: number;
  /** New status. */
  status?: JobStatus | undefined;
  /** New payload (replaces the old one). */
  data?: unknown | undefined;
  /** Fencing token of the lease the writer holds; a superseded token is rejected. */
  fence?: FenceToken | undefined;
  /** Identifies this request so a retry is recognised. @default {a random UUID} */
  requestId?: string | undefined;
}

/** Options for {@link JobStore.list}. */
export interface ListJobsOptions extends StateReadOptions {
  /** Only jobs with this status. */
  status?: JobStatus | undefined;
  /** Page size, 1-1000. @default {100} */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | undefined;
}

/** One page of {@link JobStore.list}. */
export interface JobPage {
  /** Jobs in creation order. */
  readonly jobs: readonly Job[];
  /** Pass as `cursor` for the next page; undefined on the last page. */
  readonly nextCursor: string | undefined;
}

const CREATE = new Script(
  "job-create",
  LUA_PRELUDE + `
local err = expect_type(KEYS[1], 'hash') or expect_type(KEYS[2], 'zset') or expect_type(KEYS[3], 'zset')
if err then return err end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'requestId') == ARGV[4] and redis.call('HGET', KEYS[1], 'version') == '1' then
    return tonumber(redis.call('HGET', KEYS[1], 'createdAt'))
  end
  return redis.error_reply('MNEXISTS record')
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', ARGV[2], 'version', 1, 'data', ARGV[3],
  'createdAt', now, 'updatedAt', now, 'requestId', ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
return now
`,
);

/**
 * One page of an index after the cursor `(score, id)`, in the index's total
 * order (score, then id byte-wise, as Redis orders equal scores), so pages
 * never repeat or skip a job however many share a millisecond. The position
 * is found by rank: the cursor's own rank while it is still indexed, else
 * the count of entries before it.
 */
const PAGE = new Script(
  "job-page",
  LUA_PRELUDE + `
local err = expect_type(KEYS[1], 'zset')
if err then return err end
local limit = tonumber(ARGV[3])
local start = 0
if ARGV[1] ~= '' then
  local score, id = tonumber(ARGV[1]), ARGV[2]
  local own = redis.call('ZSCORE', KEYS[1], id)
  if own and tonumber(own) == score then
    start = redis.call('ZRANK', KEYS[1], id) + 1
  else
    -- The cursor's job left the index: count what sorts before it. Byte order, as Redis sorts.
    local function before_or_equal(a, b)
      for i = 1, math.min(#a, #b) do
        local x, y = a:byte(i), b:byte(i)
        if x ~= y then return x < y end
      end
      return #a <= #b
    end
    start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[1], 'BYSCORE')) do
      if before_or_equal(m, id) then start = start + 1 else break end
    end
  end
end
return redis.call('ZRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')
`,
  "no-writes",
);

/**
 * Applies an update and returns the record as this update left it:
 * `{version, status, data, createdAt, updatedAt}` (also for a retry of an
 * update that already applied), so no second round trip reads it back. The
 * data comes back only when the update did not set it (the caller has it).
 */
const UPDATE = new Script(
  "job-update",
  LUA_CHECKED + `
local f = redis.pcall('HMGET', KEYS[1], 'version', 'status', 'requestId', 'createdAt', 'data', 'updatedAt')
local err = failed(f, KEYS[1], 'hash')
if err then return err end
err = fenced(KEYS[2], ARGV[6])
if err then return err end
if not f[1] then return redis.error_reply('MNNOTFOUND record') end
local version = tonumber(f[1])
local expected = tonumber(ARGV[2])
if version ~= expected then
  if f[3] == ARGV[5] and version == expected + 1 then
    return {version, f[2], ARGV[8] == '1' and '' or f[5], f[4], f[6]}
  end
  return redis.error_reply('MNCONFLICT ' .. expected .. ' ' .. version)
end
local status = f[2]
if ARGV[3] ~= '' and ARGV[3] ~= status then
  if status == 'succeeded' or status == 'failed' or status == 'cancelled' then
    return redis.error_reply('MNTRANSITION ' .. status .. ' ' .. ARGV[3])
  end
  local old_index = ARGV[7] .. status
  local new_index = ARGV[7] .. ARGV[3]
  err = failed(redis.pcall('ZSCORE', new_index, ARGV[1]), new_index, 'zset')
  if err then return err end
  err = failed(redis.pcall('ZREM', old_index, ARGV[1]), old_index, 'zset')
  if err then return err end
  redis.call('ZADD', new_index, f[4], ARGV[1])
  status = ARGV[3]
end
local data = f[5]
if ARGV[8] == '1' then data = ARGV[4] end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], 'status', status, 'data', data, 'version', version + 1,
  'requestId', ARGV[5], 'updatedAt', now)
return {version + 1, status, ARGV[8] == '1' and '' or data, f[4], now}
`,
);

/** Jobs of one namespace. Use through `StateStore.jobs`. */
export class JobStore {
  readonly #context: StoreContext;
  readonly #maxDataBytes: number;
  readonly #requestPrefix = crypto.randomUUID();
  #requests = 0;

  /** Creates the store; `maxDataBytes` limits a job's JSON payload. */
  constructor(context: StoreContext, maxDataBytes: number) {
    this.#context = context;
    this.#maxDataBytes = maxDataBytes;
  }

  /**
   * Creates a job at version 1. Throws `AlreadyExistsError` if the id is
   * taken (unless it was taken by this same request, retried).
   */
  async create(id: string, data: unknown, options: CreateJobOptions = {}): Promise<Job> {
    const signal = operationSignal(options);
    checkId("jobId", id);
    const status = checkStatus(options.status ?? "pending");
    const payload = encodeJson("job data", data, this.#maxDataBytes);
    const requestId = options.requestId ?? this.#nextRequestId();
    const keys = this.#context.keys;
    const reply = await runScript(
      this.#context.client,
      CREATE,
      [keys.job(id), keys.jobIndex(), keys.jobStatusIndex(status)],
      [id, status, payload, requestId],
      { durable: true, idempotent: true, signal },
    ).catch((e) => {
      throw mapScriptError(e, { what: `job "${id}"` });
    });
    const createdAt = replyToNumber(reply);
    return { id, status, version: 1, data: JSON.parse(payload), createdAt, updatedAt: createdAt };
  }

  /**
   * Reads a job, or `null` if it does not exist. Every lookup reports absence
   * this way (`snapshots.load`, `bundles.get`, `bundles.info`,
   * `observeLease`); changes to a missing record throw `NotFoundError`.
   */
  async get(id: string, options: StateReadOptions = {}): Promise<Job | null> {
    checkId("jobId", id);
    return (await this.#read(id, readOptions(options))) ?? null;
  }

  async #read(id: string, options: ReadOptions, scope?: ReadScope): Promise<Job | undefined> {
    return toJob(await readHash(this.#context.client, this.#context.keys.job(id), options, scope));
  }

  /**
   * Applies a change if `expectedVersion` matches; otherwise throws
   * `VersionConflictError`. Leaving a terminal status throws
   * `InvalidTransitionError`; a superseded fencing token throws `FencedError`.
   * Returns the job as this update left it (one round trip; never a later
   * writer's change).
   */
  async update(id: string, change: JobUpdate, options: OperationOptions = {}): Promise<Job> {
    const signal = operationSignal(options);
    checkId("jobId", id);
    if (!Number.isSafeInteger(change.expectedVersion) || change.expectedVersion < 1) {
      throw new ValidationError(
        "expectedVersion",
        `${change.expectedVersion} is not a version (1 or more)`,
      );
    }
    const status = change.status === undefined ? "" : checkStatus(change.status);
    const hasData = "data" in change;
    const payload = hasData ? encodeJson("job data", change.data, this.#maxDataBytes) : "";
    const keys = this.#context.keys;
    const fence = fenceArgs(change.fence, (name) => keys.lease(name));
    const requestId = change.requestId ?? this.#nextRequestId();
    const reply = await runScript(this.#context.client, UPDATE, [keys.job(id), fence.key], [
      id,
      change.expectedVersion,
      status,
      payload,
      requestId,
      fence.token,
      keys.jobStatusIndex(""),
      hasData ? "1" : "0",
    ], { durable: true, idempotent: true, signal }).catch((e) => {
      throw mapScriptError(e, { what: `job "${id}"`, lease: change.fence?.lease });
    });
    const [version, stored, data, createdAt, updatedAt] = reply as RespReply[];
    return {
      id,
      status: replyToString(stored) as JobStatus,
      version: replyToNumber(version),
      data: hasData ? JSON.parse(payload) : decodeJson(data!),
      createdAt: replyToNumber(createdAt),
      updatedAt: replyToNumber(updatedAt),
    };
  }

  /** A request id unique to this update: a random per-store prefix and a counter. */
  #nextRequestId(): string {
    return `${this.#requestPrefix}-${(this.#requests++).toString(36)}`;
  }

  /**
   * Lists jobs in creation order, optionally by status, one page at a time.
   * The page and its jobs are read from one node (a replica, per the read
   * policy, or else the primary), so a page never shows a job older than
   * its index entry.
   */
  async list(options: ListJobsOptions = {}): Promise<JobPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError("limit", `${limit} is not a page size in 1-1000`);
    }
    const read = readOptions(options);
    try {
      return await this.#page(options, limit, read, new ReadScope());
    } catch (error) {
      // The replica the page was read from moved on meanwhile: read the page on the primary.
      if (!(error instanceof ScopeLostError)) throw error;
      return await this.#page(options, limit, { ...read, readFrom: "primary" }, new ReadScope());
    }
  }

  async #page(
    options: ListJobsOptions,
    limit: number,
    read: ReadOptions,
    scope: ReadScope,
  ): Promise<JobPage> {
    const keys = this.#context.keys;
    const index = options.status === undefined
      ? keys.jobIndex()
      : keys.jobStatusIndex(checkStatus(options.status));
    const after = parseCursor(options.cursor);
    const { reply } = await readWith(
      this.#context.client,
      (send) =>
        PAGE.run(send, [index], [
          after === undefined ? "" : String(after.score),
          after?.id ?? "",
          limit,
        ]),
      read,
      scope,
    ).catch((e) => {
      throw mapScriptError(e, { what: `job index "${index}"` });
    });
    const entries = reply as RespReply[];
    const ids: { id: string; score: number }[] = [];
    for (let i = 0; i + 1 < entries.length; i += 2) {
      ids.push({
        id: replyToString(entries[i]) ?? "",
        score: Number(replyToString(entries[i + 1])),
      });
    }
    const jobs = (await Promise.all(ids.map((e) => this.#read(e.id, read, scope)))).filter((
      j,
    ): j is Job => j !== undefined);
    const last = ids.at(-1);
    return {
      jobs,
      nextCursor: ids.length === limit && last !== undefined
        ? `${last.score}:${last.id}`
        : undefined,
    };
  }
}

function checkStatus(status: string): JobStatus {
  if (!(JOB_STATUSES as readonly string[]).includes(status)) {
    throw new ValidationError(
      "status",
      `${JSON.stringify(status)} is not one of ${JOB_STATUSES.join(", ")}`,
    );
  }
  return status as JobStatus;
}

function parseCursor(cursor: string | undefined): { score: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  const colon = cursor.indexOf(":");
  const score = Number(cursor.slice(0, colon));
  if (colon < 1 || !Number.isFinite(score)) {
    throw new ValidationError(
      "cursor",
      `${JSON.stringify(cursor)} is not a cursor from a previous page`,
    );
  }
  return { score, id: cursor.slice(colon + 1) };
}

function toJob(fields: Map<string, string>): Job | undefined {
  if (fields.size === 0) return undefined;
  return {
    id: fields.get("id") ?? "",
    status: (fields.get("status") ?? "pending") as JobStatus,
    version: Number(fields.get("version")),
    data: decodeJson(fields.get("data") ?? "null"),
    createdAt: Number(fields.get("createdAt")),
    updatedAt: Number(fields.get("updatedAt")),
  };
}
