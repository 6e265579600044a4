/**
 * Koa (2 and 3) rate limiting: `rateLimit(options)` and the middleware shared with
 * `rateLimitRoutes`. A limited request gets its status, headers and body set and the middleware
 * RETURNS: throwing would go through `ctx.onerror`, which drops the headers.
 */
import type { Context, Middleware, Next } from 'koa';
import { isThenable, type Decision } from '../../core/index.js';
import { STORE_UNAVAILABLE_ANSWER, passes } from '../http/answers.js';
import { retryAfterSeconds } from '../http/headers.js';
import { resolveRateLimit, type HttpLimiter, type RateLimitOptionsBase, type RefundConfig } from '../http/limiter-options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { isSuccessStatus, settleRefund } from '../http/refund.js';
import { setAnswer, setHeader } from './set-answer.js';

declare module 'koa' {
  interface DefaultState {
    /** The rate-limit decision of the last ratelock limiter that ran on this request. */
    rateLimit?: Decision | undefined;
  }
}

/** `ctx.state` as ratelock's limiters fill it, for apps that type their state explicitly (`new Koa<RateLimitState>()`). */
export interface RateLimitState {
  rateLimit?: Decision | undefined;
}

/**
 * Called on a limited request after status 429 and the headers are set. It sends its own
 * response by setting `ctx.body`; otherwise the default body is sent.
 */
export type KoaOnLimited = (ctx: Context, decision: Decision) => unknown;

/**
 * Decides whether a request's cost is given back, once the downstream middleware has settled.
 * `error` is what it threw, if it did (Koa then answers with the error's status, else 500; `ctx.status`
 * does not show that yet).
 */
export type KoaRefundPredicate = (ctx: Context, error?: unknown) => boolean;

/** `rateLimit()` options for Koa; callbacks receive `ctx` where Express ones receive `req`. */
export type KoaRateLimitOptions = RateLimitOptionsBase<Context, KoaOnLimited, KoaRefundPredicate>;

export type KoaLimiter = HttpLimiter<Context, KoaOnLimited, KoaRefundPredicate>;

/**
 * Sliding-window rate limiting for Koa, one atomic store call per request. The decision is
 * exposed as `ctx.state.rateLimit`.
 *
 * @example
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));
 * @throws ConfigError at construction, naming the bad option.
 */
export function rateLimit(options: KoaRateLimitOptions): Middleware {
  return koaLimiter(resolveRateLimit<Context, KoaOnLimited, KoaRefundPredicate>(options));
}

/**
 * The middleware of a configured limiter: decide, expose `ctx.state.rateLimit`, then let through (with
 * quota headers), answer 429 (limited) or 503 (store failed, fail-closed); a shadow decision always
 * lets through. Errors of user
 * callbacks (including ConfigErrors for bad `limit(ctx)`/`cost(ctx)` values) are thrown to Koa.
 */
export function koaLimiter(config: KoaLimiter): Middleware {
  const once = new OncePerRequest(config.limiter.logger);
  return async function ratelockRateLimit(ctx: Context, next: Next): Promise<void> {
    if (!once.claim(ctx)) return next();
    const pending = config.resolve(ctx);
    const request = isThenable(pending) ? await pending : pending;
    if (request === undefined) return next();
    const decided = config.limiter.decideNow(request, ctx, 'consume', 'koa');
    const decision = isThenable(decided) ? await decided : decided;
    ctx.state.rateLimit = decision;
    config.onDecision?.(ctx, decision);
    if (!passes(decision)) return refuse(config, decision, ctx);
    // The store failed (fail-open): we know nothing, so no quota headers and nothing to refund.
    if (decision.error !== undefined) return next();
    config.writeHeaders?.(ctx, setHeader, decision);
    if (config.refund === undefined) return next();
    return nextThenRefund(config, config.refund, decision, ctx, next);
  };
}

/**
 * Runs the downstream middleware, then settles the refund on its outcome: Koa tells us exactly when
 * the work is over, also when the client has gone meanwhile. A throw is a failure (Koa answers it
 * with an error status) and is rethrown.
 */
async function nextThenRefund(config: KoaLimiter, refund: RefundConfig<KoaRefundPredicate>, decision: Decision, ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    settleRefund(config.limiter, decision, refund, ctx, false, (predicate) => predicate(ctx, err));
    throw err;
  }
  settleRefund(config.limiter, decision, refund, ctx, isSuccessStatus(ctx.status), (predicate) => predicate(ctx));
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: KoaLimiter, decision: Decision, ctx: Context): Promise<void> {
  if (decision.error !== undefined) return setAnswer(ctx, STORE_UNAVAILABLE_ANSWER);
  setHeader(ctx, 'Retry-After', String(retryAfterSeconds(decision)));
  config.writeHeaders?.(ctx, setHeader, decision);
  ctx.status = config.statusCode;
  if (config.onLimited !== undefined) {
    await config.onLimited(ctx, decision);
    if (ctx.body != null || ctx.res.headersSent || ctx.respond === false) return;
  }
  const built = config.message(ctx, decision, config.statusCode);
  setAnswer(ctx, isThenable(built) ? await built : built);
}
