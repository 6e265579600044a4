/**
 * The commands RedisStore sends, seen by a recording client (no Redis needed): each binding puts
 * its KEYS and ARGV where the Lua function's named locals expect them, the runner builds every
 * command in an array of its own (the caller's input is never written, and no two calls share an
 * array), and the EVALSHA → EVAL fallback resends the same arguments. Real-server behaviour is in
 * redis-loading.test.ts and test/lua.
 */
import { describe, expect, it } from 'vitest';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { bindings } from '../../src/stores/redis/bindings.js';
import type { RedisArgument, RedisClientLike } from '../../src/stores/redis/client.js';
import { redisStoreForTests } from '../../src/stores/testing.js';

interface Sent {
  readonly command: string;
  /** The arguments as sent. */
  readonly args: RedisArgument[];
  /** The array the client was handed. */
  readonly array: RedisArgument[];
}

/** A ready client that records every command (and the array it was handed) and answers `reply(command)`. */
function recordingClient(reply: (command: string, args: RedisArgument[]) => unknown): RedisClientLike & { sent: Sent[] } {
  const sent: Sent[] = [];
  const answer = async (command: string, args: RedisArgument[]): Promise<unknown> => {
    sent.push({ command, args: [...args], array: args });
    if (command === 'PING') return 'PONG';
    if (command === 'FUNCTION') return 'OK';
    const value = reply(command, args);
    if (value instanceof Error) throw value;
    return value;
  };
  return { status: 'ready', sent, call: answer, callBuffer: answer };
}

const allowedReply = [1, 0, 4, 60_000, 0, 1_700_000_000_000];
const scriptCalls = (sent: readonly Sent[]): Sent[] => sent.filter((entry) => entry.command !== 'PING' && entry.command !== 'FUNCTION');

describe('RedisStore commands', () => {
  it('consume: FCALL name, numkeys, the keys, then clock, cost, align and window/limit/cost per limit', async () => {
    const client = recordingClient(() => allowedReply);
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
      args: [bindings.consume.script.functionName, 2, 'rl:{a}:1s', 'rl:{a}:1h', '', 2, '', 1_000, 5, 2, 3_600_000, 100, 3],
    });
  });

  it('sends the test clock in whole ms in place of Redis TIME', async () => {
    const client = recordingClient(() => 1);
    const store = redisStoreForTests(client, { clock: () => 1_700_000_000_123.9 });
    await store.refund([{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }], 1, 1_700_000_000_000);
    expect(scriptCalls(client.sent)[0]!.args).toEqual([bindings.refund.script.functionName, 1, 'rl:{a}:1m', 1_700_000_000_123, 1, 1_700_000_000_000, 60_000, 1]);
  });

  it('locks and records: keys first, then the ARGV of the Lua function in order', async () => {
    const client = recordingClient((_command, args) => (args[0] === bindings.lockAcquire.script.functionName ? [1, 7] : 1));
    const store = new RedisStore({ client });
    const lock = { lock: 'lk:{x}', fence: 'lk:{x}:fence' };
    const record = { record: 'idem:{y}', fence: 'idem:{y}:fence' };
    await store.acquireLock(lock, 'token', 5_000);
    await store.releaseLock(lock, 'token');
    await store.completeIdempotent(record, 'token', { status: 201, headers: { a: 'b' }, body: null }, 60_000);
    expect(scriptCalls(client.sent).map((entry) => entry.args)).toEqual([
      [bindings.lockAcquire.script.functionName, 2, 'lk:{x}', 'lk:{x}:fence', '', 'token', 5_000],
      [bindings.lockRelease.script.functionName, 1, 'lk:{x}', 'token'],
      [bindings.idempotencyComplete.script.functionName, 1, 'idem:{y}', 'token', 201, '{"a":"b"}', '0', '', 60_000],
    ]);
  });

  it('builds each command in an array of its own, even for concurrent calls', async () => {
    const client = recordingClient(() => allowedReply);
    const store = new RedisStore({ client });
    const limits = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }];
    await Promise.all([store.consume(limits, 1), store.consume(limits, 1), store.peek(limits, 1)]);
    const arrays = scriptCalls(client.sent).map((entry) => entry.array);
    expect(arrays).toHaveLength(3);
    expect(new Set(arrays).size).toBe(3);
    expect(arrays[2]![0]).toBe(bindings.peek.script.functionName);
  });

  it('resends the same arguments as EVAL when EVALSHA answers NOSCRIPT', async () => {
    let evalshas = 0;
    const client = recordingClient((command) => {
      if (command === 'EVALSHA' && evalshas++ === 0) return new Error('NOSCRIPT No matching script. Please use EVAL.');
      return allowedReply;
    });
    const store = redisStoreForTests(client, { mode: 'eval' });
    const limits = [{ key: 'rl:{a}:1m', windowMs: 60_000, limit: 5 }];
    await store.consume(limits, 1);
    const tail = [1, 'rl:{a}:1m', '', 1, '', 60_000, 5, 1];
    expect(scriptCalls(client.sent).map(({ command, args }) => [command, args[0], ...args.slice(1)])).toEqual([
      ['EVALSHA', bindings.consume.script.sha1, ...tail],
      ['EVAL', bindings.consume.script.evalSource, ...tail],
    ]);
  });
});
