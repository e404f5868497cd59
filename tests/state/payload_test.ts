import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import { encodeJson } from "../../lib/state/_payload.ts";
import { ValidationError } from "../../lib/common/state_errors.ts";

/** The message of the ValidationError `fn` throws. */
function refusal(fn: () => unknown): string {
  return assertThrows(fn, ValidationError).message;
}

Deno.test("encodeJson measures the UTF-8 bytes of the JSON against the limit, multi-byte text included", () => {
  assertEquals(encodeJson("job data", { a: 1 }, 7), '{"a":1}');
  assert(refusal(() => encodeJson("job data", { a: 12 }, 7)).includes("8 bytes of JSON"));
  // 3 characters, 9 bytes of UTF-8 ("€" is 3 bytes): the JSON string is 11 bytes.
  assertEquals(encodeJson("job data", "€€€", 11), '"€€€"');
  assertEquals(encodeJson("job data", "€€€", 100), '"€€€"');
  assert(
    refusal(() => encodeJson("job data", "€€€", 10)).includes(
      "11 bytes of JSON exceeds the limit of 10 bytes",
    ),
  );
  assert(refusal(() => encodeJson("job data", undefined, 100)).includes("not JSON-serialisable"));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert(refusal(() => encodeJson("job data", cyclic, 100)).includes("not JSON-serialisable"));
});
