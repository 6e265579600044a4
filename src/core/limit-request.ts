/**
 * A request, as a rate limiter asks the store about it: every part (client key + its limits) and
 * the request's cost, in ONE call. Resolvers turn a request into this; they are built once per
 * limiter (`singleLimitResolver` for `rateLimit`, the route table's for `rateLimitRoutes`).
 *
 * Every step stays synchronous while the user's callbacks are, so a request with static limits
 * and synchronous extractors awaits nothing but the store.
 */
import type { Policy } from './decision.js';
import { policiesFor, validateCost, type PenaltyBoxSettings, type ResolvedLimit } from './limits.js';
import { isThenable, type Awaitable } from './options.js';
import type { LimitPart } from './store-keys.js';

export type { LimitPart } from './store-keys.js';

/** What one request asks the store: every part and the request's cost. */
export interface LimitRequest {
  readonly parts: readonly LimitPart[];
  readonly cost: number;
  /** Every policy of `parts` in order, when the resolver keeps that list (else the limiter joins them). */
  readonly policies?: readonly Policy[] | undefined;
}

/** Resolves a request to its LimitRequest, or `undefined` to let it through untouched (skipped, no matching rule). */
export type LimitRequestResolver<Req> = (req: Req) => Awaitable<LimitRequest | undefined>;

/** A cost option: a validated integer, or a function of the request (validated per request). */
export type CostOption<Req> = number | ((req: Req) => Awaitable<number>);

function enforcedPart(id: string, prefix: string, policies: readonly Policy[]): LimitPart {
  return { id, prefix, policies };
}

function shadowPart(id: string, prefix: string, policies: readonly Policy[]): LimitPart {
  return { id, prefix, policies, shadow: true };
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
export function costOf<Req>(cost: CostOption<Req>, req: Req, option: string): Awaitable<number> {
  if (typeof cost === 'number') return cost;
  const value = cost(req);
  return isThenable(value) ? Promise.resolve(value).then((settled) => validateCost(settled, option)) : validateCost(value, option);
}

/** What `rateLimit()` resolves a request with: one part, the client key and the configured limits. */
export interface SingleLimitSettings<Req> {
  readonly prefix: string;
  readonly limits: readonly ResolvedLimit[];
  /** The policies when no limit is a function of the request (built once), else undefined. */
  readonly policies: readonly Policy[] | undefined;
  readonly key: (req: Req) => Awaitable<string>;
  readonly cost: CostOption<Req>;
  readonly skip: ((req: Req) => Awaitable<boolean>) | undefined;
  /** `mode: 'shadow'`: the part is decided and recorded, never enforced. */
  readonly shadow?: boolean | undefined;
  /** `block`: the part's penalty box. */
  readonly block?: PenaltyBoxSettings | undefined;
}

/** The resolver of `rateLimit()`: one part (the client key and the configured limits). */
export function singleLimitResolver<Req>(settings: SingleLimitSettings<Req>): LimitRequestResolver<Req> {
  const { prefix, limits, policies: staticPolicies, key, cost } = settings;
  const { block } = settings;
  const plainPart = settings.shadow === true ? shadowPart : enforcedPart;
  const part =
    block === undefined ? plainPart : (id: string, prefix: string, policies: readonly Policy[]): LimitPart => ({ ...plainPart(id, prefix, policies), block });
  const build = (req: Req): Awaitable<LimitRequest> => {
    const id = key(req);
    const policies = staticPolicies ?? policiesFor(limits, req);
    const units = costOf(cost, req, 'cost');
    if (isThenable(id) || isThenable(policies) || isThenable(units)) {
      return Promise.all([id, policies, units]).then(([settledId, settledPolicies, settledCost]) => ({
        parts: [part(settledId, prefix, settledPolicies)],
        cost: settledCost,
      }));
    }
    return { parts: [part(id, prefix, policies)], cost: units };
  };
  const { skip } = settings;
  if (skip === undefined) return build;
  return (req) => unlessSkipped(skip, req, build);
}
