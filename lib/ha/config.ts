/**
 * The `MN_REDIS_*` configuration: the only code that reads the environment.
 *
 * Every setting has an environment variable, a CLI flag and a `Config` field
 * that derive from each other: `MN_REDIS_WAIT_TIMEOUT_MS` ↔
 * `--wait-timeout-ms` ↔ `waitTimeoutMs`.
 *
 * @module
 */

import { quoteValue } from "../common/quote.ts";
import { ConfigError, type ConfigIssue } from "../common/errors.ts";
import { type Endpoint, formatEndpoint, parseEndpoint } from "../protocol/endpoint.ts";
import { MAX_DB, parseRedisUrl, type RedisUrl } from "../protocol/redis_url.ts";
import { Secret } from "../common/secret.ts";

/** How MirrorNeuron finds its Redis primary. */
export type HaMode = "single" | "sentinel";

/**
 * Where reads go (`MN_REDIS_READ_FROM`): `primary` (every read on the
 * primary), `replica-preferred` (a replica that proves it is recent enough,
 * else the primary) or `replica` (only such a replica, else a typed error).
 * Writes, leases and fenced operations always go to the primary.
 */
export type ReadFrom = "primary" | "replica-preferred" | "replica";

/** Every {@link ReadFrom} value, in documentation order. */
export const READ_FROM_VALUES: readonly ReadFrom[] = ["primary", "replica-preferred", "replica"];

/** The validated, fully typed configuration. Frozen. */
export interface Config {
  /** `MN_REDIS_HA_MODE`: `single` (one endpoint) or `sentinel`. */
  readonly haMode: HaMode;
  /** `MN_REDIS_URL`: in single mode the endpoint; in both modes the scheme (TLS or not). */
  readonly url: Endpoint;
  /** True when `MN_REDIS_URL` uses `rediss://`: data nodes are reached over TLS. */
  readonly tls: boolean;
  /** `MN_REDIS_SENTINELS`: sentinel seed list (kept forever, extended by discovery). */
  readonly sentinels: readonly Endpoint[];
  /** `MN_REDIS_SENTINEL_MASTER`: the master name the sentinels monitor. */
  readonly sentinelMaster: string | undefined;
  /** `MN_REDIS_SENTINEL_TLS`: reach sentinels over TLS. */
  readonly sentinelTls: boolean;
  /** `MN_REDIS_DB`: logical database (overrides the URL path). */
  readonly db: number;
  /** `MN_REDIS_USERNAME`: ACL user for data nodes (overrides the URL). */
  readonly username: string | undefined;
  /** `MN_REDIS_PASSWORD`: password for data nodes (overrides the URL). */
  readonly password: Secret | undefined;
  /** `MN_REDIS_SENTINEL_USERNAME`: ACL user for sentinels. */
  readonly sentinelUsername: string | undefined;
  /** `MN_REDIS_SENTINEL_PASSWORD`: password for sentinels. */
  readonly sentinelPassword: Secret | undefined;
  /** `MN_REDIS_WAIT_REPLICAS`: replicas a durable write waits for; 0 turns WAIT off. */
  readonly waitReplicas: number;
  /** `MN_REDIS_WAIT_TIMEOUT_MS`: WAIT timeout. */
  readonly waitTimeoutMs: number;
  /** `MN_REDIS_RECONNECT_ATTEMPTS`: attempts for reconnectable failures. */
  readonly reconnectAttempts: number;
  /** `MN_REDIS_RECONNECT_BACKOFF_MS`: first backoff delay. */
  readonly reconnectBackoffMs: number;
  /** `MN_REDIS_RECONNECT_MAX_BACKOFF_MS`: backoff cap. */
  readonly reconnectMaxBackoffMs: number;
  /** `MN_REDIS_NAMESPACE`: key prefix; keep it unique for tests. */
  readonly namespace: string;
  /** `MN_REDIS_READ_FROM`: where reads go (see {@link ReadFrom}). */
  readonly readFrom: ReadFrom;
  /** `MN_REDIS_READ_MAX_LAG_MS`: how much older than the primary a replica read may be. */
  readonly readMaxLagMs: number;
}

/**
 * The settings as a library caller passes them, instead of the environment:
 * typed values (a mode from {@link HaMode}, numbers, booleans), checked again
 * at run time with the same rules and messages as the environment.
 */
export interface ConfigOptions {
  /**
   * How the primary is found (`MN_REDIS_HA_MODE`).
   * @default {"single"}
   */
  haMode?: HaMode | undefined;
  /**
   * Single-mode endpoint and URL scheme (`MN_REDIS_URL`).
   * @default {"redis://127.0.0.1:6379"}
   */
  url?: string | undefined;
  /** Sentinel endpoints, as a list or a comma-separated string. */
  sentinels?: readonly string[] | string | undefined;
  /** Master name the sentinels monitor. */
  sentinelMaster?: string | undefined;
  /**
   * Reach sentinels over TLS (`MN_REDIS_SENTINEL_TLS`).
   * @default {false}
   */
  sentinelTls?: boolean | undefined;
  /**
   * Logical database (`MN_REDIS_DB`).
   * @default {0}
   */
  db?: number | undefined;
  /** ACL user for data nodes. */
  username?: string | undefined;
  /** Password for data nodes. */
  password?: string | Secret | undefined;
  /** ACL user for sentinels. */
  sentinelUsername?: string | undefined;
  /** Password for sentinels. */
  sentinelPassword?: string | Secret | undefined;
  /**
   * Replicas a durable write waits for; 0 is off (`MN_REDIS_WAIT_REPLICAS`).
   * @default {0}
   */
  waitReplicas?: number | undefined;
  /**
   * WAIT timeout (`MN_REDIS_WAIT_TIMEOUT_MS`).
   * @default {100}
   */
  waitTimeoutMs?: number | undefined;
  /**
   * Attempts for reconnectable failures (`MN_REDIS_RECONNECT_ATTEMPTS`).
   * @default {10}
   */
  reconnectAttempts?: number | undefined;
  /**
   * First backoff delay (`MN_REDIS_RECONNECT_BACKOFF_MS`).
   * @default {250}
   */
  reconnectBackoffMs?: number | undefined;
  /**
   * Backoff cap (`MN_REDIS_RECONNECT_MAX_BACKOFF_MS`).
   * @default {2000}
   */
  reconnectMaxBackoffMs?: number | undefined;
  /**
   * Key prefix (`MN_REDIS_NAMESPACE`).
   * @default {"mirror_neuron"}
   */
  namespace?: string | undefined;
  /**
   * Where reads go (`MN_REDIS_READ_FROM`).
   * @default {"primary"}
   */
  readFrom?: ReadFrom | undefined;
  /**
   * How much older than the primary a replica read may be, ms (`MN_REDIS_READ_MAX_LAG_MS`).
   * @default {500}
   */
  readMaxLagMs?: number | undefined;
}

/** Every configuration variable, in documentation order. */
export const CONFIG_VARIABLES: readonly string[] = [
  "MN_REDIS_HA_MODE",
  "MN_REDIS_URL",
  "MN_REDIS_SENTINELS",
  "MN_REDIS_SENTINEL_MASTER",
  "MN_REDIS_SENTINEL_TLS",
  "MN_REDIS_DB",
  "MN_REDIS_USERNAME",
  "MN_REDIS_PASSWORD",
  "MN_REDIS_SENTINEL_USERNAME",
  "MN_REDIS_SENTINEL_PASSWORD",
  "MN_REDIS_WAIT_REPLICAS",
  "MN_REDIS_WAIT_TIMEOUT_MS",
  "MN_REDIS_RECONNECT_ATTEMPTS",
  "MN_REDIS_RECONNECT_BACKOFF_MS",
  "MN_REDIS_RECONNECT_MAX_BACKOFF_MS",
  "MN_REDIS_NAMESPACE",
  "MN_REDIS_READ_FROM",
  "MN_REDIS_READ_MAX_LAG_MS",
];

/** The shape of {@link DEFAULTS}. */
export interface Defaults {
  /** Default `MN_REDIS_HA_MODE`. */
  haMode: HaMode;
  /** Default `MN_REDIS_URL`. */
  url: string;
  /** Default `MN_REDIS_DB`. */
  db: number;
  /** Default `MN_REDIS_WAIT_REPLICAS`. */
  waitReplicas: number;
  /** Default `MN_REDIS_WAIT_TIMEOUT_MS`. */
  waitTimeoutMs: number;
  /** Default `MN_REDIS_RECONNECT_ATTEMPTS`. */
  reconnectAttempts: number;
  /** Default `MN_REDIS_RECONNECT_BACKOFF_MS`. */
  reconnectBackoffMs: number;
  /** Default `MN_REDIS_RECONNECT_MAX_BACKOFF_MS`. */
  reconnectMaxBackoffMs: number;
  /** Default `MN_REDIS_NAMESPACE`. */
  namespace: string;
  /** Default `MN_REDIS_READ_FROM`. */
  readFrom: ReadFrom;
  /** Default `MN_REDIS_READ_MAX_LAG_MS`. */
  readMaxLagMs: number;
}

/** Defaults, each with the reason it was chosen. */
export const DEFAULTS: Readonly<Defaults> = Object.freeze({
  haMode: "single", // a development box has one local Redis
  url: "redis://127.0.0.1:6379", // Redis' own default port, loopback only
  db: 0, // Redis' default database
  waitReplicas: 0, // WAIT adds latency; the user's doc makes it opt-in
  waitTimeoutMs: 100, // the user's documented example value
  reconnectAttempts: 10, // with the backoffs below, ~15 s: longer than a Sentinel failover
  reconnectBackoffMs: 250, // first retry soon: a promotion often completes within a second
  reconnectMaxBackoffMs: 2000, // keeps retrying at least every 2 s during a long failover
  namespace: "mirror_neuron", // MirrorNeuron's key prefix
  readFrom: "primary", // unchanged behaviour: replica reads are opt-in
  readMaxLagMs: 500, // half a heartbeat interval: a node read from a replica never looks down
});

/** Largest `MN_REDIS_READ_MAX_LAG_MS`: an hour. */
const MAX_READ_LAG_MS = 3_600_000;

// No ":": it separates the namespace from the key schema, so "X:node" could otherwise reach X's keys.
const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const MASTER_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const SECRET_VARIABLES = new Set(["MN_REDIS_PASSWORD", "MN_REDIS_SENTINEL_PASSWORD"]);

/** Converts `MN_REDIS_WAIT_TIMEOUT_MS` to `waitTimeoutMs`. */
export function fieldForVariable(variable: string): string {
  return variable.replace(/^MN_REDIS_/, "").toLowerCase().replace(
    /_([a-z])/g,
    (_, c: string) => c.toUpperCase(),
  );
}

/** Converts `MN_REDIS_WAIT_TIMEOUT_MS` to `--wait-timeout-ms`. */
export function flagForVariable(variable: string): string {
  return "--" + variable.replace(/^MN_REDIS_/, "").toLowerCase().replaceAll("_", "-");
}

/**
 * Parses the configuration from an environment lookup. Checks every variable,
 * then throws one {@link ConfigError} listing each problem.
 *
 * @example
 * ```ts
 * import { parseConfig } from "@mirror-neuron/redis-ha";
 * const config = parseConfig((name) => Deno.env.get(name));
 * console.log(config.haMode);
 * ```
 */
export function parseConfig(getEnv: (name: string) => string | undefined): Config {
  return buildConfig(getEnv, (variable) => variable);
}

/**
 * Builds the configuration from an options object, with the same checks and
 * defaults as {@link parseConfig}. Problems name the option field.
 */
export function configFromOptions(options: ConfigOptions): Config {
  const values = new Map<string, string | Secret>();
  for (const variable of CONFIG_VARIABLES) {
    const value = (options as Record<string, unknown>)[fieldForVariable(variable)];
    if (value === undefined) continue;
    if (value instanceof Secret) values.set(variable, value);
    else if (Array.isArray(value)) values.set(variable, value.join(","));
    else values.set(variable, String(value));
  }
  const getEnv = (name: string): string | undefined => {
    const v = values.get(name);
    return v instanceof Secret ? v.reveal() : v;
  };
  return buildConfig(getEnv, (variable) => `${fieldForVariable(variable)} (${variable})`);
}

/** Reads variables, collecting every problem (each named by its label) instead of stopping. */
class VariableReader {
  readonly issues: ConfigIssue[] = [];
  readonly #getEnv: (name: string) => string | undefined;
  readonly #label: (variable: string) => string;

  constructor(getEnv: (name: string) => string | undefined, label: (variable: string) => string) {
    this.#getEnv = getEnv;
    this.#label = label;
  }

  /** Notes a problem with `variable`. */
  fail(variable: string, message: string): void {
    this.issues.push({ variable: this.#label(variable), message });
  }

  /** The trimmed value, undefined when unset or blank. */
  get(variable: string): string | undefined {
    const value = this.#getEnv(variable);
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  /** A secret as given (not trimmed), undefined when unset or empty. */
  secret(variable: string): Secret | undefined {
    const value = this.#getEnv(variable);
    return value === undefined || value === "" ? undefined : new Secret(value);
  }

  /** A whole number in `min`-`max`, or `fallback` (with a problem noted when it is malformed). */
  integer(variable: string, fallback: number, min: number, max: number): number {
    const raw = this.get(variable);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw)) {
      const shown = SECRET_VARIABLES.has(variable) ? "***" : quoteValue(raw);
      this.fail(variable, `${shown} is not a whole number; expected ${min}-${max}`);
      return fallback;
    }
    const n = Number(raw);
    if (n < min || n > max) {
      this.fail(variable, `${n} is out of range; expected ${min}-${max}`);
      return fallback;
    }
    return n;
  }

  /** `true`/`false` (also 1/0, yes/no, on/off); false when unset. */
  boolean(variable: string): boolean {
    const raw = this.get(variable);
    if (raw === undefined) return false;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    this.fail(variable, `${quoteValue(raw)} is not a boolean; expected true or false`);
    return false;
  }
}

function buildConfig(
  getEnv: (name: string) => string | undefined,
  label: (variable: string) => string,
): Config {
  const read = new VariableReader(getEnv, label);
  const haMode = readMode(read);
  const url = readUrl(read);
  const { sentinels, sentinelMaster } = readSentinels(read, haMode);
  const sentinelTls = read.boolean("MN_REDIS_SENTINEL_TLS");
  // Any database index the server may have (its `databases` setting): SELECT checks it on connect.
  const db = read.get("MN_REDIS_DB") === undefined
    ? url.db
    : read.integer("MN_REDIS_DB", 0, 0, MAX_DB);
  const waitReplicas = read.integer("MN_REDIS_WAIT_REPLICAS", DEFAULTS.waitReplicas, 0, 64);
  const waitTimeoutMs = read.integer(
    "MN_REDIS_WAIT_TIMEOUT_MS",
    DEFAULTS.waitTimeoutMs,
    1,
    600_000,
  );
  const reconnect = readReconnect(read);
  const namespace = readNamespace(read);
  const readFrom = readReadFrom(read);
  const readMaxLagMs = read.integer(
    "MN_REDIS_READ_MAX_LAG_MS",
    DEFAULTS.readMaxLagMs,
    0,
    MAX_READ_LAG_MS,
  );
  if (read.issues.length > 0) throw new ConfigError(read.issues);
  return Object.freeze({
    haMode,
    url: Object.freeze({ host: url.host, port: url.port }),
    tls: url.tls,
    sentinels: Object.freeze(sentinels),
    sentinelMaster,
    sentinelTls,
    db,
    username: read.get("MN_REDIS_USERNAME") ?? url.username,
    password: read.secret("MN_REDIS_PASSWORD") ?? url.password,
    sentinelUsername: read.get("MN_REDIS_SENTINEL_USERNAME"),
    sentinelPassword: read.secret("MN_REDIS_SENTINEL_PASSWORD"),
    waitReplicas,
    waitTimeoutMs,
    ...reconnect,
    namespace,
    readFrom,
    readMaxLagMs,
  });
}

/** `MN_REDIS_READ_FROM`. */
function readReadFrom(read: VariableReader): ReadFrom {
  const raw = read.get("MN_REDIS_READ_FROM") ?? DEFAULTS.readFrom;
  if ((READ_FROM_VALUES as readonly string[]).includes(raw)) return raw as ReadFrom;
  read.fail(
    "MN_REDIS_READ_FROM",
    `unknown read policy ${quoteValue(raw)}; expected ${READ_FROM_VALUES.join(", ")}`,
  );
  return DEFAULTS.readFrom;
}

/** `MN_REDIS_HA_MODE`. */
function readMode(read: VariableReader): HaMode {
  const raw = read.get("MN_REDIS_HA_MODE") ?? DEFAULTS.haMode;
  if (raw === "single" || raw === "sentinel") return raw;
  read.fail("MN_REDIS_HA_MODE", `unknown mode ${quoteValue(raw)}; expected single or sentinel`);
  return DEFAULTS.haMode;
}

/** `MN_REDIS_URL` (the default's parts when it is malformed, with the problem noted). */
function readUrl(read: VariableReader): RedisUrl {
  const parsed = parseRedisUrl(read.get("MN_REDIS_URL") ?? DEFAULTS.url);
  if (typeof parsed !== "string") return parsed;
  read.fail("MN_REDIS_URL", parsed);
  return parseRedisUrl(DEFAULTS.url) as RedisUrl;
}

/** `MN_REDIS_SENTINELS` and `MN_REDIS_SENTINEL_MASTER`, both required in sentinel mode. */
function readSentinels(
  read: VariableReader,
  haMode: HaMode,
): { sentinels: Endpoint[]; sentinelMaster: string | undefined } {
  const sentinels: Endpoint[] = [];
  const raw = read.get("MN_REDIS_SENTINELS");
  for (const entry of raw?.split(",") ?? []) {
    const parsed = parseEndpoint(entry);
    if (typeof parsed === "string") read.fail("MN_REDIS_SENTINELS", parsed);
    else if (!sentinels.some((s) => formatEndpoint(s) === formatEndpoint(parsed))) {
      sentinels.push(parsed);
    }
  }
  const sentinelMaster = read.get("MN_REDIS_SENTINEL_MASTER");
  if (sentinelMaster !== undefined && !MASTER_NAME_PATTERN.test(sentinelMaster)) {
    read.fail(
      "MN_REDIS_SENTINEL_MASTER",
      `${
        quoteValue(sentinelMaster)
      } is not a valid master name; expected 1-64 of A-Z a-z 0-9 _ . -`,
    );
  }
  if (haMode === "sentinel" && raw === undefined) {
    read.fail(
      "MN_REDIS_SENTINELS",
      "required in sentinel mode; expected a comma list of host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379",
    );
  }
  if (haMode === "sentinel" && sentinelMaster === undefined) {
    read.fail(
      "MN_REDIS_SENTINEL_MASTER",
      "required in sentinel mode; expected the master name the sentinels monitor, e.g. mirror-neuron",
    );
  }
  return { sentinels, sentinelMaster };
}

/** The `MN_REDIS_RECONNECT_*` policy; the cap may not be below the first backoff. */
function readReconnect(read: VariableReader): {
  reconnectAttempts: number;
  reconnectBackoffMs: number;
  reconnectMaxBackoffMs: number;
} {
  const reconnectAttempts = read.integer(
    "MN_REDIS_RECONNECT_ATTEMPTS",
    DEFAULTS.reconnectAttempts,
    1,
    10_000,
  );
  const reconnectBackoffMs = read.integer(
    "MN_REDIS_RECONNECT_BACKOFF_MS",
    DEFAULTS.reconnectBackoffMs,
    1,
    600_000,
  );
  const reconnectMaxBackoffMs = read.integer(
    "MN_REDIS_RECONNECT_MAX_BACKOFF_MS",
    DEFAULTS.reconnectMaxBackoffMs,
    1,
    600_000,
  );
  if (reconnectMaxBackoffMs < reconnectBackoffMs) {
    read.fail(
      "MN_REDIS_RECONNECT_MAX_BACKOFF_MS",
      `${reconnectMaxBackoffMs} is below MN_REDIS_RECONNECT_BACKOFF_MS (${reconnectBackoffMs}); ` +
        "expected a cap at least as large as the first backoff",
    );
  }
  return { reconnectAttempts, reconnectBackoffMs, reconnectMaxBackoffMs };
}

/** `MN_REDIS_NAMESPACE`: no `:`, so one namespace's keys can never be another's. */
function readNamespace(read: VariableReader): string {
  const namespace = read.get("MN_REDIS_NAMESPACE") ?? DEFAULTS.namespace;
  if (!NAMESPACE_PATTERN.test(namespace)) {
    read.fail(
      "MN_REDIS_NAMESPACE",
      `${quoteValue(namespace)} is not a valid namespace; expected 1-64 of A-Z a-z 0-9 _ . -` +
        (namespace.includes(":")
          ? ` (no ":", which separates the namespace from its keys: "${
            namespace.replaceAll(":", "_")
          }" would do)`
          : ""),
    );
  }
  return namespace;
}

/** The options that rebuild `config` with {@link configFromOptions} (to change a few fields). */
export function configToOptions(config: Config): ConfigOptions {
  return {
    haMode: config.haMode,
    url: `${config.tls ? "rediss" : "redis"}://${formatEndpoint(config.url)}`,
    sentinels: config.sentinels.map(formatEndpoint),
    sentinelMaster: config.sentinelMaster,
    sentinelTls: config.sentinelTls,
    db: config.db,
    username: config.username,
    password: config.password,
    sentinelUsername: config.sentinelUsername,
    sentinelPassword: config.sentinelPassword,
    waitReplicas: config.waitReplicas,
    waitTimeoutMs: config.waitTimeoutMs,
    reconnectAttempts: config.reconnectAttempts,
    reconnectBackoffMs: config.reconnectBackoffMs,
    reconnectMaxBackoffMs: config.reconnectMaxBackoffMs,
    namespace: config.namespace,
    readFrom: config.readFrom,
    readMaxLagMs: config.readMaxLagMs,
  };
}
