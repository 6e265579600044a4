/** Koa (2 and 3) adapter: rateLimit, rateLimitRoutes, withLock. */
export { rateLimit } from './adapters/koa/rate-limit.js';
export { rateLimitRoutes } from './adapters/koa/routes.js';
export { withLock } from './adapters/koa/with-lock.js';
export * from './index.js';
