/**
 * Every store call made on behalf of a request goes through `callStore`: it holds the `timeout`
 * budget whatever the Redis client is set to (offline queue, retries), and reports outages once
 * when they start and once when they end, never per request.
 */
import { StoreError, StoreTimeoutError, isStoreFailure } from './errors.js';
import type { Store } from './store.js';

export interface Logger {
  warn(message: string): void;
  error?(message: string): void;
}

/** What to do when the store fails: let the request through (`'open'`) or refuse it (`'closed'`). */
export type FailureMode = 'open' | 'closed';

/**
 * Runs `operation` within `timeoutMs`. On timeout rejects with StoreTimeoutError; if the operation
 * then succeeds late, `onLate(value)` runs (e.g. to release a lock that nobody will use).
 * Any other rejection becomes a StoreError (kept as is if it already is one).
 */
export function withTimeout<T>(operation: Promise<T>, timeoutMs: number, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new StoreTimeoutError(timeoutMs));
    }, timeoutMs);
    timer.unref?.();
    operation.then(
      (value) => {
        clearTimeout(timer);
        if (timedOut) onLate?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(toStoreError(err));
      },
    );
  });
}

export function toStoreError(err: unknown): StoreError | StoreTimeoutError {
  if (isStoreFailure(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreError(`store call failed: ${message}`, { cause: err });
}

/** Per store, whether it is currently failing, so an outage is logged once per process. */
const outages = new WeakMap<Store, { since: number; failures: number }>();

/** Records a failed call; logs when this starts an outage. */
export function reportStoreFailure(store: Store, err: StoreError | StoreTimeoutError, logger: Logger, failureMode: FailureMode): void {
  const outage = outages.get(store);
  if (outage) {
    outage.failures++;
    return;
  }
  outages.set(store, { since: Date.now(), failures: 1 });
  const action = failureMode === 'open' ? 'letting requests through (fail-open)' : 'refusing requests (fail-closed)';
  logger.warn(`[ratelock] store unavailable (${err.code}: ${err.message}); ${action} until it recovers`);
}

/** Records a successful call; logs when this ends an outage. */
export function reportStoreSuccess(store: Store, logger: Logger): void {
  const outage = outages.get(store);
  if (!outage) return;
  outages.delete(store);
  logger.warn(`[ratelock] store recovered after ${Date.now() - outage.since} ms (${outage.failures} failed calls)`);
}

/** Runs one store call within the budget, keeping the outage log up to date. */
export async function callStore<T>(
  store: Store,
  operation: () => Promise<T>,
  options: { timeoutMs: number; logger: Logger; failureMode: FailureMode; onLate?: (value: T) => void },
): Promise<T> {
  try {
    const value = await withTimeout(operation(), options.timeoutMs, options.onLate);
    reportStoreSuccess(store, options.logger);
    return value;
  } catch (err) {
    const failure = toStoreError(err);
    reportStoreFailure(store, failure, options.logger, options.failureMode);
    throw failure;
  }
}
