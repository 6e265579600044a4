/**
 * The examples run, so they cannot rot: each is spawned as a user would run it (`--once`: start,
 * send a few requests, print them, exit), once on the in-memory store and, where it matters, on
 * the shared Redis. A child that overstays is killed by its PID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { newRedisClient, redisUrl } from '../helpers/redis.js';
import { runExample } from '../helpers/run-example.js';

/** The table rows a `--once` run printed: `[request, status, RateLimit, Retry-After]`. */
function rows(output: string): string[][] {
  return output
    .split('\n')
    .filter((line) => /^(GET|POST|\d+) /.test(line))
    .map((line) => line.trim().split(/\s{2,}/));
}

describe('examples', () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = newRedisClient();
    await redis.flushdb(); // this worker's own DB: the examples' keys start empty
  });

  afterAll(async () => {
    await redis.flushdb();
    await redis.quit();
  });

  it('npm run demo prints 200s turning into 429s and exits 0 by itself', async () => {
    const result = await runExample('examples/demo.ts');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const table = rows(result.stdout);
    expect(table.map((row) => row[1])).toEqual(['200', '200', '200', '200', '200', '429', '429', '429']);
    expect(table[0]![2]).toMatch(/^"5-in-10s";r=4;t=\d+$/);
    expect(Number(table[7]![3])).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['examples/express-basic.ts', {}],
    ['examples/koa-basic.ts', {}],
    ['examples/koa-basic.ts', { REDIS_URL: 'shared' }],
    ['examples/fastify-basic.ts', {}],
    ['examples/hono-basic.ts', { REDIS_URL: 'shared' }],
  ])('%s --once %j', async (script, env: Record<string, string>) => {
    const extra: Record<string, string> = env.REDIS_URL === undefined ? {} : { REDIS_URL: redisUrl() };
    await redis.flushdb();
    const result = await runExample(script, ['--once'], extra);
    expect(result.code, result.stderr).toBe(0);
    expect(rows(result.stdout).map((row) => `${row[0]} ${row[1]}`)).toEqual([
      'GET / 200',
      'POST /login 401',
      'POST /login 401',
      'POST /login 401',
      'POST /login 429',
      'GET /search 200',
      'GET /search 200',
      'GET /search 429',
    ]);
  });

  it.each([[{}], [{ REDIS_URL: 'shared' }]])('routes-from-json --once %j', async (env: Record<string, string>) => {
    const extra: Record<string, string> = env.REDIS_URL === undefined ? {} : { REDIS_URL: redisUrl() };
    await redis.flushdb();
    const result = await runExample('examples/routes-from-json/app.ts', ['--once'], extra);
    expect(result.code, result.stderr).toBe(0);
    // `t` depends on the time between requests: compare the rest.
    expect(rows(result.stdout).map((row) => [row[0], row[1], row[2]!.replace(/;t=\d+$/, '')])).toEqual([
      ['GET /search', '200', '"search/2-in-10s";r=1'],
      ['GET /search', '200', '"search/2-in-10s";r=0'],
      ['GET /search', '429', '"search/2-in-10s";r=0'],
      ['POST /api/orders', '200', '"api-write/2-in-1m";r=1'],
      ['POST /api/orders', '200', '"api-write/2-in-1m";r=0'],
      ['POST /api/orders', '429', '"api-write/2-in-1m";r=0'],
      ['GET /api/orders', '200', '"api/1000-in-1h";r=997'],
      ['GET /unlimited', '404', '-'],
    ]);
  });
});
