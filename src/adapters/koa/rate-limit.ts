/**
 * Koa (2 and 3) rate limiting: `rateLimit(options)` and the response path shared with
 * `rateLimitRoutes`. A limited request gets its status, headers and body set and the middleware
 * RETURNS: throwing would go through `ctx.onerror`, which drops the headers (STYLE.md §9).
 */
import type { Context, Middleware, Next } from 'koa';
import { decide, type StoreCallOptions } from '../../core/decide.js';
import type { Decision } from '../../core/decision.js';
import { DEFAULTS } from '../../core/defaults.js';
import { isThenable } from '../../core/options.js';
import { retryAfterSeconds } from '../http/headers.js';
import { singleLimitResolver, type LimitRequestResolver } from '../http/limit-request.js';
import { callOptionsFor, resolveRateLimitOptions, type HttpLimiterConfig, type RateLimitOptionsBase, type RefundConfig } from '../http/options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { isSuccessStatus, settleRefund } from '../http/refund.js';
import { STORE_UNAVAILABLE_BODY, type ResponseBody } from '../http/responses.js';

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

export type KoaLimiterConfig = HttpLimiterConfig<Context, KoaOnLimited, KoaRefundPredicate>;

/**
 * Sliding-window rate limiting for Koa, one atomic store call per request. The decision is
 * exposed as `ctx.state.rateLimit`.
 *
 * @example
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));
 * @throws ConfigError at construction, naming the bad option.
 */
export function rateLimit(options: KoaRateLimitOptions): Middleware {
  const config = resolveRateLimitOptions<Context, KoaOnLimited, KoaRefundPredicate>(options);
  return koaLimiter(config, singleLimitResolver(config));
}

/**
 * The middleware around a resolver: decide, expose `ctx.state.rateLimit`, then let through (with
 * quota headers), answer 429 (limited) or 503 (store failed, fail-closed). Errors of user
 * callbacks (including ConfigErrors for bad `limit(ctx)`/`cost(ctx)` values) are thrown to Koa.
 */
export function koaLimiter(config: KoaLimiterConfig, resolve: LimitRequestResolver<Context>): Middleware {
  const once = new OncePerRequest(config.callOptions.logger);
  return async function ratelockRateLimit(ctx: Context, next: Next): Promise<void> {
    if (!once.claim(ctx)) return next();
    const pending = resolve(ctx);
    const request = isThenable(pending) ? await pending : pending;
    if (request === undefined) return next();
    const callOptions = callOptionsFor(config, ctx);
    const decision = await decide(request.parts, request.cost, 'consume', callOptions, request.policies);
    ctx.state.rateLimit = decision;
    config.onDecision?.(ctx, decision);
    if (!decision.allowed) return refuse(config, decision, ctx);
    // The store failed (fail-open): we know nothing, so no quota headers and nothing to refund.
    if (decision.error !== undefined) return next();
    config.writeHeaders?.(ctx, setHeader, decision);
    if (config.refund === undefined) return next();
    return nextThenRefund(config.refund, decision, callOptions, ctx, next);
  };
}

/**
 * Runs the downstream middleware, then settles the refund on its outcome: Koa tells us exactly when
 * the work is over, also when the client has gone meanwhile. A throw is a failure (Koa answers it
 * with an error status) and is rethrown.
 */
async function nextThenRefund(refund: RefundConfig<KoaRefundPredicate>, decision: Decision, callOptions: StoreCallOptions, ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    settleRefund(decision, refund, callOptions, false, (predicate) => predicate(ctx, err));
    throw err;
  }
  settleRefund(decision, refund, callOptions, isSuccessStatus(ctx.status), (predicate) => predicate(ctx));
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: KoaLimiterConfig, decision: Decision, ctx: Context): Promise<void> {
  ctx.set('Retry-After', String(retryAfterSeconds(decision)));
  if (decision.error !== undefined) {
    send(ctx, DEFAULTS.storeErrorStatusCode, STORE_UNAVAILABLE_BODY);
    return;
  }
  config.writeHeaders?.(ctx, setHeader, decision);
  ctx.status = config.statusCode;
  if (config.onLimited !== undefined) {
    await config.onLimited(ctx, decision);
    if (ctx.body != null || ctx.res.headersSent || ctx.respond === false) return;
  }
  const built = config.message(ctx, decision, config.statusCode);
  send(ctx, config.statusCode, isThenable(built) ? await built : built);
}

function setHeader(ctx: Context, name: string, value: string): void {
  ctx.set(name, value);
}

function send(ctx: Context, status: number, body: ResponseBody): void {
  ctx.status = status;
  ctx.body = body.body;
  // After the body: Koa's body setter would otherwise guess text/plain.
  ctx.set('Content-Type', body.contentType);
}
