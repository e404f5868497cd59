/**
 * `mn-redis-ha probe`: a durable write of a probe record, read back from the
 * primary.
 *
 * @module
 */

import { RedisHaClient } from "../ha/client.ts";
import type { Config } from "../ha/config.ts";
import { RedisHaError } from "../common/errors.ts";
import { replyToString } from "../protocol/resp.ts";

/** The outcome of a successful probe. */
export interface ProbeResult {
  /** The primary written to, `host:port`. */
  readonly primary: string;
  /** The probe key (expires after {@link PROBE_TTL_MS}). */
  readonly key: string;
}

/** Probe records expire after this long, so probes never accumulate. */
export const PROBE_TTL_MS = 300_000;

/**
 * Writes `<namespace>:probe:<id>` as a durable write (WAIT per config),
 * reads it back, and throws unless the value matches. `signal` abandons it.
 */
export async function runProbe(
  config: Config,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<ProbeResult> {
  const { signal } = options;
  await using client = await RedisHaClient.connect(config, { signal });
  const id = crypto.randomUUID();
  const key = `${config.namespace}:probe:${id}`;
  const value = JSON.stringify({ id, writtenAt: new Date().toISOString() });
  // SET with a fixed value is idempotent: a resend after a dropped reply is harmless.
  await client.durable(["SET", key, value, "PX", PROBE_TTL_MS], { idempotent: true, signal });
  const read = replyToString(await client.command(["GET", key], { idempotent: true, signal }));
  if (read !== value) {
    throw new RedisHaError(
      "REPLY",
      `Probe read-back mismatch on ${client.primary?.address}: wrote ${value}, read ${read}; ` +
        "another writer or a failover lost the write",
    );
  }
  return { primary: client.primary!.address, key };
}
