/** CLI specs of `inspect nodes|topology|leases|jobs`. */

import { JOB_STATUSES, type JobStatus } from "../state/job_status.ts";
import { UsageError } from "../common/errors.ts";
import {
  choiceFlag,
  colourWanted,
  type CommandContext,
  type CommandSpec,
  intFlag,
} from "./command_spec.ts";

/** The views' code, loaded when a view runs (the CLI starts without it). */
type Views = typeof import("../views/inspect.ts");
const views = (): Promise<Views> => import("../views/inspect.ts");

const INSPECT_FLAGS = {
  json: { type: "boolean", help: "print stable JSON instead of a table" },
} as const;

function printView(
  m: Views,
  context: CommandContext,
  json: unknown,
  table: string,
  warnings: readonly string[],
): number {
  if (context.flags.json === true) {
    context.io.stdout(JSON.stringify(json, null, 2));
  } else {
    context.io.stdout(table);
  }
  // Warnings are diagnostics: stderr, in both forms (the JSON carries them too).
  if (warnings.length > 0) context.io.stderr(m.formatWarnings(warnings, colourWanted(context.io)));
  return 0;
}

/** Every `inspect` view. */
export const INSPECT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "inspect watch",
    summary: "Live view: nodes, sentinels, leader, event tail and the last failover's timed phases",
    usage:
      "mn-redis-ha inspect watch [--interval SECONDS] [connection flags]  (or inspect --watch)",
    example: "mn-redis-ha inspect --watch --interval 1 --ha-mode sentinel " +
      "--sentinels 10.0.0.1:26379,10.0.0.2:26379 --sentinel-master mirror-neuron",
    flags: {
      interval: {
        type: "string",
        placeholder: "SECONDS",
        help: "time between snapshots (0.2-3600, decimals allowed)",
        default: "2",
      },
      "write-probe": {
        type: "boolean",
        help: "also make one durable write per interval (<namespace>:watch-probe) and show its " +
          "outcome; without it the view only reads",
      },
    },
    connection: true,
    run: async (context) => {
      const { watch } = await import("../views/watch.ts");
      const text = context.flags.interval;
      const seconds = typeof text === "string" ? Number(text) : 2;
      if (
        !Number.isFinite(seconds) || seconds < 0.2 || seconds > 3600 || /^\s*$/.test(String(text))
      ) {
        throw new UsageError(`--interval is ${JSON.stringify(text)}; expected seconds, 0.2-3600`);
      }
      await watch(context.config, {
        intervalMs: Math.round(seconds * 1000),
        tty: context.io.isTerminal === true,
        colour: colourWanted(context.io),
        write: (snapshot) => context.io.stdout(snapshot.replace(/\n$/, "")),
        signal: context.signal,
        writeProbe: context.flags["write-probe"] === true,
      });
      return 0;
    },
  },
  {
    name: "inspect topology",
    summary: "Primary, replicas (lag, link), every sentinel (epoch, CKQUORUM) and warnings",
    usage: "mn-redis-ha inspect topology [--json] [connection flags]",
    example:
      "mn-redis-ha inspect topology --ha-mode sentinel --sentinels 10.0.0.1:26379,10.0.0.2:26379 " +
      "--sentinel-master mirror-neuron",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const m = await views();
      const view = await m.inspectTopology(context.config);
      const lines = [
        `primary  ${view.primary.address}  role ${view.primary.role}  config-epoch ${
          view.primary.configEpoch ?? "-"
        }  replid ${view.primary.replid}`,
        `leader   ${view.leader ?? "-"}`,
        "",
        m.formatTable(
          ["REPLICA", "STATE", "LAG(s)", "BEHIND(bytes)"],
          view.replicas.map((r) => [r.address, r.state, String(r.lagSeconds), String(r.offsetLag)]),
        ),
      ];
      if (view.sentinels.length > 0) {
        lines.push(
          "",
          m.formatTable(
            ["SENTINEL", "REACHABLE", "REPORTS", "EPOCH", "QUORUM", "CKQUORUM"],
            view.sentinels.map((s) => [
              s.address,
              s.reachable ? "yes" : "no",
              s.reports ?? "-",
              String(s.configEpoch ?? "-"),
              String(s.quorum ?? "-"),
              s.ckquorum ?? s.error ?? "-",
            ]),
          ),
        );
      }
      return printView(m, context, view, lines.join("\n"), view.warnings);
    },
  },
  {
    name: "inspect nodes",
    summary: "Runtime nodes with status, last heartbeat age and who is leader",
    usage: "mn-redis-ha inspect nodes [--json] [connection flags]",
    example: "mn-redis-ha inspect nodes --json",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const m = await views();
      const view = await m.inspectNodes(context.config);
      const table = m.formatTable(
        ["NODE", "STATUS", "LAST-SEEN", "LEADER", "META"],
        view.nodes.map((
          n,
        ) => [
          n.id,
          n.status,
          `${(n.lastSeenAgeMs / 1000).toFixed(1)}s`,
          n.leader ? "*" : "",
          JSON.stringify(n.meta),
        ]),
      );
      return printView(m, context, view, table, view.warnings);
    },
  },
  {
    name: "inspect leases",
    summary: "Every lease in the namespace: holder, fencing token, time left",
    usage: "mn-redis-ha inspect leases [--json] [connection flags]",
    example: "mn-redis-ha inspect leases",
    flags: INSPECT_FLAGS,
    connection: true,
    run: async (context) => {
      const m = await views();
      const view = await m.inspectLeases(context.config);
      const rows =
        (view.leases as { lease: string; holder: string; token: number; ttlMs: number }[])
          .map((l) => [l.lease, l.holder, String(l.token), `${(l.ttlMs / 1000).toFixed(1)}s`]);
      return printView(
        m,
        context,
        view,
        m.formatTable(["LEASE", "HOLDER", "TOKEN", "TTL"], rows),
        view.warnings,
      );
    },
  },
  {
    name: "inspect jobs",
    summary: "Jobs with status and version (first page)",
    usage: "mn-redis-ha inspect jobs [--status S] [--limit N] [--json] [connection flags]",
    example: "mn-redis-ha inspect jobs --status running",
    flags: {
      ...INSPECT_FLAGS,
      status: {
        type: "string",
        placeholder: "STATUS",
        help: `only this status (${JOB_STATUSES.join(", ")})`,
      },
      limit: { type: "string", placeholder: "N", help: "page size", default: "100" },
    },
    connection: true,
    run: async (context) => {
      const m = await views();
      const status = context.flags.status === undefined
        ? undefined
        : choiceFlag(context.flags, "status", JOB_STATUSES, "pending" as JobStatus);
      const view = await m.inspectJobs(context.config, {
        status,
        limit: intFlag(context.flags, "limit", 100, 1, 1000),
      });
      const rows =
        (view.jobs as { id: string; status: string; version: number; updatedAt: string }[])
          .map((j) => [j.id, j.status, String(j.version), j.updatedAt]);
      return printView(
        m,
        context,
        view,
        m.formatTable(["JOB", "STATUS", "VERSION", "UPDATED"], rows),
        [],
      );
    },
  },
];
