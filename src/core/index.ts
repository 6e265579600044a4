/**
 * The core façade: everything the adapters and the key extractors use from core, in one place.
 * They import core only from here, so what core offers them is this list, and core's inner
 * layout can change without touching them. Core itself imports no store, no framework, no adapter.
 */
export { RateLimiter, requestRateLimiter, resolveLimiterSettings, resolveShadowMode, LIMITER_STORE_OPTIONS } from './rate-limiter.js';
export type { RateLimiterOptions, ConsumeOptions, LimiterStoreOptions, LimiterSettings } from './rate-limiter.js';
export { singleLimitResolver, unlessSkipped, costOf } from './limit-request.js';
export type { LimitRequest, LimitRequestResolver, LimitPart, CostOption, SingleLimitSettings } from './limit-request.js';
export { resolveLimits, staticPolicies, policiesFor, validateCost, validateLimitValue, validateAlgorithm, resolveBlock, claimLogs, MAX_COST, MAX_LIMIT } from './limits.js';
export type { LimitDefinition, ResolvedLimit, DynamicLimit, BlockOptions, PenaltyBoxSettings } from './limits.js';
export type { Algorithm, Decision, DecisionReason, LimitMode, Policy } from './decision.js';
export { DECISION_CHANNEL, LOCK_CHANNEL, decisionOutcome } from './metrics.js';
export type { DecisionMessage, DecisionOutcome, DecisionSource, LockMessage, LockOutcomeName } from './metrics.js';

export { LockGuard } from './lock-guard.js';
export type { LockGuardOptions, AcquireOptions } from './lock-guard.js';
export { IdempotencyGuard } from './idempotency-guard.js';
export type { IdempotencyGuardOptions, BeginOptions } from './idempotency-guard.js';
export type { IdempotencyLease } from './idempotency/record.js';
export type { LockLease, LeaseState, AutoExtendOptions, AutoExtension } from './lock/lease.js';
export { parseWait, MIN_LEASE_TTL_MS } from './lock/options.js';
export { RequestLock, claimLeaseEnd, lockInfo, reportLeaseProblem } from './request-lock.js';
export type { LockMode, RequestLockSettings, LockRequestReadings, LockOutcome, HeldLease, KeyReading, BusyInfo, LockInfo } from './request-lock.js';

export type { Store, RateLimitStore, LockStore, IdempotencyStore, StoreLimit, ConsumeResult, StoredResponse } from './store.js';
export { digest, validatePrefix, MAX_PREFIX_LENGTH } from './store-keys.js';
export type { Logger, FailureMode, OnStoreError, StoreFailure } from './store-call.js';
export { provideDefaultStore } from './default-store.js';

export { RatelockError, ConfigError, StoreError, StoreTimeoutError, LockBusyError, LeaseLostError, isStoreFailure } from './errors.js';
export type { RatelockErrorCode } from './errors.js';
export { DEFAULTS } from './defaults.js';
export { formatValue, formatDuration, parseDuration } from './duration.js';
export type { Duration } from './duration.js';
export { readOptions, optionNames, optionalFunction, isThenable, validateOnStoreError, validateLogger } from './options.js';
export type { OptionNames, Awaitable } from './options.js';
