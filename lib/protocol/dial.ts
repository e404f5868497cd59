/**
 * Opening the socket of a connection: TCP, or TLS with its handshake, within
 * a deadline and abortable. When TLS is used on one side only, the peer is
 * asked on the side (a plain `PING`, or a TLS handshake) so the error can
 * say which side speaks what.
 *
 * @module
 */

import { ConnectionError, NotPermittedError, TlsError } from "../common/errors.ts";
import { abortable } from "../common/abortable.ts";
import { formatMs } from "../common/quote.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";

/** What {@link dial} needs of a connection's options. */
export interface DialOptions {
  /** Use TLS. @default {false} */
  tls?: boolean | undefined;
  /** Extra CA certificates (PEM) trusted for TLS. */
  caCerts?: readonly string[] | undefined;
  /**
   * Deadline for the TCP connect plus the TLS handshake (with `RedisConnection.connect`,
   * the AUTH/SELECT/SETNAME/PING handshake too). @default {2000}
   */
  connectTimeoutMs?: number | undefined;
  /** The setting to name when TLS is on one side only. @default {"MN_REDIS_URL (rediss:// or redis://)"} */
  tlsVariable?: string | undefined;
  /** Aborts the attempt. */
  signal?: AbortSignal | undefined;
}

/**
 * Opens a TCP socket (no delay) or a TLS one with its handshake done.
 * Throws {@link ConnectionError} (refused, unreachable, deadline passed, a
 * handshake nobody answers), {@link TlsError} (certificates, or TLS on one
 * side only) or {@link NotPermittedError} (outside the network permission).
 */
export async function dial(endpoint: Endpoint, options: DialOptions = {}): Promise<Deno.Conn> {
  const where = formatEndpoint(endpoint);
  const timeoutMs = options.connectTimeoutMs ?? 2000;
  if (options.tls ?? false) return await dialTls(endpoint, options, where, timeoutMs);
  const conn = await withDeadline(
    Deno.connect({ hostname: endpoint.host, port: endpoint.port }),
    timeoutMs,
    options.signal,
    where,
  );
  (conn as Deno.TcpConn).setNoDelay(true);
  return conn;
}

/** TLS with its handshake; a plain-TCP peer is told apart from a hung one. */
async function dialTls(
  endpoint: Endpoint,
  options: DialOptions,
  where: string,
  timeoutMs: number,
): Promise<Deno.Conn> {
  const tlsVariable = options.tlsVariable ?? "MN_REDIS_URL (rediss:// or redis://)";
  let raw: Deno.TlsConn | undefined;
  let shaken = false;
  const connecting = Deno.connectTls({
    hostname: endpoint.host,
    port: endpoint.port,
    ...(options.caCerts === undefined ? {} : { caCerts: [...options.caCerts] }),
  }).then(async (c) => {
    raw = c;
    try {
      await c.handshake();
    } catch (error) {
      c.close();
      throw isTlsFailure(error) ? new TlsError(where, error) : error;
    } finally {
      shaken = true;
    }
    return c;
  });
  // A plain-TCP Redis never answers a TLS handshake (it waits for a newline): after a short
  // wait, ask it a plain PING on the side, and end the handshake as soon as it answers.
  let plain = false;
  let diagnosing: Promise<void> | undefined;
  const diagnosis = setTimeout(() => {
    if (raw === undefined || shaken) return;
    diagnosing = speaksPlainResp(endpoint).then((answered) => {
      if (!answered || shaken) return;
      plain = true;
      try {
        raw?.close(); // fails the waiting handshake now
      } catch {
        // Already closed.
      }
    });
  }, Math.min(DIAGNOSIS_DELAY_MS, timeoutMs / 2));
  try {
    return await withDeadline(connecting, timeoutMs, options.signal, where);
  } catch (error) {
    if (plain) {
      throw new TlsError(
        where,
        error,
        `${where} speaks plain TCP, not TLS (the TLS handshake got no answer, a plain PING did); ` +
          `use TLS on both sides or neither: check ${tlsVariable}`,
      );
    }
    const hung = raw !== undefined && !shaken;
    if (hung) {
      try {
        raw!.close(); // ends the handshake still waiting
      } catch {
        // Already closed by the failed handshake.
      }
    }
    // A handshake nobody answers: a plain-TCP Redis waits for a newline that never comes.
    if (hung && await speaksPlainResp(endpoint)) {
      throw new TlsError(
        where,
        error,
        `${where} speaks plain TCP, not TLS (the TLS handshake got no answer, a plain PING did); ` +
          `use TLS on both sides or neither: check ${tlsVariable}`,
      );
    }
    if (hung && !options.signal?.aborted) {
      throw new ConnectionError(
        `${where} accepted the connection but did not answer the TLS handshake within ` +
          `${formatMs(timeoutMs)}; the process may be hung or paused (SIGSTOP)`,
        { endpoint: where, cause: error },
      );
    }
    throw error;
  } finally {
    clearTimeout(diagnosis);
    await diagnosing;
  }
}

/** `connecting`, unless the deadline passes or `signal` aborts first (the late socket is closed). */
async function withDeadline(
  connecting: Promise<Deno.Conn>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  where: string,
): Promise<Deno.Conn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  let lost = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new ConnectionError(`Cannot connect to ${where} within ${formatMs(timeoutMs)}`, {
          endpoint: where,
        }),
      );
    }, timeoutMs);
    onAbort = () =>
      reject(
        new ConnectionError(`Connect to ${where} aborted`, {
          endpoint: where,
          cause: signal?.reason,
        }),
      );
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([
      connecting.catch((error) => {
        // A permission refusal is the operator's setting, not a network fault: never retried.
        if (error instanceof Deno.errors.NotCapable) {
          throw new NotPermittedError(where, { cause: error });
        }
        if (error instanceof TlsError) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        throw new ConnectionError(`Cannot connect to ${where}: ${reason}`, {
          endpoint: where,
          cause: error,
        });
      }),
      deadline,
    ]);
  } catch (error) {
    lost = true;
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    // A connect that completes after the deadline must not leak its socket.
    if (lost) connecting.then((conn) => conn.close(), () => {});
  }
}

export function isTlsFailure(error: unknown): boolean {
  return error instanceof Deno.errors.InvalidData &&
    /certificate|tls|handshake|corrupt message|peer|alert/i.test(error.message);
}

/** How long the transport diagnosis may take: it runs only after a connection already failed. */
const DIAGNOSIS_TIMEOUT_MS = 300;
/** How long a TLS handshake may go unanswered before the peer is asked whether it speaks plain RESP. */
const DIAGNOSIS_DELAY_MS = 250;

/** True when `endpoint` answers a plain inline PING: it speaks plain RESP, not TLS. */
async function speaksPlainResp(endpoint: Endpoint): Promise<boolean> {
  let conn: Deno.Conn | undefined;
  const deadline = AbortSignal.timeout(DIAGNOSIS_TIMEOUT_MS);
  try {
    conn = await abortable(
      Deno.connect({ hostname: endpoint.host, port: endpoint.port }),
      deadline,
    );
    await abortable(conn.write(new TextEncoder().encode("PING\r\n")), deadline);
    const buf = new Uint8Array(64);
    const n = await abortable(conn.read(buf), deadline);
    if (n === null) return false;
    const first = buf[0];
    // "+PONG", or an error such as "-NOAUTH": RESP either way.
    return first === 0x2b || first === 0x2d;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }
}

/** True when `endpoint` completes (or fails on a certificate) a TLS handshake: it speaks TLS. */
export async function speaksTls(endpoint: Endpoint, options: DialOptions): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  const deadline = AbortSignal.timeout(DIAGNOSIS_TIMEOUT_MS);
  const connecting = Deno.connectTls({
    hostname: endpoint.host,
    port: endpoint.port,
    ...(options.caCerts === undefined ? {} : { caCerts: [...options.caCerts] }),
  });
  try {
    conn = await abortable(connecting, deadline);
    await abortable(conn.handshake(), deadline);
    return true;
  } catch (error) {
    return error instanceof Deno.errors.InvalidData && /certificate/i.test(error.message);
  } finally {
    if (conn === undefined) connecting.then((c) => c.close(), () => {});
    else {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }
}
