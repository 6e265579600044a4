/**
 * What the core bench compares, through public entry points only:
 * - limiters: ratelock `RateLimiter.consume` (MemoryStore; RedisStore on an ioredis client at its
 *   defaults) vs rate-limiter-flexible's `RateLimiterRedis.consume` on the same Redis; allow path.
 * - locks: ratelock `LockGuard` acquire + release vs redis-semaphore's `Mutex` acquire + release,
 *   each caller on its own key (no contention: the cost of a free lock).
 */
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { Mutex } from 'redis-semaphore';
import type { RateLimiter } from '../../src/index.js';
import { loadCore } from '../library.js';
import type { Operation } from './drive.js';
import type { LimiterImpl, LockImpl } from './results.js';

// A limit never reached in a 1 s window: logs trim and expire as in a long-running service.
const LIMIT = 1_000_000_000;
const WINDOW_MS = 1_000;

async function defaultClient(url: string): Promise<Redis> {
  const client = new Redis(url);
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

export interface Subjects {
  limiter(impl: LimiterImpl, keyCount: number): Operation;
  lock(impl: LockImpl, concurrency: number): Operation;
  close(): void;
}

/** One client per library, created once and idle while the others are measured. */
export async function createSubjects(redisUrl: string): Promise<Subjects> {
  const { LockGuard, MemoryStore, RateLimiter, RedisStore } = await loadCore();
  const clients = await Promise.all([0, 1, 2, 3].map(() => defaultClient(redisUrl)));
  const [ratelockClient, rlfClient, lockClient, mutexClient] = clients as [Redis, Redis, Redis, Redis];
  const limiters: Record<LimiterImpl, (key: string) => Promise<boolean>> = {
    'ratelock-memory': consumer(new RateLimiter({ store: new MemoryStore(), limit: LIMIT, window: WINDOW_MS })),
    'ratelock-redis': consumer(new RateLimiter({ store: new RedisStore({ client: ratelockClient }), limit: LIMIT, window: WINDOW_MS })),
    'rlf-redis': (() => {
      const rlf = new RateLimiterRedis({ storeClient: rlfClient, points: LIMIT, duration: WINDOW_MS / 1000 });
      return async (key: string) => (await rlf.consume(key), true);
    })(),
  };
  const guard = new LockGuard({ store: new RedisStore({ client: lockClient }) });

  return {
    limiter(impl, keyCount) {
      const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
      const consume = limiters[impl];
      let next = 0;
      // Keys round-robin over all callers, so 10 000 keys are all in use whatever the concurrency.
      return () => consume(keys[next++ % keyCount]!);
    },
    lock(impl, concurrency) {
      const keys = Array.from({ length: concurrency }, (_, i) => `lock-${i}`);
      if (impl === 'ratelock-lockguard') {
        return async (caller) => {
          const lease = await guard.acquire(keys[caller]!);
          await lease.release();
          return true;
        };
      }
      const mutexes = keys.map((key) => new Mutex(mutexClient, key));
      return async (caller) => {
        const mutex = mutexes[caller]!;
        await mutex.acquire();
        await mutex.release();
        return true;
      };
    },
    close() {
      for (const client of clients) client.disconnect();
    },
  };
}

function consumer(limiter: RateLimiter): (key: string) => Promise<boolean> {
  // A store failure fails open (allowed, reason 'store-error'/'store-timeout'): count it as a failure.
  return async (key) => (await limiter.consume(key)).reason === 'allowed';
}
