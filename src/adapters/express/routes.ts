/**
 * Express `rateLimitRoutes`: limits declared as a table (e.g. loaded from JSON), matched on
 * `req.method` + the whole path (`req.baseUrl + req.path`) without the framework's router, so it
 * works as `app.use()` before any router, and mounted on a path or inside a router too.
 */
import type { Request, RequestHandler } from 'express';
import { compileRouteTable, type RateLimitRoutesOptionsBase, type RouteAccess } from '../http/route-table.js';
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
  return expressLimiter(compileRouteTable<Request, ExpressOnLimited, ExpressRefundPredicate>(options, EXPRESS_ROUTE));
}

// Mounted (`app.use('/api', table)`, a Router), Express makes `req.path` relative to the mount
// point: a review found every rule silently missing there. `baseUrl` is that mount point.
const EXPRESS_ROUTE: RouteAccess<Request> = { method: (req) => req.method, path: (req) => req.baseUrl + req.path };
