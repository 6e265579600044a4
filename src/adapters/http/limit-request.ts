/**
 * The framework-agnostic request path of an HTTP rate limiter: turn a request into what to ask
 * the store (its parts and cost), ask it in ONE `decide()` call, and classify the outcome. Adapters
 * only read the request and write the response.
 *
 * Every step stays synchronous while the user's callbacks are, so a request with static limits
 * and synchronous extractors awaits nothing but the store.
 */
import { decide, type LimitPart, type StoreCallOptions } from '../../core/decide.js';
import type { Decision } from '../../core/decision.js';
import { policiesFor, validateCost } from '../../core/limits.js';
import type { HttpLimiterConfig, RateLimitConfig, Awaitable } from './options.js';

/** What one request asks the store: every part (client key + its limits) and the request's cost. */
export interface LimitRequest {
  readonly parts: readonly LimitPart[];
  readonly cost: number;
}

/** Resolves a request to its LimitRequest, or `undefined` to let it through untouched (skipped, no matching rule). */
export type LimitRequestResolver<Req> = (req: Req) => Awaitable<LimitRequest | undefined>;

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/** `true` when the store failed: the decision then carries no quota information. */
export function isStoreFailureDecision(decision: Decision): boolean {
  return decision.reason === 'store-error' || decision.reason === 'store-timeout';
}

/** Calls `skip(req)` if configured; `then` runs when the request is not skipped. */
export function unlessSkipped<Req, T>(
  skip: ((req: Req) => Awaitable<boolean>) | undefined,
  req: Req,
  then: (req: Req) => Awaitable<T | undefined>,
): Awaitable<T | undefined> {
  if (skip === undefined) return then(req);
  const skipped = skip(req);
  if (isThenable(skipped)) return Promise.resolve(skipped).then((value) => (value ? undefined : then(req)));
  return skipped ? undefined : then(req);
}

/** The request's cost: the configured number, or `cost(req)` validated (a bad value is a ConfigError naming `option`). */
export function costOf<Req>(cost: number | ((req: Req) => Awaitable<number>), req: Req, option: string): Awaitable<number> {
  if (typeof cost === 'number') return cost;
  const value = cost(req);
  return isThenable(value) ? Promise.resolve(value).then((settled) => validateCost(settled, option)) : validateCost(value, option);
}

/** The resolver of `rateLimit()`: one part (the client key and the configured limits). */
export function singleLimitResolver<Req>(config: RateLimitConfig<Req, unknown, unknown>): LimitRequestResolver<Req> {
  const build = (req: Req): Awaitable<LimitRequest> => {
    const id = config.key(req);
    const policies = config.policies ?? policiesFor(config.limits, req, config.limitOption);
    const cost = costOf(config.cost, req, 'cost');
    if (isThenable(id) || isThenable(policies) || isThenable(cost)) {
      return Promise.all([id, policies, cost]).then(([settledId, settledPolicies, settledCost]) => ({
        parts: [{ id: settledId, prefix: config.prefix, policies: settledPolicies }],
        cost: settledCost,
      }));
    }
    return { parts: [{ id, prefix: config.prefix, policies }], cost };
  };
  return (req) => unlessSkipped(config.skip, req, build);
}

/**
 * Decides `request` in one store call. A `(err, req)` onStoreError is bound to this request (the
 * only per-request closure, made only when such a handler is configured).
 */
export function decideRequest<Req>(config: HttpLimiterConfig<Req, unknown, unknown>, request: LimitRequest, req: Req): Promise<Decision> {
  const handler = config.onStoreErrorForRequest;
  const options: StoreCallOptions =
    handler === undefined ? config.callOptions : { ...config.callOptions, onStoreError: (err) => handler(err, req) };
  return decide(request.parts, request.cost, 'consume', options);
}
