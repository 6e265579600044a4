/**
 * One benchmark server per process: `node --import tsx bench/servers.ts <case> <port> [redisUrl]`.
 * Each case answers `GET /` with a tiny body behind one limiter (or none). Limits are high enough
 * that nothing is blocked: we measure the cost of deciding, not of answering 429s.
 * Prints `ready` on stdout once listening.
 */
import { Redis } from 'ioredis';
import express from 'express';
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

const [caseName, portText, redisUrl] = process.argv.slice(2);
const port = Number(portText);
const LIMIT = 1_000_000_000;
const WINDOW_MS = 60_000;

function redisClient(): Redis {
  // Same client settings for every Redis-backed case, ours and the peers'.
  return new Redis(redisUrl ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
}

async function expressApp(): Promise<express.Express> {
  const app = express();
  const hello = (_req: express.Request, res: express.Response) => void res.send('ok');
  switch (caseName) {
    case 'express-bare':
      break;
    case 'express-ratelock-memory': {
      const { rateLimit } = await import('../src/express.js');
      app.use(rateLimit({ limit: LIMIT, window: WINDOW_MS }));
      break;
    }
    case 'express-ratelock-redis': {
      const { rateLimit, RedisStore } = await import('../src/express.js');
      app.use(rateLimit({ store: new RedisStore({ client: redisClient() }), limit: LIMIT, window: WINDOW_MS }));
      break;
    }
    case 'express-erl-redis': {
      const { rateLimit } = await import('express-rate-limit');
      const { RedisStore } = await import('rate-limit-redis');
      const client = redisClient();
      app.use(
        rateLimit({
          windowMs: WINDOW_MS,
          limit: LIMIT,
          standardHeaders: 'draft-8',
          legacyHeaders: false,
          store: new RedisStore({ sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as never }),
        }),
      );
      break;
    }
    case 'express-rlf-redis': {
      const { RateLimiterRedis } = await import('rate-limiter-flexible');
      const limiter = new RateLimiterRedis({ storeClient: redisClient(), points: LIMIT, duration: WINDOW_MS / 1000 });
      app.use((req, res, next) => {
        limiter.consume(req.ip ?? 'unknown').then(
          () => next(),
          () => void res.status(429).send('Too Many Requests'),
        );
      });
      break;
    }
    default:
      throw new Error(`unknown case ${caseName}`);
  }
  app.get('/', hello);
  return app;
}

async function koaApp(): Promise<Koa> {
  const app = new Koa();
  switch (caseName) {
    case 'koa-bare':
      break;
    case 'koa-ratelock-redis': {
      const { rateLimit, RedisStore } = await import('../src/koa.js');
      app.use(rateLimit({ store: new RedisStore({ client: redisClient() }), limit: LIMIT, window: WINDOW_MS }));
      break;
    }
    case 'koa-ratelimit-redis': {
      const { default: ratelimit } = await import('koa-ratelimit');
      app.use(ratelimit({ driver: 'redis', db: redisClient(), duration: WINDOW_MS, max: LIMIT, id: (ctx) => ctx.ip }));
      break;
    }
    default:
      throw new Error(`unknown case ${caseName}`);
  }
  app.use((ctx) => {
    ctx.body = 'ok';
  });
  return app;
}

const app = caseName!.startsWith('koa') ? (await koaApp()).callback() : await expressApp();
const server: Server = (app as express.Express).listen
  ? (app as express.Express).listen(port, '127.0.0.1')
  : (await import('node:http')).createServer(app as never).listen(port, '127.0.0.1');
server.on('listening', () => {
  console.log(`ready ${(server.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
