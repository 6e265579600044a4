/**
 * What only Fastify has: `rateLimit` and `rateLimitRoutes` are plugins without encapsulation,
 * validated when registered; a route's `config.rateLimit` (as @fastify/rate-limit users write it)
 * replaces the plugin's limits on that route and counts per route, `false` opts out; the plugin
 * covers not-found requests, runs in the hook it is told, and answers through `reply` (the app's
 * onSend hooks see its responses). The shared cases (headers, limits, tables, locks, replay…) run on
 * Fastify through frameworks.ts. Requests are injected (no socket); stores are MemoryStores.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { rateLimit } from '../../src/adapters/fastify/rate-limit.js';
import { rateLimitRoutes } from '../../src/adapters/fastify/routes.js';
import { MemoryStore } from '../../src/stores/memory.js';

declare module 'fastify' {
  interface FastifyRequest {
    user?: string | undefined;
  }
}

/** A store without a sweep timer: nothing to close after a test. */
const newStore = (): MemoryStore => new MemoryStore({ sweepIntervalMs: 0 });

async function statuses(app: FastifyInstance, requests: readonly string[]): Promise<string[]> {
  const seen: string[] = [];
  for (const line of requests) {
    const [method, url] = line.split(' ') as ['GET' | 'POST' | 'HEAD', string];
    const response = await app.inject({ method, url });
    seen.push(`${line} ${response.statusCode}`);
  }
  return seen;
}

describe('Fastify rateLimit plugin', () => {
  it.each([
    [{ limit: 0, window: '1m' }, 'limit must be an integer from 1 to 1000000000; got 0'],
    [{ limit: 1, window: '1m', hook: 'onSend' }, `hook must be one of 'onRequest', 'preValidation', 'preHandler'; got "onSend"`],
    [{ limit: 1, window: '1m', global: 'yes' }, 'global must be true or false; got "yes"'],
    [{ max: 3, timeWindow: '1 minute' }, 'rateLimit() has no option "max": use "limit"'],
  ])('refuses bad options when registered: %j', async (options, message) => {
    const app = Fastify();
    const ready = app.register(rateLimit, { store: newStore(), ...options } as never).ready();
    await expect(ready).rejects.toThrow(ConfigError);
    await expect(ready).rejects.toThrow(message);
  });

  it("fails a route's registration when its config.rateLimit is bad, naming the route", async () => {
    const app = Fastify();
    await app.register(rateLimit, { store: newStore(), limit: 5, window: '1m' });
    expect(() => app.get('/x', { config: { rateLimit: { limit: 0, window: '1m' } } }, async () => 'x')).toThrow(
      'config.rateLimit of route GET /x: limit must be an integer from 1 to 1000000000; got 0',
    );
    expect(() => app.post('/y', { config: { rateLimit: true as never } }, async () => 'y')).toThrow(
      'config.rateLimit of route POST /y must be an object of rateLimit options, or false; got true',
    );
  });

  it('gives a route with config.rateLimit its own count, merged over the plugin options; false opts out; other routes share the plugin quota', async () => {
    const app = Fastify();
    await app.register(rateLimit, { store: newStore(), limit: 3, window: '1m', headers: 'legacy' });
    const strict = { limit: 1, window: '1m' };
    app.get('/a', async () => 'a');
    app.get('/b', async () => 'b');
    app.get('/login', { config: { rateLimit: strict } }, async () => 'login');
    app.get('/signup', { config: { rateLimit: strict } }, async () => 'signup');
    app.get('/search', { config: { rateLimit: { limit: 1 } } }, async () => 'search'); // the plugin's window
    app.get('/health', { config: { rateLimit: false } }, async () => 'ok');

    const login = await app.inject('/login');
    // The plugin's `headers` option applies; the route's limit replaced the plugin's.
    expect(login.headers['x-ratelimit-limit']).toBe('1');
    const search = await app.inject('/search');
    expect([search.headers['x-ratelimit-limit'], search.headers['x-ratelimit-reset']]).toEqual(['1', '60']);
    expect(await statuses(app, ['GET /a', 'GET /b', 'GET /a', 'GET /b', 'HEAD /login', 'GET /signup', 'GET /signup', 'GET /health', 'GET /health'])).toEqual([
      'GET /a 200',
      'GET /b 200',
      'GET /a 200',
      'GET /b 429', // one quota of 3 for every route without its own
      'HEAD /login 429', // the HEAD route Fastify adds shares its GET route's count
      'GET /signup 200', // the same config object on another route: a count of its own
      'GET /signup 429',
      'GET /health 200',
      'GET /health 200',
    ]);
    expect((await app.inject('/health')).headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('counts not-found requests against the plugin quota (probing for URLs costs too)', async () => {
    const app = Fastify();
    await app.register(rateLimit, { store: newStore(), limit: 2, window: '1m' });
    app.get('/known', async () => 'known');
    expect(await statuses(app, ['GET /nope', 'GET /known', 'GET /other'])).toEqual(['GET /nope 404', 'GET /known 200', 'GET /other 429']);
  });

  it('with global: false limits only the routes that have a config.rateLimit', async () => {
    const app = Fastify();
    await app.register(rateLimit, { store: newStore(), global: false, headers: 'legacy' });
    app.get('/open', async () => 'open');
    app.get('/guarded', { config: { rateLimit: { limit: 1, window: '1m' } } }, async () => 'guarded');
    expect(await statuses(app, ['GET /open', 'GET /open', 'GET /guarded', 'GET /guarded', 'GET /nope', 'GET /nope'])).toEqual([
      'GET /open 200',
      'GET /open 200',
      'GET /guarded 200',
      'GET /guarded 429',
      'GET /nope 404',
      'GET /nope 404',
    ]);
  });

  it('applies to the instance that registers it and its children, not to sibling plugins', async () => {
    const app = Fastify();
    const store = newStore();
    app.get('/root', async () => 'root');
    await app.register(async (limited) => {
      await limited.register(rateLimit, { store, limit: 1, window: '1m' });
      limited.get('/inside', async () => 'inside');
      await limited.register(async (child) => {
        child.get('/inside/child', async () => 'child');
      });
    });
    await app.register(async (sibling) => {
      sibling.get('/sibling', async () => 'sibling');
    });
    expect(await statuses(app, ['GET /inside', 'GET /inside/child', 'GET /sibling', 'GET /sibling', 'GET /root', 'GET /root'])).toEqual([
      'GET /inside 200',
      'GET /inside/child 429',
      'GET /sibling 200',
      'GET /sibling 200',
      'GET /root 200',
      'GET /root 200',
    ]);
  });

  it("runs in the hook it is told: with 'preHandler', after the app's auth hook, so the key can use what it set", async () => {
    const app = Fastify();
    app.decorateRequest('user', undefined);
    app.addHook('preHandler', async (request) => {
      request.user = request.headers['x-user'] as string | undefined;
    });
    await app.register(rateLimit, { store: newStore(), limit: 1, window: '1m', hook: 'preHandler', key: (request) => request.user });
    app.get('/me', async (request) => ({ key: request.rateLimit?.key }));
    const alice = await app.inject({ url: '/me', headers: { 'x-user': 'alice' } });
    expect(alice.json()).toEqual({ key: 'alice' });
    expect((await app.inject({ url: '/me', headers: { 'x-user': 'alice' } })).statusCode).toBe(429);
    expect((await app.inject({ url: '/me', headers: { 'x-user': 'bob' } })).statusCode).toBe(200);
  });

  it("answers through reply: the app's onSend hooks see the 429, and onLimited may send its own", async () => {
    const app = Fastify();
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('x-seen-by-onsend', String(reply.statusCode));
      return payload;
    });
    await app.register(rateLimit, { store: newStore(), limit: 1, window: '1m' });
    app.get('/a', async () => 'a');
    app.get('/b', { config: { rateLimit: { limit: 1, window: '1m', onLimited: (_request, reply) => void reply.code(503).send({ busy: true }) } } }, async () => 'b');
    await app.inject('/a');
    const limited = await app.inject('/a');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['x-seen-by-onsend']).toBe('429');
    expect(limited.headers['content-type']).toBe('application/problem+json');
    expect(limited.headers['retry-after']).toBe('60');
    await app.inject('/b');
    const own = await app.inject('/b');
    expect([own.statusCode, own.json(), own.headers['x-seen-by-onsend'], own.headers['retry-after']]).toEqual([503, { busy: true }, '503', '60']);
  });
});

describe('Fastify rateLimitRoutes plugin', () => {
  it('refuses a bad table when registered, naming the rule and field', async () => {
    const app = Fastify();
    const ready = app.register(rateLimitRoutes, { store: newStore(), routes: [{ route: 'GET /a', limit: 1, window: 'soon' }] }).ready();
    await expect(ready).rejects.toThrow(ConfigError);
    await expect(ready).rejects.toThrow(/^routes\[0\]\.window must be/);
  });

  it('applies its rules to every request of the instance, not-found ones included, matched on the path without the query', async () => {
    const app = Fastify();
    await app.register(rateLimitRoutes, { store: newStore(), routes: [{ route: '/api/*', limit: 2, window: '1m', name: 'api' }] });
    app.get('/api/items', async () => 'items');
    app.get('/free', async () => 'free');
    expect(await statuses(app, ['GET /api/items?page=2', 'GET /api/missing', 'GET /api/items', 'GET /free', 'GET /free'])).toEqual([
      'GET /api/items?page=2 200',
      'GET /api/missing 404',
      'GET /api/items 429',
      'GET /free 200',
      'GET /free 200',
    ]);
  });
});
