/**
 * `npm run bench:core`: decisions/s of the core RateLimiter without HTTP (MemoryStore, RedisStore),
 * 50 concurrent callers, hot key and random keys; plus Redis memory per key (MEMORY USAGE) of a log
 * filled to limit 10 / 100 / 1 000 / 10 000. Starts its own throwaway redis-server (or REDIS_URL).
 */
import { Redis } from 'ioredis';
import { MemoryStore, RateLimiter, RedisStore, type Store } from '../src/index.js';
import { limitKey } from '../src/core/keyspace.js';
import { startRedisServer } from '../test/helpers/redis.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CALLERS = 50;

async function decisionsPerSecond(store: Store, limit: number, keyFor: (i: number) => string): Promise<number> {
  const limiter = new RateLimiter({ store, limit, window: '1m', timeout: 5_000 });
  const deadline = performance.now() + SECONDS * 1000;
  let decisions = 0;
  const caller = async (id: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await limiter.consume(keyFor(id * 1_000_000 + i));
      decisions++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, (_, id) => caller(id)));
  return decisions / ((performance.now() - started) / 1000);
}

async function memoryPerKey(redis: Redis, store: Store, limit: number): Promise<number> {
  const limiter = new RateLimiter({ store, limit, window: '1h', prefix: 'mem:', timeout: 5_000 });
  const id = `memory-${limit}`;
  for (let done = 0; done < limit; done += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, limit - done) }, () => limiter.consume(id)));
  }
  return Number(await redis.call('MEMORY', 'USAGE', limitKey('mem:', id, limiter.policies[0]!.name), 'SAMPLES', '0'));
}

const server = process.env.REDIS_URL ? undefined : await startRedisServer();
const url = process.env.REDIS_URL ?? server!.url;
const redis = new Redis(url);
const client = new Redis(url, { enableAutoPipelining: true });
try {
  const stores: Array<[string, Store]> = [
    ['MemoryStore', new MemoryStore()],
    ['RedisStore', new RedisStore({ client })],
  ];
  console.log(`core decisions/s, ${CALLERS} concurrent callers, ${SECONDS} s each, Node ${process.version}\n`);
  console.log('| store | hot key, allowed | hot key, blocked | random keys |');
  console.log('|---|---:|---:|---:|');
  for (const [name, store] of stores) {
    await redis.flushdb();
    const hot = await decisionsPerSecond(store, 1_000_000_000, () => 'hot');
    const blocked = await decisionsPerSecond(store, 1, () => 'hot-blocked');
    const random = await decisionsPerSecond(store, 100, (i) => `k${i}`);
    console.log(`| ${name} | ${Math.round(hot)} | ${Math.round(blocked)} | ${Math.round(random)} |`);
  }
  console.log('\nRedis memory per key (MEMORY USAGE … SAMPLES 0, log filled to its limit with cost-1 requests)\n');
  console.log('| limit | bytes/key |');
  console.log('|---:|---:|');
  for (const limit of [10, 100, 1_000, 10_000]) {
    console.log(`| ${limit} | ${await memoryPerKey(redis, stores[1]![1], limit)} |`);
  }
} finally {
  redis.disconnect();
  client.disconnect();
  await server?.stop();
}
