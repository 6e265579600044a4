/**
 * Checks of the arguments a store receives, shared by MemoryStore and RedisStore so both reject
 * the same calls with the same messages. Core validates user input before it calls a store, but
 * the Store interface is public too: these catch a caller bug (NaN, a fraction, a negative cost
 * that would act as a refund, or LREM's "0 = remove all") before it can corrupt a log. The
 * common case costs a few comparisons; the messages, naming the argument, are built only when a
 * check fails.
 */
import { ConfigError } from '../core/errors.js';
import { formatValue } from '../core/duration.js';
import type { IdempotencyRun, StoreLimit, StoredResponse } from '../core/store.js';

/** An integer from 1 to Number.MAX_SAFE_INTEGER (false for non-numbers). */
function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/** consume / peek / refund: throws unless `cost` is an integer ≥ 1 and `limits` a non-empty list of well-formed limits (own `cost` absent or ≥ 1). */
export function checkCall(limits: readonly StoreLimit[], cost: number): void {
  if (isCount(cost) && Array.isArray(limits) && limits.length > 0) {
    let i = 0;
    let quotas = 0;
    for (; i < limits.length; i++) {
      const item = limits[i];
      if (typeof item?.key !== 'string' || !isCount(item.windowMs) || !isCount(item.limit)) break;
      if (item.cost !== undefined && !isCount(item.cost)) break;
      if (item.algorithm !== undefined && !hasValidShape(item)) break;
      if (item.algorithm !== 'penalty-box') quotas++;
    }
    if (i === limits.length && quotas > 0) return;
  }
  checkInteger('cost', cost, 1);
  rejectBadLimit(limits);
}

/** `algorithm` is known, and a GCRA limit's `burst` (if any) and a box's `blockMs` are counts. */
function hasValidShape(item: StoreLimit): boolean {
  switch (item.algorithm) {
    case 'sliding-log':
      return true;
    case 'gcra':
      return item.burst === undefined || isCount(item.burst);
    case 'penalty-box':
      return isCount(item.blockMs);
    default:
      return false;
  }
}

/** Throws a ConfigError naming the first bad field of `limits`. */
function rejectBadLimit(limits: readonly StoreLimit[]): void {
  if (!Array.isArray(limits) || limits.length === 0) {
    throw new ConfigError(`limits must be a non-empty array of { key, windowMs, limit }; got ${formatValue(limits)}`);
  }
  for (let i = 0; i < limits.length; i++) {
    const item = limits[i];
    if (typeof item?.key !== 'string') throw new ConfigError(`limits[${i}].key must be a string; got ${formatValue(item?.key)}`);
    checkInteger(`limits[${i}].windowMs`, item.windowMs, 1);
    checkInteger(`limits[${i}].limit`, item.limit, 1);
    if (item.cost !== undefined) checkInteger(`limits[${i}].cost`, item.cost, 1);
    if (item.algorithm !== undefined && !['sliding-log', 'gcra', 'penalty-box'].includes(item.algorithm)) {
      throw new ConfigError(`limits[${i}].algorithm must be 'sliding-log', 'gcra' or 'penalty-box'; got ${formatValue(item.algorithm)}`);
    }
    if (item.algorithm === 'gcra' && item.burst !== undefined) checkInteger(`limits[${i}].burst`, item.burst, 1);
    if (item.algorithm === 'penalty-box') checkInteger(`limits[${i}].blockMs`, item.blockMs, 1);
  }
  throw new ConfigError(`limits must include a quota (a limit that is not a penalty box); got ${formatValue(limits)}`);
}

/** Throws unless `value` is an integer from `min` to Number.MAX_SAFE_INTEGER. */
export function checkInteger(name: string, value: unknown, min: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}; got ${formatValue(value)}`);
  }
}

export function checkToken(token: unknown): void {
  if (typeof token !== 'string' || token.length === 0) {
    throw new ConfigError(`token must be a non-empty string; got ${formatValue(token)}`);
  }
}

/** A response to store: integer status, headers of strings (or lists of strings), a binary body or null. */
export function checkResponse(response: StoredResponse): void {
  if (!Number.isInteger(response?.status)) {
    throw new ConfigError(`response.status must be an integer; got ${formatValue(response?.status)}`);
  }
  const { headers, body } = response;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new ConfigError(`response.headers must be an object of header values; got ${formatValue(headers)}`);
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
      throw new ConfigError(`response.headers[${JSON.stringify(name)}] must be a string or an array of strings; got ${formatValue(value)}`);
    }
  }
  if (body !== null && !(body instanceof Uint8Array)) {
    throw new ConfigError(`response.body must be a Buffer or null; got ${formatValue(body)}`);
  }
}

/** completeIdempotent's `run`, when given: a fence (integer ≥ 1) and a fingerprint string. */
export function checkRun(run: IdempotencyRun | undefined): void {
  if (run === undefined) return;
  if (run === null || typeof run !== 'object') throw new ConfigError(`run must be an object like { fence, fingerprint }; got ${formatValue(run)}`);
  checkInteger('run.fence', run.fence, 1);
  if (typeof run.fingerprint !== 'string') throw new ConfigError(`run.fingerprint must be a string; got ${formatValue(run.fingerprint)}`);
}
