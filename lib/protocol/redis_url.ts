/**
 * `MN_REDIS_URL`: `redis[s]://[user[:password]@]host[:port][/db]`, parsed
 * into its parts with a message naming what is wrong (credentials masked).
 *
 * @module
 */

import { quoteValue } from "../common/quote.ts";
import { Secret } from "../common/secret.ts";
import { parsePort } from "./endpoint.ts";

/** The largest database index accepted before the server is asked (SELECT checks the real range). */
export const MAX_DB = 2_147_483_647;

/** A `redis[s]://` URL's parts. */
export interface RedisUrl {
  /** `rediss://`: TLS to data nodes. */
  readonly tls: boolean;
  /** The host (IPv6 without brackets). */
  readonly host: string;
  /** The port (6379 when left out). */
  readonly port: number;
  /** The user name, if the URL has one. */
  readonly username: string | undefined;
  /** The password, if the URL has one (masked in every message). */
  readonly password: Secret | undefined;
  /** The database (`/db`, 0 when left out). */
  readonly db: number;
}

/** Parses `redis[s]://[user[:password]@]host[:port][/db]`; returns a message on error. */
export function parseRedisUrl(text: string): RedisUrl | string {
  const match =
    /^(redis|rediss):\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?(?:\/([^?#]*))?$/
      .exec(text);
  // Mask userinfo before quoting the URL in any message.
  const safe = text.replace(/\/\/[^@/]*@/, "//***@");
  if (match === null) {
    return `${quoteValue(safe)} is not a Redis URL; expected redis://host:port/db or rediss://…`;
  }
  const [, scheme, userinfo, hostRaw = "", portRaw, dbRaw] = match;
  const host = hostRaw.startsWith("[") ? hostRaw.slice(1, -1) : hostRaw;
  if (host === "") return `${quoteValue(safe)} has no host; expected redis://host:port`;
  let port = 6379;
  if (portRaw !== undefined) {
    const p = parsePort(portRaw);
    if (typeof p === "string") return `${quoteValue(safe)}: ${p}`;
    port = p;
  }
  let db = 0;
  if (dbRaw !== undefined && dbRaw !== "") {
    if (!/^\d+$/.test(dbRaw) || Number(dbRaw) > MAX_DB) {
      return `${quoteValue(safe)} has database ${quoteValue(dbRaw)}; expected a number, /0 or more`;
    }
    db = Number(dbRaw);
  }
  let username: string | undefined;
  let password: Secret | undefined;
  if (userinfo !== undefined && userinfo !== "") {
    const colon = userinfo.indexOf(":");
    try {
      if (colon === -1) {
        username = decodeURIComponent(userinfo);
      } else {
        const user = decodeURIComponent(userinfo.slice(0, colon));
        username = user === "" ? undefined : user;
        password = new Secret(decodeURIComponent(userinfo.slice(colon + 1)));
      }
    } catch {
      return `${quoteValue(safe)} has badly percent-encoded credentials`;
    }
  }
  return { tls: scheme === "rediss", host, port, username, password, db };
}
