/**
 * The rate limiter: ONE configured object per limiter, on the request path of `RateLimiter` used on
 * its own (`consume(key)`, `peek`, `reset`, `refund`) and of the HTTP limiters (`rateLimit`,
 * `rateLimitRoutes`, through `decide(request, req)`). Its store options (store, prefix, timeout,
 * onStoreError, logger) are parsed by one resolver, `resolveLimiterSettings`.
 *
 * One decision = one store call: every limit of every part is checked and recorded all-or-nothing,
 * within the `timeout` budget. Store failures never throw from here: they become a decision that
 * follows `onStoreError` and carries the reason.
 */
import { ConfigError, StoreError, StoreTimeoutError } from './errors.js';
import { DEFAULTS } from './defaults.js';
import { defaultStore } from './default-store.js';
import { formatValue, parseDuration, type Duration } from './duration.js';
import {
  claimLogs,
  resolveBlock,
  resolveLimits,
  staticPolicies,
  validateAlgorithm,
  validateCost,
  type BlockOptions,
  type LimitDefinition,
  type PenaltyBoxSettings,
} from './limits.js';
import type { LimitRequest } from './limit-request.js';
import { isThenable, optionNames, readOptions, validateLogger, validateOnStoreError, validateStore, type OptionNames } from './options.js';
import { decisionChannel, decisionOutcome, type DecisionMessage, type DecisionSource } from './metrics.js';
import { attachRefundTicket, refundTicketOf, takeChainedTicket, takeRefundTicket, type RefundTicket } from './refund-ticket.js';
import {
  reportStoreFailure,
  reportStoreSuccess,
  resolveFailureMode,
  toStoreError,
  withTimeout,
  callStore,
  type Logger,
  type OnStoreError,
  type StoreFailure,
} from './store-call.js';
import { storeLimits, validatePrefix, type LimitPart } from './store-keys.js';
import { checkConsumeResult } from './store-replies.js';
import type { Algorithm, Decision, LimitMode, Policy } from './decision.js';
import { decideInProcess, decidesInProcess, tellCallBudget, type ConsumeResult, type RateLimitStore, type StoreLimit } from './store.js';

/** Where and how a limiter calls its store: the options `RateLimiter` shares with every HTTP limiter. */
export interface LimiterStoreOptions<Req = undefined> {
  /** Where the logs live. @default the process-wide MemoryStore */
  store?: RateLimitStore | undefined;
  /** Prefix of every store key. @default DEFAULTS.prefix (`'rl:'`) */
  prefix?: string | undefined;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** On store failure or timeout: allow (`'open'`) or refuse (`'closed'`), or a function of the error (and of the request, over HTTP). @default 'open' */
  onStoreError?: OnStoreError<Req> | undefined;
  /** Receives the once-per-outage messages (and the adapters' warnings). @default console */
  logger?: Logger | undefined;
}

export interface RateLimiterOptions extends LimiterStoreOptions {
  /** Quota per `window` (cost units), integer 1–1e9. Use with `window`, or use `limits`. Its log is named `<limit>-in-<window>` (`'100-in-1m'`). */
  limit?: number | undefined;
  /** Window length: ms, or a string such as `'15m'`. */
  window?: Duration | undefined;
  /** Several limits, all checked and recorded in one atomic call. Names default to `<limit>-in-<window>` (`'100-in-1m'`). */
  limits?: LimitDefinition[] | undefined;
  /**
   * `'shadow'`: decide and record exactly as `'enforce'` does, and mark every decision
   * `shadow: true` — the caller lets the work through whatever `allowed` says. @default 'enforce'
   */
  mode?: LimitMode | undefined;
  /**
   * How the limits count, unless a limit says otherwise: `'sliding-log'` (exact count of the last
   * window; memory grows with the quota) or `'gcra'` (one timestamp per key: an even rate of
   * `limit` per `window` with bursts of up to `burst`, default `limit`). @default 'sliding-log'
   */
  algorithm?: Algorithm | undefined;
  /** GCRA with `limit`/`window`: units that may pass at once (with `limits`, set it per limit). @default limit */
  burst?: number | undefined;
  /** Penalty box: after `after` refusals in a row (default 1), refuse the key for `for` without touching its limits. */
  block?: BlockOptions | undefined;
}

export interface ConsumeOptions {
  /** Cost units this call takes, integer 1–10 000 (`MAX_COST`). A cost above a limit is always blocked (retryAfterMs = its window). @default 1 */
  cost?: number | undefined;
}

export const LIMITER_STORE_OPTIONS: OptionNames<LimiterStoreOptions> = { store: true, prefix: true, timeout: true, onStoreError: true, logger: true };
const RATE_LIMITER_OPTION_NAMES = optionNames<RateLimiterOptions>({
  ...LIMITER_STORE_OPTIONS,
  limit: true,
  window: true,
  limits: true,
  mode: true,
  algorithm: true,
  burst: true,
  block: true,
});
const CONSUME_OPTION_NAMES = optionNames<ConsumeOptions>({ cost: true });

/** A limiter's store options, parsed. */
export interface LimiterSettings<Req> {
  readonly store: RateLimitStore;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly onStoreError: OnStoreError<Req>;
  readonly logger: Logger;
  /** Attach a refund ticket to allowed decisions (RateLimiter; HTTP limiters with a `refund` option). */
  readonly refundable: boolean;
  /** Who decides through this limiter, as the `ratelock:decision` messages name it. @default 'core' */
  readonly adapter?: DecisionSource | undefined;
}

/** THE resolver of a limiter's store options (`defined` comes from `readOptions`, so it has no undefined entries). */
export function resolveLimiterSettings<Req>(defined: Readonly<Record<string, unknown>>, refundable: boolean, adapter: DecisionSource = 'core'): LimiterSettings<Req> {
  return {
    store: validateStore(defined.store) ?? defaultStore(),
    prefix: validatePrefix(defined.prefix ?? DEFAULTS.prefix, 'prefix'),
    timeoutMs: parseDuration(defined.timeout ?? DEFAULTS.timeoutMs, 'timeout'),
    onStoreError: validateOnStoreError<Req>(defined.onStoreError) ?? DEFAULTS.limiterOnStoreError,
    logger: validateLogger(defined.logger) ?? console,
    refundable,
    adapter,
  };
}

/** A `mode` option: `'enforce'` (the default) or `'shadow'`; true when shadow. */
export function resolveShadowMode(value: unknown, option = 'mode'): boolean {
  if (value === undefined || value === 'enforce') return false;
  if (value === 'shadow') return true;
  throw new ConfigError(`${option} must be 'enforce' or 'shadow' (decide and record, never refuse); got ${formatValue(value)}`);
}

/** Parsed settings handed to the constructor by `requestRateLimiter` (a class nobody outside can make). */
class RequestLimiterSettings<Req> {
  constructor(readonly settings: LimiterSettings<Req>) {}
}

/**
 * A RateLimiter whose limits come with each request (`rateLimit` with a `limit(req)` function,
 * `rateLimitRoutes`' rules): it has no limits of its own and is used through `decide(request, req)`.
 */
export function requestRateLimiter<Req>(settings: LimiterSettings<Req>): RateLimiter<Req> {
  return new RateLimiter<Req>(new RequestLimiterSettings(settings) as unknown as RateLimiterOptions);
}

/**
 * Exact sliding-window rate limiter (sliding log) over any RateLimitStore.
 *
 * @example
 * const limiter = new RateLimiter({ store, limits: [{ limit: 10, window: '1s' }, { limit: 500, window: '1h' }] });
 * const decision = await limiter.consume(`user:${id}`);
 * if (!decision.allowed) throw new TooBusy(decision.retryAfterMs);
 */
export class RateLimiter<Req = undefined> {
  /** The limits every key of `consume`/`peek`/`reset` is checked against, in the order given (none for request limiters). */
  readonly policies: readonly Policy[];
  readonly prefix: string;
  /** `'shadow'`: every decision of `consume`/`peek` is marked `shadow` (never to be enforced). */
  readonly mode: LimitMode;
  readonly #settings: LimiterSettings<Req>;
  /** The penalty box of `consume`/`peek` keys, if any. */
  readonly #block: PenaltyBoxSettings | undefined;

  /** @throws ConfigError naming the bad option. */
  constructor(options: RateLimiterOptions) {
    if (options instanceof RequestLimiterSettings) {
      this.#settings = (options as RequestLimiterSettings<Req>).settings;
      this.policies = [];
      this.mode = 'enforce'; // request limiters mark each part (rateLimit's mode, a route rule's)
      this.#block = undefined; // and give each part its box
    } else {
      const defined = readOptions(options, RATE_LIMITER_OPTION_NAMES, 'RateLimiter', "{ limit: 100, window: '1m' }");
      // Without a request there is nothing to compute a function limit from: resolveLimits refuses it.
      const limits = resolveLimits(defined, '', { algorithm: validateAlgorithm(defined.algorithm, 'algorithm') });
      this.#block = resolveBlock(defined.block, 'block');
      this.mode = resolveShadowMode(defined.mode) ? 'shadow' : 'enforce';
      this.#settings = resolveLimiterSettings<Req>(defined, true);
      this.policies = staticPolicies(limits)!;
      claimLogs(this.#settings.store, this.#settings.prefix, limits, this.#settings.logger);
    }
    tellCallBudget(this.#settings.store, this.#settings.timeoutMs);
    this.prefix = this.#settings.prefix;
  }

  /** The store this limiter decides on. */
  get store(): RateLimitStore {
    return this.#settings.store;
  }

  /** The logger of this limiter's messages (the HTTP adapters use it for theirs too). */
  get logger(): Logger {
    return this.#settings.logger;
  }

  /** Takes `cost` (default 1) from every limit of `key` if all have room, else nothing. Never rejects on store failure. */
  async consume(key: string, options?: ConsumeOptions): Promise<Decision> {
    return this.decide(this.#ownRequest(key, options, 'consume()'), undefined as Req);
  }

  /**
   * What a request of `cost` (default 1) would get now, recording nothing: `allowed`, and
   * `remaining` as it would be after such a request.
   */
  async peek(key: string, options?: ConsumeOptions): Promise<Decision> {
    return this.decide(this.#ownRequest(key, options, 'peek()'), undefined as Req, 'peek');
  }

  /** Deletes every limit's log for `key` (full quota again). Rejects with StoreError / StoreTimeoutError. */
  async reset(key: string): Promise<void> {
    const keys = storeLimits([this.#part(validateKey(key))]).map((limit) => limit.key);
    const { store, timeoutMs, logger } = this.#settings;
    await callStore(store, () => store.reset(keys), { timeoutMs, logger });
  }

  /**
   * Gives back exactly what `decision` (from this limiter) recorded, never newer entries; a no-op
   * for decisions that recorded nothing (blocked, peeked, store failure) and on a second call.
   * Never rejects on store failure: it is logged (once per outage), and an `onStoreError` handler
   * hears of it (with `req`, over HTTP). Rejects with ConfigError when `decision` is not an object.
   */
  async refund(decision: Decision, req?: Req): Promise<void> {
    // A refused or already-refunded decision gives nothing back, silently; anything not shaped like a decision is a bug.
    if (decision === null || typeof decision !== 'object' || typeof decision.allowed !== 'boolean' || typeof decision.reason !== 'string') {
      throw new ConfigError(`refund(decision) needs a decision returned by consume(); got ${formatValue(decision)}`);
    }
    const ticket = takeRefundTicket(decision);
    if (ticket === undefined) return;
    const chained = takeChainedTicket(ticket);
    if (chained === undefined) return this.#refund(ticket, req);
    await Promise.all([this.#refund(ticket, req), this.#refund(chained, req)]);
  }

  async #refund(ticket: RefundTicket, req: Req | undefined): Promise<void> {
    const { timeoutMs, logger, onStoreError } = this.#settings;
    try {
      await withTimeout(ticket.store.refund(ticket.limits, ticket.cost, ticket.stamp), timeoutMs);
      reportStoreSuccess(ticket.store, logger);
    } catch (err) {
      const failure = toStoreError(err);
      reportStoreFailure(ticket.store, failure, logger);
      // The response is already sent, so the answer changes nothing; a handler still hears of
      // every failure (it may count them). A bad handler surfaces on the next decision.
      try {
        resolveFailureMode(onStoreError, failure, req as Req);
      } catch {
        // ignored: see above
      }
    }
  }

  /**
   * The ONE decision step of every limiter: all limits of `request` in one store call, then a plain
   * Decision. Parts marked `shadow` are decided and recorded alike but never enforced (see
   * `#decideMixed` for a request with both kinds). Published on `ratelock:decision` when subscribed,
   * naming `adapter` (the HTTP adapters pass theirs) or else the limiter's own label.
   */
  decide(request: LimitRequest, req: Req, mode: 'consume' | 'peek' = 'consume', adapter?: DecisionSource): Promise<Decision> {
    try {
      const decision = this.decideNow(request, req, mode, adapter);
      return isThenable(decision) ? decision : Promise.resolve(decision);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `decide`, answered synchronously when the store decides in this process (MemoryStore), so the
   * HTTP adapters await only a real store call. Throws what `decide` rejects with.
   * @internal
   */
  decideNow(request: LimitRequest, req: Req, mode: 'consume' | 'peek' = 'consume', adapter?: DecisionSource): Decision | Promise<Decision> {
    // Nobody listening: no clock read, no message (one boolean read).
    if (!decisionChannel.hasSubscribers) return this.#decide(request, req, mode);
    return this.#decideObserved(request, req, mode, adapter);
  }

  async #decideObserved(request: LimitRequest, req: Req, mode: 'consume' | 'peek', adapter: DecisionSource | undefined): Promise<Decision> {
    const started = performance.now();
    const decision = await this.#decide(request, req, mode);
    const message: DecisionMessage = {
      decision,
      outcome: decisionOutcome(decision),
      adapter: adapter ?? this.#settings.adapter ?? 'core',
      operation: mode,
      durationMs: performance.now() - started,
    };
    decisionChannel.publish(message);
    return decision;
  }

  #decide(request: LimitRequest, req: Req, mode: 'consume' | 'peek'): Decision | Promise<Decision> {
    const { parts } = request;
    let shadowParts = 0;
    for (const part of parts) if (part.shadow === true) shadowParts++;
    if (shadowParts === 0) return this.#decideOnce(request, req, mode, false);
    if (shadowParts === parts.length) return this.#decideOnce(request, req, mode, true);
    return this.#decideMixed(request, req, mode);
  }

  /**
   * A request meeting both shadow and enforced parts (a route table whose matching rules differ in
   * `mode`). The enforced parts are decided alone, so the response is exactly the one the table
   * would give without its shadow rules (pass or 429, headers, Retry-After); the shadow parts are
   * decided alone too, as a limiter of their own would decide them, and record what it would. Both
   * calls start in the same turn, so RedisStore sends them in one script call. The decision
   * returned is the enforced one when it refuses, else the one closer to blocking (ties: enforced);
   * a shadow one carries the enforced one as `enforced`, and a refund gives back both recordings.
   */
  async #decideMixed(request: LimitRequest, req: Req, mode: 'consume' | 'peek'): Promise<Decision> {
    const enforcedParts = request.parts.filter((part) => part.shadow !== true);
    const shadowParts = request.parts.filter((part) => part.shadow === true);
    const [enforced, shadow] = await Promise.all([
      this.#decideOnce({ parts: enforcedParts, cost: request.cost }, req, mode, false),
      this.#decideOnce({ parts: shadowParts, cost: request.cost }, req, mode, true),
    ]);
    const enforcedTicket = refundTicketOf(enforced);
    const shadowTicket = refundTicketOf(shadow);
    if (!enforced.allowed || (shadow.allowed && shadow.remaining >= enforced.remaining)) {
      if (enforcedTicket !== undefined) enforcedTicket.also = shadowTicket;
      else if (shadowTicket !== undefined) attachRefundTicket(enforced, shadowTicket);
      return enforced;
    }
    const decision: Decision = { ...shadow, enforced };
    if (shadowTicket !== undefined) {
      shadowTicket.also = enforcedTicket;
      attachRefundTicket(decision, shadowTicket);
    } else if (enforcedTicket !== undefined) attachRefundTicket(decision, enforcedTicket);
    return decision;
  }

  /** One store call for `request`'s limits: answered at once by a store that decides in this process. */
  #decideOnce(request: LimitRequest, req: Req, mode: 'consume' | 'peek', shadow: boolean): Decision | Promise<Decision> {
    const { parts, cost } = request;
    const policies = request.policies ?? concatPolicies(parts);
    const limits = storeLimits(parts);
    if (limits.length === 0) throw new ConfigError('a rate-limit decision needs at least one limit; got none');
    const { store } = this.#settings;
    if (!decidesInProcess(store)) return this.#decideRemotely(parts, policies, limits, cost, req, mode, shadow);
    let result: ConsumeResult;
    try {
      result = checkedResult(store[decideInProcess](limits, cost, mode === 'consume'), mode, parts, policies, limits);
    } catch (err) {
      return this.#failureDecision(toStoreError(err), parts[0]!, policies, req, shadow);
    }
    return this.#decisionOf(result, parts, policies, limits, cost, mode, shadow);
  }

  /** The store call of a remote store (Redis, a custom one), within the `timeout` budget. */
  async #decideRemotely(
    parts: readonly LimitPart[],
    policies: readonly Policy[],
    limits: readonly StoreLimit[],
    cost: number,
    req: Req,
    mode: 'consume' | 'peek',
    shadow: boolean,
  ): Promise<Decision> {
    const { store, timeoutMs } = this.#settings;
    let result: ConsumeResult;
    try {
      const call = mode === 'consume' ? store.consume(limits, cost) : store.peek(limits, cost);
      const late = mode === 'consume' ? refundLate : undefined;
      result = checkedResult(await withTimeout(call, timeoutMs, late, { store, limits, cost }), mode, parts, policies, limits);
    } catch (err) {
      return this.#failureDecision(toStoreError(err), parts[0]!, policies, req, shadow);
    }
    return this.#decisionOf(result, parts, policies, limits, cost, mode, shadow);
  }

  /** The Decision of a store's answer (checked by checkedResult), with its refund ticket. */
  #decisionOf(
    result: ConsumeResult,
    parts: readonly LimitPart[],
    policies: readonly Policy[],
    limits: readonly StoreLimit[],
    cost: number,
    mode: 'consume' | 'peek',
    shadow: boolean,
  ): Decision {
    const { store, logger } = this.#settings;
    reportStoreSuccess(store, logger);
    if (result.boxed === true) return blockedDecision(result, boxOwner(parts, result.index - policies.length)!, policies, shadow);
    const policy = policies[result.index]!;
    const decision: Decision = {
      allowed: result.allowed,
      limit: policy.limit,
      remaining: result.remaining,
      resetMs: result.resetMs,
      nextQuotaMs: result.nextQuotaMs,
      retryAfterMs: result.allowed ? 0 : result.retryAfterMs < 0 ? policy.windowMs : Math.max(1, result.retryAfterMs),
      key: ownerOf(parts, result.index).id,
      policy,
      policies,
      reason: result.allowed ? 'allowed' : 'limited',
      shadow,
    };
    if (this.#settings.refundable && mode === 'consume' && result.allowed && result.stamp > 0) {
      attachRefundTicket(decision, { store, limits, cost, stamp: result.stamp, refunded: false });
    }
    return decision;
  }

  /**
   * The decision when the store failed: `onStoreError` `'open'` → allowed, `remaining` = limit;
   * `'closed'` → refused, `remaining` 0, `retryAfterMs` = `DEFAULTS.storeErrorRetryAfterMs` (1 s).
   * Either way `reason` is `'store-error'` / `'store-timeout'`, `error` is set, and the deciding
   * policy is the first one (nothing is known about the others).
   */
  #failureDecision(error: StoreFailure, part: LimitPart, policies: readonly Policy[], req: Req, shadow: boolean): Decision {
    const { store, logger, onStoreError } = this.#settings;
    const open = resolveFailureMode(onStoreError, error, req) === 'open';
    reportStoreFailure(store, error, logger);
    const policy = policies[0]!;
    return {
      allowed: open,
      limit: policy.limit,
      remaining: open ? policy.limit : 0,
      resetMs: 0,
      nextQuotaMs: 0,
      retryAfterMs: open ? 0 : DEFAULTS.storeErrorRetryAfterMs,
      key: part.id,
      policy,
      policies,
      reason: error instanceof StoreTimeoutError ? 'store-timeout' : 'store-error',
      shadow,
      error,
    };
  }

  #ownRequest(key: string, options: ConsumeOptions | undefined, method: string): LimitRequest {
    if (this.policies.length === 0) throw new ConfigError(`${method} needs a RateLimiter with limits of its own`);
    return { parts: [this.#part(validateKey(key))], cost: costOption(options, method), policies: this.policies };
  }

  #part(id: string): LimitPart {
    const { prefix } = this.#settings;
    const part: LimitPart = this.mode === 'shadow' ? { id, prefix, policies: this.policies, shadow: true } : { id, prefix, policies: this.policies };
    return this.#block === undefined ? part : { ...part, block: this.#block };
  }
}

/** A store's answer checked: a ConsumeResult whose index names one of the call's limits (StoreError if not). */
function checkedResult(value: unknown, mode: 'consume' | 'peek', parts: readonly LimitPart[], policies: readonly Policy[], limits: readonly StoreLimit[]): ConsumeResult {
  const result = checkConsumeResult(mode, value);
  if (result.boxed === true ? boxOwner(parts, result.index - policies.length) === undefined : policies[result.index] === undefined) {
    throw new StoreError(`store returned limit index ${formatValue(result.index)} for ${limits.length} limits`);
  }
  return result;
}

/**
 * A consume that timed out was answered as a store failure, yet the store may still record it later
 * (a stalled Redis resuming, or the client re-sending it after a reconnect). Nobody was counted for it,
 * so give it back: otherwise every outage would leave phantom entries that block real requests.
 */
function refundLate(late: ConsumeResult, { store, limits, cost }: { store: RateLimitStore; limits: readonly StoreLimit[]; cost: number }): void {
  // Checked loosely: a custom store's late reply may be anything.
  if (late?.allowed !== true || !(late.stamp > 0)) return;
  store.refund(limits, cost, late.stamp).catch(() => undefined); // best effort: the store just came back
}

/** Every policy of every part, in order (the part's own array when there is one part). */
function concatPolicies(parts: readonly LimitPart[]): readonly Policy[] {
  if (parts.length === 1) return parts[0]!.policies;
  const policies: Policy[] = [];
  for (const part of parts) policies.push(...part.policies);
  return policies;
}

/** The part of the `box`-th penalty box (boxes follow the policies, in part order: see storeLimits). */
function boxOwner(parts: readonly LimitPart[], box: number): LimitPart | undefined {
  if (box < 0) return undefined;
  for (const part of parts) {
    if (part.block === undefined) continue;
    if (box === 0) return part;
    box--;
  }
  return undefined;
}

/** A refusal by `part`'s penalty box: its first policy decides, nothing left until the box opens. */
function blockedDecision(result: ConsumeResult, part: LimitPart, policies: readonly Policy[], shadow: boolean): Decision {
  const policy = part.policies[0]!;
  const waitMs = Math.max(1, result.retryAfterMs);
  return {
    allowed: false,
    limit: policy.limit,
    remaining: 0,
    resetMs: waitMs,
    nextQuotaMs: waitMs,
    retryAfterMs: waitMs,
    key: part.id,
    policy,
    policies,
    reason: 'blocked',
    shadow,
  };
}

/** The part whose policies hold the flat limit `index`. */
function ownerOf(parts: readonly LimitPart[], index: number): LimitPart {
  let first = 0;
  for (const part of parts) {
    if (index < first + part.policies.length) return part;
    first += part.policies.length;
  }
  return parts[0]!;
}

function validateKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ConfigError(`key must be a non-empty string (e.g. 'user:42'); got ${formatValue(key)}`);
  }
  return key;
}

/** The validated `cost` of consume/peek options (default 1). */
function costOption(options: ConsumeOptions | undefined, method: string): number {
  if (options === undefined) return 1;
  const defined = readOptions(options, CONSUME_OPTION_NAMES, method, '{ cost: 2 }');
  return defined.cost === undefined ? 1 : validateCost(defined.cost, 'cost');
}
