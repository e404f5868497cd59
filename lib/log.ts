/**
 * Logging through LogTape. `lib/` only logs by category and stays silent
 * until an application configures sinks; the CLI does that with
 * {@link configureCliLogging}, writing to stderr only.
 *
 * @module
 */

import { configure, getLogger, type Logger, type LogRecord, reset } from "@logtape/logtape";

/** The root category of every logger in this library. */
export const LOG_CATEGORY = "mn-redis-ha";

/** Returns the library logger for a sub-category, e.g. `"sentinel"`. */
export function libraryLogger(sub: string): Logger {
  return getLogger([LOG_CATEGORY, sub]);
}

/** Output format of the CLI's log lines. */
export type LogFormat = "text" | "json";

/** Options for {@link configureCliLogging}. */
export interface CliLoggingOptions {
  /** Text lines (default) or JSON lines. */
  format: LogFormat;
  /** Lowest level written. @default {"info"} */
  level?: "debug" | "info" | "warning" | "error";
  /** Where lines go. @default {stderr} */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

/** Renders a record's message with its properties filled in. */
function renderMessage(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : formatValue(part)).join("");
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Formats one record as a text line (its properties are already in the message). */
export function formatTextLine(record: LogRecord): string {
  const time = new Date(record.timestamp).toISOString();
  return `${time} ${record.level.toUpperCase()} ${record.category.join(".")}: ${
    renderMessage(record)
  }`;
}

/** Formats one record as a JSON line. */
export function formatJsonLine(record: LogRecord): string {
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record.properties)) {
    props[k] = v instanceof Error ? v.message : v;
  }
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    event: record.rawMessage,
    message: renderMessage(record),
    ...props,
  });
}

/** Configures LogTape for the CLI: one sink, stderr, text or JSON lines. */
export async function configureCliLogging(options: CliLoggingOptions): Promise<void> {
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const format = options.format === "json" ? formatJsonLine : formatTextLine;
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => write(format(record) + "\n") },
    loggers: [
      { category: [LOG_CATEGORY], lowestLevel: options.level ?? "info", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["stderr"] },
    ],
  });
}

/** Removes the CLI's logging configuration. */
export async function resetLogging(): Promise<void> {
  await reset();
}
