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
import { callOptionsFor, resolveRateLimitOptions, type HttpLimiterConfig, type RateLimitOptionsBase } from '../http/options.js';
import { refundWhenDone } from '../http/refund.js';
import { STORE_UNAVAILABLE_BODY, type ResponseBody } from '../http/responses.js';

/**
 * Called on a limited request after status 429 and the headers are set. It sends its own
 * response by setting `ctx.body`; otherwise the default body is sent.
 */
export type KoaOnLimited = (ctx: Context, decision: Decision) => unknown;

/** Decides whether a finished request's cost is given back. */
export type KoaRefundPredicate = (ctx: Context) => boolean;

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
  return async function ratelockRateLimit(ctx: Context, next: Next): Promise<void> {
    const pending = resolve(ctx);
    const request = isThenable(pending) ? await pending : pending;
    if (request === undefined) return next();
    const callOptions = callOptionsFor(config, ctx);
    const decision = await decide(request.parts, request.cost, 'consume', callOptions, request.policies);
    ctx.state.rateLimit = decision;
    config.onDecision?.(ctx, decision);
    if (!decision.allowed) return refuse(config, decision, ctx);
    allow(config, decision, callOptions, ctx);
    return next();
  };
}

/** An allowed request: quota headers and the refund arrangement, unless the store failed (then we know nothing). */
function allow(config: KoaLimiterConfig, decision: Decision, callOptions: StoreCallOptions, ctx: Context): void {
  if (decision.error !== undefined) return;
  config.writeHeaders?.(ctx, setHeader, decision);
  if (config.refund !== undefined) refundWhenDone(ctx.res, decision, config.refund, callOptions, (predicate) => predicate(ctx));
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
