import { assert, assertEquals, assertThrows } from "../_harness/assert.ts";
import fc from "fast-check";
import { ProtocolError, ReplyError } from "../../lib/common/errors.ts";
import {
  encodeCommand,
  encodeCommands,
  encodeReply,
  RespReader,
  type RespReply,
} from "../../lib/protocol/resp.ts";

const text = new TextEncoder();

const replyArb: fc.Arbitrary<RespReply> = fc.letrec<{ reply: RespReply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string({ unit: "grapheme-ascii" }).filter((s) => !s.includes("\r") && !s.includes("\n")),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).filter((n) =>
      !Number.isSafeInteger(Number(n))
    ),
    fc.constant(null),
    fc.uint8Array({ maxLength: 300 }),
    fc.string().filter((s) => s !== "" && !/[\r\n]/.test(s)).map((s) => new ReplyError(s)),
    fc.array(tie("reply"), { maxLength: 6 }),
  ),
})).reply;

function normalise(value: RespReply): unknown {
  if (value instanceof ReplyError) return { error: value.reply };
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(normalise);
  return value;
}

function decodeInChunks(bytes: Uint8Array, cuts: number[]): RespReply[] {
  const reader = new RespReader();
  const out: RespReply[] = [];
  let last = 0;
  for (
    const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b).concat(
      bytes.length,
    )
  ) {
    reader.push(bytes.subarray(last, cut));
    last = cut;
    let v: RespReply | undefined;
    while ((v = reader.next()) !== undefined) out.push(v);
  }
  return out;
}

Deno.test("RespReader round-trips arbitrary replies split at arbitrary points", () => {
  fc.assert(
    fc.property(
      fc.array(replyArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (replies, cuts) => {
        const bytes = new Uint8Array(replies.flatMap((r) => [...encodeReply(r)]));
        const decoded = decodeInChunks(bytes, cuts);
        assertEquals(decoded.map(normalise), replies.map(normalise));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("RespReader decodes byte-at-a-time input", () => {
  fc.assert(
    fc.property(replyArb, (reply) => {
      const bytes = encodeReply(reply);
      const decoded = decodeInChunks(bytes, Array.from({ length: bytes.length }, (_, i) => i));
      assertEquals(decoded.map(normalise), [normalise(reply)]);
    }),
    { numRuns: 200 },
  );
});

Deno.test("encodeCommand() produces arrays of bulk strings, binary-safe", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.string(), fc.uint8Array(), fc.integer()), {
        minLength: 1,
        maxLength: 8,
      }),
      (args) => {
        const reader = new RespReader();
        reader.push(encodeCommand(args));
        const decoded = reader.next() as Uint8Array[];
        assertEquals(decoded.length, args.length);
        args.forEach((arg, i) => {
          const expected = arg instanceof Uint8Array ? arg : text.encode(String(arg));
          assertEquals([...decoded[i]!], [...expected]);
        });
      },
    ),
  );
});

Deno.test("RespReader handles nil, empty array, nil array and large integers", () => {
  const reader = new RespReader();
  reader.push(text.encode("$-1\r\n*0\r\n*-1\r\n:9223372036854775807\r\n:-5\r\n$0\r\n\r\n"));
  assertEquals(reader.next(), null);
  assertEquals(reader.next(), []);
  assertEquals(reader.next(), null);
  assertEquals(reader.next(), 9223372036854775807n);
  assertEquals(reader.next(), -5);
  assertEquals(reader.next(), new Uint8Array());
  assertEquals(reader.next(), undefined);
  assertEquals(reader.buffered, 0);
});

Deno.test("RespReader returns error replies as typed values with their prefix", () => {
  const reader = new RespReader();
  reader.push(text.encode("-READONLY You can't write against a read only replica.\r\n"));
  const reply = reader.next();
  assert(reply instanceof ReplyError);
  assertEquals((reply as ReplyError).prefix, "READONLY");
});

Deno.test("RespReader rejects bytes that are not RESP", () => {
  const reader = new RespReader();
  reader.push(text.encode("HTTP/1.1 400 Bad Request\r\n"));
  assertThrows(() => reader.next(), ProtocolError);
  const bad = new RespReader();
  bad.push(text.encode("$3\r\nabcXY"));
  assertThrows(() => bad.next(), ProtocolError);
  const badInt = new RespReader();
  badInt.push(text.encode(":12a\r\n"));
  assertThrows(() => badInt.next(), ProtocolError);
});

Deno.test("RespReader decodes a large multi-chunk array without losing elements", () => {
  const items: RespReply[] = Array.from({ length: 20_000 }, (_, i) => text.encode(`value-${i}`));
  const bytes = encodeReply(items);
  const cuts = Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) => i * 1000);
  const [decoded] = decodeInChunks(bytes, cuts) as Uint8Array[][];
  assertEquals(decoded!.length, 20_000);
  assertEquals(new TextDecoder().decode(decoded![19_999]), "value-19999");
});

Deno.test("encodeCommand() sizes any UTF-16 text (astral, lone surrogates) as TextEncoder does", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 4 }), (args) => {
      const reader = new RespReader();
      reader.push(encodeCommand(args));
      const decoded = reader.next() as Uint8Array[];
      args.forEach((arg, i) => assertEquals([...decoded[i]!], [...text.encode(arg)]));
    }),
    { numRuns: 500 },
  );
});

Deno.test("RespReader receives a large bulk string into its own buffer, by push or by direct reads", () => {
  const value = new Uint8Array(600 * 1024).map((_, i) => i % 251);
  const wire = encodeReply([value, "OK", 42]);
  // Fed in uneven chunks through push.
  const pushed = new RespReader();
  let got: RespReply | undefined;
  for (let i = 0; i < wire.length; i += 7919) {
    pushed.push(wire.subarray(i, i + 7919));
    got ??= pushed.next();
  }
  assertEquals(got, [value, "OK", 42]);
  // Fed through bulkTarget/advance, as the connection reads.
  const direct = new RespReader();
  let offset = 0;
  let reply: RespReply | undefined;
  let directBytes = 0;
  while (reply === undefined) {
    const target = direct.bulkTarget();
    if (target === undefined) {
      direct.push(wire.subarray(offset, offset + 4096));
      offset += 4096;
    } else {
      const n = Math.min(target.length, 50_000);
      target.set(wire.subarray(offset, offset + n));
      direct.advance(n);
      offset += n;
      directBytes += n;
    }
    reply = direct.next();
  }
  assertEquals(reply, [value, "OK", 42]);
  assert(directBytes > 500 * 1024, "most of the value went straight into the reply's buffer");
});

Deno.test("encodeCommands encodes large and non-ASCII strings as TextEncoder does", () => {
  const large = "é".repeat(3000) + "x".repeat(70_000) + "😀";
  const small = "naïve 😀";
  const wire = encodeCommands([["SET", "k", large], ["SET", small, new Uint8Array([1, 2])]]);
  const enc = new TextEncoder();
  const expected = new Uint8Array([
    ...enc.encode(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${enc.encode(large).length}\r\n`),
    ...enc.encode(large),
    ...enc.encode(`\r\n*3\r\n$3\r\nSET\r\n$${enc.encode(small).length}\r\n${small}\r\n$2\r\n`),
    1,
    2,
    ...enc.encode("\r\n"),
  ]);
  assertEquals(wire, expected);
});

Deno.test("encodeCommands grows its buffer for large non-ASCII strings of every length class", () => {
  const enc = new TextEncoder();
  for (
    const text of ["é".repeat(1024), "€".repeat(3333), "x".repeat(9999) + "é", "😀".repeat(600)]
  ) {
    const wire = encodeCommands([["SET", new Uint8Array([7]), text], ["PING"]]);
    const bytes = enc.encode(text);
    const expected = new Uint8Array([
      ...enc.encode(`*3\r\n$3\r\nSET\r\n$1\r\n`),
      7,
      ...enc.encode(`\r\n$${bytes.length}\r\n`),
      ...bytes,
      ...enc.encode("\r\n*1\r\n$4\r\nPING\r\n"),
    ]);
    assertEquals(wire, expected, `${text.length} characters`);
  }
});
