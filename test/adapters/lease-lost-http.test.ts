/**
 * A request whose lease is lost while its handler runs (event loop blocked past ttl): the handler
 * sees `lock.signal` abort, a retry may take over, and the stale request can neither release the
 * new holder's lock nor overwrite its stored response; the loss is logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../src/core/errors.js';
import { createTestStore, failsFirst, uniqueId, type TestStore } from '../helpers/stores.js';
import { lockApp, type FrameworkName } from './support/apps.js';
import { listen, send, type TestServer } from './support/http.js';

const TTL_MS = 200;
const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

describe.each(['memory', 'redis'] as const)('%s store', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  describe.each(['express', 'koa', 'fastify', 'hono'] as FrameworkName[])('%s', (name) => {
    it.each([false, true])('replay %s: the stale request learns it, and cannot touch its successor’s lock or record', async (replay) => {
      const lines: string[] = [];
      let proceed!: () => void;
      const proceeding = new Promise<void>((resolve) => (proceed = resolve));
      let staleReason: unknown;
      let staleEntered!: () => void;
      const entered = new Promise<void>((resolve) => (staleEntered = resolve));
      let runs = 0;
      const server = await listen(
        lockApp(name, {
          lock: { store: t.store, ttl: TTL_MS, logger: { warn: (line: string) => void lines.push(line) }, ...(replay ? { replay: {} } : {}) },
          handler: async ({ lock }) => {
            const run = ++runs;
            if (run === 1) {
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3 * TTL_MS); // the "GC pause"
              await new Promise((resolve) => setTimeout(resolve, 20));
              staleReason = lock!.signal.reason;
              staleEntered();
              await proceeding;
            }
            return { status: 201, body: { run, fence: lock!.fence } };
          },
        }),
      );
      servers.push(server);
      const key = uniqueId('lost');
      const stale = send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } });
      await entered;
      expect(staleReason).toBeInstanceOf(LeaseLostError);

      const successor = await send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } });
      expect(successor.status).toBe(201);
      expect(successor.json().run).toBe(2);
      proceed();
      const staleResponse = await stale;
      expect(staleResponse.status).toBe(201); // its response still goes out; only the store refused it
      expect(staleResponse.json().fence).toBeLessThan(successor.json().fence);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(lines.filter((line) => /lease on .* (was lost|expired)/.test(line))).toHaveLength(1); // once, on every framework

      const retry = await send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } });
      if (replay) {
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(retry.json().run).toBe(2); // the successor's response, not the stale one
      } else {
        expect(retry.json().run).toBe(3);
      }
    });

    it('replay: a response whose complete kept failing is sent unrecorded and logged once, naming the key', async () => {
      const lines: string[] = [];
      const { store, calls } = failsFirst(t.store, 'completeIdempotent', Infinity);
      const server = await listen(
        lockApp(name, {
          lock: { store, ttl: 150, logger: { warn: (line: string) => void lines.push(line) }, replay: {} },
          handler: () => ({ status: 201, body: { ok: true } }),
        }),
      );
      servers.push(server);
      const key = uniqueId('unrecorded');
      const started = performance.now();
      expect((await send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } })).status).toBe(201);
      expect(performance.now() - started).toBeGreaterThanOrEqual(95); // retried (100 ms later) before giving up
      expect(calls.count).toBeGreaterThanOrEqual(2);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const unrecorded = lines.filter((line) => line.includes('was sent without being stored'));
      expect(unrecorded).toHaveLength(1);
      expect(unrecorded[0]).toContain(key);
      expect(unrecorded[0]).toContain('a retry of the request will run the handler again');
    });

    it('replay: a request whose lease lapsed with nobody taking over still stores its response; the retry replays it', async () => {
      const lines: string[] = [];
      let runs = 0;
      const server = await listen(
        lockApp(name, {
          lock: { store: t.store, ttl: TTL_MS, logger: { warn: (line: string) => void lines.push(line) }, replay: {} },
          handler: async ({ lock }) => {
            const run = ++runs;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3 * TTL_MS); // the "GC pause"
            await new Promise((resolve) => setTimeout(resolve, 20));
            expect(lock!.signal.reason).toBeInstanceOf(LeaseLostError);
            return { status: 201, body: { run } };
          },
        }),
      );
      servers.push(server);
      const key = uniqueId('lapsed');
      expect((await send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } })).json()).toEqual({ run: 1 });
      const retry = await send(server.port, { headers: { 'Idempotency-Key': key }, body: { a: 1 } });
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.json()).toEqual({ run: 1 });
      expect(runs).toBe(1);
      expect(lines).toEqual([]);
    });
  });
});
