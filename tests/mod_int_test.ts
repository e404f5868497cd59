/**
 * The public API's shape: `mod.ts` exports what an application uses and
 * nothing that lets a caller forge a lease or an event.
 */

import { assert, assertEquals, assertRejects, assertThrows } from "./_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "./_harness/mod.ts";
import { runProcess } from "./_harness/process.ts";
import * as mod from "../mod.ts";

/** Internals that once leaked into `mod.ts`: codec, plumbing, CLI helpers. */
const INTERNALS = [
  "RespReader",
  "encodeCommand",
  "GroupWait",
  "Script",
  "RedisConnection",
  "SentinelResolver",
  "SentinelWatcher",
  "nextTokenParts",
  "FENCE_BITS",
  "majorityOf",
  "decideMaster",
  "configureCliLogging",
  "UsageError",
  "fieldForVariable",
  "flagForVariable",
  "classifyFailure",
  "HaEventEmitter",
  "keepAliveTiming",
  "runScript",
  "openConnection",
];

Deno.test("mod.ts exports at most 92 documented symbols and no internals", async () => {
  const doc = await runProcess("deno", ["doc", "--json", "mod.ts"]);
  assertEquals(doc.code, 0, doc.stderr);
  const nodes = JSON.parse(doc.stdout).nodes as Record<string, { symbols: { name: string }[] }>;
  const names = Object.values(nodes).flatMap((n) => n.symbols.map((s) => s.name));
  // 92: replica reads added NoReplicaError, ReadFrom, ReadOptions, ServedRead and StateReadOptions.
  assert(names.length <= 92, `${names.length} symbols: ${names.join(", ")}`);
  for (const internal of INTERNALS) {
    assert(!names.includes(internal), `${internal} is exported`);
    assert(!(internal in mod), `${internal} is a runtime export`);
  }
  for (
    const needed of [
      "RedisHaClient",
      "StateStore",
      "acquireLease",
      "FencedError",
      "DIAGNOSTICS_CHANNELS",
    ]
  ) {
    assert(names.includes(needed), `${needed} is missing`);
  }
});

Deno.test("client.events can be listened to but not emitted on; a Lease cannot be forged", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const events = store.client.events as unknown as Record<string, unknown>;
  assertEquals(typeof events.on, "function");
  assertEquals(events.emit, undefined);
  assert(Object.isFrozen(events));
  const off = store.client.events.on("failover", () => {});
  off();

  await using lease = await mod.acquireLease(store, mod.LEADER_LEASE, {
    holder: "a",
    ttlMs: 10_000,
  });
  const LeaseClass = lease.constructor as new (...args: unknown[]) => unknown;
  const forged = assertThrows(
    () => new LeaseClass(store, { lease: "leader", holder: "b", token: 1, ttlMs: 1000 }),
    TypeError,
  );
  assert(forged.message.includes("acquireLease"), forged.message);
  // The held lease still works: forging attempts change nothing.
  await lease.renew();
  const held = await assertRejects(
    () => mod.acquireLease(store, mod.LEADER_LEASE, { holder: "b", ttlMs: 10_000 }),
    mod.LeaseHeldError,
  );
  assertEquals(held.lease, mod.LEADER_LEASE);
});
