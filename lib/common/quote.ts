/** Quoting what a user typed into messages: a value is shown, never a page of it. */

/** The longest part of a value a message shows. */
export const MAX_QUOTED = 80;

/**
 * A user-supplied value for a message: JSON-quoted, and cut after
 * {@link MAX_QUOTED} characters with its full length noted, so a 100 KB
 * flag is not echoed back whole.
 */
export function quoteValue(value: string): string {
  if (value.length <= MAX_QUOTED) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, MAX_QUOTED))}… (${value.length} characters)`;
}

/** A duration for a message: whole milliseconds. */
export function formatMs(ms: number): string {
  return `${Math.round(ms)}ms`;
}
