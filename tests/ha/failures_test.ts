import { assertEquals } from "../_harness/assert.ts";
import {
  AuthError,
  ConnectionError,
  NoSentinelReachableError,
  ReplyError,
  RoleMismatchError,
  WaitError,
} from "../../lib/common/errors.ts";
import { classifyFailure, isAuthReply } from "../../lib/ha/failures.ts";

const sent = new ConnectionError("reset", { endpoint: "h:1", sendState: "sent" });
const unsent = new ConnectionError("refused", { endpoint: "h:1", sendState: "not-sent" });

Deno.test("classifyFailure() retries unsent commands and idempotent sent ones", () => {
  assertEquals(classifyFailure(unsent, { idempotent: false }), "retry");
  assertEquals(classifyFailure(sent, { idempotent: true }), "retry");
  assertEquals(classifyFailure(sent, { idempotent: false }), "outcome-unknown");
});

Deno.test("classifyFailure() retries READONLY, LOADING, MASTERDOWN, TRYAGAIN, NOREPLICAS", () => {
  for (const prefix of ["READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS"]) {
    assertEquals(
      classifyFailure(new ReplyError(`${prefix} text`), { idempotent: false }),
      "retry",
      prefix,
    );
  }
});

Deno.test("classifyFailure() fails fast on auth, WRONGTYPE, script errors and WAIT shortfalls", () => {
  for (
    const reply of [
      "WRONGPASS invalid",
      "NOAUTH needed",
      "WRONGTYPE op",
      "ERR Error running script",
      "NOSCRIPT x",
    ]
  ) {
    assertEquals(classifyFailure(new ReplyError(reply), { idempotent: true }), "fatal", reply);
  }
  assertEquals(
    classifyFailure(new AuthError("no", { endpoint: "h:1" }), { idempotent: true }),
    "fatal",
  );
  assertEquals(
    classifyFailure(new WaitError({ acked: 0, required: 1, timeoutMs: 1 }), { idempotent: true }),
    "fatal",
  );
  assertEquals(classifyFailure(new TypeError("bug"), { idempotent: true }), "fatal");
});

Deno.test("classifyFailure() retries a role mismatch and unreachable sentinels (failover under way)", () => {
  assertEquals(
    classifyFailure(new RoleMismatchError("h:1", "slave"), { idempotent: false }),
    "retry",
  );
  assertEquals(classifyFailure(new NoSentinelReachableError([]), { idempotent: false }), "retry");
});

Deno.test("isAuthReply() recognises credential refusals only", () => {
  assertEquals(isAuthReply(new ReplyError("WRONGPASS x")), true);
  assertEquals(isAuthReply(new ReplyError("NOAUTH x")), true);
  assertEquals(isAuthReply(new ReplyError("READONLY x")), false);
});
