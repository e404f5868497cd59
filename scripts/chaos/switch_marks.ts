/**
 * Sentinel's switches, marked in a run's history as they are announced:
 * three sentinels announce one switch, so it is marked once per new address
 * and second.
 */

import { SentinelWatcher } from "../../lib/ha/sentinel_watcher.ts";
import { parseSwitchMaster } from "../../lib/ha/resolver_decision.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import type { History } from "./history.ts";
import type { Topology } from "./topology.ts";

/** Marks every switch of `topology`'s primary in `history`; `count()` says how many so far. */
export function markSwitches(
  topology: Topology,
  history: History,
): AsyncDisposable & { count(): number } {
  let switches = 0;
  const watcher = new SentinelWatcher({
    sentinels: () => topology.boxes.map((b) => b.sentinel),
    masterName: topology.masterName,
    subscriptions: 3,
    onEvent: (e) => {
      if (e.channel !== "+switch-master") return;
      const parsed = parseSwitchMaster(e.payload);
      const label = `+switch-master → ${parsed === undefined ? "?" : formatEndpoint(parsed.to)}`;
      const now = history.now();
      const recent = history.entries.some((x) =>
        x.type === "mark" && x.what === "switch" && x.label === label && now - x.from < 1000
      );
      if (!recent) {
        switches++;
        history.mark({ what: "switch", label, from: now });
      }
    },
  });
  return {
    count: () => switches,
    [Symbol.asyncDispose]: () => watcher[Symbol.asyncDispose](),
  };
}
