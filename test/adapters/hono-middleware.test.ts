/**
 * What only Hono has: no `req.ip`, `.headers` or `.query` on its Context, so the key extractors
 * read it through the adapter's view (the socket address from @hono/node-server, no proxy header
 * unless `trustProxy({ hops })` says so, and then X-Forwarded-For only); a Response returned as is
 * still gets the quota headers; without @hono/node-server's bindings (`app.request()`), withLock
 * reads the Idempotency-Key from the web request. The shared cases run on Hono through
 * frameworks.ts.
 */
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import type { Decision } from '../../src/core/decision.js';
import { rateLimit, type RateLimitEnv } from '../../src/adapters/hono/rate-limit.js';
import { trustProxy } from '../../src/adapters/hono/request-view.js';
import { withLock, type LockEnv } from '../../src/adapters/hono/with-lock.js';
import { keys } from '../../src/keys/index.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { recordingLogger } from './frameworks.js';

/** A store without a sweep timer: nothing to close after a test. */
const newStore = (): MemoryStore => new MemoryStore({ sweepIntervalMs: 0 });

/** An app answering every path with the decision's key. */
function keyApp(setUp: (app: Hono<RateLimitEnv>) => void) {
  const app = new Hono<RateLimitEnv>();
  setUp(app);
  app.all('*', (c) => c.json({ key: c.get('rateLimit')?.key ?? null }));
  return getRequestListener(app.fetch);
}

describe('Hono keys', () => {
  it('keys by the socket address and trusts no proxy header by default, warning once about X-Forwarded-For', async () => {
    const logger = recordingLogger();
    const app = keyApp((hono) => hono.use(rateLimit({ store: newStore(), limit: 5, window: '1m', logger })));
    const response = await request(app).get('/').set('x-forwarded-for', '203.0.113.9');
    expect(response.body).toEqual({ key: 'ip:127.0.0.1' });
    await request(app).get('/').set('x-forwarded-for', '203.0.113.10');
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR: .*trustProxy\(\{ hops: 1 \}\) from ratelock\/hono/);
  });

  it('trustProxy({ hops }) takes the client behind that many proxies from X-Forwarded-For, never an entry left of them', async () => {
    const app = keyApp((hono) => {
      hono.use(trustProxy({ hops: 2 }));
      hono.use(rateLimit({ store: newStore(), limit: 5, window: '1m' }));
    });
    const key = async (forwarded?: string) => {
      const pending = request(app).get('/');
      return (await (forwarded === undefined ? pending : pending.set('x-forwarded-for', forwarded))).body.key;
    };
    // socket (1st proxy) → 198.51.100.2 (2nd proxy, rightmost entry) → 203.0.113.7 (the client).
    expect(await key('6.6.6.6, 203.0.113.7, 198.51.100.2')).toBe('ip:203.0.113.7');
    expect(await key('203.0.113.7')).toBe('ip:203.0.113.7'); // fewer entries than hops: the leftmost
    expect(await key(' , ')).toBe('ip:127.0.0.1');
    expect(await key()).toBe('ip:127.0.0.1');
  });

  it.each([0, 1.5, 33, '1', undefined])('trustProxy refuses hops %j', (hops) => {
    expect(() => trustProxy({ hops } as never)).toThrow(ConfigError);
    expect(() => trustProxy({ hops } as never)).toThrow(/^trustProxy\(\) option hops must be an integer from 1 to 32/);
  });

  it('trustProxy refuses unknown options and a missing options object', () => {
    expect(() => trustProxy({ hops: 1, foo: 2 } as never)).toThrow(/^trustProxy\(\) has no option "foo"; allowed options: hops/);
    expect(() => trustProxy(undefined as never)).toThrow(/^trustProxy\(\) options must be an object like \{ hops: 1 \}/);
  });

  it('reads headers (first of repeated lines) and query parameters for keys.header() and keys.query()', async () => {
    const app = keyApp((hono) => hono.use(rateLimit({ store: newStore(), limit: 5, window: '1m', key: [keys.header('x-api-key'), keys.query('apiKey')] })));
    expect((await request(app).get('/').set('x-api-key', ['first', 'second'] as never)).body.key).toBe('header:x-api-key:first');
    expect((await request(app).get('/?apiKey=q1&apiKey=q2')).body.key).toBe('query:apiKey:q1');
  });
});

describe('Hono rateLimit', () => {
  it('puts the quota headers on a Response the handler returns as is', async () => {
    const app = new Hono();
    app.use(rateLimit({ store: newStore(), limit: 2, window: '1m' }));
    app.get('/raw', () => new Response('raw', { headers: { 'x-own': 'yes' } }));
    const response = await request(getRequestListener(app.fetch)).get('/raw');
    expect(response.status).toBe(200);
    expect(response.text).toBe('raw');
    expect(response.headers['x-own']).toBe('yes');
    expect(response.headers['ratelimit-policy']).toBe('"2-in-1m";q=2;w=60');
    expect(response.headers['ratelimit']).toMatch(/^"2-in-1m";r=1/);
  });
});

describe('Hono without @hono/node-server bindings (app.request)', () => {
  it('keys the IP as unknown and reads the Idempotency-Key from the web request', async () => {
    const store = newStore();
    const seen: Decision[] = [];
    let runs = 0;
    const app = new Hono<RateLimitEnv & LockEnv>();
    app.use(rateLimit({ store, limit: 5, window: '1m', onDecision: (_c, decision) => void seen.push(decision) }));
    app.post('/pay', withLock({ store, replay: true }), (c) => c.json({ run: ++runs, fence: c.get('lock')?.fence }, 201));
    const pay = () => app.request('/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k-1', 'content-type': 'application/json' }, body: '{"a":1}' });
    const first = await pay();
    // The record completes as the body is read to its end (the client has the whole response).
    const original: unknown = await first.json();
    const retry = await pay();
    expect([first.status, retry.status]).toEqual([201, 201]);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(original);
    expect(runs).toBe(1);
    expect(seen.map((decision) => decision.key)).toEqual(['ip:unknown', 'ip:unknown']);
    const missing = await app.request('/pay', { method: 'POST' });
    expect(missing.status).toBe(400);
  });
});
