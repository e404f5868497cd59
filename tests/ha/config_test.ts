import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import {
  CONFIG_VARIABLES,
  configFromOptions,
  DEFAULTS,
  fieldForVariable,
  flagForVariable,
  parseConfig,
} from "../../lib/ha/config.ts";
import { Secret } from "../../lib/common/secret.ts";

const env = (vars: Record<string, string>) => (name: string): string | undefined => vars[name];

function issuesOf(vars: Record<string, string>): { variable: string; message: string }[] {
  try {
    parseConfig(env(vars));
  } catch (error) {
    assert(error instanceof ConfigError);
    return [...error.issues];
  }
  throw new Error("expected a ConfigError");
}

Deno.test("parseConfig() applies every default on an empty environment", () => {
  const c = parseConfig(env({}));
  assertEquals(c.haMode, "single");
  assertEquals(c.url, { host: "127.0.0.1", port: 6379 });
  assertEquals(c.tls, false);
  assertEquals(c.sentinels, []);
  assertEquals(c.sentinelMaster, undefined);
  assertEquals(c.sentinelTls, false);
  assertEquals(c.db, DEFAULTS.db);
  assertEquals(c.username, undefined);
  assertEquals(c.password, undefined);
  assertEquals(c.sentinelUsername, undefined);
  assertEquals(c.sentinelPassword, undefined);
  assertEquals(c.waitReplicas, 0);
  assertEquals(c.waitTimeoutMs, 100);
  assertEquals(c.reconnectAttempts, 10);
  assertEquals(c.reconnectBackoffMs, 250);
  assertEquals(c.reconnectMaxBackoffMs, 2000);
  assertEquals(c.namespace, "mirror_neuron");
  assert(Object.isFrozen(c));
});

Deno.test("parseConfig() reads every documented variable", () => {
  const c = parseConfig(env({
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_URL: "rediss://127.0.0.1:7000",
    MN_REDIS_SENTINELS: "192.168.4.29:26379, 192.168.4.35:26379,[::1]:26380",
    MN_REDIS_SENTINEL_MASTER: "mirror-neuron",
    MN_REDIS_SENTINEL_TLS: "true",
    MN_REDIS_DB: "3",
    MN_REDIS_USERNAME: "default",
    MN_REDIS_PASSWORD: "p@ss",
    MN_REDIS_SENTINEL_USERNAME: "sentinel-user",
    MN_REDIS_SENTINEL_PASSWORD: "s3cret",
    MN_REDIS_WAIT_REPLICAS: "1",
    MN_REDIS_WAIT_TIMEOUT_MS: "250",
    MN_REDIS_RECONNECT_ATTEMPTS: "5",
    MN_REDIS_RECONNECT_BACKOFF_MS: "100",
    MN_REDIS_RECONNECT_MAX_BACKOFF_MS: "900",
    MN_REDIS_NAMESPACE: "mn_test",
  }));
  assertEquals(c.haMode, "sentinel");
  assertEquals(c.tls, true);
  assertEquals(c.sentinels, [
    { host: "192.168.4.29", port: 26379 },
    { host: "192.168.4.35", port: 26379 },
    { host: "::1", port: 26380 },
  ]);
  assertEquals(c.sentinelMaster, "mirror-neuron");
  assertEquals(c.sentinelTls, true);
  assertEquals(c.db, 3);
  assertEquals(c.username, "default");
  assertEquals(c.password?.reveal(), "p@ss");
  assertEquals(c.sentinelUsername, "sentinel-user");
  assertEquals(c.sentinelPassword?.reveal(), "s3cret");
  assertEquals(c.waitReplicas, 1);
  assertEquals(c.waitTimeoutMs, 250);
  assertEquals(c.reconnectAttempts, 5);
  assertEquals(c.reconnectBackoffMs, 100);
  assertEquals(c.reconnectMaxBackoffMs, 900);
  assertEquals(c.namespace, "mn_test");
});

Deno.test("parseConfig() takes credentials and db from the URL, explicit variables win", () => {
  const fromUrl = parseConfig(env({ MN_REDIS_URL: "redis://alice:pa%3Ass@10.0.0.5:6380/4" }));
  assertEquals(fromUrl.url, { host: "10.0.0.5", port: 6380 });
  assertEquals(fromUrl.username, "alice");
  assertEquals(fromUrl.password?.reveal(), "pa:ss");
  assertEquals(fromUrl.db, 4);
  const overridden = parseConfig(env({
    MN_REDIS_URL: "redis://alice:old@10.0.0.5:6380/4",
    MN_REDIS_USERNAME: "bob",
    MN_REDIS_PASSWORD: "new",
    MN_REDIS_DB: "2",
  }));
  assertEquals(overridden.username, "bob");
  assertEquals(overridden.password?.reveal(), "new");
  assertEquals(overridden.db, 2);
  const ipv6 = parseConfig(env({ MN_REDIS_URL: "redis://[::1]:6390" }));
  assertEquals(ipv6.url, { host: "::1", port: 6390 });
  const passwordOnly = parseConfig(env({ MN_REDIS_URL: "redis://:only@h:1" }));
  assertEquals(passwordOnly.username, undefined);
  assertEquals(passwordOnly.password?.reveal(), "only");
});

Deno.test("parseConfig() reports every problem at once, each naming its variable", () => {
  const issues = issuesOf({
    MN_REDIS_HA_MODE: "cluster",
    MN_REDIS_WAIT_REPLICAS: "-1",
    MN_REDIS_WAIT_TIMEOUT_MS: "abc",
    MN_REDIS_RECONNECT_ATTEMPTS: "1.5",
    MN_REDIS_DB: "-1",
  });
  assertEquals(issues.map((i) => i.variable).sort(), [
    "MN_REDIS_DB",
    "MN_REDIS_HA_MODE",
    "MN_REDIS_RECONNECT_ATTEMPTS",
    "MN_REDIS_WAIT_REPLICAS",
    "MN_REDIS_WAIT_TIMEOUT_MS",
  ]);
  assert(issues.find((i) => i.variable === "MN_REDIS_HA_MODE")!.message.includes('"cluster"'));
  assert(
    issues.find((i) => i.variable === "MN_REDIS_HA_MODE")!.message.includes("single or sentinel"),
  );
});

Deno.test("parseConfig() rejects sentinel mode without sentinels or master name", () => {
  const issues = issuesOf({ MN_REDIS_HA_MODE: "sentinel" });
  assertEquals(issues.map((i) => i.variable).sort(), [
    "MN_REDIS_SENTINELS",
    "MN_REDIS_SENTINEL_MASTER",
  ]);
  assert(issues.every((i) => i.message.includes("required in sentinel mode")));
});

Deno.test("parseConfig() rejects bad sentinel entries: host without port, port 0, port 70000", () => {
  const issues = issuesOf({
    MN_REDIS_SENTINELS: "host,10.0.0.1:0,10.0.0.2:70000,10.0.0.3:abc,:26379",
  });
  assertEquals(issues.length, 5);
  assert(issues.every((i) => i.variable === "MN_REDIS_SENTINELS"));
  assert(issues[0]!.message.includes("has no port"));
  assert(issues[1]!.message.includes("out of range"));
  assert(issues[2]!.message.includes("out of range"));
  assert(issues[3]!.message.includes("not a number"));
  assert(issues[4]!.message.includes("no host"));
});

Deno.test("parseConfig() rejects max backoff below backoff and non-numeric, negative numbers", () => {
  const issues = issuesOf({
    MN_REDIS_RECONNECT_BACKOFF_MS: "500",
    MN_REDIS_RECONNECT_MAX_BACKOFF_MS: "100",
    MN_REDIS_RECONNECT_ATTEMPTS: "-3",
    MN_REDIS_WAIT_TIMEOUT_MS: "ten",
  });
  const byVar = new Map(issues.map((i) => [i.variable, i.message]));
  assert(
    byVar.get("MN_REDIS_RECONNECT_MAX_BACKOFF_MS")!.includes("below MN_REDIS_RECONNECT_BACKOFF_MS"),
  );
  assert(byVar.get("MN_REDIS_RECONNECT_ATTEMPTS")!.includes("out of range"));
  assert(byVar.get("MN_REDIS_WAIT_TIMEOUT_MS")!.includes("not a whole number"));
});

Deno.test("parseConfig() rejects bad URLs, namespaces and master names", () => {
  const issues = issuesOf({
    MN_REDIS_URL: "http://user:hunter2@host:6379",
    MN_REDIS_NAMESPACE: "has space",
    MN_REDIS_SENTINEL_MASTER: "bad name!",
  });
  assertEquals(issues.map((i) => i.variable).sort(), [
    "MN_REDIS_NAMESPACE",
    "MN_REDIS_SENTINEL_MASTER",
    "MN_REDIS_URL",
  ]);
  const url = issues.find((i) => i.variable === "MN_REDIS_URL")!.message;
  assert(!url.includes("hunter2"), "URL credentials must be masked");
  assert(url.includes("***"));
  const port = issuesOf({ MN_REDIS_URL: "redis://h:0" });
  assert(port[0]!.message.includes("out of range"));
});

Deno.test("parseConfig() never shows a password value in an error", () => {
  const issues = issuesOf({ MN_REDIS_PASSWORD: "topsecret", MN_REDIS_HA_MODE: "x" });
  const error = new ConfigError(issues);
  assert(!error.message.includes("topsecret"));
  const c = parseConfig(env({ MN_REDIS_PASSWORD: "topsecret" }));
  assert(!JSON.stringify(c).includes("topsecret"));
  assert(!Deno.inspect(c).includes("topsecret"));
  assert(!String(c.password).includes("topsecret"));
});

Deno.test("configFromOptions() applies the same rules, naming the option field", () => {
  const c = configFromOptions({
    haMode: "sentinel",
    sentinels: ["127.0.0.1:26379"],
    sentinelMaster: "m",
    waitReplicas: 2,
    password: new Secret("pw"),
  });
  assertEquals(c.sentinels, [{ host: "127.0.0.1", port: 26379 }]);
  assertEquals(c.waitReplicas, 2);
  assertEquals(c.password?.reveal(), "pw");
  const error = assertThrows(
    () => configFromOptions({ haMode: "sentinel", waitReplicas: -1 }),
    ConfigError,
  );
  assert(error.issues.some((i) => i.variable === "sentinels (MN_REDIS_SENTINELS)"));
  assert(error.issues.some((i) => i.variable === "waitReplicas (MN_REDIS_WAIT_REPLICAS)"));
});

Deno.test("every variable derives its Config field and CLI flag", () => {
  const c = parseConfig(
    env({ MN_REDIS_HA_MODE: "sentinel", MN_REDIS_SENTINELS: "h:1", MN_REDIS_SENTINEL_MASTER: "m" }),
  );
  for (const variable of CONFIG_VARIABLES) {
    assert(
      fieldForVariable(variable) in c,
      `${variable} -> ${fieldForVariable(variable)} is a Config field`,
    );
  }
  assertEquals(flagForVariable("MN_REDIS_WAIT_TIMEOUT_MS"), "--wait-timeout-ms");
  assertEquals(fieldForVariable("MN_REDIS_WAIT_TIMEOUT_MS"), "waitTimeoutMs");
});

Deno.test("parseConfig() rejects a namespace with ':', which could reach another namespace's keys", () => {
  // "X:node" would otherwise own X's node-state key space ("X:node:…").
  const issues = issuesOf({ MN_REDIS_NAMESPACE: "X:node" });
  assertEquals(issues.map((i) => i.variable), ["MN_REDIS_NAMESPACE"]);
  assert(issues[0]!.message.includes('no ":"') && issues[0]!.message.includes('"X_node"'));
  assertEquals(parseConfig(env({ MN_REDIS_NAMESPACE: "X.node-1_a" })).namespace, "X.node-1_a");
});

Deno.test("ConfigOptions takes literal unions: a misspelt mode fails to compile and to run", () => {
  // @ts-expect-error "sentinal" is not a HaMode: the compiler catches the typo.
  const error = assertThrows(() => configFromOptions({ haMode: "sentinal" }), ConfigError);
  assert(error.message.includes("haMode"), error.message);
  // @ts-expect-error a number of replicas, not text.
  assertThrows(() => configFromOptions({ waitReplicas: "one" }), ConfigError);
});

Deno.test("parseConfig() reads the read policy and its lag bound; primary and 500 ms by default", () => {
  const d = parseConfig(env({}));
  assertEquals([d.readFrom, d.readMaxLagMs], ["primary", 500]);
  for (const policy of ["primary", "replica-preferred", "replica"] as const) {
    const c = parseConfig(env({ MN_REDIS_READ_FROM: policy, MN_REDIS_READ_MAX_LAG_MS: "0" }));
    assertEquals([c.readFrom, c.readMaxLagMs], [policy, 0]);
  }
  assertEquals(
    configFromOptions({ readFrom: "replica", readMaxLagMs: 250 }).readMaxLagMs,
    250,
  );
});

Deno.test("parseConfig() names MN_REDIS_READ_FROM / MN_REDIS_READ_MAX_LAG_MS and what they accept", () => {
  const error = assertThrows(
    () =>
      parseConfig(env({
        MN_REDIS_READ_FROM: "replicas",
        MN_REDIS_READ_MAX_LAG_MS: "-5",
      })),
    ConfigError,
  );
  const byVariable = new Map(error.issues.map((i) => [i.variable, i.message]));
  assert(
    byVariable.get("MN_REDIS_READ_FROM")?.includes("expected primary, replica-preferred, replica"),
    error.message,
  );
  assert(byVariable.get("MN_REDIS_READ_MAX_LAG_MS")?.includes("expected 0-3600000"), error.message);
  const text = assertThrows(
    () => parseConfig(env({ MN_REDIS_READ_MAX_LAG_MS: "soon" })),
    ConfigError,
  );
  assert(text.message.includes("MN_REDIS_READ_MAX_LAG_MS"), text.message);
  assert(text.message.includes("not a whole number"), text.message);
});
