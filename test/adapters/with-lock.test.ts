/**
 * withLock as a lock-guard (no replay), on Express 5/4, Koa 3/2, Fastify and Hono, over every store kind:
 * one runner among concurrent duplicates, 409 problem+json with Retry-After, waiting contenders,
 * 400 without a key, the decorator form, onBusy, and when the lease ends (handler settled,
 * response finished; a client disconnect never frees it early).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockGuard } from '../../src/core/lock-guard.js';
import { LockBusyError } from '../../src/core/errors.js';
import { createTestStore, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';
import { watchEventLoop } from '../helpers/event-loop.js';
import { frameworkNames, type FrameworkKind, type LockAppOptions } from './support/apps.js';
import { serve, deferred } from './support/serve.js';
import { send, sendAndHangUp } from './support/http.js';

/** Counts concurrent and total runs of a handler, and how long each takes. */
function runCounter(holdMs: number) {
  const counter = { runs: 0, active: 0, maxActive: 0, fences: [] as number[] };
  const handler: LockAppOptions['handler'] = async ({ lock }) => {
    counter.runs++;
    counter.active++;
    counter.maxActive = Math.max(counter.maxActive, counter.active);
    if (lock) counter.fences.push(lock.fence);
    await sleep(holdMs);
    counter.active--;
    return { status: 201, body: { fence: lock?.fence, token: lock?.token, key: lock?.key } };
  };
  return { counter, handler };
}

/** An `onBusy` hook of framework `fw` that answers `status` with the text `text`, after telling `seen` its info. */
function onBusyAnswering(fw: FrameworkKind, status: number, text: string, seen: (info: unknown) => void): unknown {
  switch (fw) {
    case 'express':
      return (_req: unknown, res: { status(n: number): { send(s: string): void } }, info: unknown) => {
        seen(info);
        res.status(status).send(text);
      };
    case 'koa':
      return (ctx: { status: number; body: unknown }, info: unknown) => {
        seen(info);
        ctx.status = status;
        ctx.body = text;
      };
    case 'fastify':
      return (_request: unknown, reply: { code(n: number): { send(s: string): void } }, info: unknown) => {
        seen(info);
        reply.code(status).send(text);
      };
    case 'hono':
      return (c: { text(body: string, status: number): Response }, info: unknown) => {
        seen(info);
        return c.text(text, status);
      };
  }
}

describe.each(storeKinds)('%s store', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  describe.each(frameworkNames)('%s', (name) => {
    it('runs exactly one of 20 concurrent duplicates; the others get 409 problem+json with Retry-After', async () => {
      // The runner holds the lock until the 19 others have been answered: deterministic on a slow machine.
      let othersAnswered!: () => void;
      const answered = new Promise<void>((resolve) => (othersAnswered = resolve));
      let runs = 0;
      const port = await serve(name, {
        lock: { store: t.store, ttl: '10s' },
        handler: async ({ lock }) => {
          runs++;
          await answered;
          return { status: 201, body: { fence: lock?.fence, token: lock?.token, key: lock?.key } };
        },
      });
      const key = uniqueId('pay');
      let settled = 0;
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          send(port, { headers: { 'Idempotency-Key': key } }).then((response) => {
            if (++settled === 19) othersAnswered();
            return response;
          }),
        ),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(19);
      expect(runs).toBe(1);
      const conflict = responses.find((r) => r.status === 409)!;
      expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(Number(conflict.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(conflict.headers['retry-after'])).toBeLessThanOrEqual(10);
      expect(conflict.json()).toMatchObject({ status: 409, code: 'lock-busy' });
      const winner = responses.find((r) => r.status === 201)!.json();
      expect(winner.key).toBe(key);
      expect(winner.token).toMatch(/^[0-9a-f-]{36}$/);

      // Released when the response finished: the next request runs, with a greater fence.
      const next = await send(port, { headers: { 'Idempotency-Key': key } });
      expect(next.status).toBe(201);
      expect(next.json().fence).toBeGreaterThan(winner.fence);
    });

    it('lets a contender with `wait` run after the holder, never beside it', async () => {
      const { counter, handler } = runCounter(200);
      const port = await serve(name, { lock: { store: t.store, wait: 3_000 }, handler });
      const key = uniqueId('order');
      const responses = await Promise.all(Array.from({ length: 3 }, () => send(port, { headers: { 'Idempotency-Key': key } })));
      expect(responses.map((r) => r.status)).toEqual([201, 201, 201]);
      expect(counter.runs).toBe(3);
      expect(counter.maxActive).toBe(1);
      expect(counter.fences[0]!).toBeLessThan(counter.fences[1]!);
      expect(counter.fences[1]!).toBeLessThan(counter.fences[2]!);
    });

    it('answers 400 problem+json when the Idempotency-Key is missing, or a custom key yields nothing', async () => {
      const { counter, handler } = runCounter(0);
      const byHeader = await serve(name, { lock: { store: t.store }, handler });
      const missing = await send(byHeader);
      expect(missing.status).toBe(400);
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(missing.json()).toMatchObject({ status: 400, code: 'idempotency-key-missing' });

      const custom = await serve(name, { lock: { store: t.store, key: () => undefined }, handler });
      const none = await send(custom);
      expect(none.status).toBe(400);
      expect(none.json()).toMatchObject({ code: 'lock-key-missing' });
      expect(counter.runs).toBe(0);
    });

    it('decorator form: a handler that throws releases the lock at once (error reaches the error handler)', async () => {
      const key = uniqueId('refund');
      let calls = 0;
      const port = await serve(name, {
        form: 'decorator',
        lock: { store: t.store, key: () => key },
        handler: () => {
          calls++;
          if (calls === 1) throw new Error('boom');
          return { status: 200, body: 'second' };
        },
      });
      const failed = await send(port);
      expect(failed.status).toBe(500);
      expect(failed.json()).toMatchObject({ message: 'boom' });
      const retried = await send(port);
      expect(retried.status).toBe(200);
      expect(retried.text).toBe('second');
    });

    it('lets onBusy answer instead of the default 409', async () => {
      const key = uniqueId('busy');
      const infos: unknown[] = [];
      const [started, running] = deferred();
      const [finish, done] = deferred();
      const port = await serve(name, {
        lock: { store: t.store, key: () => key },
        perFramework: (fw) => ({ onBusy: onBusyAnswering(fw, 423, 'locked, come back later', (info) => void infos.push(info)) }),
        handler: async () => {
          running();
          await finish;
          return { status: 200, body: 'done' };
        },
      });
      const first = send(port);
      await started;
      const second = await send(port);
      done();
      expect((await first).status).toBe(200);
      expect(second.status).toBe(423);
      expect(second.text).toBe('locked, come back later');
      expect(infos).toHaveLength(1);
      expect(infos[0]).toMatchObject({ key, reason: 'locked' });
      expect((infos[0] as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    });
  });
});

/** When a disconnected client's lease ends, measured with a LockGuard on the same store and key. */
describe.each(frameworkNames)('%s: client disconnect mid-handler', (name) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore('redis');
  });
  afterAll(() => t.close());

  /** Whether `key` can be locked now (the probe lock is released at once). */
  async function isFree(key: string): Promise<boolean> {
    const guard = new LockGuard({ store: t.store, ttl: 1_000 });
    try {
      await (await guard.acquire(key)).release();
      return true;
    } catch (err) {
      if (err instanceof LockBusyError) return false;
      throw err;
    }
  }

  /** ms after `since` at which `key` could be locked again (polled every 10 ms), or Infinity. */
  async function freedAfter(key: string, since: number, boundMs: number): Promise<number> {
    while (performance.now() - since < boundMs) {
      if (await isFree(key)) return performance.now() - since;
      await sleep(10);
    }
    return Infinity;
  }

  const expressMiddleware = name.startsWith('express');
  it(
    expressMiddleware
      ? 'middleware form: stops extending and lets the lease expire within ttl (never releases while the handler may run)'
      : 'holds the lock until the handler ends, then releases it within 50 ms',
    async () => {
      const key = uniqueId('disconnect');
      let handlerEnded = 0;
      let abortedAt = 0;
      const port = await serve(name, {
        lock: { store: t.store, key: () => key, ttl: 400 },
        handler: async ({ lock }) => {
          lock!.signal.addEventListener('abort', () => (abortedAt = performance.now() - started));
          await sleep(1_200);
          handlerEnded = performance.now() - started;
          return { status: 200, body: 'late' };
        },
      });
      // Upper bounds on timers add this process's event-loop delay (a loaded machine).
      const loop = watchEventLoop();
      const started = performance.now(); // the handler reads it once the request comes
      await sendAndHangUp(port, { path: '/' }, 100);
      await sleep(150); // well within ttl: still held
      expect(await isFree(key)).toBe(false);
      const freedAt = await freedAfter(key, started, 3_000);
      const loopDelay = loop();
      if (expressMiddleware) {
        // close without finish at ~100 ms: the lease (last extended ≤ ttl/3 before) ends by ~100 + 400 ms.
        expect(freedAt).toBeLessThan(100 + 400 + 150 + loopDelay.max);
        expect(abortedAt).toBeGreaterThan(0);
        expect(abortedAt).toBeLessThan(100 + 400 + 100 + loopDelay.max);
      } else {
        await sleep(100);
        expect(handlerEnded).toBeGreaterThan(0);
        expect(freedAt).toBeGreaterThanOrEqual(handlerEnded - 5);
        expect(freedAt - handlerEnded).toBeLessThanOrEqual(50 + 20 + loopDelay.max); // release delay + one poll
        expect(abortedAt).toBe(0);
      }
    },
  );

  // Fastify's hook form is covered above; its decorator form waits for the handler's promise too.
  if (expressMiddleware || name === 'fastify') {
    it('decorator form: holds the lock until the handler ends, then releases it within 50 ms', async () => {
      const key = uniqueId('disconnect');
      let handlerEnded = 0;
      const port = await serve(name, {
        form: 'decorator',
        lock: { store: t.store, key: () => key, ttl: 400 },
        handler: async () => {
          await sleep(1_200);
          handlerEnded = performance.now() - started;
          return { status: 200, body: 'late' };
        },
      });
      const loop = watchEventLoop();
      const started = performance.now();
      await sendAndHangUp(port, { path: '/' }, 100);
      const freedAt = await freedAfter(key, started, 3_000);
      expect(handlerEnded).toBeGreaterThan(0);
      expect(freedAt).toBeGreaterThanOrEqual(handlerEnded - 5);
      expect(freedAt - handlerEnded).toBeLessThanOrEqual(50 + 20 + loop().max);
    });
  }
});
