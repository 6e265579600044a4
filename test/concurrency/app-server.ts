/**
 * One app process of the multi-process tests:
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs test/concurrency/app-server.ts \
 *     <express|express4|koa|koa2|fastify|hono> <redis URL | cluster:host:port,host:port,...> <limits JSON>
 *
 * `<limits JSON>` maps a path to its limiter, e.g. `{"/burst":{"limit":100,"window":60000,"prefix":"x:"}}`.
 * Each path goes through its own `rateLimit` (default key: the client IP, so every request shares
 * one key) on one RedisStore, and an allowed request answers 200 `{ startedAt, decidedAt }`: the
 * wall-clock ms just before the store call and just after its answer, which bound the moment Redis
 * admitted it. Prints `ready <port>` once listening and connected; runs until killed.
 *
 * Fail-closed with a generous timeout: a store failure must show up as a 503 (a test failure), never
 * as an uncounted 200.
 */
import express4 from 'express4';
import express5, { type NextFunction, type Request, type Response } from 'express';
import Koa2 from 'koa2';
import Koa3, { type Context, type Next } from 'koa';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { Cluster, Redis } from 'ioredis';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { rateLimit as fastifyRateLimit } from '../../src/adapters/fastify/rate-limit.js';
import { rateLimit as honoRateLimit } from '../../src/adapters/hono/rate-limit.js';
import type { Decision } from '../../src/core/decision.js';

declare module 'fastify' {
  interface FastifyRequest {
    startedAt: number;
    decidedAt: number;
  }
}
import { RedisStore } from '../../src/stores/redis.js';

const [framework, target, limitsJson] = process.argv.slice(2);
if (!framework || !target || !limitsJson) {
  throw new Error('usage: app-server.ts <express|express4|koa|koa2|fastify|hono> <redis URL | cluster:host:port,...> <limits JSON>');
}
const limits = JSON.parse(limitsJson) as Record<string, { limit: number; window: number; prefix: string }>;

const client = target.startsWith('cluster:')
  ? new Cluster(
      target
        .slice('cluster:'.length)
        .split(',')
        .map((node) => ({ host: node.split(':')[0]!, port: Number(node.split(':')[1]) })),
      { redisOptions: { maxRetriesPerRequest: 1 }, enableAutoPipelining: true },
    )
  : new Redis(target, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
await new Promise<void>((resolve, reject) => {
  client.once('ready', resolve);
  client.once('error', reject);
});

const store = new RedisStore({ client });
const common = { store, timeout: 10_000, onStoreError: 'closed' as const };

function expressApp(create: typeof express5): RequestListener {
  const app = create();
  const markStart = (_req: Request, res: Response, next: NextFunction) => {
    res.locals.startedAt = Date.now();
    next();
  };
  const markDecided = (req: Request) => void (req.res!.locals.decidedAt = Date.now());
  const answer = (_req: Request, res: Response) => void res.json({ startedAt: res.locals.startedAt, decidedAt: res.locals.decidedAt });
  for (const [path, limit] of Object.entries(limits)) {
    app.get(path, markStart, expressRateLimit({ ...common, ...limit, onDecision: markDecided }), answer);
  }
  return app as unknown as RequestListener;
}

function koaApp(Create: typeof Koa3): RequestListener {
  const app = new Create();
  const limiters = new Map(
    Object.entries(limits).map(([path, limit]) => [
      path,
      koaRateLimit({ ...common, ...limit, onDecision: (ctx: Context, _decision: Decision) => void (ctx.state.decidedAt = Date.now()) }),
    ]),
  );
  app.use(async (ctx: Context, next: Next) => {
    const limiter = limiters.get(ctx.path);
    if (limiter === undefined) {
      ctx.status = 404;
      return;
    }
    ctx.state.startedAt = Date.now();
    await limiter(ctx, next);
  });
  app.use((ctx: Context) => {
    ctx.body = { startedAt: ctx.state.startedAt, decidedAt: ctx.state.decidedAt };
  });
  return app.callback();
}

/** Each path's limit as a route's own `config.rateLimit` (counted per route, as each path has its own limiter elsewhere). */
async function fastifyApp(): Promise<RequestListener> {
  const app = Fastify();
  app.decorateRequest('startedAt', 0);
  app.decorateRequest('decidedAt', 0);
  app.addHook('onRequest', async (request) => void (request.startedAt = Date.now()));
  await app.register(fastifyRateLimit, { ...common, global: false, onDecision: (request) => void (request.decidedAt = Date.now()) });
  for (const [path, limit] of Object.entries(limits)) {
    app.get(path, { config: { rateLimit: limit } }, async (request) => ({ startedAt: request.startedAt, decidedAt: request.decidedAt }));
  }
  await app.ready();
  return (req, res) => app.routing(req, res);
}

function honoApp(): RequestListener {
  const app = new Hono<{ Variables: { startedAt: number; decidedAt: number } }>();
  for (const [path, limit] of Object.entries(limits)) {
    app.get(
      path,
      async (c, next) => {
        c.set('startedAt', Date.now());
        await next();
      },
      honoRateLimit({ ...common, ...limit, onDecision: (c) => void c.set('decidedAt' as never, Date.now() as never) }),
      (c) => c.json({ startedAt: c.get('startedAt'), decidedAt: c.get('decidedAt') }),
    );
  }
  return getRequestListener(app.fetch);
}

const apps: Record<string, () => RequestListener | Promise<RequestListener>> = {
  express: () => expressApp(express5),
  express4: () => expressApp(express4),
  koa: () => koaApp(Koa3),
  koa2: () => koaApp(Koa2),
  fastify: fastifyApp,
  hono: honoApp,
};
const build = apps[framework];
if (build === undefined) throw new Error(`unknown framework ${framework}`);

const server = createServer(await build());
server.listen(0, '127.0.0.1', () => {
  console.log(`ready ${(server.address() as AddressInfo).port}`);
});
