import { assertEquals } from "../_harness/assert.ts";
import {
  type AckedVersion,
  checkReads,
  type ObservedRead,
} from "../../scripts/chaos/read_checker.ts";

const ack = (version: number, ackedAt: number, client = "w"): AckedVersion => ({
  key: "k",
  version,
  client,
  ackedAt,
});
const read = (version: number, issuedAt: number, client = "r"): ObservedRead => ({
  key: "k",
  version,
  client,
  issuedAt,
  servedBy: "replica",
  node: "n1",
});

Deno.test("read checker: a read older than the bound is stale; within it is not", () => {
  const acks = [ack(1, 0), ack(2, 100), ack(3, 200)];
  // Issued at 260 with a 50 ms bound: versions acked before 210 (up to 3) must be seen.
  assertEquals(checkReads(acks, [read(2, 260)], 50).stale, 1);
  assertEquals(checkReads(acks, [read(3, 260)], 50).stale, 0);
  // Issued at 240: only versions acked before 190 (up to 2) are required.
  assertEquals(checkReads(acks, [read(2, 240)], 50).stale, 0);
  assertEquals(checkReads(acks, [read(1, 240)], 50).examples[0]?.required, 2);
});

Deno.test("read checker: a client must see its own acknowledged writes, whatever the bound", () => {
  const acks = [ack(1, 0, "a"), ack(2, 10, "a")];
  const verdict = checkReads(acks, [read(1, 11, "a"), read(1, 11, "b"), read(2, 11, "a")], 1000);
  assertEquals(verdict.readYourWrites, 1);
  assertEquals(verdict.stale, 0);
  assertEquals(verdict.examples[0]?.read.client, "a");
});

Deno.test("read checker: newer than required is fine, a missing key reads as 0", () => {
  const verdict = checkReads([ack(5, 0)], [read(7, 100), read(0, 1)], 10);
  assertEquals(verdict.stale, 0);
  assertEquals(verdict.readYourWrites, 0);
  assertEquals(checkReads([ack(5, 0)], [read(0, 100)], 10).stale, 1);
  assertEquals(verdict.byReplica, 2);
});
