/**
 * The framework-agnostic request path of an HTTP rate limiter: turn a request into what to ask
 * the store (its parts and cost) in ONE `decide()` call. Adapters only read the request, call
 * `decide()` and write the response.
 *
 * Every step stays synchronous while the user's callbacks are, so a request with static limits
 * and synchronous extractors awaits nothing but the store.
 */
import type { LimitPart } from '../../core/decide.js';
import type { Policy } from '../../core/decision.js';
import { policiesFor, validateCost } from '../../core/limits.js';
import { isThenable, type Awaitable } from '../../core/options.js';
import type { RateLimitConfig } from './options.js';

/** What one request asks the store: every part (client key + its limits) and the request's cost. */
export interface LimitRequest {
  readonly parts: readonly LimitPart[];
  readonly cost: number;
  /** Every policy of `parts` in order, when the resolver keeps that list (else `decide()` joins them). */
  readonly policies?: readonly Policy[] | undefined;
}

/** Resolves a request to its LimitRequest, or `undefined` to let it through untouched (skipped, no matching rule). */
export type LimitRequestResolver<Req> = (req: Req) => Awaitable<LimitRequest | undefined>;

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
  const { prefix, limits } = config;
  const build = (req: Req): Awaitable<LimitRequest> => {
    const id = config.key(req);
    const policies = config.policies ?? policiesFor(limits, req);
    const cost = costOf(config.cost, req, 'cost');
    if (isThenable(id) || isThenable(policies) || isThenable(cost)) {
      return Promise.all([id, policies, cost]).then(([settledId, settledPolicies, settledCost]) => ({
        parts: [{ id: settledId, prefix, policies: settledPolicies }],
        cost: settledCost,
      }));
    }
    return { parts: [{ id, prefix, policies }], cost };
  };
  if (config.skip === undefined) return build;
  const skip = config.skip;
  return (req) => unlessSkipped(skip, req, build);
}
