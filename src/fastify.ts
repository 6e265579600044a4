/** Fastify 5 adapter: the rateLimit and rateLimitRoutes plugins, withLock — plus everything from 'ratelock'. */
export { rateLimit } from './adapters/fastify/rate-limit.js';
export type { FastifyRateLimitOptions, FastifyRouteRateLimitOptions, FastifyOnLimited, FastifyRefundPredicate } from './adapters/fastify/rate-limit.js';
export type { FastifyLimiterHook } from './adapters/fastify/plugin.js';
export { rateLimitRoutes } from './adapters/fastify/routes.js';
export type { FastifyRateLimitRoutesOptions } from './adapters/fastify/routes.js';
export { withLock } from './adapters/fastify/with-lock.js';
export type { FastifyWithLockOptions, FastifyOnBusy, FastifyLockedHandler, FastifyLockHook, BusyInfo, LockInfo } from './adapters/fastify/with-lock.js';
export type { HeaderMode } from './adapters/http/headers.js';
export type { RouteRule } from './adapters/http/route-table.js';
export type { ReplayOptions } from './adapters/http/lock-options.js';
export * from './index.js';
