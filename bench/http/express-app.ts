/** The Express 5 app of a case: `GET /` answers `ok` behind the case's limiter (or none). */
import express from 'express';
import { connectedClient } from './redis-client.js';
import { naiveLimiter } from './naive-limiter.js';
import { HEADER, LIMITS, type HttpCase } from './cases.js';
import { loadExpress } from '../library.js';

type Handler = express.RequestHandler;

const apiKey = (req: express.Request): string => String(req.headers[HEADER] ?? 'none');

async function limiterFor(c: HttpCase, redisUrl: string): Promise<Handler | undefined> {
  const { limit, windowMs } = LIMITS[c.path];
  switch (c.impl) {
    case 'bare':
      return undefined;
    case 'ratelock-memory': {
      const { rateLimit, MemoryStore, keys } = await loadExpress();
      return rateLimit({ store: new MemoryStore(), limit, window: windowMs, key: keys.header(HEADER) });
    }
    case 'ratelock-redis': {
      const { rateLimit, RedisStore, keys } = await loadExpress();
      const client = await connectedClient(redisUrl, c.autoPipelining);
      return rateLimit({ store: new RedisStore({ client }), limit, window: windowMs, key: keys.header(HEADER) });
    }
    case 'naive': {
      const allow = await naiveLimiter(await connectedClient(redisUrl, c.autoPipelining), limit, windowMs);
      return (req, res, next) => {
        allow(apiKey(req)).then((ok) => (ok ? next() : void res.status(429).send('Too Many Requests')), next);
      };
    }
    case 'erl': {
      // express-rate-limit's README setup with rate-limit-redis over ioredis.
      const { rateLimit } = await import('express-rate-limit');
      const { RedisStore } = await import('rate-limit-redis');
      const client = await connectedClient(redisUrl, c.autoPipelining);
      return rateLimit({
        windowMs,
        limit,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        keyGenerator: apiKey,
        store: new RedisStore({ sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as never }),
      });
    }
    case 'rlf': {
      // rate-limiter-flexible's documented Express middleware.
      const { RateLimiterRedis } = await import('rate-limiter-flexible');
      const limiter = new RateLimiterRedis({ storeClient: await connectedClient(redisUrl, c.autoPipelining), points: limit, duration: windowMs / 1000 });
      return (req, res, next) => {
        limiter.consume(apiKey(req)).then(
          () => next(),
          () => void res.status(429).send('Too Many Requests'),
        );
      };
    }
    default:
      throw new Error(`${c.id}: ${c.impl} has no Express setup`);
  }
}

export async function expressApp(c: HttpCase, redisUrl: string): Promise<express.Express> {
  const app = express();
  const limiter = await limiterFor(c, redisUrl);
  if (limiter) app.use(limiter);
  app.get('/', (_req, res) => void res.send('ok'));
  return app;
}
