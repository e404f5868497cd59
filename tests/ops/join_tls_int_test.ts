import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { Boxes, mnCli } from "../_harness/boxes.ts";
import { tempDir } from "../_harness/mod.ts";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "../_harness/tls_fixture.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { RedisHaError } from "../../lib/common/errors.ts";
import { parseInfo } from "../../lib/protocol/info.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";

const ENV = { MN_REDIS_PASSWORD: "tls-data-secret" };

Deno.test("join --tls-*: Redis and Sentinel serve TLS only, replicate over TLS; rediss:// and MN_REDIS_SENTINEL_TLS=true work", async () => {
  await using certs = await tempDir("tls-");
  const files = {
    cert: `${certs.path}/box.crt`,
    key: `${certs.path}/box.key`,
    ca: `${certs.path}/ca.crt`,
  };
  await Deno.writeTextFile(files.cert, TEST_SERVER_CERT_PEM);
  await Deno.writeTextFile(files.key, TEST_SERVER_KEY_PEM, { mode: 0o600 });
  await Deno.writeTextFile(files.ca, TEST_CA_PEM);
  const tlsArgs = [
    "--tls-cert-file",
    files.cert,
    "--tls-key-file",
    files.key,
    "--tls-ca-cert-file",
    files.ca,
  ];
  await using boxes = await Boxes.create(2, {
    password: new Secret(ENV.MN_REDIS_PASSWORD),
    tlsCaPem: TEST_CA_PEM,
  });
  const joins = await Promise.all([0, 1].map((i) => mnCli(boxes.joinArgs(i, tlsArgs), ENV)));
  for (const r of joins) assertEquals(r.code, 0, r.stderr);

  // The replica's link to the primary is up, over TLS (the plain port is off everywhere).
  await using replica = await boxes.redis(1);
  const info = parseInfo(replyToString(await replica.send(["INFO", "replication"])) ?? "");
  assertEquals([info.get("role"), info.get("master_link_status")], ["slave", "up"]);
  const plain = await assertRejects(
    () =>
      RedisConnection.connect({ host: "127.0.0.1", port: boxes.boxes[0]!.redisPort }, {
        password: new Secret(ENV.MN_REDIS_PASSWORD),
        connectTimeoutMs: 1000,
      }),
    RedisHaError,
  );
  assert(/TLS/i.test(plain.message), plain.message);

  // A client finds the primary through TLS sentinels, and reaches a node with rediss://.
  const clientEnv = { ...ENV, DENO_CERT: files.ca };
  const sentinel = await mnCli(["status", "--json"], {
    ...clientEnv,
    MN_REDIS_HA_MODE: "sentinel",
    MN_REDIS_SENTINELS: boxes.sentinels,
    MN_REDIS_SENTINEL_MASTER: boxes.masterName,
    MN_REDIS_SENTINEL_TLS: "true",
    // In both modes rediss:// is what says the data nodes speak TLS.
    MN_REDIS_URL: "rediss://127.0.0.1:6379",
  });
  assertEquals(sentinel.code, 0, sentinel.stderr);
  assertEquals(
    JSON.parse(sentinel.stdout).primary,
    `127.0.0.1:${boxes.boxes[0]!.redisPort}`,
  );
  const single = await mnCli(["probe"], {
    ...clientEnv,
    MN_REDIS_URL: `rediss://127.0.0.1:${boxes.boxes[0]!.redisPort}/0`,
  });
  assertEquals(single.code, 0, single.stderr);

  // leave speaks TLS with only the CA given.
  const left = await mnCli(boxes.leaveArgs(1, ["--tls-ca-cert-file", files.ca]), ENV);
  assertEquals(left.code, 0, left.stderr);
});

Deno.test("join refuses incomplete or unreadable TLS flags with the flag's name, exit 2", async () => {
  await using boxes = await Boxes.create(1);
  const partial = await mnCli(boxes.joinArgs(0, ["--tls-cert-file", "/nonexistent.crt"]), {});
  assertEquals(partial.code, 2, partial.stderr);
  assert(partial.stderr.includes("missing --tls-key-file, --tls-ca-cert-file"), partial.stderr);
  const unreadable = await mnCli(
    boxes.joinArgs(0, [
      "--tls-cert-file",
      ".tmp/none.crt",
      "--tls-key-file",
      ".tmp/none.key",
      "--tls-ca-cert-file",
      ".tmp/none.ca",
    ]),
    {},
  );
  assertEquals(unreadable.code, 2, unreadable.stderr);
  assert(unreadable.stderr.includes("--tls-cert-file"), unreadable.stderr);
});
