/**
 * `rateLimit()` mounted on one route (Express `app.get(path, limiter, handler)`, Koa with
 * @koa/router): it guards that route only, and two limiters on one app keep separate quotas.
 */
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { MemoryStore } from '../../src/stores/memory.js';

type AppFactory = (store: MemoryStore) => RequestListener;

function expressApp(create: typeof express5): AppFactory {
  return (store) => {
    const app = create();
    app.get('/login', expressRateLimit({ store, limit: 1, window: '1m', prefix: 'login:' }), (_req, res) => void res.send('login'));
    app.get('/search', expressRateLimit({ store, limit: 2, window: '1m', prefix: 'search:' }), (_req, res) => void res.send('search'));
    app.get('/free', (_req, res) => void res.send('free'));
    return app as unknown as RequestListener;
  };
}

function koaApp(Create: typeof Koa3): AppFactory {
  return (store) => {
    const app = new Create();
    const router = new Router();
    router.get('/login', koaRateLimit({ store, limit: 1, window: '1m', prefix: 'login:' }), (ctx) => void (ctx.body = 'login'));
    router.get('/search', koaRateLimit({ store, limit: 2, window: '1m', prefix: 'search:' }), (ctx) => void (ctx.body = 'search'));
    router.get('/free', (ctx) => void (ctx.body = 'free'));
    app.use(router.routes());
    return app.callback();
  };
}

describe.each([
  ['express', expressApp(express5)],
  ['express4', expressApp(express4)],
  ['koa', koaApp(Koa3)],
  ['koa2', koaApp(Koa2)],
] as const)('rateLimit per route on %s', (_name, createApp) => {
  it('guards only its own route, with its own quota', async () => {
    const app = createApp(new MemoryStore({ sweepIntervalMs: 0 }));
    expect((await request(app).get('/login')).status).toBe(200);
    expect((await request(app).get('/login')).status).toBe(429);
    expect((await request(app).get('/search')).status).toBe(200);
    expect((await request(app).get('/search')).status).toBe(200);
    expect((await request(app).get('/search')).status).toBe(429);
    for (let i = 0; i < 3; i++) {
      const free = await request(app).get('/free');
      expect(free.status).toBe(200);
      expect(free.headers['ratelimit']).toBeUndefined();
    }
  });
});
