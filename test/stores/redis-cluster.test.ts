/**
 * RedisStore on Redis Cluster: hostile ids never split a call across slots, limits of different
 * ids (different hash tags) are decided all-or-nothing by compensation (also when a group's call
 * fails), and a master that lost the Function library is reloaded alone, with no error reaching
 * the caller — with every Cluster client RedisStore accepts (test/helpers/clients.ts). The store
 * uses the client under test; what the test reads on the cluster goes through an ioredis Cluster.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { library } from '../../src/stores/redis/bindings.js';
import { redisStoreForTests, scriptStats } from '../../src/stores/testing.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { keySlot } from '../../src/stores/redis/hash-tag.js';
import { MAX_BATCH_DECISIONS } from '../../src/stores/redis/decision-batcher.js';
import { type TestClient, clientKinds, connectClient } from '../helpers/clients.js';
import { parseInfo, sendCommand } from '../helpers/resp.js';
import { clusterNodes, newClusterClient, startRedisCluster, type RedisClusterHandle } from '../helpers/redis.js';
import { logEntries, logLength } from '../helpers/sliding-logs.js';
import { uniqueId } from '../helpers/stores.js';

function limit(id: string, name: string, max: number, windowMs = 60_000): StoreLimit {
  return { key: limitKey('rl:', id, name), windowMs, limit: max };
}

async function slotOf(cluster: Cluster, key: string): Promise<number> {
  return (await cluster.call('CLUSTER', 'KEYSLOT', key)) as number;
}

describe.each(clientKinds)('shared cluster, %s client', (kind) => {
  /** The admin view of the cluster (ioredis). */
  let cluster: Cluster;
  let tested: TestClient;
  let store: RedisStore;

  beforeAll(async () => {
    cluster = newClusterClient();
    tested = await connectClient(kind, { nodes: clusterNodes() });
    store = new RedisStore({ client: tested.client });
    await store.ready();
  });

  afterAll(async () => {
    await tested.close();
    await cluster.quit();
  });

  const hostileIds = ['', '{', '}', '}{', '{}', 'a}b', '{x}y', 'x'.repeat(1024), 'zoë 🚦 ☃ 日本語', `{${'y'.repeat(1000)}}`];

  it.each(hostileIds.map((id) => [id.length > 40 ? `${id.slice(0, 12)}… (${id.length} chars)` : JSON.stringify(id), id]))(
    'keeps both limits of id %s in one slot and counts exactly',
    async (_label, id) => {
      const scoped = `${uniqueId('hostile')}:${id}`;
      const limits = [limit(scoped, '1s', 2, 1000), limit(scoped, '1h', 100, 3_600_000)];
      expect(await slotOf(cluster, limits[0]!.key)).toBe(await slotOf(cluster, limits[1]!.key));
      const decisions = [];
      for (let i = 0; i < 3; i++) decisions.push((await store.consume(limits, 1)).allowed);
      expect(decisions).toEqual([true, true, false]);
      expect(await cluster.llen(limits[1]!.key)).toBe(2);
    },
  );

  // A review found a per-route table with rules of different ids letting fewer than its limit
  // through on Cluster: a request refused while another held a unit for its compensating refund
  // (a genuine refusal at that moment) was remembered by the refusal cache, and the refund, made
  // inside the grouped consume, did not clear it: the key stayed refused locally until T.
  it('a refusal met while a unit was held for a Cluster group’s refund is forgotten once the refund lands', async () => {
    // The export rule's quota is the larger one, so the api group (the tighter) goes first.
    const api = limit(uniqueId('api'), '1m', 2);
    const exportLimit = limit(uniqueId('export'), '1m', 3);
    expect(await slotOf(cluster, api.key)).not.toBe(await slotOf(cluster, exportLimit.key));
    for (let i = 0; i < 3; i++) expect((await store.consume([exportLimit], 1)).allowed).toBe(true); // the export rule is spent
    expect((await store.consume([api], 1)).allowed).toBe(true); // the api rule has 1 unit left
    // One turn: the export takes the api unit (first group), then the GET finds api full and is
    // refused; the export is refused by its own rule, and its api unit is refunded.
    const [exported, listed] = await Promise.all([store.consume([api, exportLimit], 1), store.consume([api], 1)]);
    expect(exported.allowed).toBe(false);
    expect(listed.allowed).toBe(false);
    expect(await cluster.llen(api.key)).toBe(1);
    // The unit is back: the next GET is decided by Redis, not by the remembered refusal.
    expect((await store.consume([api], 1)).allowed).toBe(true);
    expect((await store.consume([api], 1)).allowed).toBe(false);
  });

  // The same review's burst: 150 exports and 150 lists at once, `/api/*` 30 per 10 s and
  // `/api/export` 5. Exports whose `/api/*` group went first took `/api/*` units, most of which
  // their own rule's refusal then had refunded, too late for the lists decided meanwhile. The
  // tighter group goes first now, so a refused export never holds an `/api/*` unit.
  it('a burst over two rules of different slots lets exactly the broader rule’s quota through', async () => {
    const api = limit(uniqueId('api'), '10s', 30, 10_000);
    const exportLimit = limit(uniqueId('export'), '10s', 5, 10_000);
    expect(await slotOf(cluster, api.key)).not.toBe(await slotOf(cluster, exportLimit.key));
    const exports = Array.from({ length: 60 }, () => store.consume([api, exportLimit], 1));
    const lists = Array.from({ length: 60 }, () => store.consume([api], 1));
    const passed = (results: { allowed: boolean }[]) => results.filter((result) => result.allowed).length;
    const [exported, listed] = await Promise.all([Promise.all(exports), Promise.all(lists)]);
    expect(passed(exported)).toBeLessThanOrEqual(5);
    expect(passed(exported) + passed(listed)).toBe(30);
    expect(await logLength(cluster, api.key)).toBe(30);
    expect(await logLength(cluster, exportLimit.key)).toBe(passed(exported));
  });

  // ioredis's keyPrefix (the other clients have none).
  const prefixCases = kind === 'ioredis' ? ([
    ['a plain keyPrefix', () => `${uniqueId('tenant')}:`],
    ['a keyPrefix with a hash tag (every key in its slot)', () => `{${uniqueId('tenant')}}:`],
  ] as const) : [];
  it.each(prefixCases)('with %s, counts the same keys whether decisions go per master (keys in ARGV) or per slot (declared keys)', async (_label, prefixOf) => {
    const prefix = prefixOf();
    const prefixed = new Cluster(clusterNodes(), { keyPrefix: prefix, redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      const byMaster = new RedisStore({ client: prefixed });
      await byMaster.ready();
      const bySlot = redisStoreForTests(prefixed, { clusterGrouping: 'slot' });
      const limits = Array.from({ length: 30 }, (_, i) => limit(uniqueId(`prefixed-${i}`), '1m', 2));
      expect((await Promise.all(limits.map((one) => byMaster.consume([one], 1)))).every((result) => result.remaining === 1)).toBe(true);
      expect((await Promise.all(limits.map((one) => bySlot.consume([one], 1)))).every((result) => result.remaining === 0)).toBe(true);
      expect((await Promise.all(limits.map((one) => byMaster.peek([one], 1)))).every((result) => !result.allowed)).toBe(true);
      for (const one of limits) expect(await cluster.llen(prefix + one.key)).toBe(2);
      await bySlot.reset(limits.map((one) => one.key));
    } finally {
      prefixed.disconnect();
    }
  });

  describe('limits of different ids (different slots)', () => {
    it('writes one stamp to every group and refunds them all with it', async () => {
      const a = limit(uniqueId('a'), '1m', 5);
      const b = limit(uniqueId('b'), '1m', 5);
      const { allowed, stamp } = await store.consume([a, b], 2);
      expect(allowed).toBe(true);
      expect((await cluster.lrange(a.key, 0, -1)).map(Number)).toEqual([stamp, stamp]);
      expect((await cluster.lrange(b.key, 0, -1)).map(Number)).toEqual([stamp, stamp]);
      await store.refund([a, b], 2, stamp);
      expect([await cluster.exists(a.key), await cluster.exists(b.key)]).toEqual([0, 0]);
    });

    it('records nothing when a later group blocks, and names the blocking limit by its original index', async () => {
      const a = limit(uniqueId('a'), '1m', 5);
      const b = limit(uniqueId('b'), '1m', 1);
      const c = limit(uniqueId('c'), '1m', 5);
      expect(await store.consume([a, b, c], 1)).toMatchObject({ allowed: true, index: 1, remaining: 0 });
      const blocked = await store.consume([a, b, c], 1);
      expect(blocked).toMatchObject({ allowed: false, index: 1, remaining: 0, stamp: 0 });
      expect(blocked.retryAfterMs).toBeGreaterThan(59_000);
      expect([await logLength(cluster, a.key), await logLength(cluster, b.key), await logLength(cluster, c.key)]).toEqual([1, 1, 1]);
    });

    it('refunds the groups already recorded when a later group fails, and rethrows its error', async () => {
      const a = limit(uniqueId('a'), '1m', 5);
      const b = limit(uniqueId('b'), '1m', 5);
      const broken = limit(uniqueId('broken'), '1m', 5);
      const d = limit(uniqueId('d'), '1m', 5);
      await cluster.set(broken.key, 'not a list'); // every call on this group answers WRONGTYPE
      const failed = store.consume([a, b, broken, d], 1);
      await expect(failed).rejects.toBeInstanceOf(StoreError);
      await expect(failed).rejects.toThrow(/WRONGTYPE/);
      expect([await cluster.exists(a.key), await cluster.exists(b.key), await cluster.exists(d.key)]).toEqual([0, 0, 0]);
      expect(await store.consume([a, b, d], 1)).toMatchObject({ allowed: true, remaining: 4 });
    });

    it('still answers blocked when a group after the blocking one cannot be peeked', async () => {
      const full = limit(uniqueId('full'), '1m', 1);
      const broken = limit(uniqueId('broken'), '1m', 5);
      await store.consume([full], 1);
      await cluster.set(broken.key, 'not a list');
      const blocked = await store.consume([full, broken], 1);
      expect(blocked).toMatchObject({ allowed: false, index: 0, remaining: 0, stamp: 0 });
      expect(blocked.retryAfterMs).toBeGreaterThan(59_000);
    });

    it('picks the longest wait over all groups, as one call would', async () => {
      const short = limit(uniqueId('short'), '1s', 1, 1000);
      const long = limit(uniqueId('long'), '1h', 1, 3_600_000);
      await store.consume([short], 1);
      await store.consume([long], 1);
      const blocked = await store.consume([short, long], 1);
      expect(blocked).toMatchObject({ allowed: false, index: 1 });
      expect(blocked.retryAfterMs).toBeGreaterThan(3_590_000);
      expect(await store.peek([long, short], 1)).toMatchObject({ allowed: false, index: 0 });
    });

    it('peeks every group without writing', async () => {
      const a = limit(uniqueId('a'), '1m', 3);
      const b = limit(uniqueId('b'), '1m', 4);
      expect(await store.peek([a, b], 1)).toMatchObject({ allowed: true, index: 0, remaining: 2, stamp: 0 });
      expect([await cluster.exists(a.key), await cluster.exists(b.key)]).toEqual([0, 0]);
    });

    it('reuses the first stamp in later groups when their clock is within 1 % of the window', async () => {
      let now = 1_700_000_000_000;
      const stepping = redisStoreForTests(tested.client, { clock: () => (now += 100) }); // +100 ms per call
      const a = limit(uniqueId('a'), '1m', 5);
      const b = limit(uniqueId('b'), '1m', 5);
      const { stamp } = await stepping.consume([a, b], 1);
      expect(await logEntries(cluster, b.key)).toEqual([stamp]);
      await stepping.refund([a, b], 1, stamp);
      expect([await cluster.exists(a.key), await cluster.exists(b.key)]).toEqual([0, 0]);
    });

    it('documents a limitation: a group whose clock is off by more than 1 % of the window keeps its own stamp, and a refund leaves the request counted there', async () => {
      let now = 1_700_000_000_000;
      const stepping = redisStoreForTests(tested.client, { clock: () => (now += 1000) }); // +1 s per call
      const a = limit(uniqueId('a'), '1m', 5);
      const b = limit(uniqueId('b'), '1m', 5);
      const { stamp } = await stepping.consume([a, b], 1);
      expect(await logEntries(cluster, b.key)).toEqual([stamp + 1000]);
      await stepping.refund([a, b], 1, stamp);
      expect([await logLength(cluster, a.key), await logLength(cluster, b.key)]).toEqual([0, 1]); // conservative: never over-admits
    });

    it('resets keys of several slots', async () => {
      const a = limit(uniqueId('a'), '1m', 3);
      const b = limit(uniqueId('b'), '1m', 3);
      await store.consume([a, b], 1);
      await store.reset([a.key, b.key]);
      expect([await cluster.exists(a.key), await cluster.exists(b.key)]).toEqual([0, 0]);
    });
  });
});

describe('own cluster: one master loses the library; a turn costs one call per master', () => {
  let handle: RedisClusterHandle;
  let cluster: Cluster;
  const direct: Redis[] = [];

  beforeAll(async () => {
    handle = await startRedisCluster();
    cluster = new Cluster(
      handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    for (const node of handle.masters) direct.push(new Redis(node.url, { maxRetriesPerRequest: 1 }));
  });

  afterAll(async () => {
    for (const client of direct) client.disconnect();
    cluster.disconnect();
    await handle.stop();
  });

  async function functionLoads(node: Redis): Promise<number> {
    const match = /^cmdstat_function\|load:calls=(\d+)/m.exec(await node.info('commandstats'));
    return match ? Number(match[1]) : 0;
  }

  async function fcalls(node: Redis): Promise<number> {
    const match = /^cmdstat_fcall:calls=(\d+)/m.exec(await node.info('commandstats'));
    return match ? Number(match[1]) : 0;
  }

  // Cross-slot calls go through each client's own way to one master (ioredis: cluster.nodes();
  // node-redis: the master's node client; GLIDE: routeByAddress from the adapter's slot map).
  it.each(clientKinds)('sends a turn of decisions over keys of every master as one FCALL per master (%s client)', async (kind) => {
    const tested = await connectClient(kind, { nodes: handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })) });
    try {
      const store = new RedisStore({ client: tested.client });
      await store.ready();
      // More than one standalone call holds: on Cluster they leave at the turn's end, one call per master.
      const limits = Array.from({ length: MAX_BATCH_DECISIONS + 6 }, (_, i) => limit(uniqueId(`turn-${i}`), '1m', 5));
      const before = await Promise.all(direct.map(fcalls));
      const results = await Promise.all(limits.map((l) => store.consume([l], 1)));
      const after = await Promise.all(direct.map(fcalls));
      expect(results.every((result) => result.allowed && result.remaining === 4)).toBe(true);
      expect(after.map((calls, i) => calls - before[i]!)).toEqual([1, 1, 1]);
      for (const l of limits) expect(await logLength(cluster, l.key)).toBe(1);
    } finally {
      await tested.close();
    }
  });

  // One cluster for every client, one after another: each store loads everywhere first, then the
  // same master is flushed under it.
  it.each(clientKinds)('reloads only that master, and no call fails (%s client)', async (kind) => {
    const tested = await connectClient(kind, { nodes: handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })) });
    try {
      const store = new RedisStore({ client: tested.client });
      await store.ready();
      expect([...scriptStats(store).libraryLoads.values()]).toEqual([1, 1, 1]);
      const limits = Array.from({ length: 60 }, (_, i) => limit(uniqueId(`spread-${i}`), '1m', 10));
      const nodeOf = await Promise.all(limits.map(async (l) => cluster.slots[await slotOf(cluster, l.key)]![0]!));
      const flushed = direct[1]!;
      const flushedName = `127.0.0.1:${handle.masters[1]!.port}`;
      expect(nodeOf).toContain(flushedName); // some keys live on the flushed master

      const loadsBefore = await Promise.all(direct.map(functionLoads));
      await flushed.function('FLUSH');
      const results = await Promise.allSettled(limits.map((l) => store.consume([l], 1)));
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);

      const loadsAfter = await Promise.all(direct.map(functionLoads));
      expect(loadsAfter.map((after, i) => after - loadsBefore[i]!)).toEqual([0, 1, 0]);
      expect(scriptStats(store).libraryLoads.get(flushedName)).toBe(2);
    } finally {
      await tested.close();
    }
  });

  // The library vanishing again right after its reload (a same-named library without our functions
  // stands for it): each call, the cross-slot batch of each master too, is sent as EVAL of its own
  // code, with the Function's flags (`allow-cross-slot-keys`), and no decision fails.
  it.each(clientKinds)('sends calls as EVAL of their own code when the function is still missing after the reload (%s client)', async (kind) => {
    const tested = await connectClient(kind, { nodes: handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })) });
    try {
      const store = new RedisStore({ client: tested.client });
      await store.ready();
      const name = library.name;
      const impostor = `#!lua name=${name}\nredis.register_function('${name}_not_ours', function() return 1 end)`;
      for (const node of direct) await node.function('LOAD', 'REPLACE', impostor);
      const evals = async () => Promise.all(direct.map((node) => node.info('commandstats').then((info) => Number(/^cmdstat_eval:calls=(\d+)/m.exec(info)?.[1] ?? 0))));
      const before = await evals();
      const limits = Array.from({ length: 30 }, (_, i) => limit(uniqueId(`impostor-${i}`), '1m', 1));
      const first = await Promise.all(limits.map((l) => store.consume([l], 1)));
      const second = await Promise.all(limits.map((l) => store.consume([l], 1)));
      expect(first.map((d) => d.allowed)).toEqual(limits.map(() => true));
      expect(second.map((d) => d.allowed)).toEqual(limits.map(() => false));
      for (const l of limits) expect(await logLength(cluster, l.key)).toBe(1);
      const after = await evals();
      // At least one EVAL per master and turn (a master's share of a turn may leave as several calls).
      for (let i = 0; i < direct.length; i++) expect(after[i]! - before[i]!).toBeGreaterThanOrEqual(2);
    } finally {
      for (const node of direct) await node.function('FLUSH');
      await tested.close();
    }
  });
});

/** Polls `port` until CLUSTER INFO says the cluster is whole again (a restarted node has rejoined). */
async function untilClusterOk(port: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const info = await sendCommand(port, ['CLUSTER', 'INFO'], 500).catch(() => null);
    if (info !== null && parseInfo(info).get('cluster_state') === 'ok') return;
    if (performance.now() > deadline) throw new Error(`cluster not ok on ${port} within 10 s`);
    await sleep(20);
  }
}

describe('own cluster: a master restarted empty (RELIABILITY B4)', () => {
  let handle: RedisClusterHandle;
  let cluster: Cluster;

  beforeAll(async () => {
    handle = await startRedisCluster();
    cluster = new Cluster(handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
  });

  afterAll(async () => {
    cluster.disconnect();
    await handle.stop();
  });

  // Its data and library are gone, its slots stay (nodes.conf survives the restart): that master
  // alone gets the library again, once, and as soon as the client has reconnected no call fails.
  it.each(clientKinds)('reloads the library on that master only, and no call fails once the client is back (%s client)', async (kind) => {
    const restarted = handle.masters[2]!;
    const name = `127.0.0.1:${restarted.port}`;
    const tested = await connectClient(kind, { nodes: handle.masters.map((node) => ({ host: '127.0.0.1', port: node.port })) });
    try {
      const store = new RedisStore({ client: tested.client });
      await store.ready();
      expect(scriptStats(store).libraryLoads.get(name)).toBe(1);
      const limits = Array.from({ length: 60 }, (_, i) => limit(uniqueId(`restart-${i}`), '1m', 10));
      const there = limits.filter((l) => cluster.slots[keySlot(l.key)]![0] === name);
      expect(there.length).toBeGreaterThan(0);

      await restarted.restart();
      await untilClusterOk(restarted.port);
      // The client reconnects by its own backoff; meanwhile calls to that master fail (fast).
      const back = performance.now() + 5_000;
      while (await store.consume([there[0]!], 1).then(() => false, () => true)) {
        if (performance.now() > back) throw new Error(`${kind}: no answer from the restarted master within 5 s`);
        await sleep(50);
      }
      const results = await Promise.allSettled(limits.map((l) => store.consume([l], 1)));
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      const loadsThere = Number(/^cmdstat_function\|load:calls=(\d+)/m.exec((await sendCommand(restarted.port, ['INFO', 'commandstats'], 2_000)) ?? '')?.[1] ?? 0);
      expect(loadsThere).toBe(1); // the restarted server has seen exactly one FUNCTION LOAD
      expect(scriptStats(store).libraryLoads.get(name)).toBe(2);
      expect([...scriptStats(store).libraryLoads.values()].reduce((a, b) => a + b, 0)).toBe(4);
    } finally {
      await tested.close();
    }
  });
});

describe.each(clientKinds)('a %s Cluster client used right after it was created', (kind) => {
  it('answers the first calls (connect, node discovery and FUNCTION LOAD happen first, within budget)', async () => {
    const tested = await connectClient(kind, { nodes: clusterNodes() }, { connection: 'start' });
    try {
      const store = new RedisStore({ client: tested.client });
      const id = uniqueId('fresh-cluster');
      const limits: StoreLimit[] = [{ key: limitKey('rl:', id, '1m'), windowMs: 60_000, limit: 2 }];
      const started = performance.now();
      const results = await Promise.all([1, 2, 3].map(() => store.consume(limits, 1)));
      expect(results.map((r) => r.allowed).sort()).toEqual([false, true, true]);
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      await tested.close();
    }
  });
});
