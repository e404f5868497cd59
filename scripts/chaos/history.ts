/**
 * The history of a fault run: every operation as invoked and completed, with
 * its outcome, on the monotonic clock (ms since the run started), plus the
 * lease holders' "I hold it" intervals and the run's events (faults, Sentinel
 * switches). Written as JSONL; read by the checker.
 */

import { AbortedError, OutcomeUnknownError, WaitError } from "../../lib/common/errors.ts";

/** What an operation did. */
export type OpKind = "set" | "rpush" | "append" | "fenced" | "read";

/** How an operation ended: applied, not applied, or not known. */
export type Outcome = "ok" | "failed" | "unknown";

/** One operation. */
export interface Op {
  readonly type: "op";
  readonly kind: OpKind;
  /** Key (set), list value (rpush), event id (append, fenced). */
  readonly id: string;
  /** The lease and token a fenced write presented. */
  readonly lease?: string | undefined;
  readonly token?: number | undefined;
  readonly holder?: string | undefined;
  readonly invokedAt: number;
  completedAt?: number | undefined;
  outcome?: Outcome | undefined;
  error?: string | undefined;
}

/** One contender's belief that it holds a lease. */
export interface Hold {
  readonly type: "hold";
  readonly lease: string;
  readonly holder: string;
  readonly token: number;
  readonly from: number;
  readonly to: number;
}

/** A fault window or a Sentinel event. */
export interface Mark {
  readonly type: "mark";
  readonly what: "fault" | "switch";
  readonly label: string;
  readonly from: number;
  /** When the fault ended (set by the nemesis when it heals). */
  to?: number | undefined;
}

/** Any history line. */
export type Entry = Op | Hold | Mark;

/** Classifies a failure: `unknown` when the write may have been applied, else `failed`. */
export function outcomeOf(error: unknown): Outcome {
  if (error instanceof OutcomeUnknownError || error instanceof WaitError) return "unknown";
  if (error instanceof AbortedError) return error.mayHaveApplied ? "unknown" : "failed";
  return "failed";
}

/**
 * Collects the history of one run. With `spill`, completed operations and
 * holds go to that file as JSON lines instead of staying in memory (a soak
 * of hours would hold millions): `entries` then keeps the marks and the
 * operations still running, and {@link History.all} reads everything back.
 */
export class History {
  readonly entries: Entry[] = [];
  readonly #start = performance.now();
  readonly #spill: Deno.FsFile | undefined;
  readonly #spillPath: string | undefined;
  readonly #encoder = new TextEncoder();

  /** A history in memory, or spilled to `options.spill` (see the class). */
  constructor(options: { spill?: string } = {}) {
    this.#spillPath = options.spill;
    this.#spill = options.spill === undefined
      ? undefined
      : Deno.openSync(options.spill, { write: true, create: true, truncate: true });
  }

  /** Every entry: in memory, or (spilled) read back from the file plus what is still in memory. */
  async all(): Promise<Entry[]> {
    if (this.#spillPath === undefined) return this.entries;
    const text = await Deno.readTextFile(this.#spillPath);
    const spilled = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Entry);
    return [...spilled, ...this.entries];
  }

  /** Closes the spill file (the history can still be read with {@link History.all}). */
  close(): void {
    this.#spill?.close();
  }

  #spilled(entry: Entry): boolean {
    if (this.#spill === undefined) return false;
    this.#spill.writeSync(this.#encoder.encode(JSON.stringify(entry) + "\n"));
    return true;
  }

  /** Milliseconds since the run started. */
  now(): number {
    return performance.now() - this.#start;
  }

  /** Records an operation and runs it, recording its outcome. Never throws. */
  async op(
    init: Omit<Op, "type" | "invokedAt">,
    fn: () => Promise<unknown>,
  ): Promise<Outcome> {
    const op: Op = { ...init, type: "op", invokedAt: this.now() };
    this.entries.push(op);
    try {
      await fn();
      op.outcome = "ok";
    } catch (error) {
      op.outcome = outcomeOf(error);
      op.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    op.completedAt = this.now();
    if (this.#spilled(op)) this.entries.splice(this.entries.lastIndexOf(op), 1);
    return op.outcome;
  }

  /** Records a holder's interval. */
  hold(hold: Omit<Hold, "type">): void {
    const entry: Hold = { ...hold, type: "hold" };
    if (!this.#spilled(entry)) this.entries.push(entry);
  }

  /** Records a fault window (`to` set when it ends) or a Sentinel switch. */
  mark(mark: Omit<Mark, "type">): Mark {
    const entry: Mark = { ...mark, type: "mark" };
    this.entries.push(entry);
    return entry;
  }

  /** The history as JSONL. */
  toJsonl(): string {
    return this.entries.map((e) => JSON.stringify(e)).join("\n") + "\n";
  }
}
