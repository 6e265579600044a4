/**
 * Fastify `rateLimitRoutes`: limits declared as a table (e.g. loaded from JSON), registered as a
 * plugin without encapsulation: `fastify.register(rateLimitRoutes, { routes })`. The table is
 * matched on `request.method` + the request-target (every path a router may read it as) on every request of the
 * instance, not-found ones included, without Fastify's router; unmatched requests are untouched.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { compileRouteTable, type RateLimitRoutesOptionsBase, type RouteAccess } from '../http/route-table.js';
import { withoutEncapsulation, type FastifyLimiterHook } from './plugin.js';
import { decorateRequest, fastifyLimiter, pluginSettings, type FastifyLimiterHandler, type FastifyOnLimited, type FastifyRefundPredicate } from './rate-limit.js';

/** `fastify.register(rateLimitRoutes, options)`: `routes`, `user`, every rateLimit option (applied to all rules), and `hook`. */
export interface FastifyRateLimitRoutesOptions extends RateLimitRoutesOptionsBase<FastifyRequest, FastifyOnLimited, FastifyRefundPredicate> {
  /** The hook the table runs in. @default 'onRequest' */
  hook?: FastifyLimiterHook | undefined;
}

// The whole request-target: Fastify's router decodes it, cuts it at `#` and takes an absolute
// form's path, and the route matcher reads it every way a router may (routingPaths).
const FASTIFY_ROUTE: RouteAccess<FastifyRequest> = {
  method: (request) => request.method,
  path: (request) => request.url,
};

/** Registrations with the same options object share their table (see `pluginLimiters`). */
const byOptions = new WeakMap<object, { readonly hook: FastifyLimiterHook; readonly handler: FastifyLimiterHandler }>();

/** The table of a registration with `options`, validated and compiled on first use; a ConfigError names the rule and field. */
export function routeTableHook(options: FastifyRateLimitRoutesOptions): { readonly hook: FastifyLimiterHook; readonly handler: FastifyLimiterHandler } {
  const known = options !== null && typeof options === 'object' ? byOptions.get(options) : undefined;
  if (known !== undefined) return known;
  const { hook, rest } = pluginSettings(options);
  const table = compileRouteTable<FastifyRequest, FastifyOnLimited, FastifyRefundPredicate>(rest as never, FASTIFY_ROUTE);
  const compiled = { hook, handler: fastifyLimiter(table) };
  byOptions.set(options, compiled);
  return compiled;
}

function rateLimitRoutesPlugin(fastify: FastifyInstance, options: FastifyRateLimitRoutesOptions, done: (err?: Error) => void): void {
  try {
    const { hook, handler } = routeTableHook(options);
    decorateRequest(fastify, 'rateLimit');
    fastify.addHook(hook, handler);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

/**
 * Per-route rate limits from one table; every rule matching a request applies, all decided in one
 * atomic store call. The decision (of the limit closest to blocking) is `request.rateLimit`.
 *
 * @example
 * await fastify.register(rateLimitRoutes, {
 *   store,
 *   user: (request) => request.user?.id,
 *   routes: [
 *     { route: 'POST /login', limit: 5, window: '15m', key: 'ip', name: 'login' },
 *     { route: '/api/*', limit: 1000, window: '1h', key: ['header:x-api-key', 'ip'] },
 *   ],
 * });
 * @throws ConfigError when registered, naming the rule index and field, e.g. `routes[1].limit must be ...`.
 */
export const rateLimitRoutes = withoutEncapsulation(rateLimitRoutesPlugin, 'ratelock-rate-limit-routes');
