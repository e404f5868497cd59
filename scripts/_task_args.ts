// deno-lint-ignore-file no-console -- command-line programs: usage errors go to stderr
/**
 * Flags of the task programs (`deno task chaos`, `bench`, `bench:failover`,
 * …): parsed strictly, every mistake reported in one line with exit 2 and no
 * stack trace, and an `--out` directory checked against the task's write
 * permission before anything runs (a long run must not die at its end on
 * Deno's `NotCapable`).
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in a task's flags: reported as `task: message`, exit 2. */
export class TaskUsageError extends Error {
  /** Error class name. */
  override readonly name = "TaskUsageError";
}

/** Parses `args` strictly (unknown flags and positionals are refused). */
export function parseTaskFlags<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"] {
  try {
    return parseArgs({ args: [...args], options, strict: true }).values;
  } catch (error) {
    throw new TaskUsageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * `dir` if this process may write there; otherwise a {@link TaskUsageError}
 * naming where the task may write and how to allow another place.
 * `task` names its permission set, what that set may write and the script,
 * for the message.
 */
export function checkOutDir(
  dir: string,
  task: { allowed: readonly string[]; set: string; script: string },
  flag = "--out",
): string {
  const { allowed, set, script } = task;
  if (dir.trim() === "") throw new TaskUsageError(`${flag} is empty; expected a directory`);
  const state = Deno.permissions.querySync({ name: "write", path: dir }).state;
  if (state === "granted") return dir;
  throw new TaskUsageError(
    `${flag} ${JSON.stringify(dir)} is outside what this task may write ` +
      `(${allowed.join(", ")}); pick a directory under those, or run the program with that ` +
      `place allowed: deno run -P=${set} --allow-write=${dir},${allowed.join(",")} ${script} …`,
  );
}

/** A whole number flag within `min`-`max`, or a {@link TaskUsageError}. */
export function intTaskFlag(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new TaskUsageError(
      `${flag} is ${JSON.stringify(value)}; expected a whole number ${min}-${max}`,
    );
  }
  return n;
}

/** Runs `parse`; a {@link TaskUsageError} is printed as `task: message` and exits 2. */
export function withTaskUsage<T>(task: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof TaskUsageError)) throw error;
    console.error(`${task}: ${error.message}`);
    Deno.exit(2);
  }
}
