/**
 * Parsing Redis `INFO` output.
 *
 * @module
 */

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
