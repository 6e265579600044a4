/**
 * What the core worker measures and sends back to the driver. Kept free of library imports, so the
 * driver loads none of the code it measures.
 */
import type { RedisSnapshot } from '../sys/redis-stats.js';

export type LimiterImpl = 'ratelock-memory' | 'ratelock-redis' | 'rlf-redis';
export type LockImpl = 'ratelock-lockguard' | 'redis-semaphore-mutex';

export const LIMITER_IMPLS: readonly LimiterImpl[] = ['ratelock-memory', 'ratelock-redis', 'rlf-redis'];
export const LOCK_IMPLS: readonly LockImpl[] = ['ratelock-lockguard', 'redis-semaphore-mutex'];

export const LIMITER_LABEL: Record<LimiterImpl, string> = {
  'ratelock-memory': 'ratelock RateLimiter, MemoryStore',
  'ratelock-redis': 'ratelock RateLimiter, RedisStore',
  'rlf-redis': 'rate-limiter-flexible RateLimiterRedis',
};
export const LOCK_LABEL: Record<LockImpl, string> = {
  'ratelock-lockguard': 'ratelock LockGuard',
  'redis-semaphore-mutex': 'redis-semaphore Mutex',
};

export interface CoreSample {
  kind: 'limiter' | 'lock';
  impl: LimiterImpl | LockImpl;
  /** Distinct keys (limiters); locks use one key per caller. */
  keyCount: number;
  concurrency: number;
  round: number;
  opsPerSecond: number;
  nodeCpuUs: number;
  redis: RedisSnapshot;
  failures: number;
}

export interface CoreWorkerConfig {
  redisUrl: string;
  rounds: number;
  seconds: number;
  concurrency: number[];
  keyCounts: number[];
  lockConcurrency: number[];
}

export const RESULT_PREFIX = 'CORE_RESULT ';
