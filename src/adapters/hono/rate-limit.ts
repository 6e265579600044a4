/**
 * Hono 4 rate limiting: `rateLimit(options)` and the middleware shared with `rateLimitRoutes`.
 * Only HTTP translation lives here: the options are parsed in `../http/limiter-options.ts`, the
 * decision is core's RateLimiter's.
 *
 * The decision is `c.get('rateLimit')` (typed with `RateLimitEnv`). Quota headers are set with
 * `c.header()` before the handler runs, and set again on its response if it came back without
 * them (a `Response` returned as is, not built with `c.json()`/`c.text()`/`c.body()`). A refund
 * is settled once the downstream handlers are done: Hono tells us exactly when, also when the
 * client has gone meanwhile, and a thrown error (`c.error`) counts as a failure.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import { isThenable, type Decision } from '../../core/index.js';
import { STORE_UNAVAILABLE_ANSWER, passes } from '../http/answers.js';
import { retryAfterSeconds } from '../http/headers.js';
import { resolveRateLimit, type HttpLimiter, type RateLimitOptionsBase } from '../http/limiter-options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { isSuccessStatus, settleRefund } from '../http/refund.js';
import { answerResponse, setHeader } from './answer.js';
import { markHonoRequest } from './request-view.js';

/** The Variables ratelock's limiters set: `c.get('rateLimit')`. */
export type RateLimitVariables = {
  /** The rate-limit decision of the last ratelock limiter that ran on this request. */
  rateLimit?: Decision | undefined;
};

/** The Env of a limiter middleware, for apps that type their variables: `new Hono<RateLimitEnv>()`. */
export type RateLimitEnv = { Variables: RateLimitVariables };

/**
 * Called on a limited request after status and headers are set (`c.status()`, `c.header()`); it
 * sends its own response by returning one (built with `c.json()` etc., which keeps those headers);
 * otherwise the default body is sent.
 */
export type HonoOnLimited = (c: Context, decision: Decision) => Response | void | undefined | Promise<Response | void | undefined>;

/** Decides whether a request's cost is given back, once the downstream handlers are done (`c.res.status`, `c.error`). */
export type HonoRefundPredicate = (c: Context) => boolean;

/** `rateLimit()` options for Hono; callbacks receive the Context `c`. */
export type HonoRateLimitOptions = RateLimitOptionsBase<Context, HonoOnLimited, HonoRefundPredicate>;

export type HonoLimiter = HttpLimiter<Context, HonoOnLimited, HonoRefundPredicate>;

/**
 * Sliding-window rate limiting for Hono, one atomic store call per request.
 *
 * @example
 * const app = new Hono<RateLimitEnv>();
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));                              // per client IP
 * app.post('/login', rateLimit({ store, limit: 5, window: '15m', key: [keys.header('x-api-key'), keys.ip()] }), login);
 * @throws ConfigError at construction, naming the bad option.
 */
export function rateLimit(options: HonoRateLimitOptions): MiddlewareHandler<RateLimitEnv> {
  return honoLimiter(resolveRateLimit<Context, HonoOnLimited, HonoRefundPredicate>(options));
}

/**
 * The middleware of a configured limiter: decide, expose `c.get('rateLimit')`, then let through
 * (with quota headers), answer 429 (limited) or 503 (store failed, fail-closed); a shadow decision
 * always lets through. Errors of user
 * callbacks (including ConfigErrors for bad `limit(c)`/`cost(c)` values) are thrown to Hono.
 */
export function honoLimiter(config: HonoLimiter): MiddlewareHandler<RateLimitEnv> {
  const once = new OncePerRequest(config.limiter.logger);
  /** The first quota header the writer sets (learnt on the first request): tells whether a response still carries them. */
  let quotaHeader: string | undefined;
  const learnQuotaHeader = (target: Context, name: string, value: string): void => {
    quotaHeader ??= name;
    setHeader(target, name, value);
  };
  return async function ratelockRateLimit(c: Context<RateLimitEnv>, next: Next): Promise<Response | void> {
    if (!once.claim(c)) return next();
    markHonoRequest(c);
    const pending = config.resolve(c);
    const request = isThenable(pending) ? await pending : pending;
    if (request === undefined) return next();
    const decided = config.limiter.decideNow(request, c, 'consume', 'hono');
    const decision = isThenable(decided) ? await decided : decided;
    c.set('rateLimit', decision);
    config.onDecision?.(c, decision);
    if (!passes(decision)) return refuse(config, decision, c);
    // The store failed (fail-open): we know nothing, so no quota headers and nothing to refund.
    if (decision.error !== undefined) return next();
    config.writeHeaders?.(c, quotaHeader === undefined ? learnQuotaHeader : setHeader, decision);
    await next();
    if (quotaHeader !== undefined && !c.res.headers.has(quotaHeader)) config.writeHeaders!(c, setHeader, decision);
    if (config.refund !== undefined) {
      const succeeded = c.error === undefined && isSuccessStatus(c.res.status);
      settleRefund(config.limiter, decision, config.refund, c, succeeded, (predicate) => predicate(c));
    }
  };
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: HonoLimiter, decision: Decision, c: Context): Promise<Response> {
  if (decision.error !== undefined) return answerResponse(c, STORE_UNAVAILABLE_ANSWER);
  c.header('Retry-After', String(retryAfterSeconds(decision)));
  config.writeHeaders?.(c, setHeader, decision);
  c.status(config.statusCode as never);
  if (config.onLimited !== undefined) {
    const own = await config.onLimited(c, decision);
    if (own instanceof Response) return own;
  }
  const built = config.message(c, decision, config.statusCode);
  return answerResponse(c, isThenable(built) ? await built : built);
}
