/** Koa (2 and 3) adapter: rateLimit, rateLimitRoutes, withLock — plus everything from 'ratelock'. */
export { rateLimit } from './adapters/koa/rate-limit.js';
export type { KoaRateLimitOptions, KoaOnLimited, KoaRefundPredicate, RateLimitState } from './adapters/koa/rate-limit.js';
export { rateLimitRoutes } from './adapters/koa/routes.js';
export type { KoaRateLimitRoutesOptions } from './adapters/koa/routes.js';
export { withLock } from './adapters/koa/with-lock.js';
export type { KoaWithLockOptions, KoaOnBusy, KoaLockedHandler, BusyInfo, LockInfo, LockState } from './adapters/koa/with-lock.js';
export type { HeaderMode } from './adapters/http/headers.js';
export type { RouteRule } from './adapters/http/route-table.js';
export type { ReplayOptions } from './adapters/http/lock-options.js';
export * from './index.js';
