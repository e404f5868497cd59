import { assert, assertEquals } from "../_harness/assert.ts";
import { SilenceGuard } from "../../lib/ha/silence_guard.ts";
import type { SentinelAnswer } from "../../lib/ha/resolver_decision.ts";
import { delay } from "../../lib/common/delay.ts";

const here = "10.0.0.1:6379";
const report = (sentinel: string, host: string, flags = "master"): SentinelAnswer => ({
  sentinel,
  kind: "master",
  primary: { host, port: 6379 },
  configEpoch: 2,
  flags: flags.split(","),
});
const clean = [report("s1", "10.0.0.1"), report("s2", "10.0.0.1"), report("s3", "10.0.0.1")];

/** A guard whose sentinels answer `answers()` after `ms`, counting the questions. */
function guard(
  answers: () => SentinelAnswer[],
  ms = 0,
): { guard: SilenceGuard; asked: () => number } {
  let asked = 0;
  const g = new SilenceGuard(async () => {
    asked++;
    await delay(ms);
    return answers();
  });
  g.setDownAfter(40); // a silence of 20 ms makes a primary suspect
  return { guard: g, asked: () => asked };
}

Deno.test("SilenceGuard stays quiet while the primary keeps answering, and without down-after", async () => {
  const { guard: g, asked } = guard(() => clean);
  g.named(here, performance.now());
  g.heard(here);
  assert(!g.suspect(here));
  assertEquals(await g.confirm(here, 2, performance.now()), undefined);
  assertEquals(asked(), 0);
  g.setDownAfter(undefined);
  await delay(30);
  g.heard(here);
  assert(!g.suspect(here), "no threshold, no suspicion");
});

Deno.test("SilenceGuard makes a silent primary suspect until a clean answer asked after the silence", async () => {
  const { guard: g, asked } = guard(() => clean);
  g.named(here, performance.now());
  await delay(30);
  g.heard(here);
  assert(g.suspect(here));
  assertEquals(await g.confirm(here, 2, performance.now()), undefined);
  assertEquals(asked(), 1);
  assert(!g.suspect(here), "cleared");
});

Deno.test("SilenceGuard withholds acknowledgements while a sentinel reports a failover, saying so", async () => {
  let answers = [...clean.slice(0, 2), report("s3", "10.0.0.3", "master,promoted")];
  const { guard: g } = guard(() => answers);
  g.named(here, performance.now());
  await delay(30);
  g.heard(here);
  const evidence = await g.confirm(here, 2, performance.now());
  assert(evidence?.startsWith(`${here} was silent for `), evidence);
  assert(evidence?.endsWith("and sentinel s3 names 10.0.0.3:6379 (config-epoch 2)"), evidence);
  assert(g.suspect(here), "still suspect");
  answers = clean;
  assertEquals(await g.confirm(here, 2, performance.now()), undefined);
});

Deno.test("SilenceGuard shares one question among writes acknowledged before it was asked, never an older one", async () => {
  const { guard: g, asked } = guard(() => clean, 20);
  g.named(here, performance.now());
  await delay(30);
  g.heard(here);
  const ackedAt = performance.now();
  const first = g.confirm(here, 2, ackedAt);
  const same = g.confirm(here, 2, ackedAt);
  // Acknowledged after the question went out: it needs a question of its own.
  const later = g.confirm(here, 2, performance.now() + 1);
  assertEquals(await Promise.all([first, same]), [undefined, undefined]);
  assertEquals(await later, undefined);
  assertEquals(
    asked(),
    1,
    "the first clean answer cleared the silence before the later write asked",
  );
});

Deno.test("SilenceGuard reports sentinels it could not ask as unconfirmed", async () => {
  const g = new SilenceGuard(() => Promise.reject(new Error("no sentinel reachable")));
  g.setDownAfter(40);
  g.named(here, performance.now());
  await delay(30);
  g.heard(here);
  const evidence = await g.confirm(here, 2, performance.now());
  assert(evidence?.includes("the sentinels could not be asked (no sentinel reachable)"), evidence);
});
