import { assert, assertEquals } from "./_harness/assert.ts";
import { waitBudgetWarning } from "../lib/wait_budget.ts";

Deno.test("waitBudgetWarning warns when WAIT needs every replica, and says what to do", () => {
  assertEquals(waitBudgetWarning(0, 1), undefined, "WAIT off");
  assertEquals(waitBudgetWarning(1, 2), undefined, "one box may go");
  const two = waitBudgetWarning(1, 1)!;
  assert(two.includes("losing one box stops every durable write"), two);
  assert(two.includes("MN_REDIS_WAIT_REPLICAS=0"), two);
  const three = waitBudgetWarning(2, 2)!;
  assert(three.includes("MN_REDIS_WAIT_REPLICAS=1"), three);
  const none = waitBudgetWarning(1, 0)!;
  assert(none.includes("every durable write fails now"), none);
});
