/**
 * Koa `rateLimitRoutes`: limits declared as a table (e.g. loaded from JSON), matched on
 * `ctx.method` + `ctx.path` without a router, so it works as `app.use()` before any router, and
 * on the whole original path inside an app mounted with koa-mount.
 */
import type { Context, Middleware } from 'koa';
import { compileRouteTable, type RateLimitRoutesOptionsBase, type RouteAccess } from '../http/route-table.js';
import { koaLimiter, type KoaOnLimited, type KoaRefundPredicate } from './rate-limit.js';

/** `rateLimitRoutes()` options for Koa: `routes`, `user`, and every `rateLimit` option (applied to all rules). */
export type KoaRateLimitRoutesOptions = RateLimitRoutesOptionsBase<Context, KoaOnLimited, KoaRefundPredicate>;

/**
 * Per-route rate limits from one table; every rule matching a request applies, all decided in one
 * atomic store call. The decision (of the limit closest to blocking) is `ctx.state.rateLimit`.
 *
 * @example
 * app.use(rateLimitRoutes({
 *   store,
 *   routes: [{ route: 'POST /login', limit: 5, window: '15m', key: 'ip', name: 'login' }],
 * }));
 * @throws ConfigError at startup naming the rule index and field, e.g. `routes[1].limit must be ...`.
 */
export function rateLimitRoutes(options: KoaRateLimitRoutesOptions): Middleware {
  return koaLimiter(compileRouteTable<Context, KoaOnLimited, KoaRefundPredicate>(options, KOA_ROUTE));
}

// koa-mount rewrites `ctx.path` to be relative to its prefix (and sets `ctx.mountPath`): there the
// rules match the original request-target, as they would with the table on the outer app.
const KOA_ROUTE: RouteAccess<Context> = {
  method: (ctx) => ctx.method,
  path: (ctx) => ((ctx as { mountPath?: string }).mountPath === undefined ? ctx.path : ctx.originalUrl),
};
