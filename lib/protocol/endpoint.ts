/**
 * Host/port endpoints: parsing `host:port` lists and printing them without
 * credentials.
 *
 * @module
 */

import { quoteValue } from "../common/quote.ts";

/** A TCP endpoint. `host` is an IP address or name, IPv6 without brackets. */
export interface Endpoint {
  /** IP address or host name (IPv6 without brackets). */
  readonly host: string;
  /** TCP port, 1–65535. */
  readonly port: number;
}

/**
 * Formats an endpoint as `host:port` (IPv6 as `[addr]:port`). It never prints
 * userinfo, so it is the only way endpoints reach messages and logs.
 */
export function formatEndpoint(endpoint: Endpoint): string {
  return formatHostPort(endpoint.host, endpoint.port);
}

/**
 * Formats a host and port as Redis and Sentinel report them (separate
 * fields, IPv6 unbracketed) as `host:port`, IPv6 as `[addr]:port`; a missing
 * part shows as `?`.
 */
export function formatHostPort(
  host: string | null | undefined,
  port: string | number | null | undefined,
): string {
  const h = host ?? "?";
  return `${h.includes(":") ? `[${canonicalIpv6(h)}]` : h}:${port ?? "?"}`;
}

const canonical = new Map<string, string>();

/**
 * An IPv6 address in its one canonical text form (RFC 5952: lower case, no
 * leading zeros, the longest zero run as `::`), so that `fd00:0abe::2` from a
 * flag and `fd00:abe::2` from Sentinel format the same and compare equal.
 * Text that is not an IPv6 address (or has a zone, `%eth0`) is returned as
 * it is; an IPv4-embedded one keeps its dotted form, in lower case.
 */
export function canonicalIpv6(address: string): string {
  let known = canonical.get(address);
  if (known === undefined && address.includes(".")) {
    // IPv4-embedded (`::ffff:10.0.0.1`): kept in the dotted form Redis prints, in lower case.
    known = address.toLowerCase();
  }
  if (known === undefined) {
    try {
      // The URL parser serialises an IPv6 host per RFC 5952.
      const host = new URL(`http://[${address}]/`).hostname;
      known = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : address;
    } catch {
      known = address;
    }
    if (canonical.size < 1024) canonical.set(address, known);
  }
  return known;
}

/** Parses a port number; returns an error message instead of throwing. */
export function parsePort(text: string): number | string {
  if (!/^\d+$/.test(text)) return `port ${quoteValue(text)} is not a number; expected 1-65535`;
  const port = Number(text);
  if (port < 1 || port > 65535) return `port ${port} is out of range; expected 1-65535`;
  return port;
}

/**
 * Parses `host:port` (or `[ipv6]:port`). Returns the endpoint, or a message
 * saying what is wrong and what is expected.
 */
export function parseEndpoint(text: string): Endpoint | string {
  const trimmed = text.trim();
  if (trimmed === "") return "empty entry; expected host:port";
  const shown = quoteValue(trimmed);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    return `${shown} is a URL; expected host:port (no scheme), e.g. 10.0.0.1:26379`;
  }
  if (/[;|]/.test(trimmed) || /:\d+\s+\S/.test(trimmed)) {
    return `${shown} has a separator other than a comma; expected host:port entries separated by commas`;
  }
  let host: string;
  let portText: string;
  if (trimmed.startsWith("[")) {
    const close = trimmed.indexOf("]");
    if (close === -1) return `${shown} has an unclosed "["; expected [ipv6]:port`;
    host = trimmed.slice(1, close);
    const rest = trimmed.slice(close + 1);
    if (!rest.startsWith(":") || rest.length === 1) {
      return `${shown} has no port; expected [ipv6]:port`;
    }
    portText = rest.slice(1);
  } else {
    const colon = trimmed.lastIndexOf(":");
    if (colon === -1) {
      return `${shown} has no port; expected host:port, e.g. ${
        trimmed.length <= 64 ? trimmed : "10.0.0.1"
      }:26379`;
    }
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    if (host.includes(":")) return `${shown} looks like IPv6; write it as [addr]:port`;
  }
  if (host === "") return `${shown} has no host; expected host:port`;
  if (host.length > 253) {
    return `${shown} has a host of ${host.length} characters; a host name is at most 253`;
  }
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) {
    return `${shown} has an invalid host ${quoteValue(host)}; expected a name or an IP address`;
  }
  const port = parsePort(portText);
  if (typeof port === "string") return `${shown}: ${port}`;
  return { host, port };
}
