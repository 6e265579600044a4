/**
 * ratelock: framework-agnostic core, stores and key extractors. Adapters: 'ratelock/express',
 * 'ratelock/koa' (each re-exports all of this).
 *
 * The entry points choose the default store (core must not import a concrete one): guards built
 * without a `store` option share one process-wide MemoryStore.
 */
import { provideDefaultStore } from './core/index.js';
import { getDefaultStore } from './stores/default-store.js';

provideDefaultStore(getDefaultStore);

export { RateLimiter, LockGuard } from './core/index.js';
export type {
  RateLimiterOptions,
  ConsumeOptions,
  LockGuardOptions,
  AcquireOptions,
  LockLease,
  LeaseState,
  AutoExtendOptions,
  AutoExtension,
} from './core/index.js';
export { MemoryStore } from './stores/memory.js';
export type { MemoryStoreOptions } from './stores/memory.js';
export { RedisStore } from './stores/redis.js';
export type { RedisStoreOptions } from './stores/redis.js';
export { keys } from './keys/index.js';
export type { KeyExtractor, KeySpec, KeyValue, IpKeyOptions } from './keys/index.js';
export { RatelockError, ConfigError, StoreError, StoreTimeoutError, LockBusyError, LeaseLostError } from './core/index.js';
export type { RatelockErrorCode } from './core/index.js';
export type { Algorithm, BlockOptions, Decision, DecisionReason, LimitDefinition, LimitMode, Policy } from './core/index.js';
export { DECISION_CHANNEL, LOCK_CHANNEL } from './core/index.js';
export type { DecisionMessage, DecisionOutcome, DecisionSource, LockMessage, LockOutcomeName } from './core/index.js';
export { enableOpenTelemetry } from './metrics/opentelemetry.js';
export type { OpenTelemetryOptions, OpenTelemetryMetrics, MeterProviderLike, MeterLike, MetricAttributes } from './metrics/opentelemetry.js';
export { DEFAULTS } from './core/index.js';
export type { Duration } from './core/index.js';
export type { Store, RateLimitStore, LockStore, IdempotencyStore, StoreLimit, ConsumeResult, StoredResponse } from './core/index.js';
export type { LockKeys, IdempotencyKeys, IdempotencyRun, LockAcquireResult, IdempotencyBeginResult } from './core/store.js';
export type { Logger, FailureMode, OnStoreError, StoreFailure } from './core/index.js';
