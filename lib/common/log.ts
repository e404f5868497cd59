/**
 * Logging. `lib/` logs by category (`mn-redis-ha.<sub>`) and stays silent
 * until someone listens:
 *
 * - An application configures LogTape as usual; the library's records reach
 *   it under the `mn-redis-ha` category. LogTape is loaded on the first
 *   record, not at import, so a process that never logs never loads it.
 * - The CLI installs its own sink with {@link configureCliLogging}: text or
 *   JSON lines on stderr, formatted here, without loading LogTape at all
 *   (the CLI's start-up time).
 *
 * @module
 */

/** The root category of every logger in this library. */
export const LOG_CATEGORY = "mn-redis-ha";

/** Severity of a record, as LogTape names them. */
export type LogLevel = "debug" | "info" | "warning" | "error";

/** One log record. */
export interface LogLine {
  /** E.g. `["mn-redis-ha", "client"]`. */
  readonly category: readonly string[];
  /** Severity. */
  readonly level: LogLevel;
  /** The message template, e.g. `"Node {node} is the leader"`. */
  readonly rawMessage: string;
  /** The template's values. */
  readonly properties: Readonly<Record<string, unknown>>;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
}

/** A library logger: LogTape's message-template style. */
export interface LibraryLogger {
  /** Logs at debug level. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Logs at warning level. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(message: string, properties?: Record<string, unknown>): void;
}

/** Where records go: the CLI's sink, or LogTape (loaded on the first record). */
let cliSink: { write: (record: LogLine) => void; lowest: number } | undefined;
let logtape: Promise<typeof import("@logtape/logtape")> | undefined;
let logtapeModule: typeof import("@logtape/logtape") | undefined;
const waiting: LogLine[] = [];

const LEVELS: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warning: 2, error: 3 };

function emit(record: LogLine): void {
  if (cliSink !== undefined) {
    if (LEVELS[record.level] >= cliSink.lowest) cliSink.write(record);
    return;
  }
  if (logtapeModule !== undefined) {
    toLogTape(logtapeModule, record);
    return;
  }
  // Queued in order until LogTape is loaded (once, on the first record).
  waiting.push(record);
  logtape ??= import("@logtape/logtape").then((module) => {
    logtapeModule = module;
    for (const queued of waiting.splice(0)) toLogTape(module, queued);
    return module;
  });
}

function toLogTape(module: typeof import("@logtape/logtape"), record: LogLine): void {
  const logger = module.getLogger([...record.category]);
  const properties = { ...record.properties };
  switch (record.level) {
    case "debug":
      return logger.debug(record.rawMessage, properties);
    case "info":
      return logger.info(record.rawMessage, properties);
    case "warning":
      return logger.warn(record.rawMessage, properties);
    case "error":
      return logger.error(record.rawMessage, properties);
  }
}

/** Returns the library logger for a sub-category, e.g. `"sentinel"`. */
export function libraryLogger(sub: string): LibraryLogger {
  const category = [LOG_CATEGORY, sub];
  const at = (level: LogLevel) => (message: string, properties: Record<string, unknown> = {}) =>
    emit({ category, level, rawMessage: message, properties, timestamp: Date.now() });
  return { debug: at("debug"), info: at("info"), warn: at("warning"), error: at("error") };
}

/** Output format of the CLI's log lines. */
export type LogFormat = "text" | "json";

/** Options for {@link configureCliLogging}. */
export interface CliLoggingOptions {
  /** Text lines (default) or JSON lines. */
  format: LogFormat;
  /** Lowest level written. @default {"info"} */
  level?: LogLevel | undefined;
  /** Where lines go. @default {stderr} */
  write?: ((line: string) => void) | undefined;
}

const encoder = new TextEncoder();

/** Renders a record's message with its properties filled in (`{name}` placeholders). */
export function renderMessage(record: LogLine): string {
  return record.rawMessage.replace(
    /\{(\w+)\}/g,
    (whole, name: string) =>
      Object.hasOwn(record.properties, name) ? formatValue(record.properties[name]) : whole,
  );
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
export function formatTextLine(record: LogLine): string {
  const time = new Date(record.timestamp).toISOString();
  return `${time} ${record.level.toUpperCase()} ${record.category.join(".")}: ${
    renderMessage(record)
  }`;
}

/** Formats one record as a JSON line. */
export function formatJsonLine(record: LogLine): string {
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

/**
 * Sends the library's records to one sink for the CLI: stderr (or `write`),
 * text or JSON lines. LogTape is not involved. Async for compatibility.
 */
export function configureCliLogging(options: CliLoggingOptions): Promise<void> {
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const format = options.format === "json" ? formatJsonLine : formatTextLine;
  cliSink = {
    write: (record) => write(format(record) + "\n"),
    lowest: LEVELS[options.level ?? "info"],
  };
  return Promise.resolve();
}

/** Removes the CLI's sink: records go to LogTape again. */
export function resetLogging(): Promise<void> {
  cliSink = undefined;
  return Promise.resolve();
}
