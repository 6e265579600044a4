/** The Koa 3 app of a case: `GET /` answers `ok` behind the case's limiter (or none). */
import Koa from 'koa';
import { connectedClient } from './redis-client.js';
import { naiveLimiter } from './naive-limiter.js';
import { HEADER, LIMITS, type HttpCase } from './cases.js';
import { loadKoa } from '../library.js';

const apiKey = (ctx: Koa.Context): string => ctx.get(HEADER) || 'none';

async function limiterFor(c: HttpCase, redisUrl: string): Promise<Koa.Middleware | undefined> {
  const { limit, windowMs } = LIMITS[c.path];
  switch (c.impl) {
    case 'bare':
      return undefined;
    case 'ratelock-memory': {
      const { rateLimit, MemoryStore, keys } = await loadKoa();
      return rateLimit({ store: new MemoryStore(), limit, window: windowMs, key: keys.header(HEADER) });
    }
    case 'ratelock-redis': {
      const { rateLimit, RedisStore, keys } = await loadKoa();
      const client = await connectedClient(redisUrl, c.autoPipelining);
      return rateLimit({ store: new RedisStore({ client }), limit, window: windowMs, key: keys.header(HEADER) });
    }
    case 'naive': {
      const allow = await naiveLimiter(await connectedClient(redisUrl, c.autoPipelining), limit, windowMs);
      return async (ctx, next) => {
        if (await allow(apiKey(ctx))) return next();
        ctx.status = 429;
        ctx.body = 'Too Many Requests';
      };
    }
    case 'koa-ratelimit': {
      // koa-ratelimit's README setup: the redis driver over ioredis.
      const { default: ratelimit } = await import('koa-ratelimit');
      return ratelimit({ driver: 'redis', db: await connectedClient(redisUrl, c.autoPipelining), duration: windowMs, max: limit, id: apiKey });
    }
    default:
      throw new Error(`${c.id}: ${c.impl} has no Koa setup`);
  }
}

export async function koaApp(c: HttpCase, redisUrl: string): Promise<Koa> {
  const app = new Koa();
  const limiter = await limiterFor(c, redisUrl);
  if (limiter) app.use(limiter);
  app.use((ctx) => {
    ctx.body = 'ok';
  });
  return app;
}
