/**
 * Checks of the arguments core passes to MemoryStore. Core validates user input first; these
 * catch a caller bug (NaN, a fraction, a negative cost that would act as a refund) before it can
 * corrupt a log, with a message naming the argument.
 */
import { ConfigError } from '../../core/errors.js';
import { describe } from '../../core/duration.js';
import type { StoreLimit } from '../../core/store.js';

export function checkLimits(limits: readonly StoreLimit[]): void {
  if (!Array.isArray(limits) || limits.length === 0) {
    throw new ConfigError(`limits must be a non-empty array of { key, windowMs, limit }; got ${describe(limits)}`);
  }
  for (let i = 0; i < limits.length; i++) {
    const item = limits[i];
    if (typeof item?.key !== 'string') throw new ConfigError(`limits[${i}].key must be a string; got ${describe(item?.key)}`);
    checkInteger(`limits[${i}].windowMs`, item.windowMs, 1);
    checkInteger(`limits[${i}].limit`, item.limit, 1);
  }
}

/** Throws unless `value` is an integer from `min` to Number.MAX_SAFE_INTEGER. */
export function checkInteger(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}; got ${describe(value)}`);
  }
}

export function checkToken(token: unknown): void {
  if (typeof token !== 'string' || token.length === 0) {
    throw new ConfigError(`token must be a non-empty string; got ${describe(token)}`);
  }
}
