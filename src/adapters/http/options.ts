/**
 * HTTP rate-limit options → one validated internal config, built ONCE at construction (never per
 * request). Framework-agnostic: `Req` is an Express `req` or a Koa `ctx`; the adapter-specific
 * hooks (`onLimited`, a `refund` predicate) are checked to be functions and passed through.
 *
 * Rules (STYLE.md §6): explicit `undefined` counts as absent, defaults come from DEFAULTS with
 * `??`, unknown option names are a ConfigError listing the allowed ones.
 */
import { ConfigError, type StoreError, type StoreTimeoutError } from '../../core/errors.js';
import { DEFAULTS } from '../../core/defaults.js';
import { formatValue, parseDuration, type Duration } from '../../core/duration.js';
import { validatePrefix } from '../../core/store-keys.js';
import { claimLogs, resolveLimits, staticPolicies, validateCost, type LimitDefinition, type ResolvedLimit } from '../../core/limits.js';
import { optionalFunction, unknownOptionError, validateLogger, validateOnStoreError, validateStore, type Awaitable } from '../../core/options.js';
import type { StoreCallOptions } from '../../core/decide.js';
import type { Decision, Policy } from '../../core/decision.js';
import type { FailureMode, Logger } from '../../core/store-call.js';
import type { Store } from '../../core/store.js';
import { compileKeySpec, keys, validateKeySpec, type KeyResolver, type KeySpec } from '../../keys.js';
import { getDefaultStore } from '../../stores/default-store.js';
import { HEADER_MODES, headerWriter, precomputeHeaderStrings, type HeaderMode, type HeaderWriter } from './headers.js';
import { resolveMessage, type MessageBuilder, type MessageOption } from './responses.js';

/** Give back a request's cost after its response: on success (status < 400), on failure, or when a predicate says so. */
export type RefundOption<Predicate> = 'success' | 'failure' | Predicate;

/**
 * Options every HTTP rate limiter accepts (`rateLimit` and `rateLimitRoutes`, Express and Koa).
 * `Req` is what callbacks receive: Express `req`, Koa `ctx`.
 */
export interface HttpLimiterOptions<Req, OnLimited, RefundPredicate> {
  /** Where the logs live. @default the process-wide MemoryStore */
  store?: Store | undefined;
  /** Only `'sliding-log'` (exact) so far. @default 'sliding-log' */
  algorithm?: 'sliding-log' | undefined;
  /** Prefix of every store key. @default DEFAULTS.prefix (`'rl:'`) */
  prefix?: string | undefined;
  /** Cost units a request takes (integer 1–10 000, see `MAX_COST`), or a function of the request. @default 1 */
  cost?: number | ((req: Req) => Awaitable<number>) | undefined;
  /** Requests for which it returns true are not limited (no store call, no headers). */
  skip?: ((req: Req) => Awaitable<boolean>) | undefined;
  /** Give back the request's cost after the response: `'success'` (status < 400), `'failure'` (≥ 400 or aborted), or a predicate. */
  refund?: RefundOption<RefundPredicate> | undefined;
  /** Response headers: `'draft-8'`, `'draft-7'`, `'draft-6'`, `'legacy'` (X-RateLimit-*), or `false`. @default DEFAULTS.headers */
  headers?: HeaderMode | false | undefined;
  /** Status of a limited response, 400–599. @default DEFAULTS.statusCode (429) */
  statusCode?: number | undefined;
  /** Body of a limited response: text, a JSON object, or a function of the request and decision. @default a problem+json `quota-exceeded` body */
  message?: MessageOption<Req> | undefined;
  /** Called on every limited request before the default response; may send its own response. */
  onLimited?: OnLimited | undefined;
  /** Called with every decision (observability); runs before the response is written. */
  onDecision?: ((req: Req, decision: Decision) => void) | undefined;
  /** On store failure or timeout: let the request through (`'open'`) or answer 503 (`'closed'`). @default 'open' */
  onStoreError?: FailureMode | ((err: StoreError | StoreTimeoutError, req: Req) => FailureMode) | undefined;
  /** ms budget of the store call (number or duration string). @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** Receives the once-per-outage, refund-failure, shared-log and proxy-setting messages. @default console */
  logger?: Logger | undefined;
}

/** `rateLimit()` options: the shared ones plus the limits and the client key. */
export interface RateLimitOptionsBase<Req, OnLimited, RefundPredicate> extends HttpLimiterOptions<Req, OnLimited, RefundPredicate> {
  /** Quota per `window`: an integer 1–1e9 (its log is named `<limit>-in-<window>`, e.g. `'100-in-1m'`) or `(req) => number` (named after the window). Use with `window`, or use `limits`. */
  limit?: number | ((req: Req) => Awaitable<number>) | undefined;
  /** Window length: ms, or a string such as `'15m'`. */
  window?: Duration | undefined;
  /** Several limits, all checked and recorded in one atomic call. */
  limits?: readonly (Omit<LimitDefinition, 'limit'> & { limit: number | ((req: Req) => Awaitable<number>) })[] | undefined;
  /** Key extractor, or a list (the first that yields a value). @default keys.ip() */
  key?: KeySpec<Req> | undefined;
}

/** `refund` after validation. */
export type RefundConfig<Predicate> = { readonly mode: 'success' | 'failure' } | { readonly mode: 'predicate'; readonly predicate: Predicate };

/** Everything `rateLimit` and `rateLimitRoutes` share, validated. */
export interface HttpLimiterConfig<Req, OnLimited, RefundPredicate> {
  /** Store call options for the hot path (built once); `callOptions.logger` is the configured logger. */
  readonly callOptions: StoreCallOptions;
  /** A `(err, req)` onStoreError: the adapter binds it to the request. */
  readonly onStoreErrorForRequest: ((err: StoreError | StoreTimeoutError, req: Req) => FailureMode) | undefined;
  readonly prefix: string;
  readonly cost: number | ((req: Req) => Awaitable<number>);
  readonly skip: ((req: Req) => Awaitable<boolean>) | undefined;
  readonly refund: RefundConfig<RefundPredicate> | undefined;
  readonly writeHeaders: HeaderWriter | undefined;
  readonly statusCode: number;
  readonly message: MessageBuilder<Req>;
  readonly onLimited: OnLimited | undefined;
  readonly onDecision: ((req: Req, decision: Decision) => void) | undefined;
}

/** `rateLimit()` config: the shared part plus one limiter's limits and key. */
export interface RateLimitConfig<Req, OnLimited, RefundPredicate> extends HttpLimiterConfig<Req, OnLimited, RefundPredicate> {
  readonly limits: readonly ResolvedLimit[];
  /** The policies when no limit is a function (built once), else `undefined`. */
  readonly policies: readonly Policy[] | undefined;
  readonly key: KeyResolver<Req>;
}

/**
 * Every option name, as a Record over the interface's keys: the compiler flags a name missing
 * from (or unknown to) the interface (express-rate-limit's KeysEnum trick).
 */
const HTTP_LIMITER_OPTIONS: Record<keyof HttpLimiterOptions<unknown, unknown, unknown>, true> = {
  store: true,
  algorithm: true,
  prefix: true,
  cost: true,
  skip: true,
  refund: true,
  headers: true,
  statusCode: true,
  message: true,
  onLimited: true,
  onDecision: true,
  onStoreError: true,
  timeout: true,
  logger: true,
};
const RATE_LIMIT_OPTIONS: Record<keyof RateLimitOptionsBase<unknown, unknown, unknown>, true> = {
  ...HTTP_LIMITER_OPTIONS,
  limit: true,
  window: true,
  limits: true,
  key: true,
};
export const HTTP_LIMITER_OPTION_NAMES: readonly string[] = Object.keys(HTTP_LIMITER_OPTIONS);
const RATE_LIMIT_OPTION_NAMES: readonly string[] = Object.keys(RATE_LIMIT_OPTIONS);

/**
 * Options as an object without its `undefined` entries, after checking every name is known.
 * `owner` names the function in errors, e.g. `'rateLimit()'`.
 */
export function definedOptions(options: unknown, allowed: readonly string[], owner: string): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigError(`${owner} options must be an object like { limit: 100, window: '1m' }; got ${formatValue(options)}`);
  }
  const defined: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!allowed.includes(name)) throw unknownOptionError(name, allowed, owner);
    defined[name] = value;
  }
  return defined;
}

/** Validates and resolves every `rateLimit()` option. Throws a ConfigError naming the first bad option. */
export function resolveRateLimitOptions<Req, OnLimited, RefundPredicate>(
  options: RateLimitOptionsBase<Req, OnLimited, RefundPredicate>,
  owner = 'rateLimit()',
): RateLimitConfig<Req, OnLimited, RefundPredicate> {
  const defined = definedOptions(options, RATE_LIMIT_OPTION_NAMES, owner);
  const shared = resolveHttpLimiterOptions<Req, OnLimited, RefundPredicate>(defined);
  const limits = resolveLimits(defined, '', { allowDynamic: true });
  const policies = staticPolicies(limits);
  if (policies !== undefined) precomputeHeaderStrings(policies);
  const { logger, store } = shared.callOptions;
  const keySpec = defined.key === undefined ? keys.ip({ logger }) : validateKeySpec(defined.key, 'key');
  const key = compileKeySpec(keySpec as KeySpec<Req>, { logger });
  claimLogs(store, shared.prefix, limits, logger);
  return { ...shared, limits, policies, key };
}

/** Validates the shared options of `defined` (already checked for unknown names). */
export function resolveHttpLimiterOptions<Req, OnLimited, RefundPredicate>(
  defined: Record<string, unknown>,
): HttpLimiterConfig<Req, OnLimited, RefundPredicate> {
  if (defined.algorithm !== undefined && defined.algorithm !== DEFAULTS.algorithm) {
    throw new ConfigError(`algorithm must be '${DEFAULTS.algorithm}' (the only algorithm so far); got ${formatValue(defined.algorithm)}`);
  }
  const onStoreError = validateOnStoreError<(err: StoreError | StoreTimeoutError, req: Req) => FailureMode>(defined.onStoreError) ?? DEFAULTS.limiterOnStoreError;
  const refund = resolveRefund<RefundPredicate>(defined.refund);
  const callOptions: StoreCallOptions = {
    store: validateStore(defined.store) ?? getDefaultStore(),
    timeoutMs: parseDuration(defined.timeout ?? DEFAULTS.timeoutMs, 'timeout'),
    logger: validateLogger(defined.logger) ?? console,
    // A `(err, req)` handler is bound to each request (see callOptionsFor); this value is only used when it is a mode.
    onStoreError: typeof onStoreError === 'function' ? DEFAULTS.limiterOnStoreError : onStoreError,
    refundable: refund !== undefined,
  };
  return {
    callOptions,
    onStoreErrorForRequest: typeof onStoreError === 'function' ? onStoreError : undefined,
    prefix: validatePrefix(defined.prefix ?? DEFAULTS.prefix, 'prefix'),
    cost: resolveCostOption<Req>(defined.cost, 'cost') ?? 1,
    skip: optionalFunction(defined.skip, 'skip', 'a function (req) => boolean') as HttpLimiterConfig<Req, OnLimited, RefundPredicate>['skip'],
    refund,
    writeHeaders: resolveHeaders(defined.headers),
    statusCode: resolveStatusCode(defined.statusCode),
    message: resolveMessage<Req>(defined.message),
    onLimited: optionalFunction(defined.onLimited, 'onLimited', 'a function') as OnLimited | undefined,
    onDecision: optionalFunction(defined.onDecision, 'onDecision', 'a function (req, decision) => void') as HttpLimiterConfig<Req, OnLimited, RefundPredicate>['onDecision'],
  };
}

/**
 * The store call options of one request: the limiter's own, or (only when `onStoreError` is a
 * `(err, req)` handler) a copy with the handler bound to `req`, used for its decision and refund.
 */
export function callOptionsFor<Req>(config: HttpLimiterConfig<Req, unknown, unknown>, req: Req): StoreCallOptions {
  const handler = config.onStoreErrorForRequest;
  return handler === undefined ? config.callOptions : { ...config.callOptions, onStoreError: (err) => handler(err, req) };
}

/** A cost option: a valid integer cost, or a function (validated per request); `undefined` when absent. */
export function resolveCostOption<Req>(value: unknown, option: string): number | ((req: Req) => Awaitable<number>) | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'function') return value as (req: Req) => Awaitable<number>;
  return validateCost(value, option);
}

function resolveRefund<Predicate>(value: unknown): RefundConfig<Predicate> | undefined {
  if (value === undefined) return undefined;
  if (value === 'success' || value === 'failure') return { mode: value };
  if (typeof value === 'function') return { mode: 'predicate', predicate: value as Predicate };
  throw new ConfigError(`refund must be 'success', 'failure' or a function returning true to give the cost back; got ${formatValue(value)}`);
}

function resolveHeaders(value: unknown): HeaderWriter | undefined {
  if (value === false) return undefined;
  const mode = value ?? DEFAULTS.headers;
  if (!(HEADER_MODES as readonly unknown[]).includes(mode)) {
    throw new ConfigError(`headers must be one of ${HEADER_MODES.map((m) => `'${m}'`).join(', ')} or false; got ${formatValue(value)}`);
  }
  return headerWriter(mode as HeaderMode);
}

function resolveStatusCode(value: unknown): number {
  const status = value ?? DEFAULTS.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new ConfigError(`statusCode must be an integer HTTP error status from 400 to 599; got ${formatValue(value)}`);
  }
  return status;
}
