/**
 * One worker process of runtime-node clients (`herd_worker.ts`), driven
 * through its stdin and its JSON lines: `deno task bench:herd` and
 * `deno task soak` run their herds with it.
 *
 * @module
 */

import type { HerdWorkerOptions } from "./herd_worker.ts";

/**
 * V8's young generation per semi-space in the workers, fixed. With V8's
 * default, the burst of a failover in a process of 50 clients grows the
 * nursery by up to 32 MB once (measured: 0.7–1.0 MB of RSS per client, while
 * the heap in use after a full GC grew 0.012 MB per client); fixed, the RSS
 * measured is what the clients keep.
 */
const SEMI_SPACE_MB = 8;

/** A worker process and its JSON lines. */
export class HerdWorkerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #queue: Record<string, unknown>[] = [];
  #wake: (() => void) | undefined;
  readonly #reading: Promise<void>;
  readonly clients: number;

  /** The worker's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  readonly #signal: AbortSignal;
  #exited = false;

  /**
   * Starts a worker under the permission set `permissions` (`bench`: loopback
   * only; `chaos`: the fault suite's boxes); `signal` (Ctrl-C) ends every
   * wait for its answers.
   */
  constructor(options: HerdWorkerOptions, signal: AbortSignal, permissions = "bench") {
    this.#signal = signal;
    this.clients = options.clients;
    this.#child = new Deno.Command("deno", {
      args: [
        "run",
        `-P=${permissions}`,
        "--no-prompt",
        `--v8-flags=--expose-gc,--max-semi-space-size=${SEMI_SPACE_MB}`,
        "scripts/bench/herd_worker.ts",
        JSON.stringify(options),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    // A worker that died (a Ctrl-C reaches the whole process group) answers nothing more.
    void this.#child.status.then(() => {
      this.#exited = true;
      this.#wake?.();
    });
    const stdout = this.#child.stdout;
    this.#reading = (async () => {
      let buffer = "";
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line.startsWith("{")) continue;
          this.#queue.push(JSON.parse(line));
          this.#wake?.();
        }
      }
    })();
  }

  async send(command: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(command + "\n"));
  }

  /** The next message of `kind` (earlier ones of other kinds are dropped). */
  async next(kind: string, timeoutMs = 60_000, stoppable = true): Promise<Record<string, unknown>> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      if (stoppable) this.#signal.throwIfAborted();
      const index = this.#queue.findIndex((m) => m.kind === kind);
      if (index !== -1) return this.#queue.splice(0, index + 1).pop()!;
      if (this.#exited) throw new Error(`worker exited before it sent "${kind}"`);
      if (performance.now() > deadline) throw new Error(`worker sent no "${kind}"`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  async close(): Promise<void> {
    if (!this.#exited) await this.send("stop").catch(() => {});
    await this.next("stopped", 30_000, false).catch(() => this.#child.kill("SIGKILL"));
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#reading.catch(() => {});
  }
}
