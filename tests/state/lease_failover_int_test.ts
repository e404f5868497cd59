/**
 * Leases through repeated primary kills: contenders campaign with keep-alive
 * while the primary is killed three times in a row; at no instant may two of
 * them believe they hold the lease.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { openStore, sentinelConfig, startCluster, waitFor } from "../_harness/mod.ts";
import { LEADER_LEASE } from "../../lib/state/keys.ts";
import { campaign } from "../../lib/state/lease.ts";
import { delay } from "../../lib/common/delay.ts";
import type { StateStore } from "../../lib/state/state_store.ts";

interface Held {
  holder: string;
  from: number;
  to: number;
  token: number;
}

/** Total time two different holders' intervals overlap. */
function overlapMs(intervals: readonly Held[]): number {
  let total = 0;
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i];
      const b = intervals[j];
      if (a!.holder === b!.holder) continue;
      total += Math.max(0, Math.min(a!.to, b!.to) - Math.max(a!.from, b!.from));
    }
  }
  return total;
}

Deno.test("leases through 3 consecutive primary kills: the holders' 'I hold it' intervals never overlap", async () => {
  await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
  const config = sentinelConfig(cluster, { waitReplicas: 1, waitTimeoutMs: 500 });
  const stores: StateStore[] = [];
  const stop = new AbortController();
  const held: Held[] = [];
  let contenders: Promise<void>[] = [];
  /** Waits until the contenders made `count` more grants. */
  const grants = (count: number): Promise<void> => {
    const target = held.length + count;
    return waitFor(
      () =>
        held.length >= target
          ? { done: true, value: undefined }
          : { done: false, observed: `${held.length} of ${target} grants` },
      { what: "lease hand-overs", timeoutMs: 30_000 },
    );
  };
  try {
    for (let i = 0; i < 3; i++) stores.push(await openStore(config));
    contenders = stores.map(async (store, i) => {
      const holder = `contender-${i}`;
      while (!stop.signal.aborted) {
        try {
          const lease = await campaign(store, LEADER_LEASE, {
            holder,
            ttlMs: 3000,
            retryPeriodMs: 50,
            keepAlive: {},
            signal: stop.signal,
          });
          const from = performance.now();
          let to = Number.POSITIVE_INFINITY;
          lease.signal.addEventListener("abort", () => to = Math.min(to, performance.now()), {
            once: true,
          });
          // Hold it for a while (or until lost), then hand it over.
          await delay(400 + 300 * i, AbortSignal.any([lease.signal, stop.signal])).catch(() => {});
          to = Math.min(to, performance.now());
          held.push({ holder, from, to, token: lease.token });
          await lease.release().catch(() => {});
        } catch {
          // Failover in progress (WaitError, retries exhausted…): campaign again.
          await delay(50, stop.signal).catch(() => {});
        }
      }
    });
    for (let kill = 0; kill < 3; kill++) {
      const primary = await cluster.waitForAgreement({ timeoutMs: 30_000 });
      const victim = cluster.node(primary);
      await grants(2); // Hand-overs on this primary before it dies.
      victim.kill("SIGKILL");
      await victim.waitExit();
      const next = await cluster.waitForAgreement({ excluding: primary, timeoutMs: 30_000 });
      // The killed node comes back as a replica of the new primary, on its old port.
      await cluster.restartAsReplica(primary, next);
    }
    await grants(2);
  } finally {
    stop.abort();
    await Promise.allSettled(contenders);
    await Promise.all(stores.map((s) => s.close()));
  }
  const holders = new Set(held.map((h) => h.holder));
  // deno-lint-ignore no-console -- the measured figures, quoted in the README
  console.log(`${held.length} grants to ${holders.size} holders, overlap ${overlapMs(held)}ms`);
  assert(held.length >= 6, `only ${held.length} grants`);
  assertEquals(overlapMs(held), 0);
  // Tokens of successive grants increase, across the failovers too.
  const byStart = [...held].sort((a, b) => a.from - b.from);
  for (let i = 1; i < byStart.length; i++) {
    if (byStart[i]!.holder === byStart[i - 1]!.holder) continue;
    assert(byStart[i]!.token > byStart[i - 1]!.token, `token went back at grant ${i}`);
  }
});
