/**
 * Hono `rateLimitRoutes`: limits declared as a table (e.g. loaded from JSON), matched on
 * `c.req.method` + `c.req.path` without Hono's router, so it works as `app.use()` before any route.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { compileRouteTable, type RateLimitRoutesOptionsBase, type RouteAccess } from '../http/route-table.js';
import { honoLimiter, type HonoOnLimited, type HonoRefundPredicate, type RateLimitEnv } from './rate-limit.js';

/** `rateLimitRoutes()` options for Hono: `routes`, `user`, and every `rateLimit` option (applied to all rules). */
export type HonoRateLimitRoutesOptions = RateLimitRoutesOptionsBase<Context, HonoOnLimited, HonoRefundPredicate>;

const HONO_ROUTE: RouteAccess<Context> = { method: (c) => c.req.method, path: (c) => c.req.path };

/**
 * Per-route rate limits from one table; every rule matching a request applies, all decided in one
 * atomic store call. The decision (of the limit closest to blocking) is `c.get('rateLimit')`.
 *
 * @example
 * app.use(rateLimitRoutes({
 *   store,
 *   user: (c) => c.get('user')?.id,
 *   routes: [{ route: 'POST /login', limit: 5, window: '15m', key: 'ip', name: 'login' }],
 * }));
 * @throws ConfigError at startup naming the rule index and field, e.g. `routes[1].limit must be ...`.
 */
export function rateLimitRoutes(options: HonoRateLimitRoutesOptions): MiddlewareHandler<RateLimitEnv> {
  return honoLimiter(compileRouteTable<Context, HonoOnLimited, HonoRefundPredicate>(options, HONO_ROUTE));
}
