/**
 * Every error ratelock throws is a RatelockError with a stable `code`, so callers can branch on
 * `err.code` instead of parsing messages. Messages name the option, what was expected and what
 * was received, so they say what to change.
 */
export type RatelockErrorCode =
  | 'ERR_RATELOCK_CONFIG'
  | 'ERR_RATELOCK_STORE'
  | 'ERR_RATELOCK_STORE_TIMEOUT'
  | 'ERR_RATELOCK_LOCK_BUSY'
  | 'ERR_RATELOCK_LEASE_LOST';

export class RatelockError extends Error {
  readonly code: RatelockErrorCode;

  constructor(code: RatelockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad options: thrown at construction (or when a per-request option callback returns a bad value). */
export class ConfigError extends RatelockError {
  constructor(message: string) {
    super('ERR_RATELOCK_CONFIG', message);
  }
}

/**
 * The store failed (Redis down, erroring, not ready). `cause` holds the client's error. `notSent`:
 * the store knows the call never reached Redis (client not connected, connection stalled), so
 * nothing it asked for happened; otherwise it may have run, its answer lost. `lasting`: the store
 * knows that trying again cannot succeed until someone changes the data (the key holds another
 * kind of state: Redis `WRONGTYPE`) or reopens the client (closed by the app), so ratelock
 * does not retry it.
 */
export class StoreError extends RatelockError {
  readonly notSent: boolean;
  readonly lasting: boolean;

  constructor(message: string, options?: { cause?: unknown; notSent?: boolean; lasting?: boolean }) {
    super('ERR_RATELOCK_STORE', message, options);
    this.notSent = options?.notSent ?? false;
    this.lasting = options?.lasting ?? false;
  }
}

/** A StoreError no retry gets past (see StoreError's `lasting`). */
export function isLastingFailure(err: unknown): boolean {
  return err instanceof StoreError && err.lasting;
}

/** A store failure that a retry may get past: any but a `lasting` StoreError. */
export function isPassingFailure(err: unknown): boolean {
  return isStoreFailure(err) && !isLastingFailure(err);
}

/** The store did not answer within the `timeout` budget. */
export class StoreTimeoutError extends RatelockError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('ERR_RATELOCK_STORE_TIMEOUT', `store call exceeded the timeout budget of ${timeoutMs} ms (option "timeout")`);
    this.timeoutMs = timeoutMs;
  }
}

/** The lock is held by someone else (after `wait` ms of polling, or at once when `wait` is 0). */
export class LockBusyError extends RatelockError {
  readonly key: string;
  /** ms until the current holder's lease expires, if not extended. */
  readonly retryAfterMs: number;

  constructor(key: string, retryAfterMs: number) {
    super('ERR_RATELOCK_LOCK_BUSY', `lock "${key}" is held by another holder (free in ≤ ${retryAfterMs} ms unless extended)`);
    this.key = key;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The lease expired and may have been taken by someone else: extend/release/complete did nothing. */
export class LeaseLostError extends RatelockError {
  readonly key: string;

  constructor(key: string, message = `lease on "${key}" was lost (expired or taken over); nothing was changed`) {
    super('ERR_RATELOCK_LEASE_LOST', message);
    this.key = key;
  }
}

/** `true` when `err` is one of ratelock's store failures (error or timeout). */
export function isStoreFailure(err: unknown): err is StoreError | StoreTimeoutError {
  return err instanceof StoreError || err instanceof StoreTimeoutError;
}
