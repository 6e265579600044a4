/**
 * Express (4 and 5) rate limiting: `rateLimit(options)` and the response path shared with
 * `rateLimitRoutes`. Only HTTP translation lives here: parsing is in `../http/options.ts`, the
 * decision in core.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Decision } from '../../core/decision.js';
import { DEFAULTS } from '../../core/defaults.js';
import { retryAfterSeconds } from '../http/headers.js';
import {
  decideRequest,
  isStoreFailureDecision,
  isThenable,
  singleLimitResolver,
  type LimitRequestResolver,
} from '../http/limit-request.js';
import { resolveRateLimitOptions, type HttpLimiterConfig, type RateLimitOptionsBase } from '../http/options.js';
import { refundWhenDone } from '../http/refund.js';
import { STORE_UNAVAILABLE_BODY, type ResponseBody } from '../http/responses.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The rate-limit decision of the last ratelock limiter that ran on this request. */
      rateLimit?: Decision;
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
 */
export function expressLimiter(config: ExpressLimiterConfig, resolve: LimitRequestResolver<Request>): RequestHandler {
  return async function ratelockRateLimit(req: Request, res: Response, next: NextFunction): Promise<void> {
    let pass: boolean;
    try {
      pass = await handle(config, resolve, req, res);
    } catch (err) {
      next(err);
      return;
    }
    // Outside the try: an error thrown by a later handler is not ours to report.
    if (pass) next();
  };
}

/** Returns `true` when the request may go on to the next handler. */
async function handle(config: ExpressLimiterConfig, resolve: LimitRequestResolver<Request>, req: Request, res: Response): Promise<boolean> {
  const pending = resolve(req);
  const request = isThenable(pending) ? await pending : pending;
  if (request === undefined) return true;
  const decision = await decideRequest(config, request, req);
  req.rateLimit = decision;
  config.onDecision?.(req, decision);
  const storeFailed = isStoreFailureDecision(decision);
  if (decision.allowed) {
    // After a store failure we know nothing about the quota: no quota headers.
    if (!storeFailed) config.writeHeaders?.(res, setHeader, decision);
    if (config.refund !== undefined && !storeFailed) {
      refundWhenDone(res, decision, config.refund, config.callOptions, config.logger, (predicate) => predicate(req, res));
    }
    return true;
  }
  res.setHeader('Retry-After', String(retryAfterSeconds(decision)));
  if (storeFailed) {
    send(res, DEFAULTS.storeErrorStatusCode, STORE_UNAVAILABLE_BODY);
    return false;
  }
  config.writeHeaders?.(res, setHeader, decision);
  res.statusCode = config.statusCode;
  if (config.onLimited !== undefined) {
    await config.onLimited(req, res, decision);
    if (res.headersSent || res.writableEnded) return false;
  }
  const built = config.message(req, decision, config.statusCode);
  send(res, config.statusCode, isThenable(built) ? await built : built);
  return false;
}

function setHeader(res: Response, name: string, value: string): void {
  res.setHeader(name, value);
}

function send(res: Response, status: number, body: ResponseBody): void {
  res.statusCode = status;
  res.setHeader('Content-Type', body.contentType);
  res.end(body.body);
}
