/**
 * An app process for multi-process lock tests, started by `startChildApp()` (child-process.ts):
 * Express, Koa, Fastify or Hono with `withLock({ store: RedisStore, key: () => LOCK_KEY, ttl: LOCK_TTL_MS })`
 * in front of a handler that prints `RUN <pid> <fence>` and answers after HOLD_MS.
 * Prints `LISTENING <port>` once it accepts connections.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Koa from 'koa';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { Redis } from 'ioredis';
import { RedisStore } from '../../../src/stores/redis.js';
import { withLock as expressWithLock } from '../../../src/adapters/express/with-lock.js';
import { withLock as koaWithLock } from '../../../src/adapters/koa/with-lock.js';
import { withLock as fastifyWithLock } from '../../../src/adapters/fastify/with-lock.js';
import { withLock as honoWithLock, type LockEnv } from '../../../src/adapters/hono/with-lock.js';

const { FRAMEWORK = 'express', REDIS_URL, LOCK_KEY = 'key', LOCK_TTL_MS = '1000', HOLD_MS = '0' } = process.env;
const client = new Redis(REDIS_URL!, { maxRetriesPerRequest: 1 });
// A store budget a loaded test machine does not reach (the default is 250 ms): these tests are
// about which request runs, and a 503 for a slow acquire would only blur that.
const lockOptions = { store: new RedisStore({ client }), key: () => LOCK_KEY, ttl: Number(LOCK_TTL_MS), timeout: 2_000 };

async function work(fence: number | undefined): Promise<void> {
  process.stdout.write(`RUN ${process.pid} ${fence}\n`);
  await sleep(Number(HOLD_MS));
}

let listener;
if (FRAMEWORK === 'express') {
  const app = express();
  app.post('/', expressWithLock(lockOptions), async (req, res) => {
    await work(req.lock?.fence);
    res.status(200).send(String(req.lock?.fence));
  });
  listener = app;
} else if (FRAMEWORK === 'fastify') {
  const app = Fastify();
  app.post('/', { preHandler: fastifyWithLock(lockOptions) }, async (request) => {
    await work(request.lock?.fence);
    return String(request.lock?.fence);
  });
  await app.ready();
  listener = (req: never, res: never) => app.routing(req, res);
} else if (FRAMEWORK === 'hono') {
  const app = new Hono<LockEnv>();
  app.post('/', honoWithLock(lockOptions), async (c) => {
    await work(c.get('lock')?.fence);
    return c.text(String(c.get('lock')?.fence));
  });
  listener = getRequestListener(app.fetch);
} else {
  const app = new Koa();
  app.use(koaWithLock(lockOptions));
  app.use(async (ctx) => {
    await work((ctx.state.lock as { fence: number } | undefined)?.fence);
    ctx.body = String((ctx.state.lock as { fence: number }).fence);
  });
  listener = app.callback();
}

// RedisStore refuses calls until the client is ready: accept requests only then.
if (client.status !== 'ready') await once(client, 'ready');
const server = createServer(listener as never).listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});
