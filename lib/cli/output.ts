/**
 * Where the CLI's output goes: a copy of every line to `--log-file`, a
 * command's progress lines in the format of the log lines beside them, and
 * one failure line (plus a JSON error on stdout with `--json`).
 *
 * @module
 */

import type { CliIo, CommandSpec } from "./command_spec.ts";
import { formatJsonLine, formatTextLine, type LogFormat } from "../common/log.ts";

/** `io` whose every stdout and stderr line is also appended to `file`. */
export function teeTo(io: CliIo, file: Deno.FsFile): CliIo {
  const encoder = new TextEncoder();
  const append = (text: string): void => {
    const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
    let offset = 0;
    while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
  };
  return {
    ...io,
    stdout: (text) => {
      io.stdout(text);
      append(text);
    },
    stderr: (text) => {
      io.stderr(text);
      append(text);
    },
  };
}

/**
 * `io` whose stderr lines (a command's progress and warnings) look like the
 * log lines beside them: JSON objects under `--log-format json`, and for a
 * long-lived service (`node start`, `serve`) timestamped lines with a level
 * and a category, so its log reads as one stream. Other commands' progress
 * stays plain text for a person at a terminal.
 */
export function progressAsLogLines(io: CliIo, command: CommandSpec, format: LogFormat): CliIo {
  const render = format === "json"
    ? formatJsonLine
    : command.stopsOnSignal === true
    ? formatTextLine
    : undefined;
  if (render === undefined) return io;
  const category = ["mn-redis-ha", command.name.split(" ")[0]!];
  return {
    ...io,
    stderr: (text) => {
      for (const line of text.split("\n")) {
        const warning = /^warning: /.test(line);
        io.stderr(render({
          category,
          level: warning ? "warning" : "info",
          rawMessage: warning ? line.slice("warning: ".length) : line,
          properties: {},
          timestamp: Date.now(),
        }));
      }
    },
  };
}

/**
 * Reports a command's failure and returns its exit code: one line on stderr
 * (a JSON line under `--log-format json`) and, with `--json`, a JSON object
 * on stdout, so a script reading stdout learns what went wrong.
 */
export function failureReporter(
  io: CliIo,
  commandName: string,
  format: LogFormat,
  json: boolean,
): (code: string, message: string, exitCode: number) => number {
  return (code, message, exitCode) => {
    const text = `mn-redis-ha ${commandName}: ${message}`;
    io.stderr(
      format === "json"
        ? JSON.stringify({
          time: new Date().toISOString(),
          level: "error",
          category: "mn-redis-ha.cli",
          message: text,
          code,
          exitCode,
        })
        : text,
    );
    if (json) io.stdout(JSON.stringify({ error: { code, message } }, null, 2));
    return exitCode;
  };
}
