/**
 * The CLI's help texts: the command list, a command group's subcommands,
 * and each command's flags (its own, the connection flags it takes, the
 * common ones) with an example.
 *
 * @module
 */

import { type CommandSpec, connectionFlags, type FlagSpec } from "./command_spec.ts";
import { COMMANDS } from "./command_table.ts";

/** Help lines of the connection flags, by flag name. */
const CONFIG_HELP_LINES: readonly (readonly [string, string])[] = [
  ["ha-mode", "  --ha-mode single|sentinel        MN_REDIS_HA_MODE (default single)"],
  ["url", "  --url redis[s]://host:port/db    MN_REDIS_URL (default redis://127.0.0.1:6379)"],
  ["sentinels", "  --sentinels H:P,H:P              MN_REDIS_SENTINELS"],
  ["sentinel-master", "  --sentinel-master NAME           MN_REDIS_SENTINEL_MASTER"],
  ["sentinel-tls", "  --sentinel-tls true|false        MN_REDIS_SENTINEL_TLS (default false)"],
  ["db", "  --db N                           MN_REDIS_DB (default 0)"],
  ["username", "  --username NAME                  MN_REDIS_USERNAME"],
  ["sentinel-username", "  --sentinel-username NAME         MN_REDIS_SENTINEL_USERNAME"],
  ["wait-replicas", "  --wait-replicas N                MN_REDIS_WAIT_REPLICAS (default 0 = off)"],
  ["wait-timeout-ms", "  --wait-timeout-ms MS             MN_REDIS_WAIT_TIMEOUT_MS (default 100)"],
  [
    "reconnect-attempts",
    "  --reconnect-attempts N           MN_REDIS_RECONNECT_ATTEMPTS (default 10)",
  ],
  [
    "reconnect-backoff-ms",
    "  --reconnect-backoff-ms MS        MN_REDIS_RECONNECT_BACKOFF_MS (default 250)",
  ],
  [
    "reconnect-max-backoff-ms",
    "  --reconnect-max-backoff-ms MS    MN_REDIS_RECONNECT_MAX_BACKOFF_MS (default 2000)",
  ],
  ["namespace", "  --namespace NAME                 MN_REDIS_NAMESPACE (default mirror_neuron)"],
];

/** The connection flags `command` takes, with their variables and defaults. */
function configHelp(command: CommandSpec): string {
  const taken = new Set(connectionFlags(command));
  return [
    "Connection flags (each overrides its MN_REDIS_* variable):",
    ...CONFIG_HELP_LINES.filter(([flag]) => taken.has(flag)).map(([, line]) => line),
  ].join("\n");
}

/** The flags every command takes, and where passwords come from. */
const COMMON_HELP =
  `Passwords come only from MN_REDIS_PASSWORD and MN_REDIS_SENTINEL_PASSWORD (never flags).
Output flags:
  --log-format text|json           log lines on stderr (default text)
  --help                           this help
  --version                        print the version`;

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "Usage: mn-redis-ha <command> [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'mn-redis-ha <command> --help' for a command's flags and an example.",
  ].join("\n");
}

/** A command's help: usage, flags, connection flags, output flags, an example. */
export function commandHelp(command: CommandSpec): string {
  const flags = Object.entries(command.flags);
  const shown = (name: string, f: FlagSpec): string =>
    f.type === "string" ? `${name} ${f.placeholder}` : name;
  const width = Math.max(0, ...flags.map(([name, f]) => shown(name, f).length));
  return [
    `Usage: ${command.usage}`,
    "",
    command.summary + ".",
    "",
    ...(flags.length > 0
      ? [
        "Flags:",
        ...flags.map(([name, f]) =>
          `  --${shown(name, f).padEnd(width + 2)}  ${f.help}` +
          (f.default === undefined ? "" : ` (default ${f.default})`)
        ),
        "",
      ]
      : []),
    ...(command.connection ? [configHelp(command)] : []),
    COMMON_HELP,
    "",
    "Example:",
    `  ${command.example}`,
  ].join("\n");
}

/** Help of a command group (`inspect`, `node`, `smoke`): its subcommands. */
export function groupHelp(group: string, commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `Usage: mn-redis-ha ${group} <subcommand> [flags]`,
    "",
    "Subcommands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run 'mn-redis-ha ${group} <subcommand> --help' for its flags and an example.`,
  ].join("\n");
}
