/**
 * An ACL user refused a command (`NOPERM`) gets an `AclDeniedError` naming
 * the command and its key, never an authentication failure, and it is not
 * retried.
 */

import { assert, assertEquals, assertRejects } from "../_harness/assert.ts";
import { openStore, singleConfig, startRedis } from "../_harness/mod.ts";
import { RedisHaClient } from "../../lib/ha/client.ts";
import { AuthError, ReplyError } from "../../lib/common/errors.ts";
import { AclDeniedError } from "../../lib/common/reply_errors.ts";
import { Secret } from "../../lib/common/secret.ts";
import type { RedisProcess } from "../../lib/process/redis_process.ts";

/**
 * An ACL user `app` (password `app-pw`) of the shape of join --acl's runtime user: the keys
 * matching `keys` and nothing @dangerous, plus ROLE and INFO the client needs.
 */
async function addAppUser(redis: RedisProcess, keys: string): Promise<void> {
  await using admin = await redis.connect();
  await admin.send(["ACL", "SETUSER", "app", "on", ">app-pw", keys, "+@all", "-@dangerous"]);
  await admin.send(["ACL", "SETUSER", "app", "+role", "+info"]);
}

Deno.test("RedisHaClient reports NOPERM as AclDeniedError naming the command and key, not as a failed login", async () => {
  await using redis = await startRedis();
  const namespace = `ns${crypto.randomUUID().slice(0, 6)}`;
  await addAppUser(redis, `~${namespace}:*`);
  const config = singleConfig(redis, {
    username: "app",
    password: new Secret("app-pw"),
    namespace,
  });
  await using client = await RedisHaClient.connect(config);
  await client.command(["SET", `${namespace}:mine`, "1"]); // allowed

  const started = performance.now();
  const key = await assertRejects(() => client.command(["GET", "other_ns:job:1"]), AclDeniedError);
  assert(performance.now() - started < 200, "a refusal is not retried");
  assertEquals(key.code, "ACL_DENIED");
  assertEquals(key.command, "GET");
  assertEquals(key.user, "app");
  assert(key instanceof ReplyError && key.prefix === "NOPERM");
  assert(!(key instanceof AuthError));
  assert(key.message.includes('GET "other_ns:job:1"'), key.message);
  assert(key.message.includes("MN_REDIS_NAMESPACE"), key.message);
  assert(
    !/password|MN_REDIS_PASSWORD/.test(key.message.replace("not a password problem", "")),
    key.message,
  );

  const flush = await assertRejects(() => client.command(["FLUSHALL"]), AclDeniedError);
  assertEquals(flush.command, "FLUSHALL");
  assert(flush.message.includes("does not allow FLUSHALL"), flush.message);

  const durable = await assertRejects(
    () => client.durable(["SET", "other_ns:x", "1"], { idempotent: true }),
    AclDeniedError,
  );
  assertEquals(durable.command, "SET");
  // The session survived every refusal: no reconnect, the next command just works.
  assertEquals(await client.command(["GET", `${namespace}:mine`]), "1");
  assert(!client.renderMetrics().includes('reconnects_total{reason="noperm"}'));
});

Deno.test("StateStore outside the ACL user's namespace fails with AclDeniedError naming the script's key", async () => {
  await using redis = await startRedis();
  await addAppUser(redis, "~allowed:*");
  await using store = await openStore(
    singleConfig(redis, { username: "app", password: new Secret("app-pw"), namespace: "other" }),
  );
  const denied = await assertRejects(() => store.jobs.create("job-1", {}), AclDeniedError);
  assertEquals(denied.command, "EVALSHA");
  assert(denied.message.includes('"other:'), denied.message);
});
