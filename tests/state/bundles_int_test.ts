import { assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import {
  CorruptBundleError,
  KeyTypeError,
  ValidationError,
} from "../../lib/common/state_errors.ts";

const CHUNK = 4096;
const LIMIT = 10 * CHUNK;

function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

Deno.test("BundleStore round-trips 0 bytes, 1 byte, one chunk, many chunks and the limit", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), {
    bundleChunkBytes: CHUNK,
    maxBundleBytes: LIMIT,
  });
  for (const size of [0, 1, CHUNK, CHUNK + 1, 7 * CHUNK + 13, LIMIT]) {
    const data = bytes(size, size);
    const info = await store.bundles.put(`b-${size}`, data);
    assertEquals(info.size, size);
    assertEquals(info.chunks, Math.ceil(size / CHUNK));
    const back = (await store.bundles.get(`b-${size}`))!;
    assertEquals(back.bytes, data, `size ${size}`);
    assertEquals(back.sha256, info.sha256);
  }
});

Deno.test("BundleStore rejects limit + 1 and writes nothing", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), {
    bundleChunkBytes: CHUNK,
    maxBundleBytes: LIMIT,
  });
  const error = await assertRejects(
    () => store.bundles.put("big", bytes(LIMIT + 1)),
    ValidationError,
  );
  assertEquals(error.message.includes(`${LIMIT + 1} bytes exceeds the limit of ${LIMIT}`), true);
  assertEquals(await store.client.command(["DBSIZE"]), 0);
});

Deno.test("BundleStore detects a corrupted or missing chunk on read", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), {
    bundleChunkBytes: CHUNK,
    maxBundleBytes: LIMIT,
  });
  const info = await store.bundles.put("b", bytes(3 * CHUNK));
  const chunk1 = store.keys.bundleChunk("b", info.version, 1);
  const tampered = bytes(CHUNK, 99);
  await store.client.command(["SET", chunk1, tampered]);
  const corrupt = await assertRejects(() => store.bundles.get("b"), CorruptBundleError);
  assertEquals(corrupt.message.includes("sha256"), true);
  await store.client.command(["DEL", chunk1]);
  const missing = await assertRejects(() => store.bundles.get("b"), CorruptBundleError);
  assertEquals(missing.message.includes("chunk 1 of 3 is missing"), true);
  await store.client.command(["SET", chunk1, bytes(10)]);
  await assertRejects(() => store.bundles.get("b"), CorruptBundleError);
});

Deno.test("BundleStore replaces a bundle atomically for readers and removes old chunks", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), {
    bundleChunkBytes: CHUNK,
    maxBundleBytes: LIMIT,
  });
  const v1 = bytes(5 * CHUNK, 1);
  const v2 = bytes(3 * CHUNK + 5, 2);
  await store.bundles.put("b", v1);
  // Readers racing a replace see v1 or v2, whole, never a mix or an error.
  const reads = Array.from({ length: 30 }, () => store.bundles.get("b"));
  const put = store.bundles.put("b", v2);
  for (const read of await Promise.all(reads)) {
    const whole = read!.bytes.length === v1.length ? v1 : v2;
    assertEquals(read!.bytes, whole);
  }
  const info = await put;
  assertEquals((await store.bundles.get("b"))!.bytes, v2);
  const keys = await store.client.command([
    "KEYS",
    `${store.keys.bundle("b")}:v:*`,
  ]) as Uint8Array[];
  assertEquals(keys.length, info.chunks, "only the current version's chunks remain");
  assertEquals(await store.bundles.remove("b"), true);
  assertEquals(await store.bundles.get("b"), null);
  assertEquals(await store.client.command(["DBSIZE"]), 0);
});

Deno.test("BundleStore.put() whose commit fails leaves DBSIZE unchanged; committed chunks carry no expiry", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis), {
    bundleChunkBytes: CHUNK,
    maxBundleBytes: LIMIT,
  });
  // Something else owns the bundle's key with another type: the commit fails after the chunks.
  await store.client.command(["SET", store.keys.bundle("taken"), "not a hash"]);
  const before = await store.client.command(["DBSIZE"]);
  await assertRejects(() => store.bundles.put("taken", bytes(CHUNK * 3 + 5)), KeyTypeError);
  assertEquals(await store.client.command(["DBSIZE"]), before);
  // Chunks expire until the commit keeps them (a put that dies midway leaves nothing for long).
  const stored = await store.bundles.put("kept", bytes(CHUNK * 2));
  const chunkKey = store.keys.bundleChunk("kept", stored.version, 0);
  assertEquals(await store.client.command(["PTTL", chunkKey]), -1);
});
