/**
 * Clients created with `enableOfflineQueue: false` (a common ioredis setting, so that commands
 * never pile up while Redis is away): `ready()` still waits for the connection, and calls made
 * during the client's first connection attempt still wait for it within their budget, instead of
 * failing at once ("Stream isn't writeable") and leaving the first locks 503 and limiters open.
 */
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { LockGuard } from '../../src/core/lock-guard.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { RedisStore } from '../../src/stores/redis.js';
import { clusterNodes, redisUrl } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const clients: (Redis | Cluster)[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

const kinds = [
  ['standalone', () => new Redis(redisUrl(), { enableOfflineQueue: false })],
  ['cluster', () => new Cluster(clusterNodes(), { enableOfflineQueue: false })],
] as const;

describe.each(kinds)('%s client with enableOfflineQueue: false', (_kind, connect) => {
  function freshClient(): Redis | Cluster {
    const client = connect();
    clients.push(client);
    return client;
  }

  it('ready() waits for the connection and loads the scripts', async () => {
    const store = new RedisStore({ client: freshClient() });
    await expect(store.ready()).resolves.toBeUndefined();
  });

  it('a lock acquired right after new Redis() waits for the first connection instead of failing', async () => {
    const store = new RedisStore({ client: freshClient() });
    const lease = await new LockGuard({ store, ttl: '5s', timeout: 2_000 }).acquire(uniqueId('offline-queue'));
    expect(lease.fence).toBeGreaterThan(0);
    await lease.release();
  });

  it('a limiter used right after new Redis() decides on Redis instead of failing open', async () => {
    const store = new RedisStore({ client: freshClient() });
    const limiter = new RateLimiter({ store, limit: 1, window: '1m', timeout: 2_000 });
    const id = uniqueId('offline-queue');
    const [first, second] = await Promise.all([limiter.consume(id), limiter.consume(id)]);
    expect([first!.reason, second!.reason].sort()).toEqual(['allowed', 'limited']);
  });
});
