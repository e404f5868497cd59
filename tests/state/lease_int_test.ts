import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import {
  openStore,
  sentinelConfig,
  singleConfig,
  startCluster,
  startRedis,
  waitFor,
} from "../_harness/mod.ts";
import {
  FencedError,
  LeaseHeldError,
  LeaseLostError,
  ValidationError,
} from "../../lib/common/state_errors.ts";
import { decomposeToken } from "../../lib/state/fencing.ts";
import { jobLeaseName, LEADER_LEASE } from "../../lib/state/keys.ts";
import { acquireLease, campaign, observeLease } from "../../lib/state/lease.ts";
import type { StateStore } from "../../lib/state/state_store.ts";
import { FakeClock } from "../_harness/fake_clock.ts";

/** Contenders race for the leader lease; each holds it briefly, then releases. */
async function race(stores: StateStore[], handOvers: number): Promise<number[]> {
  const tokens: number[] = [];
  let holders = 0;
  let remaining = handOvers;
  await Promise.all(stores.map(async (store, i) => {
    while (remaining > 0) {
      const lease = await campaign(store, LEADER_LEASE, {
        holder: `contender-${i}`,
        ttlMs: 5000,
        retryPeriodMs: 5,
      });
      holders++;
      assertEquals(holders, 1, "two contenders held the leader lease at once");
      tokens.push(lease.token);
      assertEquals((await observeLease(store, LEADER_LEASE))?.holder, `contender-${i}`);
      remaining--;
      holders--;
      assert(await lease.release());
    }
  }));
  return tokens;
}

function assertIncreasing(tokens: number[]): void {
  for (let i = 1; i < tokens.length; i++) {
    assert(
      tokens[i]! > tokens[i - 1]!,
      `token ${tokens[i]} after ${tokens[i - 1]} (hand-over ${i})`,
    );
  }
}

Deno.test("acquireLease() with 2 and 10 contenders: one holder at a time, tokens strictly increase", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis);
  for (const contenders of [2, 10]) {
    const stores = await Promise.all(Array.from({ length: contenders }, () => openStore(config)));
    try {
      const tokens = await race(stores, 60);
      assertEquals(tokens.length >= 60, true);
      assertIncreasing(tokens);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }
});

Deno.test("acquireLease() refuses a held lease and hands the same grant back to its own holder", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  await using first = await acquireLease(store, "leader", { holder: "a", ttlMs: 10_000 });
  const held = await assertRejects(
    () => acquireLease(store, "leader", { holder: "b", ttlMs: 10_000 }),
    LeaseHeldError,
  );
  assertEquals([held.lease, held.holder, held.token], ["leader", "a", first.token]);
  assert(held.ttlMs > 0 && held.ttlMs <= 10_000);
  // A retry by the same holder (e.g. after a lost reply) gets its own grant, not a new token.
  const again = await acquireLease(store, "leader", { holder: "a", ttlMs: 10_000 });
  assertEquals(again.token, first.token);
  await assertRejects(
    () => acquireLease(store, "bad name", { holder: "a", ttlMs: 1000 }),
    ValidationError,
  );
  await assertRejects(
    () => acquireLease(store, "leader", { holder: "a", ttlMs: 1 }),
    ValidationError,
  );
});

Deno.test("a holder that stopped renewing past its TTL cannot write; the new holder's writes stand", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const lease = jobLeaseName("job-1");
  await store.jobs.create("job-1", { owner: "none" });
  const stale = await acquireLease(store, lease, { holder: "worker-a", ttlMs: 200 });
  await store.jobs.update("job-1", { expectedVersion: 1, data: { owner: "a" }, fence: stale });
  // worker-a "pauses" (no renewals) until its lease expires and worker-b takes over.
  await waitFor(
    async () =>
      (await observeLease(store, lease)) === null
        ? { done: true, value: undefined }
        : { done: false, observed: "still held" },
    { what: "worker-a's lease to expire", timeoutMs: 5000 },
  );
  await using fresh = await acquireLease(store, lease, { holder: "worker-b", ttlMs: 10_000 });
  assert(fresh.token > stale.token);
  await store.jobs.update("job-1", { expectedVersion: 2, data: { owner: "b" }, fence: fresh });
  // worker-a wakes up and writes with its old token: rejected everywhere.
  const fenced = await assertRejects(
    () => store.jobs.update("job-1", { expectedVersion: 3, data: { owner: "a" }, fence: stale }),
    FencedError,
  );
  assertEquals([fenced.expected, fenced.presented], [fresh.token, stale.token]);
  await assertRejects(
    () => store.events.append("job-1", { id: "a-1", type: "t" }, { fence: stale }),
    FencedError,
  );
  await assertRejects(
    () => store.snapshots.save("job-1", "agent", 9, {}, { fence: stale }),
    FencedError,
  );
  assertEquals((await store.jobs.get("job-1"))!.data, { owner: "b" });
  assertEquals(await store.events.read("job-1"), []);
  // Renewal never re-creates or steals: worker-a learns it lost the lease.
  await assertRejects(() => stale.renew(), LeaseLostError);
  assert(stale.lost && stale.signal.aborted);
  assertEquals((await observeLease(store, lease))?.holder, "worker-b");
});

Deno.test("renew() never re-creates a lease that expired", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const lease = await acquireLease(store, "leader", { holder: "a", ttlMs: 100 });
  await waitFor(
    async () =>
      (await observeLease(store, "leader")) === null
        ? { done: true, value: undefined }
        : { done: false, observed: "held" },
    { what: "the lease to expire", timeoutMs: 5000 },
  );
  const lost = await assertRejects(() => lease.renew(), LeaseLostError);
  assert(lost.message.includes("expired"));
  assertEquals(await observeLease(store, "leader"), null);
});

Deno.test("keep-alive holds a lease past its TTL and reports a loss before anyone else can be granted it", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, {
    reconnectBackoffMs: 20,
    reconnectMaxBackoffMs: 50,
    reconnectAttempts: 1000,
  });
  await using store = await openStore(config);
  await using other = await openStore(config);
  const ttlMs = 600;
  let lostAt = 0;
  await using lease = await acquireLease(store, "leader", {
    holder: "keeper",
    ttlMs,
    keepAlive: {
      renewDeadlineMs: 400,
      retryPeriodMs: 100,
      driftMs: 60,
      onLost: () => lostAt = performance.now(),
    },
  });
  // Three TTLs later it is still held, by renewals alone.
  const started = performance.now();
  await waitFor(
    () =>
      performance.now() - started > 3 * ttlMs
        ? { done: true, value: undefined }
        : { done: false, observed: "waiting" },
    { what: "three TTLs to pass", timeoutMs: 5000, intervalMs: 100 },
  );
  assertEquals((await observeLease(other, "leader"))?.token, lease.token);
  assert(!lease.lost);
  // The server hangs: renewals stop succeeding.
  const stoppedAt = performance.now();
  redis.kill("SIGSTOP");
  await waitFor(
    () => lease.lost ? { done: true, value: undefined } : { done: false, observed: "not lost yet" },
    {
      what: "the keeper to report the loss",
      timeoutMs: 5000,
    },
  );
  redis.kill("SIGCONT");
  // The last successful renewal was sent before the stop, so the server keeps the lease at
  // least ttlMs after that: the holder knew before anyone else could take it.
  assert(lostAt - stoppedAt < ttlMs, `loss reported ${lostAt - stoppedAt}ms after the stop`);
  const taken = await campaign(other, "leader", { holder: "successor", ttlMs, retryPeriodMs: 20 });
  const takenAt = performance.now();
  assert(lostAt < takenAt);
  assert(taken.token > lease.token);
  await taken.release();
  await assertRejects(
    () =>
      acquireLease(store, "leader", {
        holder: "x",
        ttlMs: 1000,
        keepAlive: { renewDeadlineMs: 990, driftMs: 100 },
      }),
    ValidationError,
  );
  assertEquals(
    await observeLease(store, "leader"),
    null,
    "a rejected keep-alive option grants nothing",
  );
});

Deno.test("a grant lost in a failover is never reissued: the next token is higher and the lost one is fenced", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 0 });
  await using store = await openStore(config);
  const lease = jobLeaseName("job-x");
  await store.jobs.create("job-x", { step: 0 });
  const first = await acquireLease(store, lease, { holder: "a", ttlMs: 60_000 });
  await first.release();
  await cluster.waitReplicasInSync(cluster.nodes[0]!.endpoint);
  // Cut replication: freeze the replicas and drop their links, so they cannot reconnect and
  // will never see the next grant (SIGSTOP alone leaves it in their socket buffers).
  const [primary, ...replicas] = cluster.nodes;
  for (const r of replicas) r.kill("SIGSTOP");
  {
    await using admin = await primary!.connect();
    await admin.send(["CLIENT", "KILL", "TYPE", "replica"]);
  }
  const lost = await acquireLease(store, lease, { holder: "b", ttlMs: 60_000 });
  await store.jobs.update("job-x", { expectedVersion: 1, data: { step: "b" }, fence: lost });
  primary!.kill("SIGKILL");
  await primary!.waitExit();
  for (const r of replicas) r.kill("SIGCONT");
  await cluster.waitForAgreement({ excluding: primary!.endpoint, timeoutMs: 60_000 });
  // The promoted replica never saw b's grant (or its write).
  assertEquals(await observeLease(store, lease), null);
  assertEquals((await store.jobs.get("job-x"))!.data, { step: 0 });
  const next = await acquireLease(store, lease, { holder: "c", ttlMs: 60_000 });
  assert(next.token > lost.token, `new token ${next.token} must beat the lost ${lost.token}`);
  assert(decomposeToken(next.token).epoch > decomposeToken(lost.token).epoch);
  const fenced = await assertRejects(
    () =>
      store.jobs.update("job-x", { expectedVersion: 1, data: { step: "b-again" }, fence: lost }),
    FencedError,
  );
  assertEquals([fenced.expected, fenced.presented], [next.token, lost.token]);
  await store.jobs.update("job-x", { expectedVersion: 1, data: { step: "c" }, fence: next });
  assertEquals((await store.jobs.get("job-x"))!.data, { step: "c" });
  await next.release();
});

Deno.test("the keep-alive runs on the lease's clock: it renews when that clock reaches the period and gives up at its renewDeadlineMs", async () => {
  await using redis = await startRedis();
  await using store = await openStore(singleConfig(redis));
  const clock = new FakeClock();
  await using lease = await acquireLease(store, "job.clocked", {
    holder: "h",
    ttlMs: 3000, // period 750 ms, deadline 2000 ms
    keepAlive: {},
    clock,
  });
  const pttl = async (): Promise<number> =>
    Number(await store.client.command(["PTTL", store.keys.lease("job.clocked")]));
  // Real time passes, the lease's clock does not: no renewal yet.
  await waitFor(async () => {
    const left = await pttl();
    return left < 2900 ? { done: true, value: undefined } : { done: false, observed: `${left}` };
  }, { what: "the TTL to run down a little", timeoutMs: 5000, intervalMs: 20 });
  await clock.advance(750);
  await waitFor(async () => {
    const left = await pttl();
    return left > 2900 ? { done: true, value: undefined } : { done: false, observed: `${left}` };
  }, { what: "a renewal at the period", timeoutMs: 5000, intervalMs: 10 });
  // The server hangs (SIGSTOP): renewals cannot succeed, and the deadline is the clock's.
  redis.kill("SIGSTOP");
  try {
    await clock.advance(750);
    assert(!lease.lost, "not before the deadline");
    await clock.advance(1300);
    assert(lease.lost, "lost at renewDeadlineMs of its clock");
    assert(String(lease.signal.reason).includes("renewDeadlineMs (2000ms)"));
  } finally {
    redis.kill("SIGCONT");
  }
});
