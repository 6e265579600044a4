/**
 * Every store call made on behalf of a request goes through `callStore`: it holds the `timeout`
 * budget whatever the Redis client is set to (offline queue, retries), and reports outages once
 * when they start and once when they end, never per request.
 */
import { ConfigError, StoreError, StoreTimeoutError, isStoreFailure } from './errors.js';
import { startDeadline } from './deadlines.js';
import { formatValue } from './duration.js';

export interface Logger {
  warn(message: string): void;
  error?(message: string): void;
}

/** What to do when the store fails: let the request through (`'open'`) or refuse it (`'closed'`). */
export type FailureMode = 'open' | 'closed';

/** A failed store call: an error reply or no answer within the budget. */
export type StoreFailure = StoreError | StoreTimeoutError;

/**
 * The `onStoreError` option of every guard: a mode, or a function of the failure and of the request
 * it happened for (the HTTP adapters pass their `req` / `ctx`; core callers pass nothing).
 */
export type OnStoreError<Req = unknown> = FailureMode | ((err: StoreFailure, req: Req) => FailureMode);

/** `onStoreError` as a mode for this failure; a handler returning anything else is a ConfigError naming the option. */
export function resolveFailureMode<Req>(onStoreError: OnStoreError<Req>, error: StoreFailure, req: Req): FailureMode {
  if (typeof onStoreError !== 'function') return onStoreError;
  const mode: unknown = onStoreError(error, req);
  if (mode !== 'open' && mode !== 'closed') throw new ConfigError(`onStoreError must return 'open' or 'closed'; got ${formatValue(mode)}`);
  return mode;
}

/**
 * Runs `operation` within `timeoutMs`. On timeout rejects with StoreTimeoutError; if the operation
 * then succeeds late, `onLate(value, context)` runs (e.g. to release a lock that nobody will use;
 * `context` spares the caller a closure per call). Any other rejection becomes a StoreError (kept
 * as is if it already is one).
 */
export function withTimeout<T, C = undefined>(operation: Promise<T>, timeoutMs: number, onLate?: (value: T, context: C) => void, context?: C): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = startDeadline(timeoutMs, () => reject(new StoreTimeoutError(timeoutMs)));
    operation.then(
      (value) => {
        if (deadline.settle()) resolve(value);
        else onLate?.(value, context as C);
      },
      (err: unknown) => {
        if (deadline.settle()) reject(toStoreError(err));
      },
    );
  });
}

export function toStoreError(err: unknown): StoreFailure {
  if (isStoreFailure(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreError(`store call failed: ${message}`, { cause: err });
}

/**
 * An outage counts as over only after this long without a failed call. A partial outage (one
 * Cluster master down while the others answer) mixes failures with successes; without this quiet
 * period every success would log "recovered" and the next failure "unavailable" again.
 */
export const OUTAGE_QUIET_MS = 1_000;

interface Outage {
  readonly since: number;
  lastFailure: number;
  failures: number;
  /** The first success after the last failure: when the store came back, if it stays back. */
  backSince: number | undefined;
}

/** Per store, whether it is currently failing, so an outage is logged once per process. */
const outages = new WeakMap<object, Outage>();

/**
 * Records a failed call; logs when this starts an outage. One store may serve guards with different
 * policies (limiters fail open, locks closed by default), so the log names no single action.
 */
export function reportStoreFailure(store: object, err: StoreFailure, logger: Logger): void {
  const now = Date.now();
  const outage = outages.get(store);
  if (outage) {
    outage.failures++;
    outage.lastFailure = now;
    outage.backSince = undefined;
    return;
  }
  outages.set(store, { since: now, lastFailure: now, failures: 1, backSince: undefined });
  logger.warn(
    `[ratelock] store unavailable (${err.code}: ${err.message}); a guard whose store call fails follows its onStoreError (rate limits let requests through by default, locks and idempotency refuse with 503) until calls succeed again`,
  );
}

/**
 * Records a successful call; logs the end of an outage once no call failed for OUTAGE_QUIET_MS,
 * giving its length up to the first success that lasted (not up to the log, a quiet period later).
 */
export function reportStoreSuccess(store: object, logger: Logger): void {
  const outage = outages.get(store);
  if (!outage) return;
  const now = Date.now();
  outage.backSince ??= now;
  if (now - outage.lastFailure < OUTAGE_QUIET_MS) return;
  outages.delete(store);
  logger.warn(`[ratelock] store recovered after ${outage.backSince - outage.since} ms (${outage.failures} failed calls)`);
}

/** Runs one store call within the budget, keeping the outage log up to date. */
export async function callStore<T>(
  store: object,
  operation: () => Promise<T>,
  options: { timeoutMs: number; logger: Logger; onLate?: (value: T) => void },
): Promise<T> {
  try {
    const value = await withTimeout(operation(), options.timeoutMs, options.onLate);
    reportStoreSuccess(store, options.logger);
    return value;
  } catch (err) {
    const failure = toStoreError(err);
    reportStoreFailure(store, failure, options.logger);
    throw failure;
  }
}
