import { assertEquals } from "../_harness/assert.ts";
import { Script } from "../../lib/protocol/script.ts";

// Scripts are declared at module level all over lib/; a digest started by the
// constructor outlives a test that merely imports such a module (the CLI's
// lazily imported commands), and Deno's op sanitizer fails that test.
// A large source keeps a digest busy long enough for the sanitizer to see it.
Deno.test("new Script() starts no asynchronous work", () => {
  new Script("large", `return '${"x".repeat(32 << 20)}'`);
});

Deno.test("Script.sha1() is the SHA-1 EVALSHA expects, computed once", async () => {
  const script = new Script("one", "return 1");
  const first = script.sha1();
  assertEquals(script.sha1(), first);
  assertEquals(await first, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
});
