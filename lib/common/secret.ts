/**
 * A wrapper that keeps passwords out of logs, errors and `inspect` output.
 *
 * @module
 */

const MASK = "***";

/**
 * Holds a secret value. `toString`, `toJSON` and Deno's inspect all print
 * `***`; only {@link Secret.reveal} returns the value, for the one place that
 * sends it to Redis.
 */
export class Secret {
  readonly #value: string;

  /** Wraps a secret value. */
  constructor(value: string) {
    this.#value = value;
  }

  /** Returns the secret value. Call only where it goes onto the wire. */
  reveal(): string {
    return this.#value;
  }

  /** Always `***`. */
  toString(): string {
    return MASK;
  }

  /** Always `***`. */
  toJSON(): string {
    return MASK;
  }

  /** Always `***`, for `Deno.inspect` and `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return MASK;
  }

  /** Always `***`, for `node:util` inspect. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return MASK;
  }
}
