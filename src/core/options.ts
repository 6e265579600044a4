/**
 * Option checks shared by every part of ratelock (RateLimiter, the HTTP adapters, key extractors,
 * and the lock guards may use them too), plus the two small helpers option callbacks need
 * (`Awaitable`, `isThenable`). Each check returns the value or throws a ConfigError that names
 * the option, what was expected and what was received.
 */
import { ConfigError } from './errors.js';
import { describe } from './duration.js';
import type { FailureMode, Logger } from './store-call.js';
import type { Store } from './store.js';

/** What an option callback may return: a value, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** `true` for promises and other thenables: how a callback's answer is told to be asynchronous. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/** Throws a ConfigError for an option name that `known` does not list. */
export function rejectUnknownOptions(options: object, known: readonly string[], owner: string): void {
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new ConfigError(`${owner} has no option "${name}"; allowed options: ${known.join(', ')}`);
    }
  }
}

/** `value` if it is a function, `undefined` if absent, else a ConfigError describing the expected `shape`. */
export function optionalFunction(value: unknown, option: string, shape: string): ((...args: any[]) => unknown) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new ConfigError(`${option} must be ${shape}; got ${describe(value)}`);
  return value as (...args: any[]) => unknown;
}

const RATE_LIMIT_STORE_METHODS = ['consume', 'peek', 'refund', 'reset'] as const;

/** The store, if given: it must have the rate-limit methods of the Store interface. */
export function validateStore(store: unknown, option = 'store'): Store | undefined {
  if (store === undefined) return undefined;
  const candidate = store as Record<string, unknown> | null;
  if (candidate === null || typeof candidate !== 'object' || RATE_LIMIT_STORE_METHODS.some((method) => typeof candidate[method] !== 'function')) {
    throw new ConfigError(`${option} must be a Store (e.g. new RedisStore({ client }) or new MemoryStore()); got ${describe(store)}`);
  }
  return store as Store;
}

/** The logger, if given: an object with `warn(message)`. */
export function validateLogger(logger: unknown, option = 'logger'): Logger | undefined {
  if (logger === undefined) return undefined;
  if (logger === null || typeof (logger as { warn?: unknown }).warn !== 'function') {
    throw new ConfigError(`${option} must be an object with a warn(message) method (e.g. console); got ${describe(logger)}`);
  }
  return logger as Logger;
}

/** `onStoreError`, if given: `'open'`, `'closed'` or a function returning one of them. */
export function validateOnStoreError<F extends (...args: any[]) => FailureMode>(value: unknown, option = 'onStoreError'): FailureMode | F | undefined {
  if (value === undefined || value === 'open' || value === 'closed' || typeof value === 'function') return value as FailureMode | F | undefined;
  throw new ConfigError(`${option} must be 'open', 'closed' or a function returning one of them; got ${describe(value)}`);
}
