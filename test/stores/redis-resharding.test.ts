/**
 * Live resharding: the hot key's slot is resharded live (MIGRATING/IMPORTING + MIGRATE) while a
 * limiter keeps deciding on it. ioredis follows ASK/MOVED and retries TRYAGAIN; the limit must
 * stay exact and no decision may fail. Then the same with turns of decisions over keys of every
 * master, coalesced into one cross-slot call per master: the keys of the moving slot (some of
 * them moved, some not yet) fail in those calls and are resent by slot. Runs on a cluster of its
 * own (slots are moved), shared by every Cluster client RedisStore accepts, one after another,
 * each on keys (slots) of its own. node-redis follows ASK and MOVED itself and the store's adapter
 * retries TRYAGAIN; GLIDE follows all three; ioredis too.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { limitKey } from '../helpers/keys.js';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { keySlot } from '../../src/stores/redis/hash-tag.js';
import { type ClientKind, clientKinds, connectClient } from '../helpers/clients.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis.js';

const LIMIT = 150;
const REQUESTS = 250;

describe('live resharding of a limited key, on one throwaway cluster', () => {
  let cluster: RedisClusterHandle;
  let admins: Redis[];
  /** Reads keys wherever they live (ioredis Cluster), apart from the client under test. */
  let reader: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    admins = cluster.masters.map((node) => new Redis(node.url, { maxRetriesPerRequest: 1 }));
    reader = new Cluster(nodesOf(cluster), { redisOptions: { maxRetriesPerRequest: 1 } });
  });

  afterAll(async () => {
    for (const admin of admins) admin.disconnect();
    reader.disconnect();
    await cluster.stop();
  });

  describe.each(clientKinds)('%s client', (kind: ClientKind) => {
    it('keeps the limit exact with no failed decision while the slot moves', async () => {
      const tested = await connectClient(kind, { nodes: nodesOf(cluster) });
      try {
        const store = new RedisStore({ client: tested.client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: LIMIT, window: '1m', timeout: 2_000 });
        const id = `resharded-client-${kind}`;
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
        await tested.close();
      }
    }, 60_000);

    // The same cluster: each case moves a slot of its own keys and leaves the map consistent.
    it('keeps every key exact with no failed decision while one slot moves key by key', async () => {
      const tested = await connectClient(kind, { nodes: nodesOf(cluster) });
      try {
        const store = new RedisStore({ client: tested.client });
        await store.ready();
        const QUOTA = 40;
        const TURNS = 70;
        const limitOf = (key: string): StoreLimit => ({ key, windowMs: 60_000, limit: QUOTA });
        // Keys of one hash tag of our own, so that several keys share the slot that moves.
        const moving = `{moving-${kind}}`;
        const slot = keySlot(moving);
        const movingLimits = ['a', 'b', 'c', 'd'].map((name) => limitOf(`rl:${moving}:${name}`));
        const spread = Array.from({ length: 30 }, (_, i) => limitOf(`rl:{spread-${kind}-${i}}:1m`));
        // Per turn: each moving key alone, two moving keys in one decision, and keys of every master.
        const decisions: StoreLimit[][] = [...movingLimits.map((one) => [one]), [movingLimits[0]!, movingLimits[1]!], ...spread.map((one) => [one])];

        const ids = await Promise.all(admins.map(async (admin) => String(await admin.call('CLUSTER', 'MYID'))));
        const owner = await ownerOf(admins, slot);
        const target = (owner + 1) % admins.length;
        const outcomes: Promise<ConsumeResult>[][] = decisions.map(() => []);
        const traffic = (async () => {
          for (let turn = 0; turn < TURNS; turn++) {
            decisions.forEach((limits, i) => outcomes[i]!.push(store.consume(limits, 1)));
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })();

        await new Promise((resolve) => setTimeout(resolve, 60)); // the keys exist before the move
        const source = admins[owner]!;
        await admins[target]!.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[owner]!);
        await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[target]!);
        const port = cluster.masters[target]!.port;
        for (;;) {
          const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 1)) as string[];
          if (keys.length === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 40)); // turns meet the slot half moved
          await source.call('MIGRATE', '127.0.0.1', port, '', 0, 5_000, 'KEYS', ...keys);
        }
        for (const admin of admins) await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[target]!);
        await traffic;

        const settled = await Promise.all(outcomes.map((results) => Promise.allSettled(results)));
        const failures = settled.flat().filter((outcome) => outcome.status === 'rejected');
        expect(failures.map((outcome) => String((outcome as PromiseRejectedResult).reason))).toEqual([]);
        const allowed = settled.map((results) => results.filter((outcome) => outcome.status === 'fulfilled' && outcome.value.allowed).length);
        // a and b are also charged by the decision that takes both: QUOTA in all, shared.
        expect(allowed.slice(2, 4)).toEqual([QUOTA, QUOTA]);
        expect(allowed[0]! + allowed[4]!).toBe(QUOTA);
        expect(allowed[1]! + allowed[4]!).toBe(QUOTA);
        expect(allowed.slice(5)).toEqual(spread.map(() => QUOTA));
        for (const one of [...movingLimits, ...spread]) expect(await reader.llen(one.key)).toBe(QUOTA);
        expect(await ownerOf(admins, slot)).toBe(target);
      } finally {
        await tested.close();
      }
    }, 60_000);
  });
});

function nodesOf(cluster: RedisClusterHandle): { host: string; port: number }[] {
  return cluster.masters.map((node) => ({ host: '127.0.0.1', port: node.port }));
}

/** Index of the master that serves `slot`. */
async function ownerOf(admins: readonly Redis[], slot: number): Promise<number> {
  const ranges = (await admins[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
  const port = range[2][1];
  for (let i = 0; i < admins.length; i++) if (admins[i]!.options.port === port) return i;
  throw new Error(`no master serves port ${port}`);
}
