import { assertEquals, assertThrows } from "../_harness/assert.ts";
import { ValidationError } from "../../lib/common/state_errors.ts";
import { checkId, jobLeaseName, Keys } from "../../lib/state/keys.ts";

Deno.test("checkId() accepts ordinary ids", () => {
  for (const id of ["job-1", "a", "node_7.box@2", "A".repeat(128)]) {
    assertEquals(checkId("id", id), id);
  }
});

Deno.test("checkId() rejects empty, over-long and key-breaking ids with the field name", () => {
  for (
    const [id, hint] of [
      ["", "empty"],
      ["x".repeat(129), "at most 128"],
      ["a:b", "':'"],
      ["has space", "characters outside"],
      [".hidden", "starts with"],
      ["ünïcode", "characters outside"],
    ]
  ) {
    const error = assertThrows(() => checkId("jobId", id), ValidationError);
    assertEquals(error.field, "jobId");
    assertEquals(error.message.includes(hint!), true, `${id}: ${error.message}`);
  }
  assertThrows(() => checkId("jobId", 42 as unknown as string), ValidationError);
});

Deno.test("Keys puts every record under its namespace", () => {
  const k = new Keys("ns1");
  for (
    const key of [
      k.job("j"),
      k.jobIndex(),
      k.events("j"),
      k.node("n"),
      k.bundle("b"),
      k.lease("leader"),
      k.fence("leader"),
    ]
  ) {
    assertEquals(key.startsWith("ns1:"), true, key);
  }
  assertEquals(k.bundleChunk("b", "v1", 3), "ns1:bundle:b:v:v1:3");
  assertEquals(jobLeaseName("j-9"), "job.j-9");
});
