/**
 * Express (4 and 5) rate limiting: `rateLimit(options)` and the middleware shared with
 * `rateLimitRoutes`. Only HTTP translation lives here: the options are parsed in
 * `../http/limiter-options.ts`, the decision is core's RateLimiter's.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { isThenable, type Decision } from '../../core/index.js';
import { STORE_UNAVAILABLE_ANSWER, passes } from '../http/answers.js';
import { retryAfterSeconds } from '../http/headers.js';
import { resolveRateLimit, type HttpLimiter, type RateLimitOptionsBase } from '../http/limiter-options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { refundWhenDone } from '../http/refund.js';
import { sendAnswer, setHeader } from './send-answer.js';

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

/** Decides whether a request's cost is given back, once its response's outcome is known. */
export type ExpressRefundPredicate = (req: Request, res: Response) => boolean;

/** `rateLimit()` options for Express; see the README for each option. */
export type ExpressRateLimitOptions = RateLimitOptionsBase<Request, ExpressOnLimited, ExpressRefundPredicate>;

export type ExpressLimiter = HttpLimiter<Request, ExpressOnLimited, ExpressRefundPredicate>;

/**
 * Sliding-window rate limiting for Express, one atomic store call per request.
 *
 * @example
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));                       // per client IP
 * app.post('/login', rateLimit({ store, limit: 5, window: '15m', key: [keys.header('x-api-key'), keys.ip()] }), login);
 * @throws ConfigError at construction, naming the bad option.
 */
export function rateLimit(options: ExpressRateLimitOptions): RequestHandler {
  return expressLimiter(resolveRateLimit<Request, ExpressOnLimited, ExpressRefundPredicate>(options));
}

/**
 * The middleware of a configured limiter: decide, expose `req.rateLimit`, then let through (with
 * quota headers), answer 429 (limited) or 503 (store failed, fail-closed); a shadow decision always
 * lets through. Errors of user
 * callbacks (including ConfigErrors for bad `limit(req)`/`cost(req)` values) go to `next(err)`.
 * One async function per request: the allowed path awaits only the resolver (when a callback is
 * async) and the store.
 */
export function expressLimiter(config: ExpressLimiter): RequestHandler {
  const once = new OncePerRequest(config.limiter.logger);
  return async function ratelockRateLimit(req: Request, res: Response, next: NextFunction): Promise<void> {
    if (!once.claim(req)) return next();
    let pass = true;
    try {
      const pending = config.resolve(req);
      const request = isThenable(pending) ? await pending : pending;
      if (request !== undefined) {
        const decided = config.limiter.decideNow(request, req, 'consume', 'express');
        const decision = isThenable(decided) ? await decided : decided;
        req.rateLimit = decision;
        config.onDecision?.(req, decision);
        pass = passes(decision);
        if (pass) allow(config, decision, req, res);
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
function allow(config: ExpressLimiter, decision: Decision, req: Request, res: Response): void {
  if (decision.error !== undefined) return;
  config.writeHeaders?.(res, setHeader, decision);
  if (config.refund !== undefined) refundWhenDone(config.limiter, decision, config.refund, req, res, (predicate) => predicate(req, res));
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: ExpressLimiter, decision: Decision, req: Request, res: Response): Promise<void> {
  if (decision.error !== undefined) return sendAnswer(res, STORE_UNAVAILABLE_ANSWER);
  res.setHeader('Retry-After', String(retryAfterSeconds(decision)));
  config.writeHeaders?.(res, setHeader, decision);
  res.statusCode = config.statusCode;
  if (config.onLimited !== undefined) {
    await config.onLimited(req, res, decision);
    if (res.headersSent || res.writableEnded) return;
  }
  const built = config.message(req, decision, config.statusCode);
  sendAnswer(res, isThenable(built) ? await built : built);
}
