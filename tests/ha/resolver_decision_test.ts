import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import { MasterUnknownError, NoSentinelReachableError } from "../../lib/common/errors.ts";
import {
  decideMaster,
  eventMasterName,
  failoverEvidence,
  hasEnoughAnswers,
  instanceEndpoint,
  majorityOf,
  parseSwitchMaster,
  type SentinelAnswer,
} from "../../lib/ha/resolver_decision.ts";
import type { RespReply } from "../../lib/protocol/resp.ts";

const master = (
  sentinel: string,
  host: string,
  configEpoch: number,
  flags = "master",
  downAfterMs?: number,
): SentinelAnswer => ({
  sentinel,
  kind: "master",
  primary: { host, port: 6379 },
  configEpoch,
  flags: flags.split(","),
  downAfterMs,
});

Deno.test("decideMaster() picks the highest config-epoch, not the first answer", () => {
  const d = decideMaster([
    master("s1:26379", "10.0.0.1", 3, "s_down,master"),
    master("s2:26379", "10.0.0.2", 4),
    master("s3:26379", "10.0.0.2", 4),
  ], "m");
  assertEquals(d.primary, { host: "10.0.0.2", port: 6379 });
  assertEquals(d.configEpoch, 4);
  assertEquals(d.agreeing, ["s2:26379", "s3:26379"]);
  assertEquals(d.stale, [{ sentinel: "s1:26379", reported: "10.0.0.1:6379", configEpoch: 3 }]);
  assertEquals(d.down, false);
});

Deno.test("decideMaster() lets a lone sentinel with a newer epoch outvote a stale majority", () => {
  const d = decideMaster([
    master("s1:26379", "10.0.0.1", 1),
    master("s2:26379", "10.0.0.1", 1),
    master("s3:26379", "10.0.0.2", 2, "master,disconnected"),
  ], "m");
  assertEquals(d.primary.host, "10.0.0.2");
});

Deno.test("decideMaster() skips a sentinel that reports s_down when the epoch ties", () => {
  // Mid-failover: one sentinel already switched, another still flags the old primary as down.
  const d = decideMaster([
    master("s1:26379", "10.0.0.1", 5, "s_down,o_down,master,failover_in_progress"),
    master("s2:26379", "10.0.0.1", 5, "s_down,master"),
    master("s3:26379", "10.0.0.2", 5, "master,disconnected"),
  ], "m");
  assertEquals(d.primary.host, "10.0.0.2");
  assertEquals(d.stale.length, 2);
});

Deno.test("decideMaster() still returns a primary every sentinel flags as down, marked down", () => {
  const d = decideMaster([master("s1:26379", "10.0.0.1", 2, "s_down,master")], "m");
  assertEquals(d.primary.host, "10.0.0.1");
  assertEquals(d.down, true);
});

Deno.test("decideMaster() prefers the address most sentinels report when epoch and health tie", () => {
  const d = decideMaster([
    master("s1:26379", "10.0.0.9", 1),
    master("s2:26379", "10.0.0.2", 1),
    master("s3:26379", "10.0.0.2", 1),
  ], "m");
  assertEquals(d.primary.host, "10.0.0.2");
});

Deno.test("decideMaster() ignores failed sentinels when others answered", () => {
  const d = decideMaster([
    { sentinel: "s1:26379", kind: "error", error: "connection refused" },
    master("s2:26379", "10.0.0.2", 0),
  ], "m");
  assertEquals(d.primary.host, "10.0.0.2");
  assertEquals(d.answers.length, 2);
});

Deno.test("decideMaster() throws NoSentinelReachableError listing each sentinel's error", () => {
  const error = assertThrows(() =>
    decideMaster([
      { sentinel: "s1:26379", kind: "error", error: "connection refused" },
      { sentinel: "s2:26379", kind: "error", error: "timed out" },
    ], "m"), NoSentinelReachableError);
  assertEquals(error.failures.map((f) => f.error), ["connection refused", "timed out"]);
  assert(error.message.includes("s1:26379 (connection refused)"));
  assert(error.message.includes("MN_REDIS_SENTINELS"));
});

Deno.test("decideMaster() throws MasterUnknownError when sentinels answer but do not know the name", () => {
  const error = assertThrows(() =>
    decideMaster([
      { sentinel: "s1:26379", kind: "unknown-master" },
      { sentinel: "s2:26379", kind: "error", error: "refused" },
    ], "mirror-neuron"), MasterUnknownError);
  assertEquals(error.answered, ["s1:26379"]);
  assert(error.message.includes('"mirror-neuron"'));
});

Deno.test("decideMaster() follows a failover leader's promoted replica over the old primary's majority", () => {
  const d = decideMaster([
    master("s1:26379", "10.0.0.1", 2),
    master("s2:26379", "10.0.0.1", 2),
    master("s3:26379", "10.0.0.3", 2, "master,promoted"),
  ], "m");
  assertEquals(d.primary.host, "10.0.0.3");
});

Deno.test("decideMaster() reports the shortest down-after-milliseconds", () => {
  const d = decideMaster([
    master("s1:26379", "10.0.0.1", 2, "master", 5000),
    master("s2:26379", "10.0.0.1", 2, "master", 1000),
    master("s3:26379", "10.0.0.1", 2),
  ], "m");
  assertEquals(d.downAfterMs, 1000);
  assertEquals(decideMaster([master("s1:26379", "10.0.0.1", 2)], "m").downAfterMs, undefined);
});

Deno.test("failoverEvidence() confirms only a primary no answering sentinel sees failing over", () => {
  const here = "10.0.0.1:6379";
  const clean = [
    master("s1:26379", "10.0.0.1", 2),
    master("s2:26379", "10.0.0.1", 2),
    master("s3:26379", "10.0.0.1", 2),
  ];
  assertEquals(failoverEvidence(clean, here, 2), undefined);
  // A sentinel behind on an older failover does not count against it.
  assertEquals(
    failoverEvidence([...clean.slice(0, 2), master("s3:26379", "10.0.0.9", 1)], here, 2),
    undefined,
  );
  // One sentinel down does not block it either: a majority answered.
  const down: SentinelAnswer = { sentinel: "s3:26379", kind: "error", error: "timeout" };
  assertEquals(failoverEvidence([...clean.slice(0, 2), down], here, 2), undefined);
  assertEquals(
    failoverEvidence([clean[0]!, down, { ...down, sentinel: "s2:26379" }], here, 2),
    "only 1 of 3 sentinels answered",
  );
  assertEquals(
    failoverEvidence(
      [...clean.slice(0, 2), master("s3:26379", "10.0.0.3", 2, "master,promoted")],
      here,
      2,
    ),
    "sentinel s3:26379 names 10.0.0.3:6379 (config-epoch 2)",
  );
  assertEquals(
    failoverEvidence(
      [...clean.slice(0, 2), master("s3:26379", "10.0.0.1", 2, "master,failover_in_progress")],
      here,
      2,
    ),
    "sentinel s3:26379 flags 10.0.0.1:6379 failover_in_progress",
  );
  assertEquals(
    failoverEvidence(
      [master("s1:26379", "10.0.0.1", 2, "master,s_down"), ...clean.slice(1)],
      here,
      2,
    ),
    "sentinel s1:26379 flags 10.0.0.1:6379 s_down",
  );
});

Deno.test("hasEnoughAnswers() waits for a majority, or for every query to settle", () => {
  assertEquals(majorityOf(1), 1);
  assertEquals(majorityOf(2), 2);
  assertEquals(majorityOf(3), 2);
  assertEquals(majorityOf(4), 3);
  assertEquals(hasEnoughAnswers(3, 1, 1), false);
  assertEquals(hasEnoughAnswers(3, 2, 2), true);
  assertEquals(hasEnoughAnswers(3, 1, 3), true);
  assertEquals(hasEnoughAnswers(2, 1, 1), false);
});

Deno.test("parseSwitchMaster() and eventMasterName() read Sentinel payloads", () => {
  assertEquals(parseSwitchMaster("mirror-neuron 10.0.0.1 6379 10.0.0.2 6380"), {
    masterName: "mirror-neuron",
    from: { host: "10.0.0.1", port: 6379 },
    to: { host: "10.0.0.2", port: 6380 },
  });
  assertEquals(parseSwitchMaster("garbage"), undefined);
  assertEquals(eventMasterName("master mirror-neuron 10.0.0.1 6379 #quorum 2/2"), "mirror-neuron");
  assertEquals(
    eventMasterName("slave 10.0.0.2:6380 10.0.0.2 6380 @ mirror-neuron 10.0.0.1 6379"),
    "mirror-neuron",
  );
  assertEquals(eventMasterName("sentinel abc 10.0.0.3 26379 @ other 10.0.0.1 6379"), "other");
});

Deno.test("instanceEndpoint() reads a SENTINEL SENTINELS/REPLICAS entry's ip and port, undefined without a usable one", () => {
  const entry = (ip: string | null, port: string | null) =>
    new Map<string, RespReply>([["ip", ip], ["port", port], ["flags", "slave"]]);
  assertEquals(instanceEndpoint(entry("10.0.0.2", "6379")), { host: "10.0.0.2", port: 6379 });
  assertEquals(instanceEndpoint(entry(null, "6379")), undefined);
  assertEquals(instanceEndpoint(entry("10.0.0.2", null)), undefined);
  assertEquals(instanceEndpoint(entry("10.0.0.2", "0")), undefined);
  assertEquals(instanceEndpoint(entry("10.0.0.2", "63a")), undefined);
});
