/**
 * A hot key's turn: consumes in a row with the keys and limits of the decision before them go as
 * one run code (-count, see lua/batch.lua), and those the script allows together answer as one
 * run reply (-count, then the first one's reply). Raw FCALLs built by the binding, on a test
 * clock, their replies read as sent and as the store reads them: each decision exactly what
 * MemoryStore answers one by one.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { type BatchDecision, bindings } from '../../src/stores/redis/bindings.js';
import type { RedisArgument } from '../../src/stores/redis/client.js';
import { decodeMsgpackArray } from '../../src/stores/redis/msgpack.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { limitKey } from '../helpers/keys.js';
import { encodeMsgpackArray } from '../helpers/msgpack.js';
import { newRedisClient } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const T = 1_700_000_000_000;
let client: Redis;

beforeAll(async () => {
  client = newRedisClient();
  await new RedisStore({ client }).ready();
});

afterAll(() => client.disconnect());

async function batch(decisions: readonly BatchDecision[], clock: number): Promise<{ args: RedisArgument[]; reply: Buffer }> {
  const keys: RedisArgument[] = [];
  bindings.batch.appendKeys(keys, decisions);
  const args: RedisArgument[] = [bindings.batch.script.functionName, keys.length, ...keys];
  bindings.batch.appendArgv(args, decisions, clock);
  const reply = (await client.callBuffer('FCALL', ...args)) as Buffer;
  return { args, reply };
}

/** Sends `turn` as one batch call at `clock`: its outcomes must be what `memory` answers one by one. */
async function expectAsMemory(turn: readonly BatchDecision[], clock: number, memory: ReturnType<typeof memoryStoreForTests>) {
  const { reply } = await batch(turn, clock);
  const outcomes = bindings.batch.parse(reply, turn);
  const expected = [];
  for (const decision of turn) {
    expected.push(decision.kind === 'peek' ? await memory.peek(decision.limits, decision.cost) : await memory.consume(decision.limits, decision.cost));
  }
  expect(outcomes).toEqual(expected);
  return outcomes;
}

const consume = (limits: StoreLimit[], cost = 1): BatchDecision => ({ kind: 'consume', limits, cost, stamp: undefined });
const peek = (limits: StoreLimit[]): BatchDecision => ({ kind: 'peek', limits, cost: 1, stamp: undefined });

describe('a hot key’s consumes in a row (runs)', () => {
  it('go as one code and answer the allowed ones as one run, then each refusal alone', async () => {
    const hot: StoreLimit = { key: limitKey('rl:', uniqueId('run'), '1s'), windowMs: 1_000, limit: 5 };
    const decisions = Array.from({ length: 8 }, () => consume([hot]));
    const { args, reply } = await batch(decisions, T);
    expect(args.slice(-2)).toEqual([0, -7]);
    const allowed = (remaining: number) => [1, 0, remaining, 1_000, 0, T, 1_000];
    // One log, allowed (one_log_allowed): remaining, stamp - now, stamp - oldest entry.
    const oneLogAllowed = (remaining: number) => [3, remaining, 0, 0];
    const refused = [0, 0, 0, 1_000, 1_000, 0, 1_000];
    // The store time first. The first writes a one-entry log (a STRING), the second makes it a
    // LIST (check_limits); the next three fit together; the last three are refused.
    expect(decodeMsgpackArray(reply)).toEqual([T, ...oneLogAllowed(4), ...allowed(3), -3, ...oneLogAllowed(2), ...refused, ...refused, ...refused]);
    expect(bindings.batch.parse(reply, decisions)).toMatchObject([4, 3, 2, 1, 0, 0, 0, 0].map((remaining, i) => ({ allowed: i < 5, remaining })));
  });

  it('answer each decision what MemoryStore answers one by one, across peeks, other keys, costs and window epochs', async () => {
    const memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    let now = T + 250;
    const id = uniqueId('mixed-run');
    const hot: StoreLimit = { key: limitKey('rl:', id, '1s'), windowMs: 1_000, limit: 7 };
    const other: StoreLimit = { key: limitKey('rl:', uniqueId('other'), '1s'), windowMs: 1_000, limit: 7 };
    const turn: BatchDecision[] = [
      consume([hot]), consume([hot]), consume([hot]), peek([hot]), consume([hot]), consume([hot]),
      consume([other]), consume([hot]), consume([hot], 2), consume([hot]), consume([hot]), consume([hot]),
    ];
    // Three turns: the first fills the log, the second meets it full within the window, the third
    // runs in the next window epoch, with part of the log aged out.
    for (const at of [T + 250, T + 600, T + 1_400]) {
      now = at;
      await expectAsMemory(turn, at, memory);
    }
    memory.close();
  });

  it('stay exact past the bound of the script’s number cache (2 048 strings, then it starts again)', async () => {
    // Stamps, codes and limit fields are converted through num_cache (lua/prelude.lua): 3 000
    // calls at distinct store times make it start again more than once.
    const memory = memoryStoreForTests({ clock: () => now, sweepIntervalMs: 0 });
    let now = T;
    // Logs a and b take an entry at every call (3 000 distinct stamps read back), c fills up.
    const logs: StoreLimit[] = [['a', 1_000], ['b', 1_000], ['c', 40]].map(([name, limit]) => ({ key: limitKey('rl:', uniqueId(`cache-${name}`), '1s'), windowMs: 1_000, limit: limit as number }));
    const turn: BatchDecision[] = [consume([logs[0]!]), consume([logs[0]!]), consume([logs[1]!]), peek([logs[2]!]), consume([logs[2]!], 2), consume([logs[1]!, logs[2]!])];
    let allowed = 0;
    for (let call = 0; call < 3_000; call++) {
      now = T + call * 7;
      const outcomes = await expectAsMemory(turn, now, memory);
      for (const outcome of outcomes) if (typeof outcome === 'object' && 'allowed' in outcome && outcome.allowed) allowed++;
    }
    // 15 000 consumes: a's and b's all allowed, c's refused once it holds 40 in its window.
    expect(allowed).toBeGreaterThan(9_000);
    expect(allowed).toBeLessThan(12_000);
    memory.close();
  }, 60_000);

  it('is a malformed reply unless it covers consumes only and is allowed', () => {
    const hot: StoreLimit = { key: limitKey('rl:', 'hot', '1s'), windowMs: 1_000, limit: 5 };
    const allowed = [1, 0, 3, 1_000, 0, T, 1_000];
    const parse = (decisions: BatchDecision[], values: number[]) => () => bindings.batch.parse(encodeMsgpackArray([T, ...values]), decisions);
    expect(parse([consume([hot]), peek([hot])], [-2, ...allowed])).toThrow(/a run at 1 over a peek/);
    expect(parse([consume([hot]), peek([hot])], [-2, 3, 3, 0, 0])).toThrow(/a run at 1 over a peek/);
    expect(parse([consume([hot]), consume([hot])], [-2, 0, 0, 0, 1_000, 1_000, 0, 1_000])).toThrow(/a run at 1 that is not allowed/);
    expect(parse([consume([hot]), consume([hot])], [-2, ...allowed])()).toMatchObject([{ remaining: 3 }, { remaining: 2 }]);
    expect(parse([consume([hot]), consume([hot])], [-2, 3, 3, 0, 0])()).toMatchObject([{ remaining: 3 }, { remaining: 2 }]);
    const cold: StoreLimit = { ...hot, key: limitKey('rl:', 'cold', '1s') };
    expect(parse([consume([hot]), consume([cold])], [-2, 3, 3, 0, 0])).toThrow(/a run at 1 over another key/);
  });

  it('reads a one-log reply as the seven values check_limits answers, and only for a consume of one limit', () => {
    const hot: StoreLimit = { key: limitKey('rl:', 'hot', '1s'), windowMs: 1_000, limit: 5 };
    const other: StoreLimit = { key: limitKey('rl:', 'other', '1m'), windowMs: 60_000, limit: 5 };
    const parse = (decisions: BatchDecision[], values: number[]) => () => bindings.batch.parse(encodeMsgpackArray([T, ...values]), decisions);
    // Written 5 ms after `now` (a clock stepped back), the oldest entry in the window 300 ms before that.
    expect(parse([consume([hot])], [3, 2, 5, 300])()).toEqual([
      { allowed: true, index: 0, remaining: 2, resetMs: 1_005, retryAfterMs: 0, stamp: T + 5, nextQuotaMs: 705 },
    ]);
    expect(parse([peek([hot])], [3, 2, 0, 0])).toThrow(/a one-log reply at 1 for a peek of 1 limits/);
    expect(parse([consume([hot, other])], [3, 2, 0, 0])).toThrow(/a one-log reply at 1 for a consume of 2 limits/);
    expect(parse([consume([{ ...hot, algorithm: 'gcra' }])], [3, 2, 0, 0])).toThrow(/a one-log reply at 1 for a consume of 1 limits \(gcra\)/);
    // The oldest entry 1 001 ms before `now`: out of a 1 s window.
    expect(parse([consume([hot])], [3, 2, 5, 1_006])).toThrow(/an oldest entry out of the window at 1/);
  });
});
