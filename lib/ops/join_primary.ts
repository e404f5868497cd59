/**
 * Which node is the primary for a box that joins, so the documented join
 * works on every box in any order without a flag:
 * - an answering sentinel knows the master: that is the primary;
 * - every listed sentinel answers and none knows it: the box whose sentinel is
 *   listed first bootstraps, every other box waits for its primary;
 * - some do not answer and no answering one knows it: wait up to
 *   `--peer-timeout`, then bootstrap with `--bootstrap`, else refuse.
 *
 * Two boxes never both bootstrap: only the first-listed box does without
 * `--bootstrap`, and it does so only once every listed sentinel has answered
 * that it knows no master.
 *
 * @module
 */

import { delay } from "../common/delay.ts";
import { MasterUnknownError, NoSentinelReachableError, RedisHaError } from "../common/errors.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { SentinelResolver } from "../ha/sentinel_resolver.ts";
import { type BoxOptions, sentinelAuth } from "./daemon.ts";

/** Default of `--peer-timeout`. */
export const DEFAULT_PEER_TIMEOUT_MS = 120_000;

/** How often the sentinels are asked again while waiting for peers. */
const PEER_POLL_MS = 500;

/** What the search needs besides the box: `--bootstrap` and `--peer-timeout`. */
export interface FindPrimaryOptions extends BoxOptions {
  /** `--bootstrap`: allow self-promotion although some sentinels did not answer. */
  bootstrap: boolean;
  /** `--peer-timeout`. @default {DEFAULT_PEER_TIMEOUT_MS} */
  peerTimeoutMs?: number | undefined;
}

/** The primary to join, and whether this box became it by bootstrapping. */
export interface FoundPrimary {
  /** The primary. */
  readonly primary: Endpoint;
  /** This box bootstrapped a new cluster. */
  readonly bootstrapped: boolean;
}

/** What to do while no answering sentinel knows the master. */
type Verdict =
  | { readonly kind: "bootstrap"; readonly why: string }
  | { readonly kind: "wait"; readonly state: string; readonly line: string };

/**
 * Finds the cluster's primary among `sentinels` (this box's included),
 * waiting for peers that have not joined yet (see the module docs).
 */
export async function findPrimary(
  options: FindPrimaryOptions,
  sentinels: readonly Endpoint[],
  selfSentinel: Endpoint,
  self: Endpoint,
): Promise<FoundPrimary> {
  const peerTimeoutMs = options.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
  const deadline = performance.now() + peerTimeoutMs;
  await using resolver = new SentinelResolver({
    sentinels,
    masterName: options.masterName,
    ...sentinelAuth(options),
    perSentinelTimeoutMs: 1000,
  });
  let lastState = "";
  while (true) {
    options.signal?.throwIfAborted();
    try {
      const decision = await resolver.resolve({ waitAll: true, signal: options.signal });
      options.report(
        `join: sentinels report primary ${
          formatEndpoint(decision.primary)
        } (config-epoch ${decision.configEpoch})`,
      );
      return { primary: decision.primary, bootstrapped: false };
    } catch (error) {
      if (error instanceof NoSentinelReachableError && error.permanent) throw error;
      if (!(error instanceof MasterUnknownError) && !(error instanceof NoSentinelReachableError)) {
        throw error;
      }
      const answered = new Set(error instanceof MasterUnknownError ? error.answered : []);
      const silent = sentinels.map(formatEndpoint).filter((s) => !answered.has(s));
      const verdict = noMasterVerdict(options, sentinels, selfSentinel, silent, peerTimeoutMs);
      if (verdict.kind === "bootstrap") {
        options.report(
          `join: no primary known for "${options.masterName}" (${verdict.why}); bootstrapping ${
            formatEndpoint(self)
          } as primary`,
        );
        return { primary: self, bootstrapped: true };
      }
      if (verdict.state !== lastState) options.report(verdict.line);
      lastState = verdict.state;
      if (performance.now() >= deadline) {
        throw peersSilentError(options, sentinels, silent, peerTimeoutMs);
      }
      await delay(PEER_POLL_MS, options.signal);
    }
  }
}

/** Bootstrap or wait, while no answering sentinel knows the master and `silent` did not answer. */
function noMasterVerdict(
  options: FindPrimaryOptions,
  sentinels: readonly Endpoint[],
  selfSentinel: Endpoint,
  silent: readonly string[],
  peerTimeoutMs: number,
): Verdict {
  const first = sentinels[0] === undefined ? "" : formatEndpoint(sentinels[0]);
  const name = options.masterName;
  if (silent.length === 0) {
    if (first === formatEndpoint(selfSentinel)) {
      return { kind: "bootstrap", why: "every listed sentinel answered" };
    }
    return {
      kind: "wait",
      state: "wait-first",
      line: `join: every listed sentinel answered and none knows "${name}"; ` +
        `waiting for the first listed box (${first}) to bootstrap the primary`,
    };
  }
  if (options.bootstrap) {
    return {
      kind: "bootstrap",
      why: `--bootstrap, ${silent.length} of ${sentinels.length} did not answer`,
    };
  }
  return {
    kind: "wait",
    state: `wait-silent:${silent.join(",")}`,
    line: `join: waiting for sentinel(s) ${silent.join(", ")} (${
      sentinels.length - silent.length
    } of ${sentinels.length} answered, none knows "${name}"); up to ${
      Math.round(peerTimeoutMs / 1000)
    } s (--peer-timeout)`,
  };
}

/** The refusal once `--peer-timeout` passed with no primary known. */
function peersSilentError(
  options: FindPrimaryOptions,
  sentinels: readonly Endpoint[],
  silent: readonly string[],
  peerTimeoutMs: number,
): RedisHaError {
  const first = sentinels[0] === undefined ? "" : formatEndpoint(sentinels[0]);
  const seconds = Math.round(peerTimeoutMs / 1000);
  const name = options.masterName;
  return new RedisHaError(
    "MASTER_UNKNOWN",
    silent.length === 0
      ? `Every listed sentinel answered but none learned a primary for "${name}" within ` +
        `--peer-timeout (${seconds} s): the first listed box (${first}) bootstraps the ` +
        "cluster, so run the same join there"
      : `No answering sentinel knows "${name}", and ${silent.length} of ${sentinels.length} ` +
        `sentinels (${silent.join(", ")}) did not answer within --peer-timeout (${seconds} s). ` +
        "Refusing to make this box the primary: a sentinel that did not answer may know a " +
        "primary, and two primaries split the cluster. Run the same join on those boxes, or, if " +
        "this box is the first of a new cluster whose peers join later, run again with --bootstrap",
  );
}

/**
 * The primary the sentinels name now, as a client would resolve it, or
 * `undefined` while they cannot tell (none answers, none knows the master).
 */
export async function currentPrimary(
  options: BoxOptions,
  sentinels: readonly Endpoint[],
): Promise<Endpoint | undefined> {
  await using resolver = new SentinelResolver({
    sentinels,
    masterName: options.masterName,
    ...sentinelAuth(options),
    perSentinelTimeoutMs: 1000,
  });
  try {
    return (await resolver.resolve({ signal: options.signal })).primary;
  } catch (error) {
    if (error instanceof NoSentinelReachableError && error.permanent) throw error;
    if (error instanceof MasterUnknownError || error instanceof NoSentinelReachableError) {
      return undefined;
    }
    throw error;
  }
}
