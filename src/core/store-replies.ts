/**
 * Checks of what a store answered, so that a custom store with a bug (a lock call answering `null`,
 * a boolean operation answering a string) is a StoreError — 503, or the limiter's `onStoreError` —
 * instead of a TypeError deep in a guard (500). Our own stores never fail these checks.
 */
import { formatValue } from './duration.js';
import { StoreError } from './errors.js';
import type { ConsumeResult, IdempotencyBeginResult, LockAcquireResult } from './store.js';

function malformed(operation: string, value: unknown, expected: string): StoreError {
  return new StoreError(`store.${operation} answered ${formatValue(value)}; expected ${expected}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && !Number.isNaN(value);

/** A `consume`/`peek` answer: `{ allowed, index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs }` with numbers. */
export function checkConsumeResult(operation: string, value: unknown): ConsumeResult {
  if (
    isRecord(value) &&
    typeof value.allowed === 'boolean' &&
    Number.isInteger(value.index) &&
    isNumber(value.remaining) &&
    isNumber(value.resetMs) &&
    isNumber(value.retryAfterMs) &&
    isNumber(value.stamp) &&
    isNumber(value.nextQuotaMs)
  ) {
    return value as unknown as ConsumeResult;
  }
  throw malformed(operation, value, '{ allowed, index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs }');
}

export function checkLockAcquire(value: unknown): LockAcquireResult {
  if (isRecord(value) && ((value.acquired === true && isNumber(value.fence)) || (value.acquired === false && isNumber(value.retryAfterMs)))) {
    return value as unknown as LockAcquireResult;
  }
  throw malformed('acquireLock', value, '{ acquired: true, fence } or { acquired: false, retryAfterMs }');
}

export function checkIdempotencyBegin(value: unknown): IdempotencyBeginResult {
  if (isRecord(value)) {
    switch (value.state) {
      case 'acquired':
        if (isNumber(value.fence)) return value as unknown as IdempotencyBeginResult;
        break;
      case 'in-flight':
        if (isNumber(value.retryAfterMs)) return value as unknown as IdempotencyBeginResult;
        break;
      case 'mismatch':
        return value as unknown as IdempotencyBeginResult;
      case 'replay':
        if (isRecord(value.response) && isNumber(value.response.status)) return value as unknown as IdempotencyBeginResult;
        break;
    }
  }
  throw malformed('beginIdempotent', value, "{ state: 'acquired' | 'in-flight' | 'mismatch' | 'replay', ... }");
}

/** A token-checked operation's answer (extend, release, complete, abort): true or false. */
export function checkFlag(operation: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  throw malformed(operation, value, 'true or false');
}
