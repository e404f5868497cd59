import { assertEquals } from "../_harness/assert.ts";
import { mergeReplicaLists } from "../../lib/ha/replica_set.ts";

const replica = (port: number, flags = "slave", link = "ok"): string[] => [
  "name",
  `127.0.0.1:${port}`,
  "ip",
  "127.0.0.1",
  "port",
  String(port),
  "flags",
  flags,
  "master-link-status",
  link,
];

Deno.test("mergeReplicaLists: every listed replica once, down when any sentinel flags it, the primary left out", () => {
  const merged = mergeReplicaLists(
    new Map([
      ["s1:26379", [replica(6380), replica(6381, "s_down,slave,disconnected"), replica(6379)]],
      ["s2:26379", [replica(6380), replica(6381), replica(6382, "slave", "err")]],
    ]),
    "127.0.0.1:6379",
  );
  assertEquals(merged.map((r) => [r.address, r.down !== undefined]), [
    ["127.0.0.1:6380", false],
    ["127.0.0.1:6381", true],
    ["127.0.0.1:6382", true],
  ]);
  assertEquals(merged[1]!.down, "sentinel s1:26379 flags it s_down,disconnected");
  assertEquals(merged[2]!.down, "sentinel s2:26379 reports its replication link err");
});
