/**
 * One confirmed connection pair to a primary: the hot connection (reads, hot
 * writes, the probe) and the durable connection (durable writes and their
 * WAIT), opened together and confirmed with `ROLE`.
 */

import { type ConnectOptions, RedisConnection } from "../protocol/connection.ts";
import { GroupWait } from "./durable_write.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { RoleMismatchError } from "../common/errors.ts";
import { replyToString } from "../protocol/resp.ts";
import { parseRole } from "../protocol/role.ts";

/** The primary a session is connected to, confirmed with `ROLE`. */
export interface PrimaryInfo {
  /** Where it listens. */
  readonly endpoint: Endpoint;
  /** `host:port`. */
  readonly address: string;
  /** What `ROLE` said (`master` unless single mode points at a replica). */
  readonly role: string;
  /** Sentinel `config-epoch` when it was resolved (sentinel mode only). */
  readonly configEpoch: number | undefined;
  /** Its `master_replid` from `INFO replication`. */
  readonly replid: string;
  /** The primary it replicates from, `host:port`, when `ROLE` says it is a replica. */
  readonly replicaOf?: string | undefined;
}

/** A connection pair to one confirmed primary. */
export interface Session {
  /** The primary. */
  readonly primary: PrimaryInfo;
  /** Reads, hot writes (lease renewals) and the probe: never behind a WAIT. */
  readonly hot: RedisConnection;
  /** Durable writes and their WAIT. */
  readonly durable: RedisConnection;
  /** Group-commit WAIT on the durable connection; undefined when WAIT is off. */
  readonly wait: GroupWait | undefined;
  /** Set once the session is out of service. */
  retired: boolean;
}

/** What {@link openSession} needs. */
export interface OpenSessionOptions {
  /** Connection settings for both connections. */
  connect: ConnectOptions;
  /** Refuse a node whose `ROLE` is not master (sentinel mode). */
  requireMaster: boolean;
  /** The Sentinel config-epoch the endpoint was resolved with. */
  configEpoch: number | undefined;
  /** `MN_REDIS_WAIT_REPLICAS` and `MN_REDIS_WAIT_TIMEOUT_MS`. */
  wait: { replicas: number; timeoutMs: number };
  /** Called whenever bytes arrive on either connection, from the `ROLE` check on. */
  onRead?: (() => void) | undefined;
}

/**
 * Opens both connections to `endpoint` and confirms its role. Throws
 * {@link RoleMismatchError} when a master is required and the node is not
 * one; nothing stays open on failure.
 */
export async function openSession(
  endpoint: Endpoint,
  options: OpenSessionOptions,
): Promise<Session> {
  const opened = await Promise.allSettled([
    RedisConnection.connect(endpoint, options.connect),
    RedisConnection.connect(endpoint, options.connect),
  ]);
  const failed = opened.find((r) => r.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(opened.map((r) => r.status === "fulfilled" ? r.value.close() : undefined));
    throw (failed as PromiseRejectedResult).reason;
  }
  const [hot, durable] = opened.map((r) => (r as PromiseFulfilledResult<RedisConnection>).value);
  if (options.onRead !== undefined) {
    hot!.setReadHook(options.onRead);
    durable!.setReadHook(options.onRead);
  }
  const address = formatEndpoint(endpoint);
  try {
    const timeoutMs = options.connect.connectTimeoutMs ?? 2000;
    const signal = options.connect.signal;
    const [roleReply, infoReply] = await Promise.all([
      hot!.send(["ROLE"], { timeoutMs, signal }),
      hot!.send(["INFO", "replication"], { timeoutMs, signal }),
    ]);
    const { role, primary: replicaOf } = parseRole(roleReply);
    if (options.requireMaster && role !== "master") throw new RoleMismatchError(address, role);
    const replid = /master_replid:([0-9a-f]+)/.exec(replyToString(infoReply) ?? "")?.[1] ?? "";
    const wait = options.wait.replicas === 0
      ? undefined
      : new GroupWait(durable!, options.wait.replicas, options.wait.timeoutMs);
    return {
      primary: { endpoint, address, role, configEpoch: options.configEpoch, replid, replicaOf },
      hot: hot!,
      durable: durable!,
      wait,
      retired: false,
    };
  } catch (error) {
    await Promise.all([hot!.close(), durable!.close()]);
    throw error;
  }
}
