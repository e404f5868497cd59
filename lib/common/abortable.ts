/** Waiting on a promise with a signal that may give up first. */

/**
 * Resolves or rejects as `promise` does, unless `signal` aborts first: then
 * rejects with the signal's reason. The promise keeps running; its late
 * failure is absorbed.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  promise.catch(() => {});
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
