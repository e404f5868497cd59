import type { RedisHaClient } from "./client.ts";
import type { Keys } from "./keys.ts";

/** What every state module needs: the HA client and the namespace's key schema. */
export interface StoreContext {
  /** The HA client (single authoritative write path). */
  readonly client: RedisHaClient;
  /** Key schema of the namespace. */
  readonly keys: Keys;
}

/** A fencing token presented with a write: the lease it came from and its value. */
export interface FenceToken {
  /** Lease name, e.g. `leader` or `job.42`. */
  readonly lease: string;
  /** The token the lease granted. */
  readonly token: number;
}
