/**
 * `rateLimit()` mounted on one route (Express `app.get(path, limiter, handler)`, Koa with
 * @koa/router, Hono `app.get(path, limiter, handler)`): it guards that route only, and two limiters
 * on one app keep separate quotas, also with the default prefix (each log is named after its quota
 * and window). Fastify's per-route limits (`config.rateLimit`) are in fastify-plugins.test.ts.
 */
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import type { RequestListener } from 'node:http';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { rateLimit as honoRateLimit } from '../../src/adapters/hono/rate-limit.js';
import { MemoryStore } from '../../src/stores/memory.js';

type AppFactory = (store: MemoryStore) => RequestListener;

/** An app-wide 100/1m limiter in front of a 5/1m login limiter, both with the default prefix. */
function expressAppWide(create: typeof express5): AppFactory {
  return (store) => {
    const app = create();
    app.use(expressRateLimit({ store, limit: 100, window: '1m' }));
    app.post('/login', expressRateLimit({ store, limit: 5, window: '1m' }), (_req, res) => void res.send('login'));
    app.get('/other', (_req, res) => void res.send('other'));
    return app as unknown as RequestListener;
  };
}

function koaAppWide(Create: typeof Koa3): AppFactory {
  return (store) => {
    const app = new Create();
    const router = new Router();
    app.use(koaRateLimit({ store, limit: 100, window: '1m' }));
    router.post('/login', koaRateLimit({ store, limit: 5, window: '1m' }), (ctx) => void (ctx.body = 'login'));
    router.get('/other', (ctx) => void (ctx.body = 'other'));
    app.use(router.routes());
    return app.callback();
  };
}

const honoAppWide: AppFactory = (store) => {
  const app = new Hono();
  app.use(honoRateLimit({ store, limit: 100, window: '1m' }));
  app.post('/login', honoRateLimit({ store, limit: 5, window: '1m' }), (c) => c.text('login'));
  app.get('/other', (c) => c.text('other'));
  return getRequestListener(app.fetch);
};

const honoApp: AppFactory = (store) => {
  const app = new Hono();
  app.get('/login', honoRateLimit({ store, limit: 1, window: '1m', prefix: 'login:' }), (c) => c.text('login'));
  app.get('/search', honoRateLimit({ store, limit: 2, window: '1m', prefix: 'search:' }), (c) => c.text('search'));
  app.get('/free', (c) => c.text('free'));
  return getRequestListener(app.fetch);
};

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
  ['hono', honoApp],
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

describe.each([
  ['express', expressAppWide(express5)],
  ['express4', expressAppWide(express4)],
  ['koa', koaAppWide(Koa3)],
  ['koa2', koaAppWide(Koa2)],
  ['hono', honoAppWide],
] as const)('an app-wide and a route limiter on one store on %s', (_name, createApp) => {
  it('keep separate counts: 100/1m app-wide and 5/1m on /login never share a log', async () => {
    const app = createApp(new MemoryStore({ sweepIntervalMs: 0 }));
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await request(app).post('/login')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    // Every login went through the app-wide limiter once: 100 - 7 - this request = 92.
    const other = await request(app).get('/other');
    expect(other.status).toBe(200);
    expect(other.headers['ratelimit']).toMatch(/^"100-in-1m";r=92;t=\d+$/);
  });
});
