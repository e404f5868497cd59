/**
 * `deploy/prometheus/`: the alert rules and the scrape example pass
 * `promtool check`, and the rules fire as their unit tests say
 * (`promtool test rules`).
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { runProcess } from "../_harness/process.ts";

const DIR = "deploy/prometheus";

Deno.test("the alert rules and the scrape example pass promtool; the rules' unit tests pass", async () => {
  const rules = await runProcess("bash", [
    "-c",
    `cd ${DIR} && promtool check rules mn-redis-ha.rules.yml`,
  ]);
  assertEquals(rules.code, 0, rules.stdout + rules.stderr);
  assert(rules.stdout.includes("SUCCESS: 9 rules found"), rules.stdout);
  const config = await runProcess("bash", [
    "-c",
    `cd ${DIR} && promtool check config prometheus.example.yml`,
  ]);
  assertEquals(config.code, 0, config.stdout + config.stderr);
  const tests = await runProcess("bash", [
    "-c",
    `cd ${DIR} && promtool test rules mn-redis-ha.rules.test.yml`,
  ]);
  assertEquals(tests.code, 0, tests.stdout + tests.stderr);
  assert(tests.stdout.includes("SUCCESS"), tests.stdout);
});
