/**
 * RESP2: the command encoder and an incremental reply decoder that accepts
 * arbitrary chunk splits.
 *
 * @module
 */

import { ProtocolError, ReplyError } from "../common/errors.ts";

/**
 * One decoded RESP2 reply. Simple strings are `string`, bulk strings are raw
 * bytes (`Uint8Array`), integers are `number` (or `bigint` beyond 2^53), nil
 * is `null`, arrays are arrays and error replies are {@link ReplyError} values.
 */
export type RespReply =
  | string
  | number
  | bigint
  | null
  | Uint8Array
  | ReplyError
  | RespReply[];

/** One argument of a command. Numbers are sent as their decimal text. */
export type RespArg = string | number | bigint | Uint8Array;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = encoder.encode("\r\n");

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly RespArg[]): Uint8Array {
  return encodeCommands([args]);
}

/** Strings at least this long are encoded on their own, natively, and spliced in as bytes. */
const LARGE_STRING = 1024;

/**
 * Encodes several commands into one buffer, ready for a single socket write.
 * Small text is assembled as one string and encoded once (the hot path:
 * encoding many small pieces separately costs more than the I/O). With
 * binary arguments or large strings, everything is written into one buffer:
 * bytes copied once, large strings encoded natively straight into place
 * (never scanned character by character in JavaScript).
 */
export function encodeCommands(commands: readonly (readonly RespArg[])[]): Uint8Array {
  let text = "";
  let bound = 0; // bytes of the large arguments, at most
  for (const args of commands) {
    text += `*${args.length}\r\n`;
    for (const arg of args) {
      if (arg instanceof Uint8Array) {
        bound += arg.length + 16;
      } else if (typeof arg === "string" && arg.length >= LARGE_STRING) {
        bound += arg.length + 16; // ASCII; the buffer grows if the text is not
      } else {
        const value = typeof arg === "string" ? arg : String(arg);
        text += `$${utf8Length(value)}\r\n${value}\r\n`;
      }
    }
  }
  if (bound === 0) return encoder.encode(text);
  return encodeWithLarge(commands, text.length * 3 + bound);
}

/** {@link encodeCommands} with binary or large arguments: one buffer of at most `size` bytes. */
function encodeWithLarge(commands: readonly (readonly RespArg[])[], size: number): Uint8Array {
  let out = new Uint8Array(size);
  let offset = 0;
  let text = "";
  const room = (bytes: number): void => {
    if (offset + bytes <= out.length) return;
    const grown = new Uint8Array(Math.max(out.length * 2, offset + bytes));
    grown.set(out);
    out = grown;
  };
  const flushText = (): void => {
    room(text.length * 3);
    offset += encoder.encodeInto(text, out.subarray(offset)).written;
    text = "";
  };
  for (const args of commands) {
    text += `*${args.length}\r\n`;
    for (const arg of args) {
      if (arg instanceof Uint8Array) {
        text += `$${arg.length}\r\n`;
        flushText();
        room(arg.length);
        out.set(arg, offset);
        offset += arg.length;
        text = "\r\n";
      } else if (typeof arg === "string" && arg.length >= LARGE_STRING) {
        flushText();
        // Encode in place after a header sized for ASCII; move the bytes if it was not.
        let header = `$${arg.length}\r\n`;
        const start = offset + header.length;
        room(header.length + arg.length);
        const first = encoder.encodeInto(arg, out.subarray(start));
        let written = first.written;
        if (first.read !== arg.length) { // not ASCII, and longer than the room made for it
          room(header.length + arg.length * 3 + 16);
          written = encoder.encodeInto(arg, out.subarray(start)).written;
        }
        if (written !== arg.length) {
          const actual = `$${written}\r\n`;
          if (actual.length !== header.length) {
            room(actual.length + written);
            out.copyWithin(offset + actual.length, start, start + written);
          }
          header = actual;
        }
        encoder.encodeInto(header, out.subarray(offset));
        offset += header.length + written;
        text = "\r\n";
      } else {
        const value = typeof arg === "string" ? arg : String(arg);
        text += `$${utf8Length(value)}\r\n${value}\r\n`;
      }
    }
  }
  flushText();
  return out.subarray(0, offset);
}

/** Byte length of a string in UTF-8, as TextEncoder would produce it. */
function utf8Length(value: string): number {
  let bytes = value.length;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
        i++;
      } else {
        bytes += 2; // lone surrogate: encoded as U+FFFD, 3 bytes
      }
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * Encodes a reply value the way a server would. Used by tests to round-trip
 * values through {@link RespReader}.
 */
export function encodeReply(value: RespReply): Uint8Array {
  const chunks: Uint8Array[] = [];
  const walk = (v: RespReply): void => {
    if (v === null) chunks.push(encoder.encode("$-1\r\n"));
    else if (v instanceof ReplyError) chunks.push(encoder.encode(`-${v.reply}\r\n`));
    else if (typeof v === "string") chunks.push(encoder.encode(`+${v}\r\n`));
    else if (typeof v === "number" || typeof v === "bigint") {
      chunks.push(encoder.encode(`:${v}\r\n`));
    } else if (v instanceof Uint8Array) {
      chunks.push(encoder.encode(`$${v.length}\r\n`), v, CRLF);
    } else {
      chunks.push(encoder.encode(`*${v.length}\r\n`));
      for (const item of v) walk(item);
    }
  };
  walk(value);
  return concat(chunks);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

interface Frame {
  readonly items: RespReply[];
  remaining: number;
}

/**
 * Incremental RESP2 reply decoder. Feed it bytes as they arrive with
 * {@link RespReader.push}; {@link RespReader.next} returns each complete
 * reply in order, or `undefined` while the next one is still partial.
 *
 * Arrays are decoded with an explicit stack, so a large reply split over many
 * chunks is parsed once, not again from its start for every chunk.
 */
export class RespReader {
  /** Starts small (a sentinel's replies are short) and doubles when a reply needs more. */
  #buf: Uint8Array = new Uint8Array(4 * 1024);
  #start = 0;
  #end = 0;
  #stack: Frame[] = [];
  /** A large bulk string being received straight into its own buffer. */
  #bulk: { out: Uint8Array; filled: number } | undefined;

  /**
   * Where the next bytes of a large bulk string go, when one is being
   * received: read into it and report with {@link RespReader.advance}, and
   * the reply is never copied again. Undefined otherwise: use `push`.
   */
  bulkTarget(): Uint8Array | undefined {
    const bulk = this.#bulk;
    return bulk === undefined || bulk.filled === bulk.out.length
      ? undefined
      : bulk.out.subarray(bulk.filled);
  }

  /** Records `n` bytes read into {@link RespReader.bulkTarget}. */
  advance(n: number): void {
    this.#bulk!.filled += n;
  }

  /** Appends received bytes. */
  push(chunk: Uint8Array): void {
    const bulk = this.#bulk;
    if (bulk !== undefined && bulk.filled < bulk.out.length) {
      const n = Math.min(chunk.length, bulk.out.length - bulk.filled);
      bulk.out.set(chunk.subarray(0, n), bulk.filled);
      bulk.filled += n;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return;
    }
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const needed = live + chunk.length;
      if (needed <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length * 2;
        while (size < needed) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** Bytes received but not yet consumed by a complete reply. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Returns the next complete reply, or `undefined` if more bytes are needed.
   * Throws {@link ProtocolError} on bytes that are not RESP2.
   */
  next(): RespReply | undefined {
    while (true) {
      const scalar = this.#readScalar();
      if (scalar === NEED_MORE) return undefined;
      let value: RespReply;
      if (scalar instanceof ArrayHeader) {
        if (scalar.length > 0) {
          this.#stack.push({ items: [], remaining: scalar.length });
          continue;
        }
        value = scalar.length === 0 ? [] : null;
      } else {
        value = scalar;
      }
      // Fold the completed value into enclosing arrays.
      while (true) {
        const top = this.#stack.at(-1);
        if (top === undefined) {
          if (this.#start === this.#end) {
            this.#start = 0;
            this.#end = 0;
          }
          return value;
        }
        top.items.push(value);
        top.remaining--;
        if (top.remaining > 0) break;
        this.#stack.pop();
        value = top.items;
      }
    }
  }

  #readScalar(): RespReply | ArrayHeader | typeof NEED_MORE {
    const buf = this.#buf;
    const bulk = this.#bulk;
    if (bulk !== undefined) {
      if (bulk.filled < bulk.out.length || this.#end - this.#start < 2) return NEED_MORE;
      if (buf[this.#start] !== 0x0d || buf[this.#start + 1] !== 0x0a) {
        throw new ProtocolError("RESP bulk string is not terminated by CRLF");
      }
      this.#start += 2;
      this.#bulk = undefined;
      return bulk.out;
    }
    if (this.#start === this.#end) return NEED_MORE;
    const lineEnd = findCrlf(buf, this.#start + 1, this.#end);
    if (lineEnd === -1) {
      if (this.#end - this.#start > 64 * 1024) {
        throw new ProtocolError("RESP header line longer than 64 KiB; the peer is not Redis");
      }
      return NEED_MORE;
    }
    const type = buf[this.#start];
    const lineStart = this.#start + 1;
    const afterLine = lineEnd + 2;
    switch (type) {
      case 0x2b: // +
        this.#start = afterLine;
        return asciiLine(buf, lineStart, lineEnd);
      case 0x2d: // -
        this.#start = afterLine;
        return new ReplyError(decoder.decode(buf.subarray(lineStart, lineEnd)));
      case 0x3a: { // :
        const n = parseIntegerBytes(buf, lineStart, lineEnd);
        this.#start = afterLine;
        return n;
      }
      case 0x24: { // $
        const len = Number(parseIntegerBytes(buf, lineStart, lineEnd));
        if (len === -1) {
          this.#start = afterLine;
          return null;
        }
        if (len < -1 || len > 512 * 1024 * 1024) {
          throw new ProtocolError(`Invalid RESP bulk length ${len}`);
        }
        if (this.#end - afterLine < len + 2) {
          if (len < LARGE_BULK) return NEED_MORE;
          // Large: receive the rest straight into the reply's own buffer.
          const out = new Uint8Array(len);
          const have = Math.min(len, this.#end - afterLine);
          out.set(buf.subarray(afterLine, afterLine + have));
          this.#bulk = { out, filled: have };
          this.#start = afterLine + have;
          return NEED_MORE;
        }
        if (buf[afterLine + len] !== 0x0d || buf[afterLine + len + 1] !== 0x0a) {
          throw new ProtocolError("RESP bulk string is not terminated by CRLF");
        }
        const bytes = buf.slice(afterLine, afterLine + len);
        this.#start = afterLine + len + 2;
        return bytes;
      }
      case 0x2a: { // *
        const len = Number(parseIntegerBytes(buf, lineStart, lineEnd));
        if (len < -1) throw new ProtocolError(`Invalid RESP array length ${len}`);
        this.#start = afterLine;
        return new ArrayHeader(len);
      }
      default:
        throw new ProtocolError(
          `Unexpected RESP type byte 0x${
            type!.toString(16).padStart(2, "0")
          }; the peer is not Redis`,
        );
    }
  }
}

const NEED_MORE: unique symbol = Symbol("need more");

class ArrayHeader {
  constructor(readonly length: number) {}
}

function findCrlf(buf: Uint8Array, from: number, end: number): number {
  const live = buf.subarray(0, end);
  let i = live.indexOf(0x0d, from);
  while (i !== -1 && i + 1 < end) {
    if (live[i + 1] === 0x0a) return i;
    i = live.indexOf(0x0d, i + 1);
  }
  return -1;
}

/** Bulk strings at least this long are received straight into their own buffer. */
const LARGE_BULK = 256 * 1024;

/** A simple-string line: ASCII decoded without a TextDecoder call when short. */
function asciiLine(buf: Uint8Array, start: number, end: number): string {
  if (end - start > 32) return decoder.decode(buf.subarray(start, end));
  let text = "";
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c! >= 0x80) return decoder.decode(buf.subarray(start, end));
    text += String.fromCharCode(c!);
  }
  return text;
}

/** Parses the decimal integer of a header line from its bytes. */
function parseIntegerBytes(buf: Uint8Array, start: number, end: number): number | bigint {
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  if (i === end || end - i > 15) return parseInteger(decoder.decode(buf.subarray(start, end)));
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return parseInteger(decoder.decode(buf.subarray(start, end)));
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function parseInteger(text: string): number | bigint {
  if (!/^-?\d+$/.test(text)) throw new ProtocolError(`Invalid RESP integer "${text}"`);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/** A reply with every bulk string (also inside arrays) decoded as UTF-8; the rest unchanged. */
export function bulkToStrings(reply: RespReply): RespReply {
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map(bulkToStrings);
  return reply;
}

/**
 * Decodes a bulk or simple string reply to text; `null` stays `null`. An
 * element missing from a reply array (`undefined`) is a protocol error.
 */
export function replyToString(reply: RespReply | undefined): string | null {
  if (reply === null) return null;
  if (typeof reply === "string") return reply;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (typeof reply === "number" || typeof reply === "bigint") return String(reply);
  throw new ProtocolError(`Expected a string reply, got ${describeReply(reply)}`);
}

/** Decodes an integer reply. */
export function replyToNumber(reply: RespReply | undefined): number {
  if (typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  const text = reply === null ? null : replyToString(reply);
  if (text !== null && /^-?\d+$/.test(text)) return Number(text);
  throw new ProtocolError(`Expected an integer reply, got ${describeReply(reply)}`);
}

/** Decodes a flat `[field, value, field, value…]` array reply into a map. */
export function replyToMap(reply: RespReply | undefined): Map<string, RespReply> {
  if (!Array.isArray(reply)) {
    throw new ProtocolError(`Expected a field/value array reply, got ${describeReply(reply)}`);
  }
  const map = new Map<string, RespReply>();
  for (let i = 0; i + 1 < reply.length; i += 2) {
    map.set(replyToString(reply[i]) ?? "", reply[i + 1]!);
  }
  return map;
}

/** Short description of a reply's type, for error messages. */
export function describeReply(reply: RespReply | undefined): string {
  if (reply === null) return "nil";
  if (reply === undefined) return "nothing (a reply array was shorter than expected)";
  if (Array.isArray(reply)) return `array of ${reply.length}`;
  if (reply instanceof Uint8Array) return "bulk string";
  if (reply instanceof ReplyError) return `error ${reply.prefix}`;
  return typeof reply;
}
