/**
 * Live resharding: the hot key's slot is resharded live (MIGRATING/IMPORTING + MIGRATE) while a
 * limiter keeps deciding on it. ioredis follows ASK/MOVED and retries TRYAGAIN; the limit must
 * stay exact and no decision may fail. Runs on a cluster of its own (slots are moved).
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { limitKey } from '../../src/core/store-keys.js';
import { RedisStore } from '../../src/stores/redis.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis.js';

const LIMIT = 150;
const REQUESTS = 250;

describe('live resharding of the limited key', () => {
  let cluster: RedisClusterHandle;
  let admins: Redis[];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    admins = cluster.masters.map((node) => new Redis(node.url, { maxRetriesPerRequest: 1 }));
  });

  afterAll(async () => {
    for (const admin of admins) admin.disconnect();
    await cluster.stop();
  });

  it('keeps the limit exact with no failed decision while the slot moves', async () => {
    const client = new Cluster(cluster.masters.map((node) => ({ host: '127.0.0.1', port: node.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      const store = new RedisStore({ client });
      await store.ready();
      const limiter = new RateLimiter({ store, limit: LIMIT, window: '1m', timeout: 2_000 });
      const id = 'resharded-client';
      const key = limitKey('rl:', id, limiter.policies[0]!.name);
      const slot = Number(await admins[0]!.call('CLUSTER', 'KEYSLOT', key));

      const ids = await Promise.all(admins.map(async (admin) => String(await admin.call('CLUSTER', 'MYID'))));
      const owner = await ownerOf(admins, slot);
      const target = (owner + 1) % admins.length;

      // Traffic: ~200 decisions/s on the key while the slot migrates.
      const decisions: Promise<Awaited<ReturnType<RateLimiter['consume']>>>[] = [];
      const traffic = (async () => {
        for (let i = 0; i < REQUESTS; i++) {
          decisions.push(limiter.consume(id));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();

      await new Promise((resolve) => setTimeout(resolve, 300)); // some entries exist before the move
      const source = admins[owner]!;
      const destination = admins[target]!;
      await destination.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[owner]!);
      await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[target]!);
      await new Promise((resolve) => setTimeout(resolve, 200)); // decisions meet ASK redirections meanwhile
      const port = cluster.masters[target]!.port;
      for (;;) {
        const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        await source.call('MIGRATE', '127.0.0.1', port, '', 0, 5_000, 'KEYS', ...keys);
      }
      for (const admin of admins) await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[target]!);
      await traffic;

      const settled = await Promise.all(decisions);
      expect(settled.filter((decision) => decision.error !== undefined).map((decision) => decision.error!.message)).toEqual([]);
      expect(settled.filter((decision) => decision.allowed)).toHaveLength(LIMIT);
      expect(await ownerOf(admins, slot)).toBe(target);
    } finally {
      client.disconnect();
    }
  }, 60_000);
});

/** Index of the master that serves `slot`. */
async function ownerOf(admins: readonly Redis[], slot: number): Promise<number> {
  const ranges = (await admins[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
  const port = range[2][1];
  for (let i = 0; i < admins.length; i++) if (admins[i]!.options.port === port) return i;
  throw new Error(`no master serves port ${port}`);
}
