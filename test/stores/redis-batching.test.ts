/**
 * Coalesced decisions: the consume / peek / refund calls made in one event-loop turn go out as one
 * batch call (several when over the bounds), sent without waiting for any timer; each decision
 * gets its own result or its own error; a failed call fails each of its decisions with one
 * StoreError. On Cluster, one call per master (on its own connection), and decisions a master
 * does not serve right now are resent by slot. First with recording clients (what is sent), then
 * on own servers (INFO commandstats is server-wide), with every client RedisStore accepts:
 * exactly one FCALL for a turn's decisions, and the Lua's per-decision error handling.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { limitKey } from '../helpers/keys.js';
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { bindings } from '../../src/stores/redis/bindings.js';
import { MAX_BATCH_DECISIONS, MAX_BUSY_BATCH_DECISIONS } from '../../src/stores/redis/decision-batcher.js';
import { memoryStoreForTests, redisStoreForTests } from '../../src/stores/testing.js';
import { FAKE_NOW, decodeBatch, recordingClient, recordingCluster, scriptCalls } from '../helpers/recording-redis.js';
import { type TestClient, clientKinds, connectClient } from '../helpers/clients.js';
import { commandCalls, startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { logLength } from '../helpers/sliding-logs.js';
import { uniqueId } from '../helpers/stores.js';

function limit(id: string, max = 10, windowMs = 60_000, name = '1m'): StoreLimit {
  return { key: limitKey('rl:', id, name), windowMs, limit: max };
}

const NON_LOCAL = 'ERR Script attempted to access a non local key in a cluster node';

describe('coalescing (recording client)', () => {
  it(`sends N concurrent decisions of one turn as exactly one FCALL, in arrival order, each answered its own result`, async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    // As many as one call holds (one more leaves in a second call, see below).
    const limits = Array.from({ length: MAX_BATCH_DECISIONS }, (_, i) => limit(`client-${i}`, 10 + i));
    const results = await Promise.all(limits.map((one) => store.consume([one], 1)));
    const calls = scriptCalls(client.sent);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0]).toBe(bindings.batch.script.functionName);
    expect(decodeBatch(calls[0]!.args).decisions.map((decision) => decision.keys[0])).toEqual(limits.map((one) => one.key));
    expect(results.map((result) => result.remaining)).toEqual(limits.map((one) => one.limit - 1));
  });

  it('mixes consume, peek and refund of one turn in one call, in the order they were made', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const a = limit('a');
    const b = limit('b');
    const [consumed, peeked] = await Promise.all([store.consume([a], 2), store.peek([b, a], 1), store.refund([a], 2, FAKE_NOW)]);
    expect(consumed).toMatchObject({ allowed: true, remaining: 8, stamp: FAKE_NOW });
    expect(peeked).toMatchObject({ allowed: true, stamp: 0 });
    const calls = scriptCalls(client.sent);
    expect(calls).toHaveLength(1);
    expect(decodeBatch(calls[0]!.args).decisions.map(({ kind, keys }) => [kind, ...keys])).toEqual([
      ['c', a.key],
      ['p', b.key, a.key],
      ['r', a.key],
    ]);
  });

  it('sends each turn’s decisions in a call of its own', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    await Promise.all([store.consume([limit('a')], 1), store.consume([limit('b')], 1)]);
    await store.consume([limit('c')], 1);
    expect(scriptCalls(client.sent).map((call) => decodeBatch(call.args).decisions.length)).toEqual([2, 1]);
  });

  it('sends a lone decision without waiting for a timer (it resolves with every timer faked and frozen)', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    vi.useFakeTimers(); // fakes setTimeout, setImmediate, nextTick's neighbours: none may hold the call
    try {
      await expect(store.consume([limit('lone')], 1)).resolves.toMatchObject({ allowed: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('splits a turn over the bounds into several calls, in order, never splitting a decision', async () => {
    const client = recordingClient();
    const store = redisStoreForTests(client, { batchBounds: { maxDecisions: 3, maxArguments: 20 } });
    const one = (name: string) => [limit(name)]; // 3 + 4 arguments
    const wide = Array.from({ length: 6 }, (_, i) => limit('wide', 10, 60_000, `w${i}`)); // 3 + 24 arguments: alone
    const calls = [one('a'), one('b'), one('c'), one('d'), wide, one('e'), one('f'), one('g')];
    await Promise.all(calls.map((limits) => store.consume(limits, 1)));
    const sent = scriptCalls(client.sent).map((call) => decodeBatch(call.args).decisions.map((decision) => decision.keys[0]));
    expect(sent).toEqual([
      [limit('a').key, limit('b').key],
      [limit('c').key, limit('d').key],
      [wide[0]!.key],
      [limit('e').key, limit('f').key],
      [limit('g').key],
    ]);
  });

  it(`sends at most ${MAX_BATCH_DECISIONS} decisions per call while none awaits its reply, ${MAX_BUSY_BATCH_DECISIONS} while one does`, async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    await Promise.all(Array.from({ length: MAX_BATCH_DECISIONS + 2 * MAX_BUSY_BATCH_DECISIONS + 1 }, (_, i) => store.peek([limit(`c${i}`)], 1)));
    expect(scriptCalls(client.sent).map((call) => decodeBatch(call.args).decisions.length)).toEqual([
      MAX_BATCH_DECISIONS,
      MAX_BUSY_BATCH_DECISIONS,
      MAX_BUSY_BATCH_DECISIONS,
      1,
    ]);
  });

  it(`sends a call as soon as a turn has queued ${MAX_BATCH_DECISIONS} decisions, and the rest at the turn's end`, async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    await store.ready(); // loaded: a call is written when it is sent
    const sent = () => scriptCalls(client.sent).map((call) => decodeBatch(call.args).decisions.length);
    const early = Array.from({ length: MAX_BATCH_DECISIONS }, (_, i) => store.peek([limit(`early-${i}`)], 1));
    expect(sent()).toEqual([MAX_BATCH_DECISIONS]); // before the turn ends: Redis runs them while the turn goes on
    // The first call awaits its reply: the next one fills up to MAX_BUSY_BATCH_DECISIONS.
    const late = Array.from({ length: MAX_BATCH_DECISIONS }, (_, i) => store.peek([limit(`late-${i}`)], 1));
    expect(sent()).toEqual([MAX_BATCH_DECISIONS]);
    await Promise.all([...early, ...late]);
    expect(sent()).toEqual([MAX_BATCH_DECISIONS, MAX_BATCH_DECISIONS]);
    // Both answered: a call leaves at MAX_BATCH_DECISIONS again.
    const again = Array.from({ length: MAX_BATCH_DECISIONS }, (_, i) => store.peek([limit(`again-${i}`)], 1));
    expect(sent()).toEqual([MAX_BATCH_DECISIONS, MAX_BATCH_DECISIONS, MAX_BATCH_DECISIONS]);
    await Promise.all(again);
  });

  it('fails a decision that errs inside the script alone, with a StoreError naming its operation', async () => {
    const broken = limit('broken');
    const client = recordingClient({ answer: (decision) => (decision.keys[0] === broken.key ? 'WRONGTYPE Operation against a key holding the wrong kind of value' : undefined) });
    const store = new RedisStore({ client });
    const [before, failed, after] = await Promise.allSettled([store.consume([limit('a')], 1), store.peek([broken], 1), store.consume([limit('b')], 1)]);
    expect(before).toMatchObject({ status: 'fulfilled', value: { allowed: true } });
    expect(after).toMatchObject({ status: 'fulfilled', value: { allowed: true } });
    expect(failed.status).toBe('rejected');
    const reason = (failed as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(StoreError);
    expect(reason.message).toBe('Redis script peek failed: WRONGTYPE Operation against a key holding the wrong kind of value');
  });

  it('fails every decision of a failed call with the same StoreError', async () => {
    const client = recordingClient({ call: (command) => (command === 'FCALL' ? new Error("OOM command not allowed when used memory > 'maxmemory'.") : undefined) });
    const store = new RedisStore({ client });
    const settled = await Promise.allSettled([store.consume([limit('a')], 1), store.peek([limit('b')], 1), store.refund([limit('c')], 1, 5)]);
    const reasons = settled.map((outcome) => (outcome as PromiseRejectedResult).reason as unknown);
    expect(reasons[0]).toBeInstanceOf(StoreError);
    expect((reasons[0] as Error).message).toMatch(/^Redis script batch failed: OOM/);
    expect(new Set(reasons).size).toBe(1);
  });

  it('sends the decisions made before a reset first, as without coalescing', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const a = limit('a');
    const consumed = store.consume([a], 1);
    await store.reset([a.key]);
    await consumed;
    expect(scriptCalls(client.sent).map((call) => call.args[0])).toEqual([bindings.batch.script.functionName, bindings.reset.script.functionName]);
  });

  it('reads the caller’s limits when the turn ends and never writes them (frozen limits work)', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limits = Object.freeze([Object.freeze(limit('frozen'))]);
    await expect(store.consume(limits, 1)).resolves.toMatchObject({ allowed: true });
  });
});

describe('Cluster grouping (recording cluster, 3 masters)', () => {
  const ids = Array.from({ length: 30 }, (_, i) => `spread-${i}`);

  it('sends one cross-slot call per master, on that master’s connection, declaring no keys', async () => {
    const cluster = recordingCluster(3);
    const store = new RedisStore({ client: cluster });
    const limits = ids.map((id) => limit(id));
    await Promise.all(limits.map((one) => store.consume([one], 1)));
    const calls = scriptCalls(cluster.sent);
    const masters = [...new Set(limits.map((one) => cluster.masterOf(one.key)))].sort();
    expect(masters).toHaveLength(3);
    expect(calls.map((call) => call.to).sort()).toEqual(masters);
    for (const call of calls) {
      expect(call.args.slice(0, 2)).toEqual([bindings.batchCrossSlot.script.functionName, 0]);
      const keys = decodeBatch(call.args).decisions.map((decision) => decision.keys[0]!);
      expect(keys).toEqual(limits.map((one) => one.key).filter((key) => cluster.masterOf(key) === call.to));
    }
  });

  it('sends a master’s lone decision through the Cluster client, by its key', async () => {
    const cluster = recordingCluster(3);
    const store = new RedisStore({ client: cluster });
    await store.consume([limit('alone')], 1);
    expect(scriptCalls(cluster.sent).map((call) => [call.to, call.args[0]])).toEqual([['client', bindings.batch.script.functionName]]);
  });

  it('resends by slot, through the Cluster client, only the decisions whose key the master does not serve now', async () => {
    const moved = limit(ids[0]!);
    const cluster = recordingCluster(3, { answer: (decision, to) => (decision.keys[0] === moved.key && to !== 'client' ? NON_LOCAL : undefined) });
    const store = new RedisStore({ client: cluster });
    const neighbour = ids.map((id) => limit(id)).find((one) => one.key !== moved.key && cluster.masterOf(one.key) === cluster.masterOf(moved.key))!;
    const results = await Promise.all([store.consume([moved], 1), store.consume([neighbour], 1)]);
    expect(results.map((result) => result.allowed)).toEqual([true, true]);
    const calls = scriptCalls(cluster.sent).map((call) => [call.to, call.args[0], decodeBatch(call.args).decisions.map((decision) => decision.keys[0])]);
    expect(calls).toEqual([
      [cluster.masterOf(moved.key), bindings.batchCrossSlot.script.functionName, [moved.key, neighbour.key]],
      ['client', bindings.batch.script.functionName, [moved.key]],
    ]);
  });

  it.each([
    ['READONLY', new Error("READONLY You can't write against a read only replica."), true],
    ['a closed connection', new Error('Connection is closed.'), true],
    ['OOM', new Error("OOM command not allowed when used memory > 'maxmemory'."), false],
  ])('a cross-slot call refused as a whole (%s): resent by slot if it cannot have run, else failed', async (_label, error, resent) => {
    const cluster = recordingCluster(3, { call: (_command, _args, to) => (to === 'client' ? undefined : error) });
    const store = new RedisStore({ client: cluster });
    const limits = ids.map((id) => limit(id));
    const settled = await Promise.allSettled(limits.map((one) => store.consume([one], 1)));
    if (resent) {
      expect(settled.every((outcome) => outcome.status === 'fulfilled')).toBe(true);
      expect(scriptCalls(cluster.sent).filter((call) => call.to === 'client')).toHaveLength(limits.length); // one slot each
    } else {
      expect(settled.every((outcome) => outcome.status === 'rejected' && (outcome.reason as Error).message.includes('OOM'))).toBe(true);
      expect(scriptCalls(cluster.sent).filter((call) => call.to === 'client')).toHaveLength(0);
    }
  });

  it('groups by slot when told to (and so on servers without Functions): one keyed call per slot', async () => {
    for (const settings of [{ clusterGrouping: 'slot' as const }, { mode: 'eval' as const }]) {
      const cluster = recordingCluster(3);
      const store = redisStoreForTests(cluster, settings);
      const id = 'same-tag';
      await Promise.all([store.consume([limit(id, 5, 1_000, '1s')], 1), store.consume([limit(id, 5, 60_000, '1m')], 1), store.consume([limit('other')], 1)]);
      const calls = scriptCalls(cluster.sent);
      expect(calls.map((call) => [call.to, decodeBatch(call.args).decisions.length])).toEqual([
        ['client', 2],
        ['client', 1],
      ]);
    }
  });
});

describe.each(clientKinds)('own server, %s client', (kind) => {
  let server: RedisServerHandle;
  let admin: Redis;
  let tested: TestClient;
  let now = 1_750_000_000_000;
  let store: RedisStore;

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    tested = await connectClient(kind, { url: server.url });
    store = redisStoreForTests(tested.client, { clock: () => now });
    await store.ready();
  });

  afterAll(async () => {
    await tested.close();
    admin.disconnect();
    await server.stop();
  });

  const fcalls = (): Promise<number> => commandCalls(admin, 'fcall');

  it(`decides ${MAX_BATCH_DECISIONS + MAX_BUSY_BATCH_DECISIONS + 4} concurrent consumes of one turn in three FCALLs, exactly`, async () => {
    const quota = MAX_BATCH_DECISIONS + 5; // runs out in the second call
    const shared = limit(uniqueId('shared'), quota);
    const before = await fcalls();
    const results = await Promise.all(Array.from({ length: MAX_BATCH_DECISIONS + MAX_BUSY_BATCH_DECISIONS + 4 }, () => store.consume([shared], 1)));
    // A full call, a full call made while the first awaited its reply, then the turn's rest, in order.
    expect((await fcalls()) - before).toBe(3);
    expect(results.filter((result) => result.allowed)).toHaveLength(quota);
    // One after another: remaining counts down, then blocked with the oldest entry's wait.
    expect(results.slice(0, quota).map((result) => result.remaining)).toEqual(Array.from({ length: quota }, (_, i) => quota - 1 - i));
    expect(results[quota]).toEqual({ allowed: false, index: 0, remaining: 0, resetMs: 60_000, retryAfterMs: 60_000, stamp: 0, nextQuotaMs: 60_000 });
    expect(await admin.llen(shared.key)).toBe(quota);
  });

  it('gives a turn of interleaved consume / peek / refund on shared keys what MemoryStore gives them one by one', async () => {
    const memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    const id = uniqueId('mixed');
    const perSecond = { ...limit(id, 3, 1_000, '1s') };
    const perMinute = { ...limit(id, 5, 60_000, '1m'), cost: 2 };
    const stamps = new Map<string, number>();
    now += 1_000_000;
    const first = await store.consume([perSecond, perMinute], 1);
    const firstMemory = await memory.consume([perSecond, perMinute], 1);
    expect(first).toEqual(firstMemory);
    stamps.set('first', first.stamp);
    now += 10;
    const turn = (target: Pick<RedisStore, 'consume' | 'peek' | 'refund'>) =>
      Promise.all([
        target.consume([perSecond], 1),
        target.peek([perSecond, perMinute], 2),
        target.consume([perMinute, perSecond], 1),
        target.refund([perSecond, perMinute], 1, stamps.get('first')!),
        target.consume([perSecond, perMinute], 1),
        target.consume([perSecond], 2),
        target.peek([perMinute], 1),
      ]);
    const before = await fcalls();
    const batched = await turn(store);
    expect((await fcalls()) - before).toBe(1);
    expect(batched).toEqual(await turn(memory));
    memory.close();
  });

  it('reads the store time once per call: every consume of a call on fresh logs gets the same stamp', async () => {
    const plain = new RedisStore({ client: tested.client });
    const results = await Promise.all(Array.from({ length: MAX_BATCH_DECISIONS }, () => plain.consume([limit(uniqueId('fresh'))], 1)));
    expect(new Set(results.map((result) => result.stamp)).size).toBe(1);
  });

  // Most decisions of a call over many keys are a first look at a one-limit log: consume_one_log
  // decides them, and leaves a refused one's state to check_limits instead of reading it again.
  it('reads each log of a turn over many keys once, the refused ones included, and answers as MemoryStore does', async () => {
    const memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    now += 1_000_000;
    const limits = Array.from({ length: 12 }, (_, i) => limit(uniqueId(`first-look-${i}`), 3, 1_000, '1s'));
    // Every other log is full (refused next); the rest hold two entries (a LIST, room for one).
    for (const [i, one] of limits.entries()) {
      const entries = i % 2 === 0 ? 3 : 2;
      expect(await store.consume([one], entries)).toEqual(await memory.consume([one], entries));
    }
    now += 400;
    const lranges = (): Promise<number> => commandCalls(admin, 'lrange');
    const before = await lranges();
    const batched = await Promise.all(limits.map((one) => store.consume([one], 1)));
    expect((await lranges()) - before).toBe(limits.length);
    expect(batched.map((result) => result.allowed)).toEqual(limits.map((_, i) => i % 2 === 1));
    expect(batched).toEqual(await Promise.all(limits.map((one) => memory.consume([one], 1))));
    memory.close();
  });

  // A log longer than TAIL_READ (4) learns its length from the push that writes the request
  // (LPUSH answers it) instead of asking LLEN first; a push that finds no room is taken back.
  it('asks a long log no LLEN, takes back a push that finds no room, and answers as MemoryStore does', async () => {
    const memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    now += 1_000_000;
    const limits = Array.from({ length: 6 }, (_, i) => limit(uniqueId(`long-log-${i}`), 8, 1_000, '1s'));
    const consumeBoth = async (one: StoreLimit, cost: number) => expect(await store.consume([one], cost)).toEqual(await memory.consume([one], cost));
    for (const one of limits) await consumeBoth(one, 1);
    now += 500;
    for (const one of limits) await consumeBoth(one, 6);
    now += 501; // the first entry expires and stays at the tail (EXPIRED_KEPT, 1): length ≠ count
    // Every other log is then full (8 in the window: refused next), the rest hold 7 (room for one).
    for (const [i, one] of limits.entries()) await consumeBoth(one, i % 2 === 0 ? 2 : 1);
    now += 100;
    const calls = (command: string): Promise<number> => commandCalls(admin, command);
    const [llen, lpop] = [await calls('llen'), await calls('lpop')];
    const batched = await Promise.all(limits.map((one) => store.consume([one], 1)));
    expect([(await calls('llen')) - llen, (await calls('lpop')) - lpop]).toEqual([0, limits.length / 2]);
    expect(batched.map((result) => result.allowed)).toEqual(limits.map((_, i) => i % 2 === 1));
    expect(batched).toEqual(await Promise.all(limits.map((one) => memory.consume([one], 1))));
    // The refused logs are as they were (1 expired + 8), the allowed ones hold the new entry.
    expect(await Promise.all(limits.map((one) => logLength(admin, one.key)))).toEqual(limits.map(() => 9));
    memory.close();
  });

  it('fails a decision that meets a key of another type alone: those before and after it are decided and recorded', async () => {
    const before = limit(uniqueId('before'));
    const broken = limit(uniqueId('broken'));
    const after = limit(uniqueId('after'));
    await admin.set(broken.key, 'not a list');
    const settled = await Promise.allSettled([store.consume([before], 1), store.consume([after, broken], 1), store.consume([after], 1)]);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((settled[1] as PromiseRejectedResult).reason as Error).message).toMatch(/^Redis script consume failed: WRONGTYPE/);
    expect([await logLength(admin, before.key), await logLength(admin, after.key)]).toEqual([1, 1]); // the failed one wrote nothing
    expect((settled[2] as PromiseFulfilledResult<ConsumeResult>).value.remaining).toBe(9);
  });

  it('fails a one-limit consume that meets a key of another type alone (its short path too)', async () => {
    const before = limit(uniqueId('before'));
    const broken = limit(uniqueId('broken'));
    await admin.hset(broken.key, 'field', '1');
    const settled = await Promise.allSettled([store.consume([before], 1), store.consume([broken], 1), store.consume([before], 1)]);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((settled[1] as PromiseRejectedResult).reason as Error).message).toMatch(/^Redis script consume failed: WRONGTYPE/);
    expect((settled[2] as PromiseFulfilledResult<ConsumeResult>).value.remaining).toBe(8);
    expect(await admin.hgetall(broken.key)).toEqual({ field: '1' });
  });

  it('fails every decision of a call Redis refuses (OOM) with the same StoreError, and writes nothing', async () => {
    const limits = Array.from({ length: 5 }, () => limit(uniqueId('oom')));
    await admin.config('SET', 'maxmemory', '1');
    let settled: PromiseSettledResult<ConsumeResult>[];
    try {
      settled = await Promise.allSettled(limits.map((one) => store.consume([one], 1)));
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    const reasons = settled.map((outcome) => (outcome as PromiseRejectedResult).reason as Error);
    expect(reasons.every((reason) => reason instanceof StoreError && /OOM/.test(reason.message))).toBe(true);
    expect(new Set(reasons).size).toBe(1);
    for (const one of limits) expect(await admin.exists(one.key)).toBe(0);
  });
});
