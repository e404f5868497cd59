import { assertEquals, assertRejects, assertThrows } from "./_harness/assert.ts";
import { GroupWait } from "../lib/durable_write.ts";
import { WaitError } from "../lib/errors.ts";
import type { RespArg, RespReply } from "../lib/resp.ts";

/** Records what GroupWait sends and answers WAIT with `acked`. */
function recorder(
  acked: number,
): { sent: RespArg[][]; send: (args: readonly RespArg[]) => Promise<RespReply> } {
  const sent: RespArg[][] = [];
  return { sent, send: (args) => (sent.push([...args]), Promise.resolve(acked)) };
}

Deno.test("GroupWait covers writes acknowledged in the same tick with one WAIT", async () => {
  const r = recorder(1);
  const wait = new GroupWait(r.send, 1, 100);
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => wait.confirm(Promise.resolve(`ok-${i}`))),
  );
  assertEquals(results[49], "ok-49");
  assertEquals(r.sent, [["WAIT", 1, 100]]);
  await wait.confirm(Promise.resolve("later"));
  assertEquals(r.sent.length, 2, "a later write gets its own WAIT");
});

Deno.test("GroupWait reports acked/required when too few replicas acknowledge", async () => {
  const wait = new GroupWait(recorder(0).send, 2, 50);
  const error = await assertRejects(() => wait.confirm(Promise.resolve("ok")), WaitError);
  assertEquals([error.acked, error.required, error.timeoutMs], [0, 2, 50]);
});

Deno.test("GroupWait sends no WAIT for a write that failed", async () => {
  const r = recorder(1);
  const wait = new GroupWait(r.send, 1, 100);
  await assertRejects(() => wait.confirm(Promise.reject(new TypeError("write failed"))), TypeError);
  assertEquals(r.sent, []);
  assertThrows(() => new GroupWait(r.send, 0, 100), RangeError);
});
