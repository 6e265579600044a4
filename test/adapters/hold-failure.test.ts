/**
 * A failure after the lease is taken but before the handler runs (here: auto-extension refusing
 * to start, as `ttl: 1` once made it): the lease is ended at once and the error takes the
 * framework's error path. Never a hung request, never an unhandled rejection, never a key left
 * busy until its ttl. Express 5 and 4, Koa 3 and 2, Fastify (preHandler hook and decorator) and
 * Hono; middleware and decorator forms; lock and replay.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Lease } from '../../src/core/lock/lease.js';
import { createTestStore, uniqueId, type TestStore } from '../helpers/stores.js';
import { frameworkNames, lockApp } from './support/apps.js';
import { listen, send, type TestServer } from './support/http.js';

const servers: TestServer[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
let t: TestStore;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  t = await createTestStore('redis');
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await Promise.all(servers.map((server) => server.close()));
  await t.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(frameworkNames)('%s', (name) => {
  describe.each(['middleware', 'decorator'] as const)('%s form', (form) => {
    it.each([false, true])('replay %s: answers through the error handler and frees the key at once', async (replay) => {
      let runs = 0;
      const server = await listen(
        lockApp(name, {
          form,
          // The default 30 s ttl: a lease left behind would answer the retry 409 for 30 s.
          lock: { store: t.store, ...(replay ? { replay: true } : {}) },
          handler: () => ({ status: 201, body: { run: ++runs } }),
        }),
      );
      servers.push(server);
      const autoExtend = vi.spyOn(Lease.prototype, 'autoExtend').mockImplementationOnce(() => {
        throw new Error('auto-extension refused to start');
      });
      const request = { headers: { 'Idempotency-Key': uniqueId('hold') }, body: { amount: 5 } };

      const failed = await send(server.port, request);
      expect(autoExtend).toHaveBeenCalledTimes(1);
      expect(failed.status).toBe(500);
      expect(failed.json()).toMatchObject({ message: 'auto-extension refused to start' });
      expect(runs).toBe(0);

      const retry = await send(server.port, request);
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(retry.json()).toEqual({ run: 1 });
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    });
  });
});
