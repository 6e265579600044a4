/**
 * Option checks shared by every part of ratelock (RateLimiter, the HTTP adapters, key extractors,
 * and the lock guards may use them too), plus the two small helpers option callbacks need
 * (`Awaitable`, `isThenable`). Each check returns the value or throws a ConfigError that names
 * the option, what was expected and what was received.
 */
import { ConfigError } from './errors.js';
import { formatValue } from './duration.js';
import type { Logger, OnStoreError } from './store-call.js';
import type { RateLimitStore } from './store.js';

/** What an option callback may return: a value, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** `true` for promises and other thenables: how a callback's answer is told to be asynchronous. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Option names of the libraries our users come from (express-rate-limit, rate-limiter-flexible,
 * koa-ratelimit, redlock) → what to write here instead, so a migrated config gets a pointed answer.
 */
const PEER_OPTION_HINTS: Readonly<Record<string, string>> = {
  max: 'use "limit" (express-rate-limit\'s max)',
  windowMs: 'use "window" (ms or a string like \'15m\')',
  points: 'use "limit" (rate-limiter-flexible\'s points)',
  duration: 'use "window" (rate-limiter-flexible\'s duration is in seconds; window takes ms or a string like \'60s\')',
  keyGenerator: 'use "key" with an extractor (req) => string, or keys.ip() / keys.header(name) / keys.user(fn)',
  id: 'use "key" with an extractor (ctx) => string (koa-ratelimit\'s id)',
  keyPrefix: 'use "prefix"',
  storeClient: 'use "store: new RedisStore({ client })"',
  db: 'use "store: new RedisStore({ client })" (koa-ratelimit\'s db)',
  driver: 'use "store: new RedisStore({ client })" or new MemoryStore()',
  standardHeaders: 'use "headers" (\'draft-8\', \'draft-7\', \'draft-6\', \'legacy\' or false)',
  legacyHeaders: 'use "headers: \'legacy\'" for X-RateLimit-* headers',
  skipSuccessfulRequests: 'use "refund: \'success\'"',
  skipFailedRequests: 'use "refund: \'failure\'"',
  handler: 'use "onLimited" (or "message" for the body)',
  errorMessage: 'use "message"',
  whitelist: 'use "skip: (req) => boolean"',
  allowlist: 'use "skip: (req) => boolean"',
  retryCount: 'use "wait" (ms a contender waits for the lock)',
  retryDelay: 'use "wait" (ms a contender waits for the lock)',
};

/** The names an options object may carry, as a Record over its keys: the compiler keeps the list complete (express-rate-limit's KeysEnum trick). */
export type OptionNames<Options> = Readonly<Record<keyof Options, true>>;

/**
 * THE option reader of every public constructor and factory: `options` must be a plain object
 * (else a ConfigError showing `example`), every name must be one of `allowed` (else a ConfigError
 * listing them, with a pointed hint for a peer library's name such as `max`), and the result is a
 * copy without its `undefined` entries, so an option set to `undefined` counts as absent. `owner`
 * names the caller in errors (`'rateLimit()'`, or a list item such as `'routes[2]'`, whose names
 * are `'fields'`).
 */
export function readOptions(
  options: unknown,
  allowed: readonly string[],
  owner: string,
  example: string,
  names: 'options' | 'fields' = 'options',
): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    const subject = names === 'options' ? `${owner} options` : owner;
    throw new ConfigError(`${subject} must be an object like ${example}; got ${formatValue(options)}`);
  }
  const defined: Record<string, unknown> = {};
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) throw unknownOptionError(name, allowed, owner, names);
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined) defined[name] = value;
  }
  return defined;
}

/** The names of an `OptionNames` record, in declaration order. */
export function optionNames<Options>(names: OptionNames<Options>): readonly string[] {
  return Object.keys(names);
}

/** The ConfigError for an unknown option `name`: a hint when it is a peer library's name, then every allowed name. */
function unknownOptionError(name: string, known: readonly string[], owner: string, names: 'options' | 'fields'): ConfigError {
  const peerHint = Object.prototype.hasOwnProperty.call(PEER_OPTION_HINTS, name) ? PEER_OPTION_HINTS[name]! : undefined;
  // Only where the option it points to exists (MemoryStore's `max` is not a quota).
  const hint = peerHint !== undefined && known.includes(/^use "([A-Za-z]+)/.exec(peerHint)?.[1] ?? '') ? `: ${peerHint}` : '';
  return new ConfigError(`${owner} has no ${names === 'options' ? 'option' : 'field'} "${name}"${hint}; allowed ${names}: ${known.join(', ')}`);
}

/** `value` if it is a function, `undefined` if absent, else a ConfigError describing the expected `shape`. */
export function optionalFunction(value: unknown, option: string, shape: string): ((...args: any[]) => unknown) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new ConfigError(`${option} must be ${shape}; got ${formatValue(value)}`);
  return value as (...args: any[]) => unknown;
}

const RATE_LIMIT_STORE_METHODS = ['consume', 'peek', 'refund', 'reset'] as const;

/** The store, if given: it must have the methods of the RateLimitStore interface. */
export function validateStore(store: unknown, option = 'store'): RateLimitStore | undefined {
  if (store === undefined) return undefined;
  const candidate = store as Record<string, unknown> | null;
  if (candidate === null || typeof candidate !== 'object' || RATE_LIMIT_STORE_METHODS.some((method) => typeof candidate[method] !== 'function')) {
    throw new ConfigError(`${option} must be a Store (e.g. new RedisStore({ client }) or new MemoryStore()); got ${formatValue(store)}`);
  }
  return store as RateLimitStore;
}

/** The logger, if given: an object with `warn(message)`. */
export function validateLogger(logger: unknown, option = 'logger'): Logger | undefined {
  if (logger === undefined) return undefined;
  if (logger === null || typeof (logger as { warn?: unknown }).warn !== 'function') {
    throw new ConfigError(`${option} must be an object with a warn(message) method (e.g. console); got ${formatValue(logger)}`);
  }
  return logger as Logger;
}

/** `onStoreError`, if given: `'open'`, `'closed'` or a function returning one of them. */
export function validateOnStoreError<Req>(value: unknown, option = 'onStoreError'): OnStoreError<Req> | undefined {
  if (value === undefined || value === 'open' || value === 'closed' || typeof value === 'function') return value as OnStoreError<Req> | undefined;
  throw new ConfigError(`${option} must be 'open', 'closed' or a function returning one of them; got ${formatValue(value)}`);
}
