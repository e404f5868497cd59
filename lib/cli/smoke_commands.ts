/** CLI specs of `smoke local` and `smoke two-box`. */

import {
  choiceFlag,
  type CommandSpec,
  hostFlag,
  intFlag,
  portFlags,
  portsOf,
} from "./command_spec.ts";
import { UsageError } from "../common/errors.ts";

/**
 * The remote shell, if this process may run its program; otherwise a usage
 * error saying what it may run and how to allow another program (the
 * binary's baked-in permissions run only `ssh`, besides the daemons).
 */
function runnableShell(shell: string[]): string[] {
  const program = shell[0]!;
  if (Deno.permissions.querySync({ name: "run", command: program }).state === "granted") {
    return shell;
  }
  const allow = [...new Set([program, "ssh", "ip", "redis-server", "redis-sentinel", "systemctl"])];
  throw new UsageError(
    `--remote-shell runs ${JSON.stringify(program)}, which this process's permissions do not ` +
      "allow (the mn-redis-ha binary, like `deno run -P=cli`, may run ssh and ip besides the " +
      'Redis and system tools); use an ssh prefix, e.g. "ssh -p 2222 admin@192.168.4.173", or ' +
      `run from source with that program allowed: deno run -P=cli --allow-run=${allow.join(",")} ` +
      "main.ts smoke two-box …",
  );
}

/** The two-box smoke's test ports on both boxes, clear of a box's real ones. */
const TWO_BOX_PORTS = { redis: 6390, sentinel: 26390 };

/** `dir`, created if missing. */
async function ensureDir(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/** The smokes. */
export const SMOKE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "smoke local",
    summary:
      "Local Sentinel failover smoke: 3 redis + 3 sentinels on loopback, kill -9 the primary",
    usage: "mn-redis-ha smoke local [--dir DIR]",
    example: "mn-redis-ha smoke local",
    flags: {
      dir: {
        type: "string",
        placeholder: "DIR",
        help: "parent directory of the smoke's temp dir",
        default: ".tmp",
      },
      docker: { type: "boolean", help: "run the servers in Docker (not available in this build)" },
    },
    connection: false,
    run: async ({ flags, io, signal }) => {
      if (flags.docker === true) {
        io.stderr(
          "mn-redis-ha smoke local: --docker is not supported by this build; the smoke runs local " +
            "redis-server/redis-sentinel processes, which need no Docker",
        );
        return 2;
      }
      const baseDir = await ensureDir(typeof flags.dir === "string" ? flags.dir : ".tmp");
      const { runLocalSmoke } = await import("../ops/smoke_local.ts");
      const result = await runLocalSmoke({
        baseDir,
        signal,
        report: (line) => (line.startsWith("step: ") ? io.stderr : io.stdout)(line),
      });
      io.stdout(`local_failover_smoke_ok wall_ms=${Math.round(result.wallMs)}`);
      return 0;
    },
  },
  {
    name: "smoke two-box",
    summary: "Two-box failover smoke against a remote box driven over a remote shell (default ssh)",
    usage: "mn-redis-ha smoke two-box --remote-host HOST --local-ip IP --remote-ip IP [flags]",
    example: "mn-redis-ha smoke two-box --remote-host 192.168.4.173 --local-ip 192.168.4.25 " +
      "--remote-ip 192.168.4.173 --remote-network auto --initial-primary auto",
    flags: {
      "remote-host": {
        type: "string",
        placeholder: "HOST",
        help: "the remote box (for the default remote shell) (required)",
      },
      "local-ip": {
        type: "string",
        placeholder: "IP",
        help: "this box's address, reachable from the remote (required)",
      },
      "remote-ip": {
        type: "string",
        placeholder: "IP",
        help: "the remote box's address (required)",
      },
      "remote-network": {
        type: "string",
        placeholder: "auto|host|bridge",
        help:
          "auto, host or bridge: host binds --remote-ip, bridge binds all remote interfaces and " +
          "announces --remote-ip; auto chooses host",
        default: "auto",
      },
      "initial-primary": {
        type: "string",
        placeholder: "auto|local|remote",
        help:
          "auto, local or remote: auto falls back to remote when the remote cannot reach the local Redis",
        default: "auto",
      },
      "remote-shell": {
        type: "string",
        placeholder: "CMD",
        help: "command prefix that runs a command on the remote box",
        default: "ssh <remote-host>",
      },
      ...portFlags("the test", TWO_BOX_PORTS),
      dir: {
        type: "string",
        placeholder: "DIR",
        help: "parent of the local temp dir",
        default: ".tmp",
      },
      "timeout-ms": {
        type: "string",
        placeholder: "MS",
        help: "deadline of each step",
        default: "60000",
      },
    },
    connection: false,
    run: async ({ flags, io, signal }) => {
      const remoteHost = hostFlag(flags, "remote-host");
      const { parseRemoteShell, runTwoBoxSmoke } = await import("../ops/smoke_two_box.ts");
      await runTwoBoxSmoke({
        remoteHost,
        localIp: hostFlag(flags, "local-ip"),
        remoteIp: hostFlag(flags, "remote-ip"),
        remoteNetwork: choiceFlag(
          flags,
          "remote-network",
          ["auto", "host", "bridge"] as const,
          "auto",
        ),
        initialPrimary: choiceFlag(
          flags,
          "initial-primary",
          ["auto", "local", "remote"] as const,
          "auto",
        ),
        remoteShell: runnableShell(
          parseRemoteShell(
            typeof flags["remote-shell"] === "string" ? flags["remote-shell"] : undefined,
            remoteHost,
          ),
        ),
        ...portsOf(flags, TWO_BOX_PORTS),
        dir: await ensureDir(typeof flags.dir === "string" ? flags.dir : ".tmp"),
        timeoutMs: intFlag(flags, "timeout-ms", 60_000, 1000, 3_600_000),
        out: (line) => io.stdout(line),
        progress: (line) => io.stderr(line),
        signal,
      });
      return 0;
    },
  },
];
