import { assertEquals } from "../_harness/assert.ts";
import {
  canonicalIpv6,
  formatEndpoint,
  formatHostPort,
  parseEndpoint,
} from "../../lib/protocol/endpoint.ts";

Deno.test("parseEndpoint() reads host:port and [ipv6]:port", () => {
  assertEquals(parseEndpoint("10.0.0.1:26379"), { host: "10.0.0.1", port: 26379 });
  assertEquals(parseEndpoint(" redis.local:1 "), { host: "redis.local", port: 1 });
  assertEquals(parseEndpoint("[fe80::1]:26379"), { host: "fe80::1", port: 26379 });
});

Deno.test("parseEndpoint() explains what is wrong", () => {
  for (
    const [input, expected] of [
      ["host", "has no port"],
      ["host:", "not a number"],
      ["[::1]", "has no port"],
      ["::1:6379", "looks like IPv6"],
      ["h:65536", "out of range"],
      ["", "empty entry"],
      ["bad host:1", "invalid host"],
      ["a:1;b:2", "separator other than a comma"],
      ["a:1 b:2", "separator other than a comma"],
      ["redis://10.0.0.1:26379", "is a URL; expected host:port (no scheme)"],
      ["x".repeat(100_000) + ":1", "… (100002 characters)"],
    ]
  ) {
    const result = parseEndpoint(input!);
    assertEquals(typeof result, "string", input);
    assertEquals((result as string).includes(expected!), true, `${input}: ${result}`);
  }
});

Deno.test("formatEndpoint() brackets IPv6", () => {
  assertEquals(formatEndpoint({ host: "::1", port: 1 }), "[::1]:1");
  assertEquals(formatEndpoint({ host: "10.0.0.1", port: 2 }), "10.0.0.1:2");
});

Deno.test("formatHostPort() prints one canonical form of an IPv6 address, so flags and Sentinel reports compare equal", () => {
  assertEquals(formatHostPort("fd00:0abe::2", 6390), formatHostPort("fd00:abe::2", 6390));
  assertEquals(formatHostPort("FD00:ABE:0:0:0:0:0:2", 1), "[fd00:abe::2]:1");
  assertEquals(formatEndpoint({ host: "2001:db8:0:0:1:0:0:1", port: 2 }), "[2001:db8::1:0:0:1]:2");
  assertEquals(canonicalIpv6("::1"), "::1");
  // Left as they are: a zone, an IPv4-embedded address (lower-cased), and what is not IPv6.
  assertEquals(canonicalIpv6("fe80::1%eth0"), "fe80::1%eth0");
  assertEquals(canonicalIpv6("::FFFF:10.0.0.1"), "::ffff:10.0.0.1");
  assertEquals(canonicalIpv6("not:an:address"), "not:an:address");
  assertEquals(formatHostPort("10.0.0.1", 6379), "10.0.0.1:6379");
});
