/**
 * Store failures over HTTP, on Express 5/4, Koa 3/2, Fastify and Hono: a store whose calls never answer (the
 * `timeout` budget must answer for it) and a real Redis that is stopped, then back.
 *
 * - `onStoreError: 'open'` (default): 200, no quota headers (we know nothing), outage logged once.
 * - `'closed'`: 503 problem+json with Retry-After.
 * - A handler `(err, req)` chooses per request.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { RedisStore } from '../../src/stores/redis.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { frameworks, recordingLogger } from './frameworks.js';

const TIMEOUT_MS = 100;
/** Scheduling slack on a noisy 2-core machine (RELIABILITY.md: max ≤ timeout + 250 ms). */
const SLACK_MS = 400;

/** A store whose every call stays pending forever. */
function hangingStore(): Store {
  const never = () => new Promise<never>(() => {});
  return { consume: never, peek: never, refund: never, reset: never } as unknown as Store;
}

function quotaHeaders(headers: Record<string, string>): string[] {
  return Object.keys(headers).filter((name) => name.includes('ratelimit'));
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

describe.each(frameworks)('store failures on $name', (fw) => {
  describe('a store that never answers', () => {
    it("fails open within the timeout: 200, no quota headers, one log line per outage", async () => {
      const logger = recordingLogger();
      const decisions: Decision[] = [];
      const onDecision = (_req: unknown, decision: Decision) => void decisions.push(decision);
      const app = fw.app([fw.rateLimit({ store: hangingStore(), limit: 1, window: '1m', timeout: TIMEOUT_MS, logger, onDecision })]);
      for (let i = 0; i < 3; i++) {
        const { value: response, ms } = await timed(() => request(app).get('/hello'));
        expect(response.status).toBe(200);
        expect(quotaHeaders(response.headers)).toEqual([]);
        expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
        expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      }
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatch(/^\[ratelock\] store unavailable \(ERR_RATELOCK_STORE_TIMEOUT: /);
      expect(decisions.map((d) => [d.allowed, d.reason])).toEqual(Array(3).fill([true, 'store-timeout']));
    });

    it("fails closed within the timeout: 503 problem+json with Retry-After", async () => {
      const logger = recordingLogger();
      const app = fw.app([fw.rateLimit({ store: hangingStore(), limit: 1, window: '1m', timeout: TIMEOUT_MS, logger, onStoreError: 'closed' })]);
      const { value: response, ms } = await timed(() => request(app).get('/hello'));
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(response.text)).toMatchObject({ title: 'Service Unavailable', status: 503 });
      expect(quotaHeaders(response.headers)).toEqual([]);
      expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatch(/^\[ratelock\] store unavailable \(ERR_RATELOCK_STORE_TIMEOUT: /);
    });

    it('lets an onStoreError handler decide per request, given the error and the request', async () => {
      const logger = recordingLogger();
      const onStoreError = vi.fn((_err: Error, req: unknown) => (fw.header(req, 'x-critical') === 'yes' ? 'closed' : 'open'));
      const app = fw.app([fw.rateLimit({ store: hangingStore(), limit: 1, window: '1m', timeout: TIMEOUT_MS, logger, onStoreError })]);
      expect((await request(app).get('/hello')).status).toBe(200);
      expect((await request(app).get('/hello').set('x-critical', 'yes')).status).toBe(503);
      expect(onStoreError).toHaveBeenCalledTimes(2);
      expect((onStoreError.mock.calls[0]![0] as unknown as { code: string }).code).toBe('ERR_RATELOCK_STORE_TIMEOUT');
    });

    it('turns a bad onStoreError handler value into a 500 ConfigError', async () => {
      const logger = recordingLogger();
      const app = fw.app([fw.rateLimit({ store: hangingStore(), limit: 1, window: '1m', timeout: TIMEOUT_MS, logger, onStoreError: () => 'maybe' })]);
      const response = await request(app).get('/hello');
      expect(response.status).toBe(500);
      expect(response.body).toMatchObject({ code: 'ERR_RATELOCK_CONFIG', message: `onStoreError must return 'open' or 'closed'; got "maybe"` });
    });
  });

  describe('a store whose refunds fail', () => {
    it('asks an (err, req) onStoreError about the failed refund, with the request that made it', async () => {
      const memory = new MemoryStore({ sweepIntervalMs: 0 });
      const store = {
        consume: (limits, cost) => memory.consume(limits, cost),
        peek: (limits, cost) => memory.peek(limits, cost),
        reset: (keys) => memory.reset(keys),
        refund: () => Promise.reject(new Error('connection reset')),
      } as Pick<Store, 'consume' | 'peek' | 'reset' | 'refund'> as Store;
      const logger = recordingLogger();
      const onStoreError = vi.fn((_err: Error, _req: unknown) => 'closed' as const);
      const app = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', refund: 'success', onStoreError, logger })]);
      expect((await request(app).get('/hello').set('x-client', 'c-42')).status).toBe(200);
      await vi.waitFor(() => expect(onStoreError).toHaveBeenCalledTimes(1));
      const [err, req] = onStoreError.mock.calls[0]!;
      expect(err).toMatchObject({ code: 'ERR_RATELOCK_STORE', message: 'store call failed: connection reset' });
      expect(fw.header(req, 'x-client')).toBe('c-42');
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatch(/^\[ratelock\] store unavailable \(ERR_RATELOCK_STORE: store call failed: connection reset\)/);
      memory.close();
    });
  });

  describe('a real Redis, stopped and back', () => {
    let server: RedisServerHandle;
    let client: Redis;

    beforeAll(async () => {
      server = await startRedisServer();
      client = new Redis(server.url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: () => 50 });
      client.on('error', () => {}); // reconnect noise while the server is down
      await client.ping(); // ready: calls made before that fail at once by design
    });

    afterAll(async () => {
      client.disconnect();
      await server.stop();
    });

    it('fails open then closed while Redis is down, and limits again once it is back', async () => {
      const logger = recordingLogger();
      const store = new RedisStore({ client });
      const open = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', timeout: TIMEOUT_MS, logger })]);
      const closed = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', timeout: TIMEOUT_MS, logger, onStoreError: 'closed', prefix: 'closed:' })]);
      const healthy = await request(open).get('/hello');
      expect(healthy.status).toBe(200);
      expect(healthy.headers['ratelimit']).toBe('"5-in-1m";r=4;t=60');

      await server.stop();
      const down = await timed(() => request(open).get('/hello'));
      expect(down.value.status).toBe(200);
      expect(quotaHeaders(down.value.headers)).toEqual([]);
      expect(down.ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      const refused = await timed(() => request(closed).get('/hello'));
      expect(refused.value.status).toBe(503);
      expect(refused.value.headers['retry-after']).toBe('1');
      expect(refused.ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      expect(logger.lines.filter((line) => line.includes('store unavailable'))).toHaveLength(1);

      await server.restart(); // same port, empty data
      await vi.waitFor(
        async () => {
          const back = await request(open).get('/hello');
          expect(back.headers['ratelimit']).toBe('"5-in-1m";r=4;t=60');
        },
        { timeout: 10_000, interval: 100 },
      );
      // The end of an outage is logged on a successful call after a quiet period without failures.
      await vi.waitFor(
        async () => {
          await request(open).get('/hello');
          expect(logger.lines.filter((line) => line.includes('recovered'))).toHaveLength(1);
        },
        { timeout: 10_000, interval: 200 },
      );
    });
  });
});
