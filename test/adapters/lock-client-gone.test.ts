/**
 * withLock with `wait`: a contender whose client disconnects while it waits for the key stops
 * waiting. It takes no lock, runs no handler, answers nothing, and says `client_gone` on the
 * `ratelock:lock` channel — on every framework (both forms) and store. Before, it waited on and,
 * once the holder finished, ran the handler for a client that had left, holding the key meanwhile.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockMessage } from '../../src/core/metrics.js';
import { createTestStore, uniqueId, type TestStore } from '../helpers/stores.js';
import { frameworkNames } from './support/apps.js';
import { deferred, serve } from './support/serve.js';
import { send, sendAndHangUp } from './support/http.js';

describe.each(['memory', 'redis'] as const)('%s store', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  describe.each(frameworkNames)('%s', (name) => {
    it.each(['middleware', 'decorator'] as const)('%s form: a waiting contender whose client leaves takes no lock and runs nothing', async (form) => {
      const key = uniqueId('gone');
      const [release, releaseHolder] = deferred();
      const runs: string[] = [];
      const port = await serve(name, {
        form,
        lock: { store: t.store, key: () => key, wait: 3_000 },
        handler: async ({ path }) => {
          runs.push(path);
          if (path === '/holder') await release;
          return { status: 200, body: { path } };
        },
      });
      const outcomes: string[] = [];
      const listener = (message: unknown) => outcomes.push((message as LockMessage).outcome);
      subscribe('ratelock:lock', listener);
      try {
        const holder = send(port, { path: '/holder', body: {} });
        await sleep(100);
        await sendAndHangUp(port, { path: '/contender', body: {} }, 150); // waits, then its client leaves
        await sleep(150);
        expect(outcomes).toEqual(['acquired', 'client_gone']);
        releaseHolder();
        expect((await holder).status).toBe(200);
        // The key is free at once (the contender holds nothing), and nobody ran for the contender.
        const started = performance.now();
        expect((await send(port, { path: '/after', body: {} })).status).toBe(200);
        expect(performance.now() - started).toBeLessThan(500);
        await sleep(50);
        expect(runs).toEqual(['/holder', '/after']);
      } finally {
        unsubscribe('ratelock:lock', listener);
      }
    });

    it('replay mode: a duplicate waiting for the first whose client leaves ends its wait; the first completes and replays', async () => {
      const [release, releaseFirst] = deferred();
      let runs = 0;
      const port = await serve(name, {
        lock: { store: t.store, replay: {}, wait: 3_000 },
        handler: async () => {
          runs++;
          await release;
          return { status: 201, body: { paid: true } };
        },
      });
      const outcomes: string[] = [];
      const listener = (message: unknown) => outcomes.push((message as LockMessage).outcome);
      subscribe('ratelock:lock', listener);
      try {
        const headers = { 'Idempotency-Key': uniqueId('gone-pay') };
        const first = send(port, { path: '/pay', headers, body: { amount: 1 } });
        await sleep(100);
        await sendAndHangUp(port, { path: '/pay', headers, body: { amount: 1 } }, 150);
        await sleep(150);
        expect(outcomes).toEqual(['acquired', 'client_gone']);
        releaseFirst();
        expect((await first).status).toBe(201);
        const retry = await send(port, { path: '/pay', headers, body: { amount: 1 } });
        expect(retry.status).toBe(201);
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(runs).toBe(1);
      } finally {
        unsubscribe('ratelock:lock', listener);
      }
    });
  });
});
