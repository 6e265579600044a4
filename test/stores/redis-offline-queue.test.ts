/**
 * Clients whose offline queue is off (ioredis `enableOfflineQueue: false`, node-redis
 * `disableOfflineQueue: true`: common settings, so that commands never pile up while Redis is away;
 * GLIDE has no offline queue and is made with `lazyConnect`), used right after they were created,
 * their first connection still under way: `ready()` waits for the connection, and calls made
 * meanwhile wait for it within their budget instead of failing at once ("Stream isn't writeable",
 * "Client is offline") and leaving the first locks 503 and limiters open. On every client,
 * standalone and Cluster.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LockGuard } from '../../src/core/lock-guard.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { RedisStore } from '../../src/stores/redis.js';
import { type TestClient, clientKinds, connectClient } from '../helpers/clients.js';
import { clusterNodes, redisUrl } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

const cases = clientKinds.flatMap((kind) => [
  [kind, 'standalone'],
  [kind, 'cluster'],
] as const);

describe.each(cases)('%s %s client without an offline queue, used right after it was created', (kind, topology) => {
  async function freshClient(): Promise<TestClient> {
    const target = topology === 'standalone' ? { url: redisUrl() } : { nodes: clusterNodes() };
    const client = await connectClient(kind, target, { connection: 'start', offlineQueue: false });
    clients.push(client);
    return client;
  }

  it('ready() waits for the connection and loads the scripts', async () => {
    const store = new RedisStore({ client: (await freshClient()).client });
    await expect(store.ready()).resolves.toBeUndefined();
  });

  it('a lock acquired right after the client was created waits for the first connection instead of failing', async () => {
    const store = new RedisStore({ client: (await freshClient()).client });
    const lease = await new LockGuard({ store, ttl: '5s', timeout: 2_000 }).acquire(uniqueId('offline-queue'));
    expect(lease.fence).toBeGreaterThan(0);
    await lease.release();
  });

  it('a limiter used right after the client was created decides on Redis instead of failing open', async () => {
    const store = new RedisStore({ client: (await freshClient()).client });
    const limiter = new RateLimiter({ store, limit: 1, window: '1m', timeout: 2_000 });
    const id = uniqueId('offline-queue');
    const [first, second] = await Promise.all([limiter.consume(id), limiter.consume(id)]);
    expect([first!.reason, second!.reason].sort()).toEqual(['allowed', 'limited']);
  });
});
