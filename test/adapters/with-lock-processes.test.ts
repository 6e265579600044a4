/**
 * Several app processes on one Redis: a holder SIGKILLed mid-handler frees the key after its ttl
 * (nothing cleans up), and processes racing on one key run it exactly once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LockGuard } from '../../src/core/lock-guard.js';
import { RedisStore } from '../../src/stores/redis.js';
import { newRedisClient, redisUrl } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';
import { watchEventLoop } from '../helpers/event-loop.js';
import { send } from './support/http.js';
import { startChildApp, type ChildApp } from './support/child-process.js';

const children: ChildApp[] = [];
const client = newRedisClient();
afterAll(async () => {
  await Promise.all(children.map((child) => child.stop()));
  await client.quit();
});

async function start(framework: 'express' | 'koa' | 'fastify' | 'hono', lockKey: string, ttlMs: number, holdMs: number): Promise<ChildApp> {
  const child = await startChildApp({ framework, redisUrl: redisUrl(), lockKey, ttlMs, holdMs });
  children.push(child);
  return child;
}

describe('app processes sharing one Redis', () => {
  it('a holder SIGKILLed mid-handler frees the key within ttl; a waiting contender gets it within ttl + 100 ms', async () => {
    const ttlMs = 1_000;
    const key = uniqueId('crash');
    const holder = await start('express', key, ttlMs, 60_000);
    void send(holder.port, { path: '/' }).catch(() => undefined);
    await holder.waitForLine('RUN ');
    const running = performance.now(); // the lease was taken just before: it ends by running + ttl
    holder.kill('SIGKILL');
    const killed = performance.now();

    const guard = new LockGuard({ store: new RedisStore({ client }), ttl: 5_000 });
    const loop = watchEventLoop(); // the contender's poll fires no earlier than this process's loop lets it
    const lease = await guard.acquire(key, { wait: 5_000 });
    const recovered = performance.now();
    await lease.release();
    const recoveryMs = recovered - running;
    console.log(`[lock] holder crash: key free ${Math.round(recovered - killed)} ms after SIGKILL, ${Math.round(recoveryMs)} ms after the lease was taken (ttl ${ttlMs} ms)`);
    expect(recoveryMs).toBeLessThanOrEqual(ttlMs + 100 + loop().max);
    // Not before its lease ran out (minus the time between acquire and the RUN line).
    expect(recoveryMs).toBeGreaterThanOrEqual(ttlMs - 200);
  });

  it('4 processes (Express, Koa, Fastify, Hono) × 10 concurrent requests on one key: exactly one runs', async () => {
    const key = uniqueId('race');
    // The winner holds the key for 4 s: every other request reaches it meanwhile, even on a loaded machine.
    const apps = await Promise.all((['express', 'koa', 'fastify', 'hono'] as const).map((framework) => start(framework, key, 10_000, 4_000)));
    const responses = await Promise.all(apps.flatMap((app) => Array.from({ length: 10 }, () => send(app.port, { path: '/' }))));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(39);
    expect(apps.flatMap((app) => app.lines.filter((line) => line.startsWith('RUN ')))).toHaveLength(1);
  });
});

