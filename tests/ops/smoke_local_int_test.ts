import { assert, assertEquals } from "../_harness/assert.ts";
import { tempDir, TEST_TMP } from "../_harness/mod.ts";
import { runLocalSmoke } from "../../lib/ops/smoke_local.ts";

Deno.test("runLocalSmoke() survives kill -9 of the primary and cleans up after itself", async () => {
  const lines: string[] = [];
  await using base = await tempDir("smoke-");
  const result = await runLocalSmoke({ baseDir: base.path, report: (l) => lines.push(l) });
  assert(lines.some((l) => l.startsWith("local_initial_write_ok=")));
  assert(lines.some((l) => l.startsWith("local_post_failover_write_read_ok primary=")));
  assert(result.promotedPrimary !== result.initialPrimary);
  assert(result.recoveryMs > 0);
  assertEquals([...Deno.readDirSync(base.path)], [], "the smoke left files behind");
});

Deno.test("runLocalSmoke() stops at once when aborted and names the step", async () => {
  const abort = new AbortController();
  abort.abort(new Error("interrupted"));
  try {
    await runLocalSmoke({ baseDir: TEST_TMP, report: () => {}, signal: abort.signal });
    throw new Error("expected the smoke to fail");
  } catch (error) {
    assert(
      error instanceof Error && error.message.includes('step "start 3 redis + 3 sentinels"'),
      String(error),
    );
  }
});
