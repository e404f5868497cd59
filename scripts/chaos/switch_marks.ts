/**
 * Sentinel's switches, marked in a run's history as they are announced:
 * three sentinels announce one switch, so it is marked once per new address.
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
  let last: string | undefined;
  const watcher = new SentinelWatcher({
    sentinels: () => topology.boxes.map((b) => b.sentinel),
    masterName: topology.masterName,
    subscriptions: 3,
    onEvent: (e) => {
      if (e.channel !== "+switch-master") return;
      const parsed = parseSwitchMaster(e.payload);
      const label = `+switch-master → ${parsed === undefined ? "?" : formatEndpoint(parsed.to)}`;
      // The sentinels announce one switch each (the leader last, up to a second later): a
      // switch to where the last one went is the same switch.
      if (label === last) return;
      last = label;
      switches++;
      history.mark({ what: "switch", label, from: history.now() });
    },
  });
  return {
    count: () => switches,
    [Symbol.asyncDispose]: () => watcher[Symbol.asyncDispose](),
  };
}
