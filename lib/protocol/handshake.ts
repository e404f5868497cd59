/**
 * The handshake every new connection makes before it is used: AUTH (with
 * the user, if one is set), SELECT and CLIENT SETNAME (a PING when none of
 * them is sent), pipelined,
 * each refusal turned into the error that names the setting to fix.
 *
 * @module
 */

import { AuthError, ConfigError, ReplyError } from "../common/errors.ts";
import type { RespArg, RespReply } from "./resp.ts";
import type { Secret } from "../common/secret.ts";

/** What the handshake sends, and what its errors name. */
export interface HandshakeOptions {
  /** ACL user name. */
  username?: string | undefined;
  /** Password; sent only inside AUTH. */
  password?: Secret | undefined;
  /** Database to SELECT. @default {0} */
  db?: number | undefined;
  /** Variables to name when AUTH is refused. @default {"MN_REDIS_USERNAME/MN_REDIS_PASSWORD"} */
  credentialVariables?: string | undefined;
  /** `CLIENT SETNAME` value. */
  clientName?: string | undefined;
  /** The setting to name when the server has no database `db`. @default {"MN_REDIS_DB"} */
  dbVariable?: string | undefined;
}

/**
 * Runs the handshake through `send` (one connection's pipeline) on the node
 * at `where`. Every step is settled before the first failure is reported,
 * so none is left unhandled; at least one command is always awaited (a PING
 * when nothing else is sent), so a peer that accepts and never answers fails
 * here.
 */
export async function handshake(
  send: (args: RespArg[]) => Promise<RespReply>,
  where: string,
  options: HandshakeOptions,
): Promise<void> {
  const steps: Promise<RespReply>[] = [];
  if (options.password !== undefined) {
    const auth: RespArg[] = options.username === undefined
      ? ["AUTH", options.password.reveal()]
      : ["AUTH", options.username, options.password.reveal()];
    steps.push(
      send(auth).catch((e) => {
        throw e instanceof ReplyError
          ? authFailure(where, e, options.username, options.credentialVariables)
          : e;
      }),
    );
  }
  if ((options.db ?? 0) !== 0) {
    const db = options.db!;
    steps.push(
      send(["SELECT", db]).catch((e) => {
        // The index is checked by the server (its `databases` setting), not guessed here.
        throw e instanceof ReplyError && /out of range/i.test(e.reply)
          ? new ConfigError([{
            variable: options.dbVariable ?? "MN_REDIS_DB",
            message: `database ${db} does not exist on ${where} (${e.reply}); ` +
              "Redis numbers its databases from 0 up to its `databases` setting (16 by default)",
          }])
          : e;
      }),
    );
  }
  if (options.clientName !== undefined) steps.push(send(["CLIENT", "SETNAME", options.clientName]));
  // A peer that accepts and never answers must fail here: a PING when no step above asks. A node
  // that cannot persist refuses PING (MISCONF) but answered: its writes report the refusal.
  if (steps.length === 0) {
    steps.push(
      send(["PING"]).catch((e) => {
        if (e instanceof ReplyError && e.prefix === "MISCONF") return "PONG";
        throw e;
      }),
    );
  }
  const results = await Promise.allSettled(steps);
  for (const r of results) {
    if (r.status === "rejected") {
      throw r.reason instanceof ReplyError && r.reason.prefix === "NOAUTH"
        ? authFailure(where, r.reason, options.username, options.credentialVariables)
        : r.reason;
    }
  }
}

/** A refused AUTH (or a command refused for want of one) as the error naming the variables. */
function authFailure(
  where: string,
  error: ReplyError,
  username: string | undefined,
  variables = "MN_REDIS_USERNAME/MN_REDIS_PASSWORD",
): AuthError {
  if (error.prefix === "NOAUTH") {
    return new AuthError(
      `${where} requires a password and none is configured (NOAUTH); set ${variables}`,
      { endpoint: where, cause: error },
    );
  }
  const who = username === undefined ? "the default user" : `user "${username}"`;
  return new AuthError(
    `Authentication to ${where} as ${who} failed (${error.prefix}); check ${variables}`,
    { endpoint: where, cause: error },
  );
}
