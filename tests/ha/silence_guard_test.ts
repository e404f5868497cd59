import { assert, assertEquals } from "../_harness/assert.ts";
import { FakeClock, settle } from "../_harness/fake_clock.ts";
import { SilenceGuard } from "../../lib/ha/silence_guard.ts";
import type { SentinelAnswer } from "../../lib/ha/resolver_decision.ts";

const here = "10.0.0.1:6379";
const report = (sentinel: string, host: string, flags = "master"): SentinelAnswer => ({
  sentinel,
  kind: "master",
  primary: { host, port: 6379 },
  configEpoch: 2,
  flags: flags.split(","),
});
const clean = [report("s1", "10.0.0.1"), report("s2", "10.0.0.1"), report("s3", "10.0.0.1")];

/**
 * A guard on a fake clock whose sentinels answer `answers()` `ms` later (of
 * that clock), counting the questions. down-after 40 ms: a silence of 20 ms
 * makes a primary suspect.
 */
function guard(
  answers: () => SentinelAnswer[],
  ms = 0,
): { guard: SilenceGuard; asked: () => number; clock: FakeClock } {
  let asked = 0;
  const clock = new FakeClock();
  const g = new SilenceGuard(async () => {
    asked++;
    await clock.sleep(ms);
    return answers();
  }, clock);
  g.setDownAfter(40);
  return { guard: g, asked: () => asked, clock };
}

/** Settles `promise` while the clock moves on in steps of 1 ms (a sentinel that answers later). */
async function answered<T>(clock: FakeClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const result = promise.finally(() => done = true);
  while (!done) await clock.advance(1);
  return await result;
}

Deno.test("SilenceGuard stays quiet while the primary keeps answering, and without down-after", async () => {
  const { guard: g, asked, clock } = guard(() => clean);
  g.named(here, clock.now());
  await clock.advance(19); // just under the 20 ms threshold
  g.heard(here);
  assert(!g.suspect(here));
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
  assertEquals(asked(), 0);
  g.setDownAfter(undefined);
  await clock.advance(30);
  g.heard(here);
  assert(!g.suspect(here), "no threshold, no suspicion");
});

Deno.test("SilenceGuard makes a silent primary suspect until a clean answer asked after the silence", async () => {
  const { guard: g, asked, clock } = guard(() => clean);
  g.named(here, clock.now());
  await clock.advance(20); // exactly the threshold
  g.heard(here);
  assert(g.suspect(here));
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
  assertEquals(asked(), 1);
  assert(!g.suspect(here), "cleared");
});

Deno.test("SilenceGuard withholds acknowledgements while a sentinel reports a failover, saying so", async () => {
  let answers = [...clean.slice(0, 2), report("s3", "10.0.0.3", "master,promoted")];
  const { guard: g, clock } = guard(() => answers);
  g.named(here, clock.now());
  await clock.advance(30);
  g.heard(here);
  const evidence = await g.confirm(here, 2, clock.now());
  assertEquals(
    evidence,
    `${here} was silent for 30ms and sentinel s3 names 10.0.0.3:6379 (config-epoch 2)`,
  );
  assert(g.suspect(here), "still suspect");
  answers = clean;
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
});

Deno.test("SilenceGuard shares one question among writes acknowledged before it was asked, never an older one", async () => {
  const { guard: g, asked, clock } = guard(() => clean, 20);
  g.named(here, clock.now());
  await clock.advance(30);
  g.heard(here);
  const ackedAt = clock.now();
  const first = g.confirm(here, 2, ackedAt);
  const same = g.confirm(here, 2, ackedAt);
  await settle();
  assertEquals(asked(), 1, "one question for both");
  // Acknowledged after the question went out: it needs a question of its own.
  const later = g.confirm(here, 2, clock.now() + 1);
  assertEquals(await answered(clock, Promise.all([first, same])), [undefined, undefined]);
  assertEquals(await answered(clock, later), undefined);
  assertEquals(
    asked(),
    1,
    "the first clean answer cleared the silence before the later write asked",
  );
});

Deno.test("SilenceGuard reports sentinels it could not ask as unconfirmed", async () => {
  const clock = new FakeClock();
  const g = new SilenceGuard(() => Promise.reject(new Error("no sentinel reachable")), clock);
  g.setDownAfter(40);
  g.named(here, clock.now());
  await clock.advance(30);
  g.heard(here);
  const evidence = await g.confirm(here, 2, clock.now());
  assert(evidence?.includes("the sentinels could not be asked (no sentinel reachable)"), evidence);
});

Deno.test("SilenceGuard treats write refusals (MISCONF) like a silence: suspect until the sentinels, asked after the last refusal, report no failover", async () => {
  let answers = [
    report("s1", "10.0.0.1", "master,o_down"),
    report("s2", "10.0.0.1"),
    report("s3", "10.0.0.1"),
  ];
  const { guard: g, asked, clock } = guard(() => answers);
  g.named(here, clock.now());
  g.heard(here);
  g.refused(here);
  assert(g.suspect(here), "a refusal makes the primary suspect at once");
  await clock.advance(5);
  g.refused(here);
  g.heard(here);
  // The sentinels see it down: an acknowledgement after the refusals is not confirmed.
  const evidence = await g.confirm(here, 2, clock.now());
  assert(evidence?.includes("refused writes (it could not persist) for 5ms"), evidence);
  assert(g.suspect(here));
  // Once they report it healthy, the suspicion ends.
  answers = clean;
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
  assert(!g.suspect(here));
  assertEquals(asked(), 2);
});

Deno.test("SilenceGuard: a primary a sentinel reported down (+odown) is in doubt until the sentinels, asked after, report no failover of it", async () => {
  let answers = [report("s1", "10.0.0.1", "master,o_down"), ...clean.slice(1)];
  const { guard: g, asked, clock } = guard(() => answers);
  g.named(here, clock.now());
  // No silence: the primary keeps answering, and only the event puts it in doubt.
  g.heard(here);
  assert(!g.suspect(here));
  g.doubted(here, "was reported down by sentinel s1 (+odown)");
  assert(g.suspect(here));
  assertEquals(
    await g.confirm(here, 2, clock.now()),
    `${here} was reported down by sentinel s1 (+odown) and sentinel s1 flags ${here} o_down`,
  );
  assert(g.suspect(here), "still in doubt");
  // The leader of a (spurious) failover names the node it promoted: still not confirmed.
  answers = [...clean.slice(0, 2), report("s3", "10.0.0.3", "master,promoted")];
  await clock.advance(1);
  assertEquals(
    await g.confirm(here, 2, clock.now()),
    `${here} was reported down by sentinel s1 (+odown) and sentinel s3 names 10.0.0.3:6379 (config-epoch 2)`,
  );
  // Every sentinel names it again with no down flag: cleared, and later writes ask nothing.
  answers = clean;
  await clock.advance(1);
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
  assert(!g.suspect(here));
  const before = asked();
  assertEquals(await g.confirm(here, 2, clock.now()), undefined);
  assertEquals(asked(), before);
});
