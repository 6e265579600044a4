/** Express (4 and 5) adapter: rateLimit, rateLimitRoutes, withLock. */
export { rateLimit } from './adapters/express/rate-limit.js';
export { rateLimitRoutes } from './adapters/express/routes.js';
export { withLock } from './adapters/express/with-lock.js';
export * from './index.js';
