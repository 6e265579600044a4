/**
 * Express `rateLimitRoutes`: limits declared as a table (e.g. loaded from JSON), matched on
 * `req.method` + `req.path` without the framework's router, so it works as `app.use()` before any
 * router. Mount it on the app: inside a mounted router `req.path` is relative to the mount point.
 */
import type { Request, RequestHandler } from 'express';
import { compileRouteTable, type RateLimitRoutesOptionsBase } from '../http/route-table.js';
import { expressLimiter, type ExpressOnLimited, type ExpressRefundPredicate } from './rate-limit.js';

/** `rateLimitRoutes()` options for Express: `routes`, `user`, and every `rateLimit` option (applied to all rules). */
export type ExpressRateLimitRoutesOptions = RateLimitRoutesOptionsBase<Request, ExpressOnLimited, ExpressRefundPredicate>;

/**
 * Per-route rate limits from one table; every rule matching a request applies, all decided in one
 * atomic store call. The decision (of the limit closest to blocking) is `req.rateLimit`.
 *
 * @example
 * app.use(rateLimitRoutes({
 *   store,
 *   user: (req) => req.user?.id,
 *   routes: [
 *     { route: 'POST /login', limit: 5, window: '15m', key: 'ip', name: 'login' },
 *     { route: '/api/*', limit: 1000, window: '1h', key: ['header:x-api-key', 'ip'] },
 *   ],
 * }));
 * @throws ConfigError at startup naming the rule index and field, e.g. `routes[1].limit must be ...`.
 */
export function rateLimitRoutes(options: ExpressRateLimitRoutesOptions): RequestHandler {
  return expressLimiter(compileRouteTable<Request, ExpressOnLimited, ExpressRefundPredicate>(options));
}
