/** The CLI's subcommand table: flags, help, examples and how each runs. */

import type { CommandSpec } from "./command_spec.ts";
import { NotPrimaryError } from "../common/errors.ts";
import { MEMBERSHIP_COMMANDS, NODE_START } from "./membership_commands.ts";
import { INSPECT_COMMANDS } from "./inspect_commands.ts";
import { SMOKE_COMMANDS } from "./smoke_commands.ts";
import { SERVICE_COMMANDS } from "./service_commands.ts";
import { SERVE } from "./serve_command.ts";

/** Every subcommand, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "status",
    summary: "Show mode, confirmed primary, replicas with lag, sentinels and the WAIT setting",
    usage: "mn-redis-ha status [--json] [connection flags]",
    example: "MN_REDIS_HA_MODE=sentinel MN_REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 " +
      "MN_REDIS_SENTINEL_MASTER=mirror-neuron mn-redis-ha status --json",
    flags: { json: { type: "boolean", help: "print JSON (stable fields) instead of text" } },
    connection: true,
    run: async ({ config, flags, io, signal }) => {
      const { collectStatus, formatStatus } = await import("../views/status.ts");
      const report = await collectStatus(config, { signal });
      // A primary was asked for: a replica (single mode's MN_REDIS_URL) is reported, then exit 1.
      const notPrimary = report.role === "master"
        ? undefined
        : new NotPrimaryError(report.node, report.replicaOf ?? undefined);
      const error = notPrimary === undefined
        ? {}
        : { error: { code: notPrimary.code, message: notPrimary.message } };
      io.stdout(
        flags.json === true
          ? JSON.stringify({ ...report, ...error }, null, 2)
          : formatStatus(report),
      );
      for (const warning of report.warnings) io.stderr(`warning: ${warning}`);
      if (notPrimary === undefined) return 0;
      io.stderr(`mn-redis-ha status: ${notPrimary.message}`);
      return 1;
    },
  },
  {
    name: "probe",
    summary: "Write a probe record as a durable write and read it back from the primary",
    usage: "mn-redis-ha probe [connection flags]",
    example: "MN_REDIS_URL=redis://127.0.0.1:6379 MN_REDIS_WAIT_REPLICAS=1 mn-redis-ha probe",
    flags: {},
    connection: true,
    run: async ({ config, io, signal }) => {
      const { runProbe } = await import("../ops/probe.ts");
      const result = await runProbe(config, { signal });
      io.stdout(`probe_write_read_ok primary=${result.primary}`);
      return 0;
    },
  },
  ...MEMBERSHIP_COMMANDS,
  ...INSPECT_COMMANDS,
  NODE_START,
  ...SERVICE_COMMANDS,
  SERVE,
  ...SMOKE_COMMANDS,
];
