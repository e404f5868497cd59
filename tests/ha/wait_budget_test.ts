import { assert, assertEquals } from "../_harness/assert.ts";
import { waitBudgetWarning } from "../../lib/ha/wait_budget.ts";

/** `online` replicas online, and `down` more listed in another state. */
const replicas = (online: number, down = 0): { state: string }[] => [
  ...Array.from({ length: online }, () => ({ state: "online" })),
  ...Array.from({ length: down }, () => ({ state: "wait_bgsave" })),
];

Deno.test("waitBudgetWarning warns when WAIT needs every replica, and says what to do", () => {
  assertEquals(waitBudgetWarning(0, replicas(1)), undefined, "WAIT off");
  assertEquals(waitBudgetWarning(1, replicas(2)), undefined, "one box may go");
  assert(waitBudgetWarning(1, replicas(1, 1)) !== undefined, "only online replicas count");
  const two = waitBudgetWarning(1, replicas(1))!;
  assert(two.includes("losing one box stops every durable write"), two);
  assert(two.includes("MN_REDIS_WAIT_REPLICAS=0"), two);
  const three = waitBudgetWarning(2, replicas(2))!;
  assert(three.includes("MN_REDIS_WAIT_REPLICAS=1"), three);
  const none = waitBudgetWarning(1, replicas(0))!;
  assert(none.includes("every durable write fails now"), none);
});
