/**
 * Whether `MN_REDIS_WAIT_REPLICAS` leaves room to lose a box: a durable write
 * waits for that many replicas, so when it is at least the number of
 * replicas, losing any one of them makes every durable write fail with
 * `WaitError` until it returns.
 *
 * @module
 */

/**
 * The warning for a WAIT setting the cluster cannot lose a box under, or
 * `undefined` when it is fine (WAIT off, or fewer required than replicas
 * online). `replicas` are the primary's replicas as `INFO replication` lists
 * them; those whose state is `online` count.
 */
export function waitBudgetWarning(
  waitReplicas: number,
  listed: readonly { readonly state: string }[],
): string | undefined {
  const replicas = listed.filter((r) => r.state === "online").length;
  if (waitReplicas === 0 || waitReplicas < replicas) return undefined;
  const fix = replicas === 0
    ? "add a replica or set MN_REDIS_WAIT_REPLICAS=0"
    : `set MN_REDIS_WAIT_REPLICAS=${replicas - 1}${
      replicas === 1 ? " (WAIT off: a failover may lose the last writes)" : ""
    } or add a box`;
  return `MN_REDIS_WAIT_REPLICAS is ${waitReplicas} and the primary has ${replicas} replica(s) ` +
    `online: ${
      waitReplicas > replicas
        ? "every durable write fails now"
        : "losing one box stops every durable write"
    } (WaitError); ${fix}`;
}
