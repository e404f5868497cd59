import { assert, assertEquals } from "../_harness/assert.ts";
import {
  bridgeRange,
  formatTable,
  formatWarnings,
  type TopologyView,
  topologyWarnings,
} from "../../lib/views/inspect.ts";

const healthy: Omit<TopologyView, "warnings"> = {
  mode: "sentinel",
  primary: { address: "192.168.4.29:6379", role: "master", replid: "abc", configEpoch: 3 },
  replicas: [{ address: "192.168.4.35:6379", state: "online", lagSeconds: 0, offsetLag: 0 }],
  sentinels: ["192.168.4.29:26379", "192.168.4.35:26379", "192.168.4.40:26379"].map((address) => ({
    address,
    reachable: true,
    reports: "192.168.4.29:6379",
    configEpoch: 3,
    quorum: 2,
    ckquorum: "OK 3 usable Sentinels. Quorum and failover authorization can be reached",
    error: null,
  })),
  claimingMaster: ["192.168.4.29:6379"],
  leader: "box1:abcd",
};

Deno.test("topologyWarnings() is silent for a healthy three-sentinel cluster", () => {
  assertEquals(topologyWarnings(healthy, { haMode: "sentinel" }), []);
});

Deno.test("topologyWarnings() flags every operational-notes problem", () => {
  const sick: Omit<TopologyView, "warnings"> = {
    ...healthy,
    primary: { ...healthy.primary, address: "172.17.0.2:6379" },
    replicas: [
      { address: "192.168.4.35:6379", state: "online", lagSeconds: 7, offsetLag: 10 },
      { address: "192.168.4.36:6379", state: "wait_bgsave", lagSeconds: 0, offsetLag: 0 },
    ],
    sentinels: [
      { ...healthy.sentinels[0]!, quorum: 1 },
      {
        ...healthy.sentinels[1]!,
        reports: "192.168.4.35:6379",
        ckquorum: "NOQUORUM 1 usable Sentinels",
      },
    ],
    claimingMaster: ["192.168.4.29:6379", "192.168.4.35:6379"],
    leader: null,
  };
  const warnings = topologyWarnings(sick, { haMode: "sentinel" }).join("\n");
  for (
    const expected of [
      "only 2 sentinel(s)",
      "quorum is 1",
      "NOQUORUM",
      "sentinels disagree on the primary",
      "replica 192.168.4.35:6379 lags: 7s",
      "replica 192.168.4.36:6379 is wait_bgsave",
      "more than one node claims to be master",
      "172.17.0.2:6379 is in 172.16.0.0/12",
      "no leader",
    ]
  ) assert(warnings.includes(expected), `missing "${expected}" in:\n${warnings}`);
  const unreachable = topologyWarnings({
    ...healthy,
    sentinels: [...healthy.sentinels.slice(0, 2), {
      ...healthy.sentinels[2]!,
      reachable: false,
      error: "refused",
    }],
  }, { haMode: "sentinel" });
  assert(unreachable.some((w) => w.includes("unreachable: refused")));
});

Deno.test("bridgeRange() recognises container bridge addresses only", () => {
  assert(bridgeRange("172.17.0.5") !== undefined);
  assert(bridgeRange("172.31.255.1") !== undefined);
  assert(bridgeRange("10.88.0.3") !== undefined);
  assertEquals(bridgeRange("192.168.4.29"), undefined);
  assertEquals(bridgeRange("172.32.0.1"), undefined);
  assertEquals(bridgeRange("::1"), undefined);
});

Deno.test("formatTable() aligns columns and formatWarnings() colours only when asked", () => {
  assertEquals(
    formatTable(["A", "BB"], [["xxx", "y"], ["z", "wwww"]]),
    "A    BB\nxxx  y\nz    wwww",
  );
  assertEquals(formatWarnings(["w"], false), "warning: w");
  assert(formatWarnings(["w"], true).includes("\x1b[33m"));
});

Deno.test("topologyWarnings() flags a WAIT setting that needs every online replica", () => {
  assertEquals(topologyWarnings(healthy, { haMode: "sentinel", waitReplicas: 0 }), []);
  const warnings = topologyWarnings(healthy, { haMode: "sentinel", waitReplicas: 1 });
  assertEquals(warnings.length, 1);
  assert(warnings[0]!.includes("losing one box stops every durable write"), warnings[0]);
});
