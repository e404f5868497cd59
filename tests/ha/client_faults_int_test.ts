/**
 * Gray failures of the client: peers that hang instead of dying, permanent
 * misconfigurations that must fail fast, and cancellation. Every test of a
 * hang asserts how long it took.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import {
  sentinelConfig,
  singleConfig,
  startCluster,
  startRedis,
  waitFor,
} from "../_harness/mod.ts";
import { silentListener } from "../_harness/silent.ts";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "../_harness/tls_fixture.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { configFromOptions } from "../../lib/ha/config.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import {
  AbortedError,
  AuthError,
  ConnectionError,
  MasterUnknownError,
  NoSentinelReachableError,
  NotPrimaryError,
  RetriesExhaustedError,
  TlsError,
} from "../../lib/common/errors.ts";
import { Secret } from "../../lib/common/secret.ts";

/** Runs `fn` and returns what it settled with and how long it took. */
async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const started = performance.now();
  const [result] = await Promise.allSettled([fn()]);
  return { ms: performance.now() - started, result };
}

function rejection(r: PromiseSettledResult<unknown>): unknown {
  assert(r.status === "rejected", "expected a rejection");
  return r.reason;
}

for (const position of ["first", "second"] as const) {
  Deno.test(`RedisHaClient.connect() and close() stay bounded with a frozen (SIGSTOP) sentinel listed ${position}`, async () => {
    await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1 });
    const [good, frozen] = cluster.sentinels;
    frozen!.kill("SIGSTOP");
    const listed = position === "first" ? [frozen, good] : [good, frozen];
    const config = sentinelConfig(cluster, {
      sentinels: listed.map((s) => formatEndpoint(s!.endpoint)),
    });
    const connect = await timed(() => RedisHaClient.connect(config));
    assert(
      connect.result.status === "fulfilled",
      connect.result.status === "rejected" ? String(connect.result.reason) : "",
    );
    assert(connect.ms < 3000, `connect took ${Math.round(connect.ms)}ms`);
    const client = connect.result.value;
    await client.durable(["SET", `${config.namespace}:k`, "v"], { idempotent: true });
    const close = await timed(() => client.close());
    assert(close.ms < 1500, `close took ${Math.round(close.ms)}ms`);
  });
}

Deno.test("RedisHaClient.connect() with only a frozen sentinel fails within 3s and says it answered nothing", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  cluster.sentinels[0]!.kill("SIGSTOP");
  const config = sentinelConfig(cluster, { reconnectAttempts: 3, reconnectBackoffMs: 50 });
  const { ms, result } = await timed(() => RedisHaClient.connect(config));
  const error = rejection(result);
  assert(error instanceof RetriesExhaustedError, String(error));
  assert(/answered nothing/.test(error.message), error.message);
  assert(ms < 3000, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient.connect() with default settings and only a frozen sentinel gives up at firstConnectTimeoutMs (10 s), naming it", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  cluster.sentinels[0]!.kill("SIGSTOP");
  // The defaults a user gets: 10 reconnect attempts, 250-2000 ms backoff, no deadline option.
  const config = configFromOptions({
    haMode: "sentinel",
    sentinels: cluster.sentinelEndpoints.map(formatEndpoint),
    sentinelMaster: cluster.masterName,
  });
  const { ms, result } = await timed(() => RedisHaClient.connect(config));
  const error = rejection(result);
  assert(error instanceof RetriesExhaustedError, String(error));
  assert(error.message.includes("ClientOptions.firstConnectTimeoutMs (10000ms)"), error.message);
  assert(/answered nothing/.test(error.message), error.message);
  assert(ms >= 9_900 && ms < 11_000, `took ${Math.round(ms)}ms`);
  // A shorter budget is honoured the same way.
  const short = await timed(() => RedisHaClient.connect(config, { firstConnectTimeoutMs: 1500 }));
  assert(rejection(short.result) instanceof RetriesExhaustedError);
  assert(short.ms >= 1400 && short.ms < 2500, `took ${Math.round(short.ms)}ms`);
});

for (const role of ["sentinel", "data node"] as const) {
  Deno.test(`RedisHaClient treats a listener that accepts and never replies, as ${role}, like an unreachable one`, async () => {
    await using listener = silentListener();
    const config = role === "sentinel"
      ? configFromOptions({
        haMode: "sentinel",
        sentinels: [listener.address],
        sentinelMaster: "mirror-neuron",
        reconnectAttempts: 2,
        reconnectBackoffMs: 50,
      })
      : configFromOptions({
        url: `redis://${listener.address}`,
        reconnectAttempts: 2,
        reconnectBackoffMs: 50,
      });
    const { ms, result } = await timed(() =>
      RedisHaClient.connect(config, { connectTimeoutMs: 500, sentinelTimeoutMs: 500 })
    );
    const error = rejection(result);
    assert(error instanceof RetriesExhaustedError, String(error));
    assert(
      error.message.includes(listener.address) && /answered nothing/.test(error.message),
      error.message,
    );
    assert(ms < 2500, `took ${Math.round(ms)}ms`);
    assert(listener.accepted() >= 1, "the listener saw the connection");
  });
}

Deno.test("RedisHaClient fails within ~1s on a wrong sentinel password, naming the variables", async () => {
  await using cluster = await startCluster({
    replicas: 0,
    sentinels: 2,
    quorum: 1,
    sentinelPassword: new Secret("right-pw"),
  });
  const config = sentinelConfig(cluster, { sentinelPassword: "wrong-pw" });
  const { ms, result } = await timed(() => RedisHaClient.connect(config));
  const error = rejection(result);
  assert(error instanceof NoSentinelReachableError && error.permanent, String(error));
  assert(
    /MN_REDIS_SENTINEL_USERNAME\/MN_REDIS_SENTINEL_PASSWORD/.test(error.message),
    error.message,
  );
  assert(!error.message.includes("wrong-pw"));
  assert(ms < 1500, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient fails within ~1s when a listed sentinel is a plain Redis", async () => {
  await using redis = await startRedis();
  const config = configFromOptions({
    haMode: "sentinel",
    sentinels: [formatEndpoint(redis.endpoint)],
    sentinelMaster: "mirror-neuron",
  });
  const { ms, result } = await timed(() => RedisHaClient.connect(config));
  const error = rejection(result);
  assert(error instanceof NoSentinelReachableError && error.permanent, String(error));
  assert(
    /not a sentinel/.test(error.message) && /MN_REDIS_SENTINELS/.test(error.message),
    error.message,
  );
  assert(ms < 1500, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient fails within ~1s on an unknown master name on every answering sentinel", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 2, quorum: 1 });
  const config = sentinelConfig(cluster, { sentinelMaster: "no-such-master" });
  const { ms, result } = await timed(() => RedisHaClient.connect(config));
  const error = rejection(result);
  assert(error instanceof MasterUnknownError, String(error));
  assert(/MN_REDIS_SENTINEL_MASTER/.test(error.message), error.message);
  assert(ms < 1500, `took ${Math.round(ms)}ms`);
});

const tls = { certPem: TEST_SERVER_CERT_PEM, keyPem: TEST_SERVER_KEY_PEM, caPem: TEST_CA_PEM };

Deno.test("RedisHaClient fails within ~0.5s on rediss:// to a plain-TCP Redis and redis:// to a TLS-only one, default deadlines", async () => {
  await using plain = await startRedis();
  await using secure = await startRedis({ tls });
  const cases = [
    { url: `rediss://${formatEndpoint(plain.endpoint)}`, says: /speaks plain TCP, not TLS/ },
    { url: `redis://${formatEndpoint(secure.endpoint)}`, says: /serves TLS only/ },
  ];
  for (const c of cases) {
    const config = configFromOptions({ url: c.url });
    const { ms, result } = await timed(() =>
      RedisHaClient.connect(config, { tlsCaCerts: [TEST_CA_PEM] })
    );
    const error = rejection(result);
    assert(error instanceof TlsError, `${c.url}: ${error}`);
    assert(c.says.test(error.message) && /MN_REDIS_URL/.test(error.message), error.message);
    // Not the 2 s handshake deadline: a plain PING on the side answers after 250 ms.
    assert(ms < 800, `${c.url} took ${Math.round(ms)}ms`);
  }
});

Deno.test("RedisHaClient fails within ~1s when sentinels are reached with TLS on one side only", async () => {
  await using cluster = await startCluster({ replicas: 0, sentinels: 1, quorum: 1 });
  const config = sentinelConfig(cluster, { sentinelTls: true });
  const { ms, result } = await timed(() =>
    RedisHaClient.connect(config, { sentinelTimeoutMs: 500, tlsCaCerts: [TEST_CA_PEM] })
  );
  const error = rejection(result);
  assert(error instanceof NoSentinelReachableError && error.permanent, String(error));
  assert(/MN_REDIS_SENTINEL_TLS/.test(error.message), error.message);
  assert(ms < 1500, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient in single mode pointed at a replica fails a write at once, naming its primary", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 0 });
  const [primary, replica] = cluster.nodes;
  const config = singleConfig(replica!);
  await using client = await RedisHaClient.connect(config);
  const { ms, result } = await timed(() => client.durable(["SET", "k", "v"], { idempotent: true }));
  const error = rejection(result);
  assert(error instanceof NotPrimaryError, String(error));
  assertEquals(error.primary, formatEndpoint(primary!.endpoint));
  assert(
    error.message.includes(formatEndpoint(primary!.endpoint)) && /MN_REDIS_URL/.test(error.message),
  );
  assert(ms < 500, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient commands abort promptly with a typed error saying whether they were applied", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, { reconnectAttempts: 50, reconnectBackoffMs: 100 });
  await using client = await RedisHaClient.connect(config);
  // Sent to a hung node: aborting says it may have been applied.
  redis.kill("SIGSTOP");
  const abort = new AbortController();
  const sent = client.durable(["SET", `${config.namespace}:a`, "1"], { signal: abort.signal });
  setTimeout(() => abort.abort(new Error("caller gave up")), 50);
  const first = await timed(() => sent);
  const error = rejection(first.result);
  assert(error instanceof AbortedError && error.mayHaveApplied, String(error));
  assert(/may have been applied/.test(error.message) && /caller gave up/.test(error.message));
  assert(first.ms < 300, `took ${Math.round(first.ms)}ms`);
  // A per-call deadline ends a command on a node that does not answer.
  const late = await timed(() =>
    client.command(["SET", `${config.namespace}:b`, "1"], { timeoutMs: 400 })
  );
  const lateError = rejection(late.result);
  assert(lateError instanceof AbortedError, String(lateError));
  assert(late.ms < 700, `took ${Math.round(late.ms)}ms`);
  redis.kill("SIGCONT");
  // An aborted connect says so, and leaves nothing running (sanitizers check).
  const config2 = singleConfig(redis, { url: "redis://127.0.0.1:1", reconnectAttempts: 100 });
  const connect = await timed(() =>
    RedisHaClient.connect(config2, { signal: AbortSignal.timeout(300) })
  );
  const connectError = rejection(connect.result);
  assert(
    connectError instanceof AbortedError && !connectError.mayHaveApplied,
    String(connectError),
  );
  assert(connect.ms < 600, `took ${Math.round(connect.ms)}ms`);
});

Deno.test("RedisConnection reports a handshake a silent peer never answers within its deadline", async () => {
  await using listener = silentListener();
  const { RedisConnection } = await import("../../lib/protocol/connection.ts");
  const [host, port] = listener.address.split(":");
  const { ms, result } = await timed(() =>
    RedisConnection.connect({ host: host!, port: Number(port) }, { connectTimeoutMs: 300 })
  );
  const error = rejection(result);
  assert(error instanceof ConnectionError && /answered nothing within 300ms/.test(error.message));
  assert(ms < 600, `took ${Math.round(ms)}ms`);
  const secure = await timed(() =>
    RedisConnection.connect({ host: host!, port: Number(port) }, {
      connectTimeoutMs: 300,
      tls: true,
    })
  );
  const secureError = rejection(secure.result);
  assert(secureError instanceof ConnectionError, String(secureError));
  assert(/did not answer the TLS handshake/.test(secureError.message), secureError.message);
  assert(secure.ms < 1000, `took ${Math.round(secure.ms)}ms`);
});

Deno.test("RedisHaClient wrong data password still fails fast as AuthError", async () => {
  await using redis = await startRedis({ password: new Secret("pw") });
  const { ms, result } = await timed(() => RedisHaClient.connect(singleConfig(redis)));
  const error = rejection(result);
  assert(error instanceof AuthError && /MN_REDIS_PASSWORD/.test(error.message), String(error));
  assert(ms < 500, `took ${Math.round(ms)}ms`);
});

Deno.test("RedisHaClient never reports a retried write as 'not applied' once an earlier attempt may have been applied", async () => {
  await using redis = await startRedis();
  const config = singleConfig(redis, { reconnectAttempts: 50, reconnectBackoffMs: 50 });
  await using client = await RedisHaClient.connect(config, {
    probeIntervalMs: 100,
    probeTimeoutMs: 200,
  });
  const key = `${config.namespace}:retried`;
  // The SET is written to a hung server; the probe drops the connection (outcome unknown), the
  // idempotent retry then waits for a server that does not answer until the deadline passes.
  redis.kill("SIGSTOP");
  const { result } = await timed(() =>
    client.durable(["SET", key, "1"], { idempotent: true, timeoutMs: 1500 })
  );
  redis.kill("SIGCONT");
  const error = rejection(result);
  assert(error instanceof AbortedError && error.mayHaveApplied, String(error));
  assert(/earlier attempt/.test(error.message), error.message);
  // And indeed the hung server ran the first attempt once it resumed.
  await waitFor(async () => {
    const v = await client.command(["EXISTS", key]);
    return v === 1 ? { done: true, value: undefined } : { done: false, observed: `EXISTS ${v}` };
  }, { what: "the first attempt to have been applied", timeoutMs: 5000 });
});
