import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { sentinelConfig, startCluster, startRedis } from "../_harness/mod.ts";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "../_harness/tls_fixture.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { configFromOptions } from "../../lib/ha/config.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";
import { TlsError } from "../../lib/common/errors.ts";
import { replyToString } from "../../lib/protocol/resp.ts";

const tls = { certPem: TEST_SERVER_CERT_PEM, keyPem: TEST_SERVER_KEY_PEM, caPem: TEST_CA_PEM };

Deno.test("RedisHaClient speaks TLS to a rediss:// single node and refuses an untrusted certificate", async () => {
  await using redis = await startRedis({ tls });
  const config = configFromOptions({
    url: `rediss://${formatEndpoint(redis.endpoint)}`,
    reconnectAttempts: 1,
  });
  await using client = await RedisHaClient.connect(config, { tlsCaCerts: [TEST_CA_PEM] });
  await client.durable(["SET", `${config.namespace}:tls`, "yes"], { idempotent: true });
  assertEquals(replyToString(await client.command(["GET", `${config.namespace}:tls`])), "yes");
  // Without the CA the certificate is not trusted: no silent downgrade, and no retry storm.
  const started = performance.now();
  const error = await assertRejects(() => RedisHaClient.connect(config), TlsError);
  assert(error.message.includes("DENO_CERT"));
  assert(performance.now() - started < 1000, "a certificate failure must not be retried");
});

Deno.test("RedisHaClient resolves through TLS sentinels and writes to a TLS primary", async () => {
  await using cluster = await startCluster({ replicas: 1, sentinels: 2, quorum: 1, tls });
  const config = sentinelConfig(cluster, { url: "rediss://placeholder:6379", sentinelTls: true });
  await using client = await RedisHaClient.connect(config, { tlsCaCerts: [TEST_CA_PEM] });
  assertEquals(client.primary?.address, formatEndpoint(cluster.nodes[0]!.endpoint));
  await client.durable(["SET", `${config.namespace}:k`, "v"], { idempotent: true });
  assertEquals(replyToString(await client.command(["GET", `${config.namespace}:k`])), "v");
});
