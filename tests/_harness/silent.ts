/** A TCP listener that accepts connections and never answers: a hung peer, for fault tests. */

/** A silent listener on a free loopback port; closes itself and every connection on dispose. */
export interface SilentListener extends AsyncDisposable {
  /** `127.0.0.1:port`. */
  readonly address: string;
  /** How many connections it accepted so far. */
  accepted(): number;
}

/** Starts a listener that accepts connections, reads nothing and writes nothing. */
export function silentListener(): SilentListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accepted: () => held.length,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
    },
  };
}
