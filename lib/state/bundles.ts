/**
 * Bundle archives: binary blobs stored in chunks (so one huge value never
 * stalls replication), with a sha256 checked on every read. Replacing a
 * bundle is atomic for readers: chunks of the new version are written first,
 * then one script flips the bundle's version pointer; a reader sees the old
 * or the new bundle, never a mix, and a corrupt or partial bundle is an
 * error, never returned.
 *
 * @module
 */

import { type ReadOptions, readWith, runScript } from "../ha/client.ts";
import { ReadScope, ScopeLostError } from "../ha/replica_reads.ts";
import { createHash } from "node:crypto";
import {
  type OperationOptions,
  operationSignal,
  readOptions,
  type StateReadOptions,
  type StoreContext,
} from "./_context.ts";
import { LUA_PRELUDE, mapScriptError } from "./_lua.ts";
import { readHash } from "./_payload.ts";
import {
  CorruptBundleError,
  KeyTypeError,
  NotFoundError,
  ValidationError,
} from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { replyToString, type RespReply } from "../protocol/resp.ts";
import { Script } from "../protocol/script.ts";

/** A stored bundle's metadata. */
export interface BundleInfo {
  /** Bundle id. */
  readonly id: string;
  /** Version id of the stored bytes (changes on every put). */
  readonly version: string;
  /** Size in bytes. */
  readonly size: number;
  /** Hex sha256 of the bytes. */
  readonly sha256: string;
  /** Number of chunks. */
  readonly chunks: number;
  /** Server time of the put, ms since epoch. */
  readonly storedAt: number;
}

/** A bundle read back and verified. */
export interface Bundle extends BundleInfo {
  /** The bytes. */
  readonly bytes: Uint8Array;
}

const COMMIT = new Script(
  "bundle-commit",
  LUA_PRELUDE + `
local err = expect_type(KEYS[1], 'hash')
if err then return err end
local chunks = tonumber(ARGV[4])
local old = redis.call('HMGET', KEYS[1], 'version', 'chunks', 'prevVersion', 'prevChunks')
if old[1] == ARGV[1] then
  -- A retry of a commit that already happened: report the same old version.
  return {old[3] or '', tonumber(old[4] or '0')}
end
for i = 0, chunks - 1 do
  if redis.call('EXISTS', ARGV[6] .. i) == 0 then
    return redis.error_reply('MNPARTIAL ' .. i)
  end
end
-- Chunks are written with an expiry so a put that dies midway leaves nothing for long; keep them now.
for i = 0, chunks - 1 do
  redis.call('PERSIST', ARGV[6] .. i)
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'size', ARGV[2], 'sha256', ARGV[3], 'chunks', chunks,
  'chunkBytes', ARGV[5], 'storedAt', t[1] * 1000 + math.floor(t[2] / 1000),
  'prevVersion', old[1] or '', 'prevChunks', old[2] or '0')
return {old[1] or '', tonumber(old[2] or '0')}
`,
);

const REMOVE = new Script(
  "bundle-remove",
  LUA_PRELUDE + `
local err = expect_type(KEYS[1], 'hash')
if err then return err end
local old = redis.call('HMGET', KEYS[1], 'version', 'chunks')
redis.call('DEL', KEYS[1])
return {old[1] or '', tonumber(old[2] or '0')}
`,
);

/**
 * How long the chunks of a put live before its commit keeps them: a put that
 * dies midway (crash, lost connection) leaves no chunk behind for longer.
 */
export const PENDING_CHUNK_TTL_MS = 600_000;

/** How long a failed put may spend removing its chunks before leaving them to expire. */
const ABANDON_TIMEOUT_MS = 1000;

/** Bundle archives of one namespace. Use through `StateStore.bundles`. */
export class BundleStore {
  readonly #context: StoreContext;
  readonly #maxBytes: number;
  readonly #chunkBytes: number;

  /** Creates the store. */
  constructor(context: StoreContext, options: { maxBytes: number; chunkBytes: number }) {
    this.#context = context;
    this.#maxBytes = options.maxBytes;
    this.#chunkBytes = options.chunkBytes;
  }

  /**
   * Stores `bytes` as the bundle's new version (durable), replacing the old
   * one atomically for readers, and removes the old version's chunks.
   */
  async put(
    bundleId: string,
    bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<BundleInfo> {
    const signal = operationSignal(options);
    checkId("bundleId", bundleId);
    if (!(bytes instanceof Uint8Array)) {
      throw new ValidationError("bundle bytes", `expected a Uint8Array, got ${typeof bytes}`);
    }
    if (bytes.length > this.#maxBytes) {
      throw new ValidationError(
        "bundle bytes",
        `${bytes.length} bytes exceeds the limit of ${this.#maxBytes} bytes (maxBundleBytes)`,
      );
    }
    const keys = this.#context.keys;
    const client = this.#context.client;
    const version = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    const chunks = Math.ceil(bytes.length / this.#chunkBytes);
    const hash = createHash("sha256");
    let reply: RespReply;
    try {
      // A window of chunks in flight (bounded memory, each a separate replicated value), the
      // hash computed while they travel. Until the commit keeps them, chunks expire: a put that
      // dies midway leaves nothing behind for long.
      await window(chunks, async (i) => {
        const chunk = bytes.subarray(i * this.#chunkBytes, (i + 1) * this.#chunkBytes);
        const key = keys.bundleChunk(bundleId, version, i);
        const write = client.durable(["SET", key, chunk, "PX", PENDING_CHUNK_TTL_MS], {
          idempotent: true,
          signal,
        });
        hash.update(chunk);
        await write;
      });
      const sha256 = hash.digest("hex");
      reply = await runScript(client, COMMIT, [keys.bundle(bundleId)], [
        version,
        bytes.length,
        sha256,
        chunks,
        this.#chunkBytes,
        keys.bundleChunkPrefix(bundleId, version),
      ], { durable: true, idempotent: true, signal }).catch((e) => {
        throw mapScriptError(e, { what: `bundle "${bundleId}"` });
      });
    } catch (error) {
      await this.#abandonPut(bundleId, version, chunks);
      throw error;
    }
    const [oldVersion, oldChunks] = reply as RespReply[];
    await this.#removeChunks(bundleId, replyToString(oldVersion) ?? "", Number(oldChunks));
    const info = await this.info(bundleId, { signal });
    if (info === null) {
      throw new NotFoundError(`bundle "${bundleId}"`, "it was removed while being stored");
    }
    return info;
  }

  /**
   * Removes the chunks of a put that failed, unless its commit went through
   * after all (an unknown outcome). Best effort: chunks left behind expire
   * after {@link PENDING_CHUNK_TTL_MS}.
   */
  async #abandonPut(bundleId: string, version: string, chunks: number): Promise<void> {
    // Bounded, whatever the caller's deadline: this runs after the put already failed.
    const signal = AbortSignal.timeout(ABANDON_TIMEOUT_MS);
    try {
      // Only a primary that answers "not this version" proves the commit did not happen.
      const current = await this.info(bundleId, { signal }).catch((error) => {
        // A key of another type holds no commit of ours: a definite "no".
        if (error instanceof KeyTypeError) return null;
        throw error;
      });
      if (current?.version === version) return;
      await this.#removeChunks(bundleId, version, chunks, signal);
    } catch {
      // Unknown: leave the chunks; uncommitted ones expire on their own.
    }
  }

  /** Reads the bundle's metadata, or `null` if it does not exist. */
  async info(bundleId: string, options: StateReadOptions = {}): Promise<BundleInfo | null> {
    checkId("bundleId", bundleId);
    return await this.#info(bundleId, readOptions(options));
  }

  async #info(
    bundleId: string,
    read: ReadOptions,
    scope?: ReadScope,
  ): Promise<BundleInfo | null> {
    const key = this.#context.keys.bundle(bundleId);
    const f = await readHash(this.#context.client, key, read, scope);
    if (f.size === 0) return null;
    return {
      id: bundleId,
      version: f.get("version") ?? "",
      size: Number(f.get("size")),
      sha256: f.get("sha256") ?? "",
      chunks: Number(f.get("chunks")),
      storedAt: Number(f.get("storedAt")),
    };
  }

  /**
   * Reads and verifies a bundle, or returns `null` if it does not exist. Throws
   * `CorruptBundleError` if a chunk is missing, a size is wrong or the
   * sha256 does not match. A concurrent replace is retried transparently.
   */
  async get(bundleId: string, options: StateReadOptions = {}): Promise<Bundle | null> {
    checkId("bundleId", bundleId);
    const read = readOptions(options);
    try {
      return await this.#get(bundleId, read);
    } catch (error) {
      // The replica the bundle was read from moved on meanwhile: read it on the primary.
      if (!(error instanceof ScopeLostError)) throw error;
      return await this.#get(bundleId, { ...read, readFrom: "primary" });
    }
  }

  /** The metadata and the chunks, read from one node (see `ReadScope`). */
  async #get(bundleId: string, read: ReadOptions): Promise<Bundle | null> {
    for (let attempt = 1;; attempt++) {
      const scope = new ReadScope();
      const info = await this.#info(bundleId, read, scope);
      if (info === null) return null;
      const keys = this.#context.keys;
      const bytes = new Uint8Array(info.size);
      const hash = createHash("sha256");
      const replies: RespReply[] = new Array(info.chunks);
      let offset = 0;
      let next = 0; // the next chunk to take in, in order, as the window delivers them
      let problem: string | undefined;
      const takeIn = (): void => {
        while (next < info.chunks && replies[next] !== undefined) {
          const chunk = replies[next];
          if (!(chunk instanceof Uint8Array)) {
            problem ??= `chunk ${next} of ${info.chunks} is missing`;
          } else if (offset + chunk.length > info.size) {
            problem ??= `chunks hold more than the recorded ${info.size} bytes`;
          } else if (problem === undefined) {
            bytes.set(chunk, offset);
            hash.update(chunk);
            offset += chunk.length;
          }
          replies[next++] = null; // released once taken in
        }
      };
      await window(info.chunks, async (i) => {
        replies[i] = (await readWith(
          this.#context.client,
          (send) => send(["GET", keys.bundleChunk(bundleId, info.version, i)]),
          { ...read, bytes: true },
          scope,
        )).reply;
        takeIn();
      });
      if (problem?.startsWith("chunk ")) {
        // Replaced while we read (its old chunks were removed)? Read the new version.
        const now = await this.#info(bundleId, read, scope);
        if (now !== null && now.version !== info.version && attempt < 5) continue;
      }
      if (problem !== undefined) throw new CorruptBundleError(bundleId, problem);
      if (offset !== info.size) {
        throw new CorruptBundleError(
          bundleId,
          `chunks hold ${offset} bytes, ${info.size} recorded`,
        );
      }
      const sha256 = hash.digest("hex");
      if (sha256 !== info.sha256) {
        throw new CorruptBundleError(
          bundleId,
          `sha256 ${sha256} does not match the recorded ${info.sha256}`,
        );
      }
      return { ...info, bytes };
    }
  }

  /** Removes a bundle and its chunks. Returns whether it existed. */
  async remove(bundleId: string, options: OperationOptions = {}): Promise<boolean> {
    checkId("bundleId", bundleId);
    const reply = await runScript(
      this.#context.client,
      REMOVE,
      [this.#context.keys.bundle(bundleId)],
      [],
      { durable: true, idempotent: true, signal: operationSignal(options) },
    ).catch((e) => {
      throw mapScriptError(e, { what: `bundle "${bundleId}"` });
    });
    const [version, chunks] = reply as RespReply[];
    const old = replyToString(version) ?? "";
    await this.#removeChunks(bundleId, old, Number(chunks));
    return old !== "";
  }

  async #removeChunks(
    bundleId: string,
    version: string,
    chunks: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (version === "" || chunks === 0) return;
    const keys = Array.from(
      { length: chunks },
      (_, i) => this.#context.keys.bundleChunk(bundleId, version, i),
    );
    for (let i = 0; i < keys.length; i += 256) {
      await this.#context.client.durable(["UNLINK", ...keys.slice(i, i + 256)], {
        idempotent: true,
        signal,
      });
    }
  }
}

/** Chunks in flight at once, for a put or a get. */
const WINDOW = 4;

/**
 * Runs `task(i)` for i in 0..count-1, started in order with at most
 * {@link WINDOW} running; the first failure stops new starts and is thrown
 * once the running ones settle.
 */
async function window(count: number, task: (i: number) => Promise<void>): Promise<void> {
  let started = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && started < count) {
      try {
        await task(started++);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, count) }, lane));
  if (failure !== undefined) throw failure.error;
}
