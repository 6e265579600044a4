/** Express (4 and 5) adapter: rateLimit, rateLimitRoutes, withLock — plus everything from 'ratelock'. */
export { rateLimit } from './adapters/express/rate-limit.js';
export type { ExpressRateLimitOptions, ExpressOnLimited, ExpressRefundPredicate } from './adapters/express/rate-limit.js';
export { rateLimitRoutes } from './adapters/express/routes.js';
export type { ExpressRateLimitRoutesOptions } from './adapters/express/routes.js';
export { withLock } from './adapters/express/with-lock.js';
export type { ExpressWithLockOptions, ExpressOnBusy, ExpressLockedHandler, BusyInfo, LockInfo } from './adapters/express/with-lock.js';
export type { HeaderMode } from './adapters/http/headers.js';
export type { RouteRule } from './adapters/http/route-table.js';
export type { ReplayOptions } from './adapters/http/lock-options.js';
export * from './index.js';
