import { assertEquals } from "../_harness/assert.ts";
import { Secret } from "../../lib/common/secret.ts";

Deno.test("Secret prints *** everywhere but reveal()", () => {
  const s = new Secret("hunter2");
  assertEquals(String(s), "***");
  assertEquals(`${s}`, "***");
  assertEquals(JSON.stringify({ s }), '{"s":"***"}');
  assertEquals(Deno.inspect({ s }).includes("hunter2"), false);
  assertEquals(s.reveal(), "hunter2");
});
