/** ratelock: framework-agnostic core, stores and key extractors. Adapters: 'ratelock/express', 'ratelock/koa'. */
export { RateLimiter } from './core/rate-limiter.js';
export type { RateLimiterOptions, ConsumeOptions } from './core/rate-limiter.js';
export { LockGuard } from './core/lock-guard.js';
export type { LockGuardOptions, LockLease, AcquireOptions } from './core/lock-guard.js';
export { MemoryStore } from './stores/memory.js';
export type { MemoryStoreOptions } from './stores/memory.js';
export { RedisStore } from './stores/redis.js';
export type { RedisStoreOptions } from './stores/redis.js';
export { keys } from './keys.js';
export type { KeyExtractor, KeySpec } from './keys.js';
export {
  RatelockError,
  ConfigError,
  StoreError,
  StoreTimeoutError,
  LockBusyError,
  LeaseLostError,
} from './core/errors.js';
export type { RatelockErrorCode } from './core/errors.js';
export type { Decision, DecisionReason, Policy } from './core/decision.js';
export { DEFAULTS } from './core/defaults.js';
export type { Duration } from './core/duration.js';
export type { Store, StoreLimit, ConsumeResult, StoredResponse } from './core/store.js';
export type { Logger, FailureMode } from './core/store-call.js';
