/**
 * `rateLimitRoutes()` over HTTP: the same suite on every framework (Express 5/4, Koa 3/2, Fastify, Hono) and every
 * store (MemoryStore, Redis, Redis Cluster). Each test uses its own key prefix, so tests never
 * share logs on the shared servers.
 */
import express from 'express';
import Koa from 'koa';
import mount from 'koa-mount';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { decideInProcess, type Store } from '../../src/core/store.js';
import { rateLimitRoutes as expressRateLimitRoutes } from '../../src/adapters/express/routes.js';
import { rateLimitRoutes as koaRateLimitRoutes } from '../../src/adapters/koa/routes.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { createTestStore, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';
import { frameworks, recordingLogger, type Framework } from './frameworks.js';

const table = [
  { name: 'login', route: 'POST /login', limit: 2, window: '1m', key: 'ip' },
  { name: 'search', route: 'GET /search', limit: 3, window: '1m' },
  { name: 'users', route: '/users/:id', limit: 2, window: '1m' },
  { name: 'api', route: '/api/*', limit: 5, window: '1m', key: ['header:x-api-key', 'ip'] },
  { name: 'apiwrite', route: 'POST /api/items', limit: 1, window: '1m', key: ['header:x-api-key', 'ip'] },
  { name: 'me', route: '/me', limit: 1, window: '1m', key: 'user' },
];

/** The store with its `consume` calls counted (a MemoryStore's in-process consumes too: what a limiter calls on it). */
function counted(store: Store): { store: Store; calls: { consume: number } } {
  const calls = { consume: 0 };
  const wrapped = new Proxy(store, {
    get(target, property) {
      if (property === 'consume') {
        return (...args: Parameters<Store['consume']>) => {
          calls.consume++;
          return target.consume(...args);
        };
      }
      if (property === decideInProcess && decideInProcess in target) {
        const decide = (target as unknown as Record<typeof decideInProcess, (...args: unknown[]) => unknown>)[decideInProcess];
        return (...args: unknown[]) => {
          if (args[2] === true) calls.consume++;
          return decide.apply(target, args);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapped, calls };
}

function quotaHeaders(headers: Record<string, string>): string[] {
  return Object.keys(headers).filter((name) => name.includes('ratelimit'));
}

describe.each(storeKinds)('rateLimitRoutes on the %s store', (kind) => {
  let testStore: TestStore;

  beforeAll(async () => {
    testStore = await createTestStore(kind);
  });

  afterAll(async () => {
    await testStore.flush();
    await testStore.close();
  });

  describe.each(frameworks)('with $name', (fw: Framework) => {
    /** A fresh app on its own prefix; `decisions` collects what onDecision saw. */
    function setup(routes: readonly Record<string, unknown>[] = table) {
      const { store, calls } = counted(testStore.store);
      const decisions: Decision[] = [];
      const middleware = fw.rateLimitRoutes({
        store,
        prefix: `${uniqueId('rt')}:`,
        user: (req: unknown) => fw.header(req, 'x-user'),
        routes,
        logger: recordingLogger(),
        onDecision: (_req: unknown, decision: Decision) => void decisions.push(decision),
      });
      return { app: fw.app([middleware]), calls, decisions };
    }

    it('leaves unmatched requests untouched: no store call, no headers', async () => {
      const { app, calls } = setup();
      for (const [method, path] of [
        ['get', '/hello'],
        ['get', '/login'],
        ['post', '/search'],
        ['get', '/apix'],
        ['get', '/users/1/posts'],
        ['get', '/users'],
      ] as const) {
        const response = await request(app)[method](path);
        expect(response.status, `${method} ${path}`).toBe(200);
        expect(quotaHeaders(response.headers), `${method} ${path}`).toEqual([]);
      }
      expect(calls.consume).toBe(0);
    });

    it('limits an exact METHOD PATH rule, naming the rule in the policy', async () => {
      const { app } = setup();
      const first = await request(app).post('/login');
      expect(first.status).toBe(200);
      expect(first.headers['ratelimit-policy']).toBe('"login/2-in-1m";q=2;w=60');
      expect(first.headers['ratelimit']).toBe('"login/2-in-1m";r=1;t=60');
      expect((await request(app).post('/Login/')).status).toBe(200);
      const limited = await request(app).post('/login');
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(59);
      expect(JSON.parse(limited.text)['violated-policies']).toEqual(['login/2-in-1m']);
    });

    it('counts HEAD against a GET rule', async () => {
      const { app } = setup();
      expect((await request(app).get('/search')).status).toBe(200);
      expect((await request(app).head('/search')).status).toBe(200);
      expect((await request(app).get('/search')).status).toBe(200);
      expect((await request(app).head('/search')).status).toBe(429);
    });

    it('matches :param segments (one rule, one bucket for every value)', async () => {
      const { app } = setup();
      expect((await request(app).get('/users/1')).status).toBe(200);
      expect((await request(app).delete('/users/2')).status).toBe(200);
      expect((await request(app).get('/users/3')).status).toBe(429);
    });

    it('matches /api/* on /api and below, keyed by API key when one is sent', async () => {
      const { app } = setup();
      const paths = ['/api', '/api/x/y', '/api/', '/api/a', '/api/b'];
      for (const [i, path] of paths.entries()) {
        const response = await request(app).get(path).set('x-api-key', 'k1');
        expect(response.status, path).toBe(200);
        // t counts down from 60 with the real clock: only r is exact here.
        expect(response.headers['ratelimit'], path).toMatch(new RegExp(`^"api/5-in-1m";r=${4 - i};t=\\d+$`));
      }
      expect((await request(app).get('/api/c').set('x-api-key', 'k1')).status).toBe(429);
      expect((await request(app).get('/api/c').set('x-api-key', 'k2')).status).toBe(200);
      expect((await request(app).get('/api/c')).status).toBe(200); // no key: by IP
    });

    it('decides overlapping rules in one store call, all or nothing, naming the closest to blocking', async () => {
      const { app, calls, decisions } = setup();
      const first = await request(app).post('/api/items').set('x-api-key', 'k1');
      expect(first.status).toBe(200);
      expect(calls.consume).toBe(1);
      expect(first.headers['ratelimit-policy']).toBe('"api/5-in-1m";q=5;w=60, "apiwrite/1-in-1m";q=1;w=60');
      expect(first.headers['ratelimit']).toBe('"apiwrite/1-in-1m";r=0;t=60');
      expect(decisions[0]).toMatchObject({ allowed: true, key: 'header:x-api-key:k1', policy: { name: 'apiwrite/1-in-1m' } });

      const blocked = await request(app).post('/api/items').set('x-api-key', 'k1');
      expect(blocked.status).toBe(429);
      expect(blocked.headers['ratelimit']).toMatch(/^"apiwrite\/1-in-1m";r=0;t=\d+$/);
      expect(calls.consume).toBe(2);

      // The blocked POST took nothing from the 'api' rule: 5 - 1 (first POST) - 1 (this GET) = 3.
      const read = await request(app).get('/api/items').set('x-api-key', 'k1');
      expect(read.headers['ratelimit']).toMatch(/^"api\/5-in-1m";r=3;t=\d+$/);
    });

    it('charges each matching rule its own cost, in one store call', async () => {
      const { app, calls, decisions } = setup([
        { name: 'api', route: '/api/*', limit: 100, window: '1m', key: 'header:x-api-key', cost: 1 },
        // Keyed by IP: on Cluster the two rules' logs sit in different slots.
        { name: 'export', route: 'POST /api/export', limit: 25, window: '1m', key: 'ip', cost: 10 },
      ]);
      const first = await request(app).post('/api/export').set('x-api-key', 'k1');
      expect(first.status).toBe(200);
      expect(calls.consume).toBe(1);
      expect(first.headers['ratelimit']).toMatch(/^"export\/25-in-1m";r=15;t=\d+$/);
      expect((await request(app).post('/api/export').set('x-api-key', 'k1')).headers['ratelimit']).toMatch(/^"export\/25-in-1m";r=5;t=\d+$/);
      // 20 + 10 > 25: refused, and the refusal takes nothing from the api rule either.
      expect((await request(app).post('/api/export').set('x-api-key', 'k1')).status).toBe(429);
      // Two exports took 1 each from /api/* (not 10): 100 - 2 - 1 (this GET) = 97.
      const read = await request(app).get('/api/items').set('x-api-key', 'k1');
      expect(read.headers['ratelimit']).toMatch(/^"api\/100-in-1m";r=97;t=\d+$/);
      expect(decisions.map((decision) => [decision.policy.name, decision.remaining])).toEqual([
        ['export/25-in-1m', 15],
        ['export/25-in-1m', 5],
        ['export/25-in-1m', 5],
        ['api/100-in-1m', 97],
      ]);
    });

    it("keys the 'user' spec with the table's user option, falling back to the IP", async () => {
      const { app, decisions } = setup();
      expect((await request(app).get('/me').set('x-user', 'alice')).status).toBe(200);
      expect((await request(app).get('/me').set('x-user', 'alice')).status).toBe(429);
      expect((await request(app).get('/me').set('x-user', 'bob')).status).toBe(200);
      expect((await request(app).get('/me')).status).toBe(200);
      expect(decisions.map((decision) => decision.key)).toEqual(['user:alice', 'user:alice', 'user:bob', 'ip:127.0.0.1']);
    });
  });
});

// A review found an Express table mounted on a path limiting nothing: `req.path` is relative to
// the mount point there. Rules match the whole path (`req.baseUrl + req.path`) wherever it sits.
describe('Express rateLimitRoutes mounted on a path or inside a Router', () => {
  it.each(['app.use(path, table)', 'a Router mounted on the path'])('%s: rules match the whole path', async (how) => {
    const app = express();
    const table = expressRateLimitRoutes({ store: new MemoryStore(), routes: [{ route: 'GET /api/list', limit: 1, window: '1m' }], logger: { warn: () => undefined } });
    if (how === 'app.use(path, table)') {
      app.use('/api', table);
    } else {
      const router = express.Router();
      router.use(table);
      app.use('/api', router);
    }
    app.get('/api/list', (_req, res) => void res.send('ok'));
    app.get('/api/other', (_req, res) => void res.send('ok'));
    expect((await request(app).get('/api/list')).status).toBe(200);
    expect((await request(app).get('/api/list')).status).toBe(429);
    expect((await request(app).get('/api/other')).status).toBe(200); // no rule: untouched
  });
});

// The same with koa-mount, which rewrites `ctx.path` relative to its prefix.
describe('Koa rateLimitRoutes inside an app mounted with koa-mount', () => {
  it('rules match the whole original path', async () => {
    const inner = new Koa();
    inner.use(koaRateLimitRoutes({ store: new MemoryStore(), routes: [{ route: 'GET /api/list', limit: 1, window: '1m' }], logger: { warn: () => undefined } }));
    inner.use((ctx) => void (ctx.body = 'ok'));
    const app = new Koa();
    app.use(mount('/api', inner));
    const server = app.callback();
    expect((await request(server).get('/api/list?page=2')).status).toBe(200);
    expect((await request(server).get('/api/list')).status).toBe(429);
    expect((await request(server).get('/api/other')).status).toBe(200); // no rule: untouched
  });
});
