import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import fc from "fast-check";
import {
  composeToken,
  decomposeToken,
  FENCE_BITS,
  type FenceParts,
  nextTokenParts,
} from "../../lib/state/fencing.ts";

Deno.test("composeToken() and decomposeToken() round-trip every valid part", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 2 ** FENCE_BITS.epoch - 1 }),
    fc.integer({ min: 0, max: 2 ** FENCE_BITS.bump - 1 }),
    fc.integer({ min: 0, max: 2 ** FENCE_BITS.counter - 1 }),
    (epoch, bump, counter) => {
      const token = composeToken({ epoch, bump, counter });
      assert(Number.isSafeInteger(token));
      assertEquals(decomposeToken(token), { epoch, bump, counter });
    },
  ));
});

Deno.test("composeToken() orders tokens by epoch, then bump, then counter", () => {
  fc.assert(fc.property(
    fc.tuple(fc.nat(1000), fc.nat(4095), fc.nat(2 ** 24 - 1)),
    fc.tuple(fc.nat(1000), fc.nat(4095), fc.nat(2 ** 24 - 1)),
    ([e1, b1, c1], [e2, b2, c2]) => {
      const a = composeToken({ epoch: e1, bump: b1, counter: c1 });
      const b = composeToken({ epoch: e2, bump: b2, counter: c2 });
      const lexical = e1 - e2 || b1 - b2 || c1 - c2;
      assertEquals(Math.sign(a - b), Math.sign(lexical));
    },
  ));
});

Deno.test("composeToken() rejects parts that do not fit", () => {
  assertThrows(() => composeToken({ epoch: 2 ** 17, bump: 0, counter: 0 }), RangeError);
  assertThrows(() => composeToken({ epoch: 0, bump: -1, counter: 0 }), RangeError);
  assertThrows(() => composeToken({ epoch: 0, bump: 0, counter: 2 ** 24 }), RangeError);
  assertThrows(() => decomposeToken(-1), RangeError);
});

Deno.test("nextTokenParts() counts up within one timeline and epoch", () => {
  const stored = { epoch: 3, bump: 1, counter: 7, replid: "a" };
  assertEquals(nextTokenParts({ stored, replid: "a", epochHint: 3 }), {
    epoch: 3,
    bump: 1,
    counter: 8,
  });
  assertEquals(nextTokenParts({ stored: undefined, replid: "a", epochHint: 2 }), {
    epoch: 2,
    bump: 0,
    counter: 0,
  });
});

Deno.test("nextTokenParts() jumps past every lost grant after a Sentinel failover", () => {
  // The old primary (epoch 1) granted tokens that never replicated; the replica saw only counter 4.
  const onReplica = { epoch: 1, bump: 0, counter: 4, replid: "old" };
  const lostGrants = [5, 6, 7, 1_000_000].map((counter) =>
    composeToken({ epoch: 1, bump: 0, counter })
  );
  const next = composeToken(nextTokenParts({ stored: onReplica, replid: "new", epochHint: 2 }));
  for (const lost of lostGrants) assert(next > lost, `${next} must beat lost ${lost}`);
});

Deno.test("nextTokenParts() bumps on a timeline change without a new Sentinel epoch", () => {
  const stored = { epoch: 0, bump: 0, counter: 9, replid: "a" };
  const next = nextTokenParts({ stored, replid: "b", epochHint: 0 });
  assertEquals(next, { epoch: 0, bump: 1, counter: 0 });
  assert(composeToken(next) > composeToken(stored));
});

Deno.test("nextTokenParts() rolls the counter into the bump instead of overflowing", () => {
  const stored = { epoch: 0, bump: 0, counter: 2 ** 24 - 1, replid: "a" };
  assertEquals(nextTokenParts({ stored, replid: "a", epochHint: 0 }), {
    epoch: 0,
    bump: 1,
    counter: 0,
  });
});

Deno.test("nextTokenParts() never goes backwards for any history of grants and failovers", () => {
  fc.assert(fc.property(
    fc.array(fc.record({ failover: fc.boolean(), replidChange: fc.boolean(), grants: fc.nat(5) }), {
      maxLength: 30,
    }),
    (steps) => {
      let stored: (FenceParts & { replid: string }) | undefined;
      let epoch = 0;
      let replid = "r0";
      let last = -1;
      steps.forEach((step, i) => {
        if (step.failover) epoch++;
        if (step.failover || step.replidChange) replid = `r${i + 1}`;
        for (let g = 0; g < step.grants; g++) {
          const parts = nextTokenParts({ stored, replid, epochHint: epoch });
          const token = composeToken(parts);
          assert(token > last, `token ${token} after ${last}`);
          last = token;
          stored = { ...parts, replid };
        }
      });
    },
  ));
});
