/** Encoding of JSON payloads with size limits, shared by the state modules. */

import type { FenceToken } from "./_context.ts";
import { ValidationError } from "../common/state_errors.ts";
import { checkId } from "./keys.ts";
import { type ReadOptions, readWith, type RedisHaClient } from "../ha/client.ts";
import type { ReadScope } from "../ha/replica_reads.ts";
import type { RespReply } from "../protocol/resp.ts";
import { mapWrongType } from "./_lua.ts";
import { replyToString } from "../protocol/resp.ts";

const encoder = new TextEncoder();

/** Serialises `value` as JSON, checking it is serialisable and within `maxBytes`. */
export function encodeJson(field: string, value: unknown, maxBytes: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new ValidationError(
      field,
      `the value is not JSON-serialisable (${error instanceof Error ? error.message : error})`,
    );
  }
  if (text === undefined) {
    throw new ValidationError(
      field,
      `${typeof value} is not JSON-serialisable; expected a JSON value`,
    );
  }
  // A UTF-16 code unit takes at most 3 bytes of UTF-8: most payloads need no measuring.
  if (text.length * 3 <= maxBytes) return text;
  const size = encoder.encode(text).length;
  if (size > maxBytes) {
    throw new ValidationError(
      field,
      `${size} bytes of JSON exceeds the limit of ${maxBytes} bytes`,
    );
  }
  return text;
}

/** Parses a stored JSON payload. */
export function decodeJson(reply: RespReply): unknown {
  const text = replyToString(reply);
  return text === null ? null : JSON.parse(text);
}

/** Lease key and token arguments for a fenced script (empty token when unfenced). */
export function fenceArgs(
  fence: FenceToken | undefined,
  leaseKey: (name: string) => string,
): { key: string; token: string } {
  if (fence === undefined) return { key: leaseKey("_none"), token: "" };
  checkId("fence.lease", fence.lease);
  if (!Number.isSafeInteger(fence.token) || fence.token < 0) {
    throw new ValidationError("fence.token", `${fence.token} is not a fencing token`);
  }
  return { key: leaseKey(fence.lease), token: String(fence.token) };
}

/**
 * Reads a hash (`HGETALL`) as a string map, empty when the key does not
 * exist; a key of another type is a {@link KeyTypeError} naming it.
 */
export async function readHash(
  client: RedisHaClient,
  key: string,
  options: ReadOptions,
  scope?: ReadScope,
): Promise<Map<string, string>> {
  const { reply } = await readWith(client, (send) => send(["HGETALL", key]), options, scope)
    .catch((e) => {
      throw mapWrongType(e, key, "hash");
    });
  return hashToMap(reply);
}

/** Turns a flat `HGETALL` reply into a string map. */
function hashToMap(reply: RespReply): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    map.set(replyToString(reply[i]) ?? "", replyToString(reply[i + 1]) ?? "");
  }
  return map;
}
