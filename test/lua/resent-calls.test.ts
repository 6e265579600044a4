/**
 * A batch call that arrives twice (a client re-sends a command whose reply its lost connection
 * never delivered) is decided once: the second arrival answers the first one's reply and writes
 * nothing (lua/batch.lua, call records). A lock release, an idempotency abort or complete that
 * arrives twice answers true both times (lua/prelude.lua, mark_settled; the record's `settled`
 * field), where a second, separate call still answers false. Sent here as raw FCALLs with the
 * very same arguments, on the shared standalone Redis and on the shared cluster.
 */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { type Binding, type BatchDecision, bindings } from '../../src/stores/redis/bindings.js';
import type { RedisArgument } from '../../src/stores/redis/client.js';
import { decodeMsgpackArray } from '../../src/stores/redis/msgpack.js';
import { idempotencyKeys, lockKeys } from '../../src/core/store-keys.js';
import { limitKey } from '../helpers/keys.js';
import { newClusterClient, newRedisClient } from '../helpers/redis.js';
import { logLength } from '../helpers/sliding-logs.js';
import { uniqueId } from '../helpers/stores.js';

let client: Redis;
let cluster: Cluster;

beforeAll(async () => {
  client = newRedisClient();
  cluster = newClusterClient();
  await Promise.all([new RedisStore({ client }).ready(), new RedisStore({ client: cluster }).ready()]);
});

afterAll(async () => {
  client.disconnect();
  cluster.disconnect();
});

/** The FCALL arguments of one batch call, built by the binding itself (so they carry a fresh call id). */
function batchCall(decisions: readonly BatchDecision[]): RedisArgument[] {
  const keys: RedisArgument[] = [];
  bindings.batch.appendKeys(keys, decisions);
  const args: RedisArgument[] = [bindings.batch.script.functionName, keys.length, ...keys];
  bindings.batch.appendArgv(args, decisions, '');
  return args;
}

/** A batch reply (packed, see lua/batch.lua) as its array. */
async function unpacked(reply: Promise<unknown>): Promise<unknown[]> {
  return decodeMsgpackArray((await reply) as Buffer);
}

function limit(max: number, name = '1h'): StoreLimit {
  return { key: limitKey('rl:', uniqueId('resent'), name), windowMs: 3_600_000, limit: max };
}

describe.each([
  ['standalone', () => client as Redis | Cluster],
  ['cluster', () => cluster as Redis | Cluster],
])('a batch call re-sent (%s)', (_name, redis) => {
  it('consume: the second arrival answers the first reply and adds no entry', async () => {
    const a = limit(5);
    const b = limit(1);
    const call = batchCall([
      { kind: 'consume', limits: [a], cost: 1, stamp: undefined },
      { kind: 'consume', limits: [a], cost: 2, stamp: undefined },
    ]);
    const first = await redis().call('FCALL', ...call);
    const again = await redis().call('FCALL', ...call);
    expect(again).toEqual(first);
    expect(await redis().llen(a.key)).toBe(3);
    // A call on another key (and slot) keeps its own record.
    const other = batchCall([{ kind: 'consume', limits: [b], cost: 1, stamp: undefined }]);
    await redis().call('FCALL', ...other);
    expect(await redis().call('FCALL', ...other)).toEqual(await redis().call('FCALL', ...other));
    expect(await logLength(redis(), b.key)).toBe(1);
  });

  it('a fresh call with the same decisions is decided anew (the id, not the content, marks a resend)', async () => {
    const a = limit(5);
    const decisions: BatchDecision[] = [{ kind: 'consume', limits: [a], cost: 1, stamp: undefined }];
    await redis().call('FCALL', ...batchCall(decisions));
    await redis().call('FCALL', ...batchCall(decisions));
    expect(await redis().llen(a.key)).toBe(2);
  });

  it('refund: the second arrival gives nothing back again', async () => {
    const a = limit(10);
    const stamp = 1_700_000_000_000;
    await redis().rpush(a.key, ...Array.from({ length: 4 }, () => String(stamp)));
    await redis().pexpire(a.key, 60_000);
    const call = batchCall([{ kind: 'refund', limits: [a], cost: 1, stamp }]);
    // A call of refunds only reads no store time: 0 heads its reply.
    expect(await unpacked(redis().callBuffer('FCALL', ...call))).toEqual([0, 1]);
    expect(await unpacked(redis().callBuffer('FCALL', ...call))).toEqual([0, 1]);
    expect(await redis().llen(a.key)).toBe(3);
  });

  it('keeps its record ≤ 10 s, in the slot of the call\u2019s first key; a call that only peeks keeps none', async () => {
    const a = limit(5);
    const call = batchCall([{ kind: 'consume', limits: [a], cost: 1, stamp: undefined }]);
    const id = String(call[4]);
    await redis().call('FCALL', ...call);
    const tag = /\{([^}]+)\}/.exec(a.key)![1]!;
    const record = `{${tag}}#call:${id}`;
    const ttl = await redis().pttl(record);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    const peek = batchCall([{ kind: 'peek', limits: [a], cost: 1, stamp: undefined }]);
    expect(peek[4]).toBe('');
    expect(await unpacked(redis().callBuffer('FCALL', ...peek))).toHaveLength(1 + 7);
  });
});

/** The FCALL arguments of one call of `binding`, built by the binding itself (a fresh call id each time). */
function callOf<Input>(binding: Binding<Input, unknown>, input: Input): RedisArgument[] {
  const args: RedisArgument[] = [binding.script.functionName, 0];
  binding.appendKeys(args, input);
  args[1] = args.length - 2;
  binding.appendArgv(args, input, '');
  return args;
}

describe.each([
  ['standalone', () => client as Redis | Cluster],
  ['cluster', () => cluster as Redis | Cluster],
])('a call that settles a lease, re-sent (%s)', (_name, redis) => {
  const store = () => new RedisStore({ client: redis() });

  it('lock release: the second arrival answers released too, and leaves a later holder\u2019s lock alone; a separate release answers false', async () => {
    const keys = lockKeys('rs:', uniqueId('release'));
    expect((await store().acquireLock(keys, 'holder', 5_000)).acquired).toBe(true);
    const release = callOf(bindings.lockRelease, { keys, token: 'holder' });
    expect(await redis().call('FCALL', ...release)).toBe(1);
    expect(await redis().exists(keys.lock)).toBe(0);
    expect((await store().acquireLock(keys, 'next', 5_000)).acquired).toBe(true);
    expect(await redis().call('FCALL', ...release)).toBe(1); // the same call again: released, by its first run
    expect(await redis().get(keys.lock)).toBe('next');
    expect(await store().releaseLock(keys, 'holder')).toBe(false); // a call of its own: not held
    const tag = /\{([^}]+)\}/.exec(keys.lock)![1]!;
    const mark = `{${tag}}#settled:${String(release[release.length - 1])}`; // outside the lock's prefix
    const ttl = await redis().pttl(mark);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
  });

  it('idempotency abort: the second arrival answers aborted too; a separate abort answers false', async () => {
    const keys = idempotencyKeys('rs:', uniqueId('abort'));
    expect((await store().beginIdempotent(keys, 'holder', 'fp', 5_000)).state).toBe('acquired');
    const abort = callOf(bindings.idempotencyAbort, { keys, token: 'holder' });
    expect(await redis().call('FCALL', ...abort)).toBe(1);
    expect(await redis().call('FCALL', ...abort)).toBe(1);
    expect(await redis().exists(keys.record)).toBe(0);
    expect(await store().abortIdempotent(keys, 'holder')).toBe(false);
  });

  it('idempotency complete: the second arrival answers stored and changes nothing, as does another complete of the holder; another token\'s answers false', async () => {
    const keys = idempotencyKeys('rs:', uniqueId('complete'));
    expect((await store().beginIdempotent(keys, 'holder', 'fp', 5_000)).state).toBe('acquired');
    const response = { status: 201, headers: { 'content-type': 'text/plain' }, body: Buffer.from('made') };
    const complete = callOf(bindings.idempotencyComplete, { keys, token: 'holder', response, ttlMs: 60_000 });
    expect(await redis().call('FCALL', ...complete)).toBe(1);
    expect(await redis().call('FCALL', ...complete)).toBe(1);
    expect(await store().completeIdempotent(keys, 'holder', { ...response, status: 500 }, 60_000)).toBe(true);
    expect(await store().completeIdempotent(keys, 'other', { ...response, status: 500 }, 60_000)).toBe(false);
    const replay = await store().beginIdempotent(keys, 'other', 'fp', 5_000);
    expect(replay.state === 'replay' && [replay.response.status, replay.response.body?.toString()]).toEqual([201, 'made']);
  });
});
