/**
 * The `ROLE` reply, as the client reads it: what a node is and, for a
 * replica, which primary it follows, its link state and its applied offset.
 *
 * @module
 */

import { formatEndpoint } from "./endpoint.ts";
import { replyToString, type RespReply } from "./resp.ts";

/** What `ROLE` says. */
export interface Role {
  /** `master`, `slave`, `sentinel`, or `unknown` for a reply that is not a `ROLE` reply. */
  readonly role: string;
  /** A replica's primary, `host:port`. */
  readonly primary?: string | undefined;
  /** A replica's link state (`connected`, `connect`, `sync`, …). */
  readonly state?: string | undefined;
  /** A primary's replication offset, or a replica's applied offset; -1 when none. */
  readonly offset: number;
}

/** Parses a `ROLE` reply. */
export function parseRole(reply: RespReply): Role {
  if (!Array.isArray(reply)) return { role: "unknown", offset: -1 };
  const role = replyToString(reply[0]) ?? "unknown";
  if (role === "master") return { role, offset: Number(reply[1]) };
  if (role !== "slave") return { role, offset: -1 };
  return {
    role,
    primary: formatEndpoint({
      host: replyToString(reply[1]) ?? "?",
      port: Number(replyToString(reply[2])),
    }),
    state: replyToString(reply[3]) ?? "",
    offset: Number(reply[4]),
  };
}
