/**
 * Calls on the same keys run in the order they were made, whatever the client: with a client that
 * does not keep the order of concurrent commands (GLIDE, StoreClient.keepsCommandOrder), a batch
 * call waits while an earlier one on its keys is in flight (KeyOrderedCalls,
 * src/stores/redis/key-ordered-calls.ts). Without that, of two requests for the last unit the later
 * one could get it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreLimit } from '../../src/core/store.js';
import { KeyOrderedCalls } from '../../src/stores/redis/key-ordered-calls.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { type TestClient, connectClient } from '../helpers/clients.js';
import { clusterNodes, redisUrl } from '../helpers/redis.js';
import { limitKey } from '../helpers/keys.js';
import { uniqueId } from '../helpers/stores.js';

function deferred(): { promise: Promise<string>; resolve: (value: string) => void; reject: (err: Error) => void } {
  let resolve!: (value: string) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('KeyOrderedCalls', () => {
  it('starts a call once the earlier calls on its keys have settled (failed ones too) or started, calls on other keys at once', async () => {
    const ordered = new KeyOrderedCalls();
    const started: string[] = [];
    const replies = new Map<string, ReturnType<typeof deferred>>();
    const run = (name: string, keys: string[]) =>
      ordered.run(keys, () => {
        started.push(name);
        const reply = deferred();
        replies.set(name, reply);
        return reply.promise;
      });
    const a1 = run('a1', ['a']);
    const b1 = run('b1', ['b']);
    const ab = run('ab', ['a', 'b']); // waits for a1 and b1
    const b2 = run('b2', ['b']); // waits for b1, and behind ab
    const c1 = run('c1', ['c']); // no earlier call names c
    await turn();
    expect(started).toEqual(['a1', 'b1', 'c1']);
    replies.get('a1')!.reject(new Error('a1 failed'));
    await expect(a1).rejects.toThrow('a1 failed');
    await turn();
    expect(started).toEqual(['a1', 'b1', 'c1']); // b1 still holds b
    replies.get('b1')!.resolve('b1 done');
    await b1;
    await turn();
    expect(started).toEqual(['a1', 'b1', 'c1', 'ab']); // b2 still waits behind ab
    const c2 = run('c2', ['c']); // c1 is in flight
    await turn();
    expect(started).toEqual(['a1', 'b1', 'c1', 'ab']);
    replies.get('ab')!.resolve('ab done');
    replies.get('c1')!.resolve('c1 done');
    await Promise.all([ab, c1]);
    await turn();
    expect(started).toEqual(['a1', 'b1', 'c1', 'ab', 'b2', 'c2']);
    replies.get('b2')!.resolve('b2 done');
    replies.get('c2')!.resolve('c2 done');
    expect(await Promise.all([b2, c2])).toEqual(['b2 done', 'c2 done']);
  });
  it('fails a call that would wait at once, unsent, while its server is stalled; a call on free keys goes', async () => {
    const ordered = new KeyOrderedCalls();
    const started: string[] = [];
    const first = deferred();
    let stalled: Error | undefined;
    const run = (name: string, keys: string[], reply: () => Promise<string>) =>
      ordered.run(keys, () => {
        started.push(name);
        return reply();
      }, () => stalled);
    const a1 = run('a1', ['a'], () => first.promise);
    const a2 = run('a2', ['a'], () => Promise.resolve('a2 done')); // waits: not stalled yet
    stalled = new Error('stalled, not sent');
    await expect(run('a3', ['a'], () => Promise.resolve('a3 done'))).rejects.toThrow('stalled, not sent');
    expect(await run('b1', ['b'], () => Promise.resolve('b1 done'))).toBe('b1 done');
    expect(started).toEqual(['a1', 'b1']);
    stalled = undefined;
    first.resolve('a1 done');
    expect(await Promise.all([a1, a2])).toEqual(['a1 done', 'a2 done']);
    expect(started).toEqual(['a1', 'b1', 'a2']);
  });
});

/** Bounds that cut a turn into calls of two decisions: many calls of one turn in flight at once. */
const SMALL_CALLS = { maxDecisions: 2, maxArguments: 512, maxDecisionsWhileBusy: 2 };

describe.each([
  ['standalone', () => ({ url: redisUrl() })],
  ['cluster', () => ({ nodes: clusterNodes() })],
] as const)('GLIDE (%s): the last units go to the first requests of a turn split into many calls', (_name, target) => {
  let glide: TestClient;

  beforeAll(async () => {
    glide = await connectClient('glide', target());
  });

  afterAll(async () => {
    await glide.close();
  });

  it('allows exactly the first 300 of 400 concurrent consumes on one key, the first of them with the most remaining', async () => {
    const store = redisStoreForTests(glide.client, { batchBounds: SMALL_CALLS });
    const limit: StoreLimit = { key: limitKey('rl:', uniqueId('order'), '1m'), windowMs: 60_000, limit: 300 };
    for (let round = 0; round < 10; round++) {
      await store.reset([limit.key]);
      const results = await Promise.all(Array.from({ length: 400 }, () => store.consume([limit], 1)));
      expect(results.map((result) => result.allowed)).toEqual(results.map((_, i) => i < 300));
      expect(results.slice(0, 300).map((result) => result.remaining)).toEqual(results.slice(0, 300).map((_, i) => 299 - i));
    }
  });

  it('runs a reset made after a turn of consumes after them', async () => {
    const store = redisStoreForTests(glide.client, { batchBounds: SMALL_CALLS });
    const limit: StoreLimit = { key: limitKey('rl:', uniqueId('order-reset'), '1m'), windowMs: 60_000, limit: 300 };
    for (let round = 0; round < 5; round++) {
      const consumed = Promise.all(Array.from({ length: 200 }, () => store.consume([limit], 1)));
      await store.reset([limit.key]);
      await consumed;
      expect((await store.peek([limit], 300)).allowed).toBe(true); // nothing consumed after the reset
    }
  });
});
