import { assert, assertEquals } from "../_harness/assert.ts";
import { ReadFreshness } from "../../lib/ha/read_freshness.ts";

const S1 = { name: "session 1" };
const S2 = { name: "session 2" };

Deno.test("ReadFreshness: a sample proves a read only when sent within the bound and after the read's writes", () => {
  const f = new ReadFreshness<typeof S1>();
  f.add({ offset: 100, sentAt: 1000, mark: f.mark, session: S1 });
  const need = { issuedAt: 1050, mark: f.mark, maxLagMs: 100, session: S1 };
  assertEquals(f.requiredOffset(need), 100);
  // Older than the bound: no proof.
  assertEquals(f.requiredOffset({ ...need, issuedAt: 1101 }), undefined);
  // A write completed since: the sample cannot show it (read-your-writes).
  f.wrote();
  assertEquals(f.requiredOffset({ ...need, mark: f.mark }), undefined);
  // Another session's offsets mean nothing here.
  assertEquals(f.requiredOffset({ ...need, session: S2 }), undefined);
});

Deno.test("ReadFreshness: the oldest fitting sample sets the (lowest) offset to meet", () => {
  const f = new ReadFreshness<typeof S1>();
  f.add({ offset: 100, sentAt: 1000, mark: 0, session: S1 });
  f.add({ offset: 180, sentAt: 1040, mark: 0, session: S1 });
  assertEquals(f.requiredOffset({ issuedAt: 1050, mark: 0, maxLagMs: 100, session: S1 }), 100);
  assertEquals(f.requiredOffset({ issuedAt: 1120, mark: 0, maxLagMs: 100, session: S1 }), 180);
  // A sample of a new session drops the old one's.
  f.add({ offset: 5, sentAt: 1200, mark: 0, session: S2 });
  assertEquals(f.newestAge(S1, 1300), Infinity);
  assertEquals(f.newestAge(S2, 1300), 100);
});

Deno.test("ReadFreshness.ensure: reads waiting together share one sample; a read after a write takes a new one", async () => {
  const f = new ReadFreshness<typeof S1>();
  let now = 0;
  let taken = 0;
  const take = (): Promise<number> => {
    taken++;
    return Promise.resolve(taken * 100);
  };
  const need = { issuedAt: 0, mark: f.mark, maxLagMs: 0, session: S1 };
  const [a, b] = await Promise.all([
    f.ensure(need, () => now, take),
    f.ensure(need, () => now, take),
  ]);
  assertEquals([a, b, taken], [100, 100, 1]);
  f.wrote();
  now = 5;
  assertEquals(await f.ensure({ ...need, issuedAt: 5, mark: f.mark }, () => now, take), 200);
  assertEquals(taken, 2);
  // A failing sample rejects the read (the caller falls back to the primary).
  let failed = false;
  await f.ensure(
    { ...need, issuedAt: 10, mark: f.mark },
    () => 10,
    () => Promise.reject(new Error("down")),
  )
    .catch(() => failed = true);
  assert(failed);
});
