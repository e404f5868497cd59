import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { startRedis } from "../_harness/mod.ts";
import { RedisConnection } from "../../lib/protocol/connection.ts";
import { AuthError, ConnectionError, ReplyError } from "../../lib/common/errors.ts";
import { replyToString } from "../../lib/protocol/resp.ts";
import { Secret } from "../../lib/common/secret.ts";

Deno.test("RedisConnection pipelines 10,000 concurrent commands and keeps their order", async () => {
  await using redis = await startRedis();
  await using conn = await redis.connect();
  const replies = await Promise.all(
    Array.from({ length: 10_000 }, () => conn.send(["INCR", "counter"])),
  );
  replies.forEach((reply, i) => assertEquals(reply, i + 1));
  // Pipelined: far fewer socket writes than commands would be needed if each waited.
  const stats = replyToString(await conn.send(["INFO", "stats"])) ?? "";
  const reads = Number(/total_reads_processed:(\d+)/.exec(stats)?.[1]);
  assert(reads < 2_000, `server processed ${reads} reads for 10,000 commands`);
});

Deno.test("RedisConnection returns binary-safe bulk strings and typed error replies", async () => {
  await using redis = await startRedis();
  await using conn = await redis.connect();
  const bytes = new Uint8Array([0, 13, 10, 255, 36, 42]);
  await conn.send(["SET", "bin", bytes]);
  assertEquals(await conn.send(["GET", "bin"]), bytes);
  await conn.send(["LPUSH", "list", "a"]);
  const error = await assertRejects(() => conn.send(["GET", "list"]), ReplyError);
  assertEquals(error.prefix, "WRONGTYPE");
});

Deno.test("RedisConnection marks in-flight commands 'sent' and later ones 'not-sent' when the server dies", async () => {
  await using redis = await startRedis();
  await using conn = await redis.connect();
  redis.kill("SIGSTOP");
  const inflight = conn.send(["SET", "k", "v"]);
  // The command is written at the next flush; wait until the connection reports it pending.
  await conn.send(["PING"], { timeoutMs: 200 }).catch(() => {});
  redis.kill("SIGKILL");
  const sent = await assertRejects(() => inflight, ConnectionError);
  assertEquals(sent.sendState, "sent");
  const later = await assertRejects(() => conn.send(["GET", "k"]), ConnectionError);
  assertEquals(later.sendState, "not-sent");
  assert(conn.closed);
});

Deno.test("RedisConnection times out a command without closing the connection", async () => {
  await using redis = await startRedis();
  await using conn = await redis.connect();
  const blocked = conn.send(["BLPOP", "empty", "1"]);
  const error = await assertRejects(() => conn.send(["PING"], { timeoutMs: 100 }), ConnectionError);
  assertEquals(error.sendState, "sent");
  assert(error.message.includes("within 100ms"));
  assertEquals(await blocked, null);
  assertEquals(await conn.send(["PING"]), "PONG");
});

Deno.test("RedisConnection authenticates an ACL user and reports a wrong password as AuthError", async () => {
  await using redis = await startRedis({
    password: new Secret("default-pw"),
    aclUser: { name: "mn", password: new Secret("mn-pw") },
  });
  await using ok = await RedisConnection.connect(redis.endpoint, {
    username: "mn",
    password: new Secret("mn-pw"),
  });
  assertEquals(replyToString(await ok.send(["ACL", "WHOAMI"])), "mn");
  const error = await assertRejects(
    () =>
      RedisConnection.connect(redis.endpoint, { username: "mn", password: new Secret("wrong-pw") }),
    AuthError,
  );
  assert(!error.message.includes("wrong-pw"));
  assert(error.message.includes("MN_REDIS_PASSWORD"));
  // No password at all fails the handshake at once, naming what to set.
  const noauth = await assertRejects(() => RedisConnection.connect(redis.endpoint), AuthError);
  assert(noauth.message.includes("NOAUTH") && noauth.message.includes("MN_REDIS_PASSWORD"));
});

Deno.test("RedisConnection reports a refused connection as ConnectionError naming the endpoint", async () => {
  const error = await assertRejects(
    () => RedisConnection.connect({ host: "127.0.0.1", port: 1 }),
    ConnectionError,
  );
  assert(error.message.includes("127.0.0.1:1"));
});

Deno.test("RedisConnection delivers pub/sub messages on a subscribed connection", async () => {
  await using redis = await startRedis();
  await using sub = await redis.connect();
  await using pub = await redis.connect();
  const received: string[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  await sub.subscribe(["chan-a", "chan-b"], (channel, message) => {
    received.push(`${channel}:${message}`);
    if (received.length === 2) resolve();
  });
  await pub.send(["PUBLISH", "chan-a", "one"]);
  await pub.send(["PUBLISH", "chan-b", "two"]);
  await promise;
  assertEquals(received, ["chan-a:one", "chan-b:two"]);
});
