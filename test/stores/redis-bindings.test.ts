/**
 * The commands RedisStore sends, seen by a recording client (no Redis needed): each binding puts
 * its KEYS and ARGV where the Lua function's named locals expect them (a batch call: every
 * decision's keys, then the clock once and the call's id, then its limit groups (limit count, then
 * window/limit/cost/shape per limit) and per decision its code (group × 4 + operation) and stamp if
 * any), the caller's input is never written, and the EVALSHA → EVAL
 * fallback resends the same arguments. How decisions are coalesced into calls is in
 * redis-batching.test.ts; real-server behaviour in redis-loading.test.ts and test/lua.
 */
import { describe, expect, it } from 'vitest';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { bindings } from '../../src/stores/redis/bindings.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { recordingClient, scriptCalls } from '../helpers/recording-redis.js';

/** A batch call that writes carries a fresh call id after the clock (12 random characters, then a counter). */
const CALL_ID = expect.stringMatching(/^[\w-]{12}[0-9a-z]+$/);

describe('RedisStore commands', () => {
  it('consume: FCALL batch, numkeys, the keys, then the clock and the call id, one limit group (limit count, window/limit/cost/shape per limit), then the decision code', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limits: StoreLimit[] = [
      { key: 'rl:{a}:1s', windowMs: 1_000, limit: 5 },
      { key: 'rl:{a}:1h', windowMs: 3_600_000, limit: 100, cost: 3 },
    ];
    const frozen = Object.freeze(limits.map((limit) => Object.freeze({ ...limit })));
    await store.consume(frozen, 2);
    const [call] = scriptCalls(client.sent);
    expect(call).toMatchObject({
      command: 'FCALL',
      args: [bindings.batch.script.functionName, 2, 'rl:{a}:1s', 'rl:{a}:1h', '', CALL_ID, 1, 2, 1_000, 5, 2, '', 3_600_000, 100, 3, '', 0],
    });
  });

  it('peek and refund: operation 1 and operation 2 with the stamp, each in a group of its own (their costs differ), their shared keys sent once', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limits: StoreLimit[] = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }, { key: 'rl:{a}:1h', windowMs: 3_600_000, limit: 9, cost: 4 }];
    await Promise.all([store.peek(limits, 1), store.refund(limits, 2, 1_700_000_000_000)]);
    expect(scriptCalls(client.sent).map((entry) => entry.args)).toEqual([
      [
        bindings.batch.script.functionName, 2, 'rl:{a}:1m', 'rl:{a}:1h', '', CALL_ID,
        2, 2, 60_000, 5, 1, '', 3_600_000, 9, 4, '', 2, 60_000, 5, 2, '', 3_600_000, 9, 4, '',
        (0 * 2 + 0) * 4 + 1, (1 * 2 + 1) * 4 + 2, 1_700_000_000_000, // the refund has the peek's keys: sent once
      ],
    ]);
  });

  it('sends the limits of decisions that differ only by key once, as one group they all point to', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limitOf = (id: string, windowMs = 60_000): StoreLimit => ({ key: `rl:{${id}}:1m`, windowMs, limit: 5 });
    await Promise.all([store.consume([limitOf('a')], 1), store.consume([limitOf('b')], 1), store.consume([limitOf('c', 1_000)], 1), store.consume([limitOf('d')], 1)]);
    expect(scriptCalls(client.sent)[0]!.args).toEqual([
      bindings.batch.script.functionName, 4, 'rl:{a}:1m', 'rl:{b}:1m', 'rl:{c}:1m', 'rl:{d}:1m', '', CALL_ID,
      2, 1, 60_000, 5, 1, '', 1, 1_000, 5, 1, '',
      0, 0, (1 * 2 + 0) * 4 + 0, 0,
    ]);
  });

  it('sends the keys of a decision with the keys of the one before it (a hot key) once, the code saying so', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const hot: StoreLimit = { key: 'rl:{hot}:1m', windowMs: 60_000, limit: 5 };
    const other: StoreLimit = { key: 'rl:{other}:1m', windowMs: 60_000, limit: 5 };
    await Promise.all([store.consume([hot], 1), store.peek([hot], 1), store.consume([other], 1), store.consume([hot], 1)]);
    const [call] = scriptCalls(client.sent);
    expect(call!.args).toEqual([
      bindings.batch.script.functionName, 3, 'rl:{hot}:1m', 'rl:{other}:1m', 'rl:{hot}:1m', '', CALL_ID,
      1, 1, 60_000, 5, 1, '',
      0, (0 * 2 + 1) * 4 + 1, 0, 0,
    ]);
  });

  it('sends consumes in a row with the keys and limits of the decision before them as one run code, -count', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const hot: StoreLimit = { key: 'rl:{hot}:1m', windowMs: 60_000, limit: 5 };
    const hotOtherLimit: StoreLimit = { ...hot, limit: 7 };
    const other: StoreLimit = { key: 'rl:{other}:1m', windowMs: 60_000, limit: 5 };
    const consumeHot = () => store.consume([hot], 1);
    await Promise.all([
      consumeHot(), consumeHot(), consumeHot(), store.peek([hot], 1), consumeHot(), consumeHot(),
      store.consume([hotOtherLimit], 1), store.consume([other], 1), consumeHot(), store.consume([hot], 2),
    ]);
    const [call] = scriptCalls(client.sent);
    expect(call!.args).toEqual([
      bindings.batch.script.functionName, 3, 'rl:{hot}:1m', 'rl:{other}:1m', 'rl:{hot}:1m', '', CALL_ID,
      3, 1, 60_000, 5, 1, '', 1, 60_000, 7, 1, '', 1, 60_000, 5, 2, '',
      0, -2, (0 * 2 + 1) * 4 + 1, -2, // a peek breaks a run; the consumes after it, with its keys, are one
      (1 * 2 + 1) * 4 + 0, // the same key in another group: no run
      0, 0, (2 * 2 + 1) * 4 + 0, // another cost is another group
    ]);
  });

  it('sends an aligned consume (Cluster) as operation 3 followed by its align stamp', () => {
    const args: unknown[] = [];
    bindings.batch.appendArgv(args as never[], [{ kind: 'consume', limits: [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }], cost: 1, stamp: 1_700_000_000_007 }], '');
    expect(args).toEqual(['', CALL_ID, 1, 1, 60_000, 5, 1, '', 3, 1_700_000_000_007]);
  });

  it('sends the test clock in whole ms in place of Redis TIME, once per call', async () => {
    const client = recordingClient();
    const store = redisStoreForTests(client, { clock: () => 1_700_000_000_123.9 });
    await store.refund([{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }], 1, 1_700_000_000_000);
    expect(scriptCalls(client.sent)[0]!.args).toEqual([bindings.batch.script.functionName, 1, 'rl:{a}:1m', 1_700_000_000_123, CALL_ID, 1, 1, 60_000, 5, 1, '', 2, 1_700_000_000_000]);
  });

  it('gives every call that writes an id of its own, and a call that only peeks none', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limits = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }];
    await store.consume(limits, 1);
    await store.consume(limits, 1);
    await store.peek(limits, 1);
    const ids = scriptCalls(client.sent).map((entry) => entry.args[4]);
    expect(ids.slice(0, 2)).toEqual([CALL_ID, CALL_ID]);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[2]).toBe('');
  });

  it('locks and records: keys first, then the ARGV of the Lua function in order', async () => {
    const client = recordingClient({ call: (_command, args) => (args[0] === bindings.lockAcquire.script.functionName ? [1, 7] : undefined) });
    const store = new RedisStore({ client });
    const lock = { lock: 'lk:{x}', fence: 'lk:{x}:fence' };
    const record = { record: 'idem:{y}', fence: 'idem:{y}:fence' };
    await store.acquireLock(lock, 'token', 5_000);
    await store.releaseLock(lock, 'token');
    await store.completeIdempotent(record, 'token', { status: 201, headers: { a: 'b' }, body: null }, 60_000);
    await store.completeIdempotent(record, 'token', { status: 201, headers: {}, body: Buffer.from('x') }, 60_000, { fence: 1_733_600_000_000_123, fingerprint: 'fp' });
    await store.abortIdempotent(record, 'token');
    const sent = scriptCalls(client.sent).map((entry) => entry.args);
    // Release and abort carry a call id: a copy re-sent after a reconnect answers as the first run
    // did. Complete needs none: the done record keeps the token that completed it. Complete's run
    // goes as the fence key's decimal digits (the Lua compares strings) and the fingerprint.
    expect(sent).toEqual([
      [bindings.lockAcquire.script.functionName, 2, 'lk:{x}', 'lk:{x}:fence', '', 'token', 5_000],
      [bindings.lockRelease.script.functionName, 1, 'lk:{x}', 'token', CALL_ID],
      [bindings.idempotencyComplete.script.functionName, 2, 'idem:{y}', 'idem:{y}:fence', 'token', 201, '{"a":"b"}', '0', '', 60_000, '', ''],
      [bindings.idempotencyComplete.script.functionName, 2, 'idem:{y}', 'idem:{y}:fence', 'token', 201, '{}', '1', Buffer.from('x'), 60_000, '1733600000000123', 'fp'],
      [bindings.idempotencyAbort.script.functionName, 1, 'idem:{y}', 'token', CALL_ID],
    ]);
    expect(new Set([sent[1]!, sent[4]!].map((args) => args[args.length - 1])).size).toBe(2); // one id per call
  });

  it('builds each command in an array of its own, never one the caller handed in', async () => {
    const client = recordingClient();
    const store = new RedisStore({ client });
    const limits = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }];
    await store.consume(limits, 1);
    await store.consume(limits, 1);
    const arrays = scriptCalls(client.sent).map((entry) => entry.array);
    expect(arrays).toHaveLength(2);
    expect(new Set(arrays).size).toBe(2);
    expect(arrays).not.toContain(limits);
  });

  it('resends the same arguments as EVAL when EVALSHA answers NOSCRIPT', async () => {
    let evalshas = 0;
    const client = recordingClient({
      call: (command) => (command === 'EVALSHA' && evalshas++ === 0 ? new Error('NOSCRIPT No matching script. Please use EVAL.') : undefined),
      answer: () => [1, 0, 4, 60_000, 0, 1_700_000_000_000, 0],
    });
    const store = redisStoreForTests(client, { mode: 'eval' });
    const limits = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }];
    expect(await store.consume(limits, 1)).toMatchObject({ allowed: true, remaining: 4, stamp: 1_700_000_000_000 });
    const sent = scriptCalls(client.sent);
    const tail = [1, 'rl:{a}:1m', '', sent[0]!.args[4], 1, 1, 60_000, 5, 1, '', 0];
    expect(sent[0]!.args[4]).toEqual(CALL_ID); // the same id both times: the EVAL is the same call
    expect(sent.map(({ command, args }) => [command, ...args])).toEqual([
      ['EVALSHA', bindings.batch.script.sha1, ...tail],
      ['EVAL', bindings.batch.script.evalSource, ...tail],
    ]);
  });
});
