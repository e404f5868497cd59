import { assertEquals } from "../_harness/assert.ts";
import { Script } from "../../lib/protocol/script.ts";

// Scripts are declared at module level all over lib/; a digest started by the
// constructor outlives a test that merely imports such a module (the CLI's
// lazily imported commands), and Deno's op sanitizer fails that test.
// A large source keeps a digest busy long enough for the sanitizer to see it.
Deno.test("new Script() starts no asynchronous work", () => {
  new Script("large", `return '${"x".repeat(32 << 20)}'`);
});

Deno.test("Script.sha1() is the SHA-1 EVALSHA expects (of the source with its #!lua line), computed once", async () => {
  const script = new Script("one", "return 1");
  const first = script.sha1();
  assertEquals(script.sha1(), first);
  assertEquals(await first, "cb70127618f0b0be70c53cf6bfcfa54a29d9b0c0");
});

Deno.test("a Script declares its flag to Redis on its #!lua line", () => {
  assertEquals(new Script("w", "return 1").source, "#!lua\nreturn 1");
  assertEquals(new Script("r", "return 1", "no-writes").source, "#!lua flags=no-writes\nreturn 1");
  assertEquals(new Script("o", "return 1", "allow-oom").source, "#!lua flags=allow-oom\nreturn 1");
});
