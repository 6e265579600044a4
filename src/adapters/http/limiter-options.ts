/**
 * HTTP rate-limit options → ONE configured limiter (`HttpLimiter`), built at construction, never
 * per request: core's RateLimiter (store, prefix, timeout, onStoreError, logger, parsed by core's
 * one resolver), the request resolver (key, limits, cost, skip) and what HTTP adds (headers,
 * status, message, hooks, refund). Framework-agnostic: `Req` is an Express `req` or a Koa `ctx`;
 * the adapter-specific hooks (`onLimited`, a `refund` predicate) are checked to be functions and
 * passed through.
 */
import {
  ConfigError,
  DEFAULTS,
  claimLogs,
  formatValue,
  optionNames,
  optionalFunction,
  readOptions,
  requestRateLimiter,
  resolveLimiterSettings,
  resolveBlock,
  resolveLimits,
  resolveShadowMode,
  singleLimitResolver,
  staticPolicies,
  validateAlgorithm,
  validateCost,
  LIMITER_STORE_OPTIONS,
  type Algorithm,
  type Awaitable,
  type BlockOptions,
  type PenaltyBoxSettings,
  type CostOption,
  type Decision,
  type LimitDefinition,
  type LimitMode,
  type LimiterStoreOptions,
  type LimitRequestResolver,
  type OptionNames,
  type RateLimiter,
} from '../../core/index.js';
import { compileKeySpec, keys, validateKeySpec, type KeySpec } from '../../keys/index.js';
import { resolveMessage, type MessageBuilder, type MessageOption } from './answers.js';
import {
  HEADER_MODES,
  headerWriter,
  precomputeHeaderStrings,
  resolveStructuredHeaderOptions,
  type HeaderMode,
  type HeaderWriter,
  type PartitionKeyOption,
  type QuotaUnit,
} from './headers.js';

/** Give back a request's cost once its outcome is known: on success (status < 400), on failure, or when a predicate says so. */
export type RefundOption<Predicate> = 'success' | 'failure' | Predicate;

/**
 * Options every HTTP rate limiter accepts (`rateLimit` and `rateLimitRoutes`, Express and Koa).
 * `Req` is what callbacks receive: Express `req`, Koa `ctx`.
 */
export interface HttpLimiterOptions<Req, OnLimited, RefundPredicate> extends LimiterStoreOptions<Req> {
  /**
   * How the limits count, unless a limit says otherwise: `'sliding-log'` (exact count of the last
   * window; memory grows with the quota) or `'gcra'` (one timestamp per key: an even rate of
   * `limit` per `window`, bursts of up to `burst`, default `limit`). @default 'sliding-log'
   */
  algorithm?: Algorithm | undefined;
  /**
   * Penalty box: after `after` refusals in a row (default 1) the client is refused for `for`
   * (429, `reason: 'blocked'`, problem type `abnormal-usage-detected`) without its limits being
   * read or written.
   */
  block?: BlockOptions | undefined;
  /** Cost units a request takes (integer 1–10 000, see `MAX_COST`), or a function of the request. @default 1 */
  cost?: CostOption<Req> | undefined;
  /** Requests for which it returns true are not limited (no store call, no headers). */
  skip?: ((req: Req) => Awaitable<boolean>) | undefined;
  /** Give back the request's cost once its outcome is known: `'success'` (status < 400), `'failure'` (≥ 400, or a thrown error), or a predicate. */
  refund?: RefundOption<RefundPredicate> | undefined;
  /**
   * `'enforce'`: refuse what the limits refuse. `'shadow'`: decide and record exactly the same way,
   * expose the decision (`shadow: true`, `allowed: false` past the limit) to `req.rateLimit` and
   * `onDecision`, and never refuse: no 429, no 503, no quota headers. @default 'enforce'
   */
  mode?: LimitMode | undefined;
  /** Response headers: `'draft-10'`, `'draft-8'`, `'draft-7'`, `'draft-6'`, `'legacy'` (X-RateLimit-*), or `false`. @default DEFAULTS.headers */
  headers?: HeaderMode | false | undefined;
  /**
   * `'draft-10'`/`'draft-8'`: add `pk` (a Byte Sequence: the first 16 bytes of SHA-256 of the
   * client key, or of HMAC-SHA-256 with `{ secret }`; never the key itself) to `RateLimit`. @default false
   */
  partitionKey?: PartitionKeyOption | undefined;
  /** `'draft-10'`/`'draft-8'`: the quota's unit (`qu` on `RateLimit-Policy` when not `'requests'`), e.g. `'content-bytes'` with a `cost` that counts bytes. @default 'requests' */
  quotaUnit?: QuotaUnit | undefined;
  /** Status of a limited response, 400–599. @default DEFAULTS.statusCode (429) */
  statusCode?: number | undefined;
  /** Body of a limited response: text, a JSON object, or a function of the request and decision. @default a problem+json `quota-exceeded` body */
  message?: MessageOption<Req> | undefined;
  /** Called on every limited request before the default response; may send its own response. */
  onLimited?: OnLimited | undefined;
  /** Called with every decision (observability); runs before the response is written. */
  onDecision?: ((req: Req, decision: Decision) => void) | undefined;
}

/** `rateLimit()` options: the shared ones plus the limits and the client key. */
export interface RateLimitOptionsBase<Req, OnLimited, RefundPredicate> extends HttpLimiterOptions<Req, OnLimited, RefundPredicate> {
  /** Quota per `window`: an integer 1–1e9 (its log is named `<limit>-in-<window>`, e.g. `'100-in-1m'`) or `(req) => number` (named after the window). Use with `window`, or use `limits`. */
  limit?: number | ((req: Req) => Awaitable<number>) | undefined;
  /** Window length: ms, or a string such as `'15m'`. */
  window?: LimitDefinition['window'] | undefined;
  /** Several limits, all checked and recorded in one atomic call. */
  limits?: readonly (Omit<LimitDefinition, 'limit'> & { limit: number | ((req: Req) => Awaitable<number>) })[] | undefined;
  /** GCRA with `limit`/`window`: units that may pass at once (with `limits`, set it per limit). @default limit */
  burst?: number | undefined;
  /** Key extractor, or a list (the first that yields a value). @default keys.ip() */
  key?: KeySpec<Req> | undefined;
}

/** `refund` after validation. */
export type RefundConfig<Predicate> = { readonly mode: 'success' | 'failure' } | { readonly mode: 'predicate'; readonly predicate: Predicate };

/** One HTTP limiter, configured: what `rateLimit` and `rateLimitRoutes` run for every request. */
export interface HttpLimiter<Req, OnLimited, RefundPredicate> {
  /** Core's limiter: decides each request in one store call, and refunds. */
  readonly limiter: RateLimiter<Req>;
  /** Request → parts + cost (undefined: let it through untouched). */
  readonly resolve: LimitRequestResolver<Req>;
  readonly refund: RefundConfig<RefundPredicate> | undefined;
  readonly writeHeaders: HeaderWriter | undefined;
  readonly statusCode: number;
  readonly message: MessageBuilder<Req>;
  readonly onLimited: OnLimited | undefined;
  readonly onDecision: ((req: Req, decision: Decision) => void) | undefined;
}

/** The HTTP options other than how requests are resolved to limits, parsed. */
export type HttpLimiterParts<Req, OnLimited, RefundPredicate> = Omit<HttpLimiter<Req, OnLimited, RefundPredicate>, 'resolve'> & {
  readonly cost: CostOption<Req>;
  readonly skip: ((req: Req) => Awaitable<boolean>) | undefined;
  /** `mode: 'shadow'`: the limiter's (or, for a table, every rule's unless it says otherwise) parts are shadow. */
  readonly shadow: boolean;
  /** `algorithm`: the limits' default (for a table, every rule's unless it says otherwise). */
  readonly algorithm: Algorithm;
  /** `block`: the penalty box of the limiter's part (for a table, of every rule's unless it says otherwise). */
  readonly block: PenaltyBoxSettings | undefined;
};

export const HTTP_LIMITER_OPTIONS: OptionNames<HttpLimiterOptions<unknown, unknown, unknown>> = {
  ...LIMITER_STORE_OPTIONS,
  algorithm: true,
  block: true,
  cost: true,
  skip: true,
  refund: true,
  headers: true,
  statusCode: true,
  message: true,
  onLimited: true,
  onDecision: true,
  mode: true,
  partitionKey: true,
  quotaUnit: true,
};
const RATE_LIMIT_OPTION_NAMES = optionNames<RateLimitOptionsBase<unknown, unknown, unknown>>({
  ...HTTP_LIMITER_OPTIONS,
  limit: true,
  window: true,
  limits: true,
  burst: true,
  key: true,
});

/** `rateLimit()`: validates every option and builds the limiter. Throws a ConfigError naming the first bad option. */
export function resolveRateLimit<Req, OnLimited, RefundPredicate>(options: unknown, owner = 'rateLimit()'): HttpLimiter<Req, OnLimited, RefundPredicate> {
  const defined = readOptions(options, RATE_LIMIT_OPTION_NAMES, owner, "{ limit: 100, window: '1m' }");
  const { cost, skip, shadow, algorithm, block, ...limiter } = resolveHttpLimiterParts<Req, OnLimited, RefundPredicate>(defined);
  const limits = resolveLimits(defined, '', { allowDynamic: true, algorithm });
  const policies = staticPolicies(limits);
  if (policies !== undefined) precomputeHeaderStrings(policies);
  const { logger, store, prefix } = limiter.limiter;
  const keySpec = defined.key === undefined ? keys.ip({ logger }) : validateKeySpec(defined.key, 'key');
  const key = compileKeySpec(keySpec as KeySpec<Req>, { logger });
  claimLogs(store, prefix, limits, logger);
  return { ...limiter, resolve: singleLimitResolver<Req>({ prefix, limits, policies, key, cost, skip, shadow, block }) };
}

/** Validates the options every HTTP limiter shares (`defined` comes from `readOptions`). */
export function resolveHttpLimiterParts<Req, OnLimited, RefundPredicate>(defined: Readonly<Record<string, unknown>>): HttpLimiterParts<Req, OnLimited, RefundPredicate> {
  const refund = resolveRefund<RefundPredicate>(defined.refund);
  return {
    // 'http' until the adapter names itself in `decide` (see metrics.ts: DecisionMessage.adapter).
    limiter: requestRateLimiter<Req>(resolveLimiterSettings<Req>(defined, refund !== undefined, 'http')),
    refund,
    cost: resolveCostOption<Req>(defined.cost, 'cost') ?? 1,
    skip: optionalFunction(defined.skip, 'skip', 'a function (req) => boolean') as HttpLimiterParts<Req, OnLimited, RefundPredicate>['skip'],
    shadow: resolveShadowMode(defined.mode),
    algorithm: validateAlgorithm(defined.algorithm, 'algorithm', DEFAULTS.algorithm),
    block: resolveBlock(defined.block, 'block'),
    writeHeaders: resolveHeaders(defined.headers, defined.partitionKey, defined.quotaUnit),
    statusCode: resolveStatusCode(defined.statusCode),
    message: resolveMessage<Req>(defined.message),
    onLimited: optionalFunction(defined.onLimited, 'onLimited', 'a function') as OnLimited | undefined,
    onDecision: optionalFunction(defined.onDecision, 'onDecision', 'a function (req, decision) => void') as HttpLimiter<Req, OnLimited, RefundPredicate>['onDecision'],
  };
}

/** A cost option: a valid integer cost, or a function (validated per request); `undefined` when absent. */
export function resolveCostOption<Req>(value: unknown, option: string): CostOption<Req> | undefined {
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

function resolveHeaders(value: unknown, partitionKey: unknown, quotaUnit: unknown): HeaderWriter | undefined {
  const structured = resolveStructuredHeaderOptions(partitionKey, quotaUnit);
  if (value === false) return undefined;
  const mode = value ?? DEFAULTS.headers;
  if (!(HEADER_MODES as readonly unknown[]).includes(mode)) {
    throw new ConfigError(`headers must be one of ${HEADER_MODES.map((m) => `'${m}'`).join(', ')} or false; got ${formatValue(value)}`);
  }
  // Only the structured modes carry pk and qu: elsewhere the option would be silently dropped.
  if (mode !== 'draft-10' && mode !== 'draft-8') {
    const given = partitionKey !== undefined && partitionKey !== false ? 'partitionKey' : quotaUnit !== undefined && quotaUnit !== 'requests' ? 'quotaUnit' : undefined;
    if (given !== undefined) throw new ConfigError(`${given} applies to headers 'draft-10' and 'draft-8' only; headers is '${String(mode)}'`);
  }
  return headerWriter(mode as HeaderMode, structured);
}

function resolveStatusCode(value: unknown): number {
  const status = value ?? DEFAULTS.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new ConfigError(`statusCode must be an integer HTTP error status from 400 to 599; got ${formatValue(value)}`);
  }
  return status;
}
