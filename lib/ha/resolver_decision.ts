/**
 * The Sentinel resolver's decision logic, with no I/O: sentinel answers in,
 * the primary out. Kept pure so every rule is unit-tested without sockets.
 *
 * @module
 */

import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { MasterUnknownError, NoSentinelReachableError } from "../common/errors.ts";
import { replyToString, type RespReply } from "../protocol/resp.ts";

/** What one sentinel said about the master. */
export type SentinelAnswer =
  | {
    /** The sentinel, as `host:port`. */
    readonly sentinel: string;
    /** It monitors the master and reported this. */
    readonly kind: "master";
    /** The address it reports. */
    readonly primary: Endpoint;
    /** Its `config-epoch` for the master. */
    readonly configEpoch: number;
    /** Its flags for the master, e.g. `master`, `s_down`, `o_down`. */
    readonly flags: readonly string[];
    /** Its `down-after-milliseconds` for the master, when it reported one. */
    readonly downAfterMs?: number | undefined;
  }
  | {
    /** The sentinel, as `host:port`. */
    readonly sentinel: string;
    /** It answered but does not monitor the master name. */
    readonly kind: "unknown-master";
  }
  | {
    /** The sentinel, as `host:port`. */
    readonly sentinel: string;
    /** It did not answer. */
    readonly kind: "error";
    /** Why. */
    readonly error: string;
    /**
     * True when a retry cannot help: wrong credentials, not a sentinel, TLS
     * on one side only.
     */
    readonly permanent?: boolean | undefined;
  };

/** A sentinel reporting something other than the chosen primary. */
export interface StaleSentinel {
  /** The sentinel, as `host:port`. */
  readonly sentinel: string;
  /** What it reported. */
  readonly reported: string;
  /** Its config-epoch. */
  readonly configEpoch: number;
}

/** The resolver's choice. */
export interface MasterDecision {
  /** The primary to connect to. */
  readonly primary: Endpoint;
  /** The highest config-epoch among the answers. */
  readonly configEpoch: number;
  /** Sentinels that report this primary. */
  readonly agreeing: readonly string[];
  /** Sentinels that report another address. */
  readonly stale: readonly StaleSentinel[];
  /** True when every sentinel reporting it flags it as down (a failover is likely under way). */
  readonly down: boolean;
  /**
   * The shortest `down-after-milliseconds` the sentinels reported: how long
   * the primary must stay silent before they may fail it over.
   */
  readonly downAfterMs: number | undefined;
  /** Every answer considered, for status output. */
  readonly answers: readonly SentinelAnswer[];
}

/** How many answers make a majority of `total` sentinels. */
export function majorityOf(total: number): number {
  return Math.floor(total / 2) + 1;
}

/** True when the resolver may decide: a majority answered, or nobody else can. */
export function hasEnoughAnswers(total: number, answered: number, settled: number): boolean {
  return answered >= majorityOf(total) || settled >= total;
}

// "disconnected" is not here: a sentinel shows a just-promoted primary as
// "master,disconnected" until its first ping, and that one must win.
const DOWN_FLAGS = new Set(["s_down", "o_down", "failover_in_progress"]);

/**
 * Chooses the primary from sentinel answers: the address with the highest
 * `config-epoch`, preferring addresses no sentinel flags as down, then the
 * one most sentinels report. A stale sentinel still reporting a dead primary
 * at a lower epoch never wins.
 *
 * Throws {@link NoSentinelReachableError} when nobody answered (marked
 * `permanent` when every sentinel refused for a reason a retry cannot fix)
 * and {@link MasterUnknownError} when those who answered do not know the name.
 */
export function decideMaster(
  answers: readonly SentinelAnswer[],
  masterName: string,
): MasterDecision {
  const reports = answers.filter((a) => a.kind === "master");
  if (reports.length === 0) {
    const answered = answers.filter((a) => a.kind === "unknown-master");
    if (answered.length > 0) {
      throw new MasterUnknownError(
        masterName,
        answered.map((a) => a.sentinel),
      );
    }
    throw new NoSentinelReachableError(
      answers.map((a) => ({
        endpoint: a.sentinel,
        error: a.kind === "error" ? a.error : "no answer",
      })),
      { permanent: answers.length > 0 && answers.every((a) => a.kind === "error" && a.permanent) },
    );
  }
  interface Candidate {
    address: string;
    primary: Endpoint;
    configEpoch: number;
    agreeing: string[];
    down: boolean;
    promoted: boolean;
  }
  const candidates = new Map<string, Candidate>();
  for (const r of reports) {
    const address = formatEndpoint(r.primary);
    const down = r.flags.some((f) => DOWN_FLAGS.has(f));
    const promoted = r.flags.includes("promoted");
    const c = candidates.get(address);
    if (c === undefined) {
      candidates.set(address, {
        address,
        primary: r.primary,
        configEpoch: r.configEpoch,
        agreeing: [r.sentinel],
        down,
        promoted,
      });
    } else {
      c.configEpoch = Math.max(c.configEpoch, r.configEpoch);
      c.agreeing.push(r.sentinel);
      c.down = c.down && down;
      c.promoted = c.promoted || promoted;
    }
  }
  // A failover leader names the replica it promoted once the promotion is
  // confirmed; from there the failover always completes, so that replica
  // wins over the old primary the other sentinels still report.
  const ranked = [...candidates.values()].sort((a, b) =>
    b.configEpoch - a.configEpoch ||
    Number(b.promoted) - Number(a.promoted) ||
    Number(a.down) - Number(b.down) ||
    b.agreeing.length - a.agreeing.length ||
    a.address.localeCompare(b.address)
  );
  const chosen = ranked[0];
  const stale: StaleSentinel[] = reports
    .filter((r) => formatEndpoint(r.primary) !== chosen!.address)
    .map((r) => ({
      sentinel: r.sentinel,
      reported: formatEndpoint(r.primary),
      configEpoch: r.configEpoch,
    }));
  return {
    primary: chosen!.primary,
    configEpoch: chosen!.configEpoch,
    agreeing: chosen!.agreeing,
    stale,
    down: chosen!.down,
    downAfterMs: reports.reduce<number | undefined>(
      (min, r) => r.downAfterMs === undefined ? min : Math.min(min ?? r.downAfterMs, r.downAfterMs),
      undefined,
    ),
    answers,
  };
}

/**
 * Why `answers` do not confirm `address` as the primary with no failover
 * of it under way, or undefined when they do. Confirmed means: a majority
 * of the sentinels asked answered, none flags `address` as down or failing
 * over (`s_down`, `o_down`, `failover_in_progress`), and none names another
 * node at `configEpoch` or later (a failover leader names the replica it
 * promoted before the others learn of it). A sentinel still naming an older
 * primary at a lower epoch is only behind and does not count.
 */
export function failoverEvidence(
  answers: readonly SentinelAnswer[],
  address: string,
  configEpoch: number,
): string | undefined {
  const answered = answers.filter((a) => a.kind !== "error").length;
  if (answered < majorityOf(answers.length)) {
    return `only ${answered} of ${answers.length} sentinels answered`;
  }
  for (const a of answers) {
    if (a.kind !== "master") continue;
    const named = formatEndpoint(a.primary);
    if (named !== address) {
      if (a.configEpoch >= configEpoch) {
        return `sentinel ${a.sentinel} names ${named} (config-epoch ${a.configEpoch})`;
      }
      continue;
    }
    const down = a.flags.filter((f) => DOWN_FLAGS.has(f));
    if (down.length > 0) return `sentinel ${a.sentinel} flags ${address} ${down.join(",")}`;
  }
  return undefined;
}

/** Parses a `+switch-master` payload: `<name> <old-ip> <old-port> <new-ip> <new-port>`. */
export function parseSwitchMaster(
  payload: string,
): { masterName: string; from: Endpoint; to: Endpoint } | undefined {
  const parts = payload.trim().split(/\s+/);
  if (parts.length !== 5) return undefined;
  const [masterName = "", oldHost = "", oldPort, newHost = "", newPort] = parts;
  const from = { host: oldHost, port: Number(oldPort) };
  const to = { host: newHost, port: Number(newPort) };
  if (!Number.isInteger(from.port) || !Number.isInteger(to.port)) return undefined;
  return { masterName, from, to };
}

/**
 * Returns the master name an instance event refers to. Instance events read
 * `<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>`, or
 * end at `<port>` when the instance is the master itself.
 */
export function eventMasterName(payload: string): string | undefined {
  const parts = payload.trim().split(/\s+/);
  const at = parts.indexOf("@");
  if (at !== -1) return parts[at + 1];
  return parts[0] === "master" ? parts[1] : undefined;
}

/**
 * Returns the `host:port` of the instance an instance event is about
 * (`<type> <name> <ip> <port> …`), e.g. the node a `+convert-to-slave`
 * converted.
 */
export function eventInstanceAddress(payload: string): string | undefined {
  const parts = payload.trim().split(/\s+/);
  if (parts.length < 4) return undefined;
  const port = Number(parts[3]);
  if (!Number.isInteger(port)) return undefined;
  return formatEndpoint({ host: parts[2]!, port });
}

/**
 * Where an instance of a `SENTINEL SENTINELS` or `SENTINEL REPLICAS` entry
 * listens (its `ip` and `port` fields), or undefined when the entry lacks a
 * usable address.
 */
export function instanceEndpoint(fields: ReadonlyMap<string, RespReply>): Endpoint | undefined {
  const host = replyToString(fields.get("ip") ?? null);
  const port = Number(replyToString(fields.get("port") ?? null));
  if (host === null || !Number.isInteger(port) || port < 1) return undefined;
  return { host, port };
}
