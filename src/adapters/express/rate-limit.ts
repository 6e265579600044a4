/**
 * Express (4 and 5) rate limiting: `rateLimit(options)` and the response path shared with
 * `rateLimitRoutes`. Only HTTP translation lives here: parsing is in `../http/options.ts`, the
 * decision in core.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { decide, type StoreCallOptions } from '../../core/decide.js';
import type { Decision } from '../../core/decision.js';
import { DEFAULTS } from '../../core/defaults.js';
import { isThenable } from '../../core/options.js';
import { retryAfterSeconds } from '../http/headers.js';
import { singleLimitResolver, type LimitRequestResolver } from '../http/limit-request.js';
import { callOptionsFor, resolveRateLimitOptions, type HttpLimiterConfig, type RateLimitOptionsBase } from '../http/options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { refundWhenDone } from '../http/refund.js';
import { STORE_UNAVAILABLE_BODY, type ResponseBody } from '../http/responses.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The rate-limit decision of the last ratelock limiter that ran on this request. */
      rateLimit?: Decision | undefined;
    }
  }
}

/** Called on a limited request after the headers are set; may send its own response (else the default is sent). */
export type ExpressOnLimited = (req: Request, res: Response, decision: Decision) => unknown;

/** Decides whether a finished request's cost is given back. */
export type ExpressRefundPredicate = (req: Request, res: Response) => boolean;

/** `rateLimit()` options for Express; see the README for each option. */
export type ExpressRateLimitOptions = RateLimitOptionsBase<Request, ExpressOnLimited, ExpressRefundPredicate>;

export type ExpressLimiterConfig = HttpLimiterConfig<Request, ExpressOnLimited, ExpressRefundPredicate>;

/**
 * Sliding-window rate limiting for Express, one atomic store call per request.
 *
 * @example
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));                       // per client IP
 * app.post('/login', rateLimit({ store, limit: 5, window: '15m', key: [keys.header('x-api-key'), keys.ip()] }), login);
 * @throws ConfigError at construction, naming the bad option.
 */
export function rateLimit(options: ExpressRateLimitOptions): RequestHandler {
  const config = resolveRateLimitOptions<Request, ExpressOnLimited, ExpressRefundPredicate>(options);
  return expressLimiter(config, singleLimitResolver(config));
}

/**
 * The middleware around a resolver: decide, expose `req.rateLimit`, then let through (with quota
 * headers), answer 429 (limited) or 503 (store failed, fail-closed). Errors of user callbacks
 * (including ConfigErrors for bad `limit(req)`/`cost(req)` values) go to `next(err)`.
 * One async function per request: the allowed path awaits only the resolver (when a callback is
 * async) and the store.
 */
export function expressLimiter(config: ExpressLimiterConfig, resolve: LimitRequestResolver<Request>): RequestHandler {
  const once = new OncePerRequest(config.callOptions.logger);
  return async function ratelockRateLimit(req: Request, res: Response, next: NextFunction): Promise<void> {
    if (!once.claim(req)) return next();
    let pass = true;
    try {
      const pending = resolve(req);
      const request = isThenable(pending) ? await pending : pending;
      if (request !== undefined) {
        const callOptions = callOptionsFor(config, req);
        const decision = await decide(request.parts, request.cost, 'consume', callOptions, request.policies);
        req.rateLimit = decision;
        config.onDecision?.(req, decision);
        pass = decision.allowed;
        if (pass) allow(config, decision, callOptions, req, res);
        else await refuse(config, decision, req, res);
      }
    } catch (err) {
      next(err);
      return;
    }
    // Outside the try: an error thrown by a later handler is not ours to report.
    if (pass) next();
  };
}

/** An allowed request: quota headers and the refund arrangement, unless the store failed (then we know nothing). */
function allow(config: ExpressLimiterConfig, decision: Decision, callOptions: StoreCallOptions, req: Request, res: Response): void {
  if (decision.error !== undefined) return;
  config.writeHeaders?.(res, setHeader, decision);
  if (config.refund !== undefined) refundWhenDone(res, decision, config.refund, callOptions, (predicate) => predicate(req, res));
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: ExpressLimiterConfig, decision: Decision, req: Request, res: Response): Promise<void> {
  res.setHeader('Retry-After', String(retryAfterSeconds(decision)));
  if (decision.error !== undefined) {
    send(res, DEFAULTS.storeErrorStatusCode, STORE_UNAVAILABLE_BODY);
    return;
  }
  config.writeHeaders?.(res, setHeader, decision);
  res.statusCode = config.statusCode;
  if (config.onLimited !== undefined) {
    await config.onLimited(req, res, decision);
    if (res.headersSent || res.writableEnded) return;
  }
  const built = config.message(req, decision, config.statusCode);
  send(res, config.statusCode, isThenable(built) ? await built : built);
}

function setHeader(res: Response, name: string, value: string): void {
  res.setHeader(name, value);
}

function send(res: Response, status: number, body: ResponseBody): void {
  res.statusCode = status;
  res.setHeader('Content-Type', body.contentType);
  res.end(body.body);
}
