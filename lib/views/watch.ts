/**
 * `mn-redis-ha inspect watch` (also `inspect --watch`): a live view of the
 * cluster. Every interval it shows the nodes (reported and expected role,
 * lag, link), one row per sentinel, the leader lease, the tail of Sentinel
 * and client events, and a swimlane of the last failover with each phase
 * timed. On a terminal it redraws in place; otherwise it prints one snapshot
 * per interval as plain lines.
 *
 * @module
 */

import { delay } from "../common/delay.ts";
import { AbortedError, OutcomeUnknownError, WaitError } from "../common/errors.ts";
import { RedisHaClient } from "../ha/client.ts";
import type { Config } from "../ha/config.ts";
import { SentinelWatcher } from "../ha/sentinel_watcher.ts";
import { replyToString } from "../protocol/resp.ts";
import { formatTable, inspectTopology, type TopologyView } from "./inspect.ts";

/** One thing that happened, for the tail and the swimlane. */
export interface WatchEvent {
  /** `performance.now()` when seen. */
  readonly atMs: number;
  /** `roles` (the primary changed), `sentinel`, `client`, `probe` (reads) or `writes`. */
  readonly lane: "roles" | "sentinel" | "client" | "probe" | "writes";
  /** What: `+switch-master`, `reconnecting`, `ok`, `failed`… */
  readonly what: string;
  /** Details. */
  readonly detail: string;
}

/** Options of {@link watch}. */
export interface WatchOptions {
  /** Between snapshots. */
  intervalMs: number;
  /** Redraw in place (a terminal). */
  tty: boolean;
  /** ANSI colour (a terminal without `NO_COLOR`). */
  colour: boolean;
  /** Writes one snapshot. */
  write: (text: string) => void;
  /** Ends the watch (Ctrl-C). */
  signal: AbortSignal;
  /**
   * `--write-probe`: also make one durable write per interval (to
   * `<namespace>:watch-probe`) and show whether it was confirmed, failed or
   * indeterminate. Off by default: the view then only reads.
   */
  writeProbe?: boolean | undefined;
}

const SWIMLANE_SECONDS = 60;
const TAIL = 8;

/** The swimlane of the last `SWIMLANE_SECONDS`: one column per second, one row per lane. */
export function swimlane(events: readonly WatchEvent[], nowMs: number): string[] {
  const lanes: Array<[WatchEvent["lane"], string]> = [
    ["roles", "primary  "],
    ["sentinel", "sentinels"],
    ["client", "client   "],
    ["probe", "reads    "],
    ["writes", "writes   "],
  ];
  const mark = (e: WatchEvent): string => {
    if (e.what === "+switch-master") return "S";
    if (e.what === "+odown") return "D";
    if (e.what === "-odown") return "d";
    if (e.what === "+convert-to-slave") return "C";
    if (e.what === "+failover-end") return "E";
    if (e.what === "failover") return "F";
    if (e.what === "reconnecting") return "r";
    if (e.what === "reconnected") return "R";
    if (e.what === "failed") return "x";
    if (e.what === "indeterminate") return "?";
    if (e.what === "under_replicated") return "w";
    if (e.what === "primary") return "P";
    if (e.what === "ok") return ".";
    return "*";
  };
  // Rarer marks win a column over "." so a failover is never hidden by routine reads, and a
  // named mark over "*" (an unnamed event, e.g. +slave) so a switch is never hidden by its echoes.
  const rank = (m: string): number => (m === "." ? 0 : m === "*" ? 1 : 2);
  return lanes.map(([lane, label]) => {
    const cols = new Array<string>(SWIMLANE_SECONDS).fill(" ");
    for (const e of events) {
      if (e.lane !== lane) continue;
      const age = Math.floor((nowMs - e.atMs) / 1000);
      if (age < 0 || age >= SWIMLANE_SECONDS) continue;
      const col = SWIMLANE_SECONDS - 1 - age;
      const m = mark(e);
      if (cols[col] === " " || rank(m) >= rank(cols[col]!)) cols[col] = m;
    }
    return `${label} |${cols.join("")}|`;
  });
}

/** The last failover's phases, timed from its first sign (`+odown` or a failed read). */
export function lastFailover(events: readonly WatchEvent[]): string[] {
  const switchAt = events.findLastIndex((e) => e.what === "+switch-master");
  if (switchAt === -1) return ["no failover seen since the watch started"];
  const latest = events[switchAt]!;
  const window = events.filter((e) =>
    e.atMs >= latest.atMs - 30_000 && e.atMs <= latest.atMs + 30_000
  );
  // Every sentinel announces the switch, some seconds late: the first announcement is the promotion.
  const sw = window.find((e) => e.what === "+switch-master" && e.detail === latest.detail) ??
    latest;
  const first = window.find((e) => e.what === "+odown" || e.what === "failed") ?? sw;
  const phase = (what: string, lane?: WatchEvent["lane"]): WatchEvent | undefined =>
    window.find((e) =>
      e.what === what && (lane === undefined || e.lane === lane) && e.atMs >= first.atMs
    );
  const rows: string[] = [];
  const line = (label: string, e: WatchEvent | undefined): void => {
    if (e !== undefined) {
      rows.push(
        `  +${((e.atMs - first.atMs) / 1000).toFixed(1).padStart(5)} s  ${label}  ${e.detail}`,
      );
    }
  };
  rows.push(`last failover: ${sw.detail}`);
  line("primary seen down (+odown)   ", phase("+odown"));
  line("first failed read            ", phase("failed"));
  line("promoted (+switch-master)    ", sw);
  line("client followed              ", phase("failover", "client"));
  line("topology shows new primary   ", phase("primary", "roles"));
  line("failover ended (+failover-end)", phase("+failover-end"));
  const back = window.find((e) => e.what === "ok" && e.lane === "probe" && e.atMs > sw.atMs);
  line("reads ok again               ", back);
  const written = window.find((e) => e.what === "ok" && e.lane === "writes" && e.atMs > sw.atMs);
  line("durable writes ok again      ", written);
  return rows;
}

/** One snapshot as text. */
export function renderWatch(
  view: TopologyView | { error: string },
  events: readonly WatchEvent[],
  nowMs: number,
  colour: boolean,
): string {
  const paint = (code: string, text: string): string =>
    colour ? `\x1b[${code}m${text}\x1b[0m` : text;
  const out: string[] = [`mn-redis-ha inspect watch — ${new Date().toISOString()}`, ""];
  if ("error" in view) {
    out.push(paint("31", `cannot read the topology: ${view.error}`));
  } else {
    out.push(
      formatTable(
        ["NODE", "EXPECTED", "REPORTED", "LINK", "LAG(s)", "BEHIND(bytes)"],
        [
          [
            view.primary.address,
            "master",
            view.claimingMaster.includes(view.primary.address) ? "master" : "?",
            "-",
            "-",
            "-",
          ],
          ...view.replicas.map((r) => [
            r.address,
            "replica",
            view.claimingMaster.includes(r.address) ? paint("31", "master") : "replica",
            r.state === "online" ? "up" : paint("33", r.state),
            String(r.lagSeconds),
            String(r.offsetLag),
          ]),
        ],
      ),
      "",
      formatTable(
        ["SENTINEL", "REPORTS", "EPOCH", "QUORUM"],
        view.sentinels.map((s) => [
          s.address,
          s.reachable
            ? s.reports === view.primary.address ? s.reports ?? "-" : paint("33", s.reports ?? "-")
            : paint("31", "unreachable"),
          String(s.configEpoch ?? "-"),
          String(s.ckquorum ?? "-").split(" ")[0] ?? "-",
        ]),
      ),
      "",
      `leader lease: ${view.leader ?? "none"}`,
    );
  }
  out.push(
    "",
    `last ${SWIMLANE_SECONDS} s (one column per second; P new primary, S switch, D/d odown, ` +
      "F client followed, r/R reconnect, . ok, x failed, ? indeterminate, w WAIT shortfall):",
  );
  out.push(...swimlane(events, nowMs), "", ...lastFailover(events), "", "events:");
  const tail = events.filter((e) => (e.lane !== "probe" && e.lane !== "writes") || e.what !== "ok")
    .slice(-TAIL);
  for (const e of tail) {
    out.push(
      `  -${((nowMs - e.atMs) / 1000).toFixed(1).padStart(5)} s  ${
        e.lane.padEnd(8)
      } ${e.what}  ${e.detail}`,
    );
  }
  if (tail.length === 0) out.push("  (none yet)");
  return out.join("\n");
}

/** Runs the watch until `signal` aborts. */
export async function watch(config: Config, options: WatchOptions): Promise<void> {
  const events: WatchEvent[] = [];
  const push = (e: WatchEvent): void => {
    events.push(e);
    if (events.length > 2000) events.splice(0, events.length - 2000);
  };
  await using client = await RedisHaClient.connect(config, { signal: options.signal });
  client.events.on(
    "failover",
    ({ from, to }) =>
      push({
        atMs: performance.now(),
        lane: "client",
        what: "failover",
        detail: `${from} -> ${to}`,
      }),
  );
  client.events.on(
    "reconnecting",
    ({ error }) =>
      push({ atMs: performance.now(), lane: "client", what: "reconnecting", detail: error }),
  );
  client.events.on(
    "reconnected",
    ({ primary }) =>
      push({ atMs: performance.now(), lane: "client", what: "reconnected", detail: primary }),
  );
  await using _watcher = config.haMode === "sentinel"
    ? new SentinelWatcher({
      sentinels: () => client.sentinels,
      masterName: config.sentinelMaster!,
      username: config.sentinelUsername,
      password: config.sentinelPassword,
      tls: config.sentinelTls,
      onEvent: (e) =>
        push({ atMs: performance.now(), lane: "sentinel", what: e.channel, detail: e.payload }),
    })
    : { [Symbol.asyncDispose]: () => Promise.resolve() };
  let lastPrimary: string | undefined;
  while (!options.signal.aborted) {
    // A read through the HA client, to show when the cluster could not be read.
    const started = performance.now();
    await client.command(["ROLE"], {
      idempotent: true,
      signal: options.signal,
      timeoutMs: options.intervalMs * 2,
    })
      .then(
        (r) =>
          push({
            atMs: started,
            lane: "probe",
            what: "ok",
            detail: Array.isArray(r) ? replyToString(r[0]) ?? "" : "",
          }),
        (error) => {
          if (!options.signal.aborted) {
            push({
              atMs: started,
              lane: "probe",
              what: "failed",
              detail: (error as Error).message,
            });
          }
        },
      );
    if (options.signal.aborted) break;
    if (options.writeProbe === true) await probeWrite(client, config, options, push);
    if (options.signal.aborted) break;
    const view = await inspectTopology(config, client).catch((error) => ({
      error: (error as Error).message,
    }));
    if (options.signal.aborted) break;
    if (!("error" in view) && view.primary.address !== lastPrimary) {
      if (lastPrimary !== undefined) {
        push({
          atMs: performance.now(),
          lane: "roles",
          what: "primary",
          detail: `${lastPrimary} -> ${view.primary.address}`,
        });
      }
      lastPrimary = view.primary.address;
    }
    const text = renderWatch(view, events, performance.now(), options.colour);
    // On a terminal: home, clear, draw. Otherwise: one snapshot after another.
    options.write(options.tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    await delay(options.intervalMs, options.signal).catch(() => {});
  }
}

/** One durable probe write, recorded with its outcome in the `writes` lane. */
async function probeWrite(
  client: RedisHaClient,
  config: Config,
  options: WatchOptions,
  push: (e: WatchEvent) => void,
): Promise<void> {
  const started = performance.now();
  try {
    await client.durable(["SET", `${config.namespace}:watch-probe`, new Date().toISOString()], {
      idempotent: true,
      signal: options.signal,
      timeoutMs: options.intervalMs * 2,
    });
    push({ atMs: started, lane: "writes", what: "ok", detail: "confirmed" });
  } catch (error) {
    if (options.signal.aborted) return;
    const what = error instanceof WaitError
      ? "under_replicated"
      : error instanceof OutcomeUnknownError ||
          (error instanceof AbortedError && error.mayHaveApplied)
      ? "indeterminate"
      : "failed";
    push({ atMs: started, lane: "writes", what, detail: (error as Error).message });
  }
}
