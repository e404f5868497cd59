/**
 * Parsing Redis `INFO` output.
 *
 * @module
 */

import { formatHostPort } from "./endpoint.ts";

/** Parses `INFO` text into a field map (section headers dropped). */
export function parseInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Parses a `slaveN:ip=…,port=…,state=…,offset=…,lag=…` value. */
export function parseReplicaLine(value: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const pair of value.split(",")) {
    const eq = pair.indexOf("=");
    if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return fields;
}

/** One replica as its primary's `INFO replication` reports it. */
export interface ReplicaEntry {
  /** `host:port` the replica announced. */
  readonly address: string;
  /** Replication state, e.g. `online`. */
  readonly state: string;
  /** Seconds since the replica's last ack. */
  readonly lagSeconds: number;
  /** The offset it acknowledged. */
  readonly offset: number;
  /** Bytes of the primary's stream it has not acknowledged. */
  readonly offsetLag: number;
}

/** Every `slaveN` line of parsed `INFO replication` output. */
export function replicasFromInfo(fields: Map<string, string>): ReplicaEntry[] {
  const masterOffset = Number(fields.get("master_repl_offset") ?? 0);
  const replicas: ReplicaEntry[] = [];
  for (const [key, value] of fields) {
    if (!/^slave\d+$/.test(key)) continue;
    const f = parseReplicaLine(value);
    const host = f.get("ip") ?? "?";
    const offset = Number(f.get("offset") ?? 0);
    replicas.push({
      address: formatHostPort(host, Number(f.get("port") ?? 0)),
      state: f.get("state") ?? "unknown",
      lagSeconds: Number(f.get("lag") ?? 0),
      offset,
      offsetLag: Math.max(0, masterOffset - offset),
    });
  }
  return replicas;
}
