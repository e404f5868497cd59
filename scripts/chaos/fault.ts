/**
 * What every nemesis is made of: the context it runs in, its fault window in
 * the history, and the steps several share (find the primary, kill it, bring
 * a box back). Each nemesis leaves the cluster healed: every process
 * running, every rule removed, every box a member again.
 */

import { delay } from "../../lib/common/delay.ts";
import type { History } from "./history.ts";
import type { Box, Topology, TopologyOptions } from "./topology.ts";

/** What the workload lets a nemesis change. */
export interface WorkloadControl {
  /** Sets the rate of one lease contender's clock (1: true time; 0.5: half speed). */
  skewClock(holder: string, rate: number): void;
  /** Whether `holder` believes it holds its lease now. */
  holds(holder: string): boolean;
  /** The contenders' names, per lease. */
  readonly contenders: ReadonlyMap<string, readonly string[]>;
}

/** What a nemesis gets. */
export interface NemesisContext {
  readonly topology: Topology;
  readonly history: History;
  /** How long a fault lasts (scaled by --duration). */
  readonly faultMs: number;
  readonly workload: WorkloadControl;
  readonly report: (line: string) => void;
  /** A finding for the run's report (what the fault did, what it showed). */
  readonly note: (line: string) => void;
}

/** What a fault is expected to break: the report states it instead of failing the run. */
export interface Expected {
  /** Acknowledged writes may be lost (a power loss: WAIT promises replication, not disks). */
  readonly lostAcknowledged?: boolean | undefined;
  /** Two contenders may believe they hold a lease at once (a clock past `driftMs`). */
  readonly holderOverlap?: boolean | undefined;
}

/** What a run needs for its faults: boxes beyond the default, a contender with its own user. */
export interface RunNeeds extends TopologyOptions {
  /** The first leader contender logs in as its own ACL user (see `CONTENDER_USER`). */
  readonly contenderUser?: boolean | undefined;
}

/** A named fault. */
export interface Nemesis {
  readonly name: string;
  readonly summary: string;
  /** What the run needs for it (a delay proxy, a small disk, a contender's own user). */
  readonly needs?: RunNeeds | undefined;
  readonly expects?: Expected | undefined;
  run(context: NemesisContext): Promise<void>;
}

/**
 * Runs a fault: marks its window in the history from now until `fn` (which
 * injects the fault and, where it ends it, heals) has finished.
 */
export async function faultWindow<T>(
  c: NemesisContext,
  label: string,
  fn: () => Promise<T>,
): Promise<T> {
  const mark = c.history.mark({ what: "fault", label, from: c.history.now() });
  try {
    return await fn();
  } finally {
    mark.to = c.history.now();
  }
}

export async function primaryBox(c: NemesisContext): Promise<Box> {
  return await c.topology.waitAgreement();
}

/** Brings a box back as a member: starts what is not running (from its config) and joins. */
export async function rejoin(c: NemesisContext, box: Box): Promise<void> {
  c.report(`chaos: box ${box.index} rejoins`);
  await c.topology.join(box);
}

export async function killPrimary(c: NemesisContext, label: string): Promise<void> {
  const box = await primaryBox(c);
  await faultWindow(c, `${label} box ${box.index}`, async () => {
    await c.topology.signal(box, "redis", "KILL");
    await c.topology.waitAgreement(60_000, box.redis);
  });
  await rejoin(c, box);
}

/** Injects a fault, holds it for `holdMs`, then ends it, whatever happened meanwhile. */
export function holdFault(
  c: NemesisContext,
  label: string,
  holdMs: number,
  inject: () => Promise<void>,
  heal: () => Promise<void>,
): Promise<void> {
  return faultWindow(c, label, async () => {
    await inject();
    try {
      await delay(holdMs);
    } finally {
      await heal();
    }
  });
}
