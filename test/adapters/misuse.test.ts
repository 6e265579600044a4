/**
 * What an app gets wrong without noticing, on Express 5/4, Koa 3/2, Fastify and Hono:
 * - the same limiter mounted twice on one request counts it once (and warns once);
 * - a key extractor returning something that is no key (an object) is a 500 ConfigError, like a
 *   bad `limit(req)` value, never a silent fall back to the IP;
 * - a custom store whose lock call answers nonsense (`null`) is a StoreError: 503, not a 500 TypeError.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { frameworks, recordingLogger } from './frameworks.js';
import { lockApp } from './support/apps.js';

describe.each(frameworks)('misuse on $name', (fw) => {
  it('counts a request once when the same limiter is mounted twice on its path, and warns once', async () => {
    const store = new MemoryStore();
    const logger = recordingLogger();
    const limiter = fw.rateLimit({ store, limit: 2, window: '1m', key: () => 'k', logger });
    const app = fw.app([limiter, limiter]);
    const first = await request(app).get('/hello');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit']).toBe('"2-in-1m";r=1;t=60');
    expect((await request(app).get('/hello')).status).toBe(200);
    expect((await request(app).get('/hello')).status).toBe(429);
    expect(logger.lines).toEqual(['[ratelock] one rate limiter ran twice on the same request (mounted twice?); it counted the request once']);
    store.close();
  });

  it('answers 500 with a ConfigError when a key extractor returns an object', async () => {
    const store = new MemoryStore();
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: () => ({ id: 7 }) })]);
    const response = await request(app).get('/hello');
    expect(response.status).toBe(500);
    expect(response.body).toMatchObject({ code: 'ERR_RATELOCK_CONFIG', name: 'ConfigError' });
    expect(response.body.message).toContain('key must return a string, a finite number or a list of strings');
    store.close();
  });

  it('answers 500 with a ConfigError when one extractor of a list returns a boolean', async () => {
    const store = new MemoryStore();
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: [() => undefined, () => true] })]);
    const response = await request(app).get('/hello');
    expect(response.status).toBe(500);
    expect(response.body.message).toContain('key[1] must return a string');
    store.close();
  });

  it('answers 503 (StoreError) when a custom store answers a lock call with null', async () => {
    const memory = new MemoryStore();
    const broken = Object.assign(Object.create(memory) as Store, { acquireLock: async () => null }) as unknown as Store;
    const app = lockApp(fw.name, { lock: { store: broken, key: () => 'cart-1', logger: recordingLogger() }, handler: () => ({ status: 200, body: 'ran' }) });
    const response = await request(app).post('/orders');
    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ code: 'store-unavailable' });
    memory.close();
  });
});
