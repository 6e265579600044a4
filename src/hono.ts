/**
 * Hono 4 adapter (on Node with @hono/node-server): rateLimit, rateLimitRoutes, withLock and
 * trustProxy middleware — plus everything from 'ratelock'. Loads no @hono/node-server module.
 */
export { rateLimit } from './adapters/hono/rate-limit.js';
export type { HonoRateLimitOptions, HonoOnLimited, HonoRefundPredicate, RateLimitVariables, RateLimitEnv } from './adapters/hono/rate-limit.js';
export { rateLimitRoutes } from './adapters/hono/routes.js';
export type { HonoRateLimitRoutesOptions } from './adapters/hono/routes.js';
export { withLock } from './adapters/hono/with-lock.js';
export type { HonoWithLockOptions, HonoOnBusy, HonoLockedHandler, LockVariables, LockEnv, BusyInfo, LockInfo } from './adapters/hono/with-lock.js';
export { trustProxy } from './adapters/hono/request-view.js';
export type { TrustProxyOptions } from './adapters/hono/request-view.js';
export type { HeaderMode } from './adapters/http/headers.js';
export type { RouteRule } from './adapters/http/route-table.js';
export type { ReplayOptions } from './adapters/http/lock-options.js';
export * from './index.js';

import type { RateLimitVariables } from './adapters/hono/rate-limit.js';
import type { LockVariables } from './adapters/hono/with-lock.js';

/** The Env of an app using both ratelock guards: `new Hono<RatelockEnv>()`, then `c.get('rateLimit')` and `c.get('lock')` are typed. */
export type RatelockEnv = { Variables: RateLimitVariables & LockVariables };
