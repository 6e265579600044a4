/**
 * withLock and LockGuard against a failing Redis (own throwaway server, stopped by PID):
 * store down → 503 + Retry-After within timeout + 50 ms (+ the event loop's own delay in the run)
 * with the handler not run, logged once;
 * an acquire that timed out (Redis frozen with SIGSTOP) leaves no orphan lock once Redis answers;
 * fences keep increasing across a restart that lost every key.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyGuard } from '../../src/core/idempotency-guard.js';
import { LockGuard } from '../../src/core/lock-guard.js';
import { LockBusyError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/stores/redis.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';
import { watchEventLoop } from '../helpers/event-loop.js';
import { frameworkNames, lockApp, type FrameworkName } from './support/apps.js';
import { listen, send, type TestServer } from './support/http.js';

const TIMEOUT_MS = 100;

let redis: RedisServerHandle;
let client: Redis;
let store: RedisStore;
const servers: TestServer[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: (attempt) => Math.min(attempt * 20, 200) });
  client.on('error', () => undefined); // connection errors while the server is down are expected here
  store = new RedisStore({ client });
  await client.ping();
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  client.disconnect();
  await redis.stop();
});

async function waitUntilReady(): Promise<void> {
  for (let i = 0; i < 200 && client.status !== 'ready'; i++) await sleep(25);
  expect(client.status).toBe('ready');
}

function logger() {
  const lines: string[] = [];
  return { lines, warn: (line: string) => void lines.push(line) };
}

describe.each(['express', 'koa'] as FrameworkName[])('%s', (name) => {
  it.each([false, true])('store down (replay: %s) → 503 + Retry-After within timeout + 50 ms, handler not run, logged once', async (replay) => {
    const log = logger();
    let runs = 0;
    // A store of its own: outages are tracked (and logged once) per store.
    const server = await listen(
      lockApp(name, {
        lock: { store: new RedisStore({ client }), timeout: TIMEOUT_MS, logger: log, ...(replay ? { replay: {} } : {}) },
        handler: () => {
          runs++;
          return { status: 200, body: 'ran' };
        },
      }),
    );
    servers.push(server);
    const loop = watchEventLoop();
    redis.kill('SIGKILL');
    const elapsed: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const response = await send(server.port, { headers: { 'Idempotency-Key': uniqueId('down') }, body: {} });
        elapsed.push(performance.now() - started);
        expect(response.status).toBe(503);
        expect(response.headers['retry-after']).toBe('1');
        expect(response.json()).toMatchObject({ status: 503, code: 'store-unavailable' });
      }
    } finally {
      await redis.restart();
      await waitUntilReady();
    }
    const loopDelay = loop();
    expect(runs).toBe(0);
    expect(Math.max(...elapsed)).toBeLessThanOrEqual(TIMEOUT_MS + 50 + loopDelay.max);
    expect(log.lines.filter((line) => line.includes('store unavailable'))).toHaveLength(1);
  });
});

// A review found the handler run twice: Redis froze while the handler ran, the record's complete
// failed and was given up, the 200 went out, and the retry ran the handler again once the
// record's lease ended. The complete is now retried within the lease and one ttl after it,
// before the response ends. Frozen past the lease, the record's auto-extension is stuck behind
// the freeze, so Redis has let it lapse when it resumes; no request has begun on the key since
// (its fence is unchanged), so the late complete still stores the response.
describe.each(frameworkNames)('%s: Redis frozen while an idempotent handler runs', (name) => {
  it.each([
    { frozen: 'past the handler’s end', ttl: '5s', resumeAfterMs: 700 },
    { frozen: 'past the 1 s lease', ttl: '1s', resumeAfterMs: 1_400 },
  ])('$frozen: answers once the record is stored, and the retry replays it (the handler runs once)', async ({ ttl, resumeAfterMs }) => {
    let runs = 0;
    let resume: NodeJS.Timeout | undefined;
    const lockStore = new RedisStore({ client });
    const log = logger();
    const server = await listen(
      lockApp(name, {
        lock: { store: lockStore, ttl, timeout: TIMEOUT_MS, logger: log, replay: {} },
        handler: async () => {
          runs++;
          redis.kill('SIGSTOP');
          resume = setTimeout(() => redis.kill('SIGCONT'), resumeAfterMs);
          // Other calls of the store meanwhile: the second finds a call unanswered for > 100 ms
          // (the store then holds the connection stalled), the third goes as its one probe, so
          // the complete is refused unsent (sent, it would land by itself once Redis resumes).
          const other = () => void lockStore.consume([{ key: `rl:{${uniqueId('other')}}:1m`, windowMs: 60_000, limit: 10 }], 1).catch(() => undefined);
          other();
          await sleep(150);
          other();
          await sleep(80);
          other();
          await sleep(70);
          return { status: 200, body: { n: runs } };
        },
      }),
    );
    servers.push(server);
    const key = uniqueId('frozen-complete');
    const started = performance.now();
    try {
      const first = await send(server.port, { headers: { 'Idempotency-Key': key }, body: { amount: 1 } });
      expect(first.status).toBe(200);
      expect(first.json()).toEqual({ n: 1 });
      expect(performance.now() - started).toBeGreaterThan(resumeAfterMs); // answered once stored, after the resume
    } finally {
      clearTimeout(resume);
      redis.kill('SIGCONT');
    }
    const retry = await send(server.port, { headers: { 'Idempotency-Key': key }, body: { amount: 1 } });
    expect(retry.status).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual({ n: 1 });
    expect(runs).toBe(1);
    expect(log.lines.join('\n')).not.toMatch(/ending the lease failed|another request may have run|without being stored/);
  });
});

// A review saw lock routes with `timeout: 3000` answer 503 in bursts on a loaded host, where Redis
// replied after more than 100 ms: the store stopped sending while the guard would still wait.
it('a lock route whose timeout outlasts a Redis pause answers every request once Redis resumes (no 503)', async () => {
  let runs = 0;
  const slowStore = new RedisStore({ client });
  await slowStore.ready(); // loaded: calls reach the in-flight gate at once, not a load's wait
  const server = await listen(
    lockApp('express', {
      lock: { store: slowStore, timeout: 1_500, logger: logger(), key: () => uniqueId('slow-lock') },
      handler: () => ({ status: 200, body: { n: ++runs } }),
    }),
  );
  servers.push(server);
  redis.kill('SIGSTOP');
  const resume = setTimeout(() => redis.kill('SIGCONT'), 500);
  try {
    const responses = [];
    for (let i = 0; i < 7; i++) {
      responses.push(send(server.port, { body: {} }));
      await sleep(60);
    }
    expect((await Promise.all(responses)).map((response) => response.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
  } finally {
    clearTimeout(resume);
    redis.kill('SIGCONT');
  }
  expect(runs).toBe(7);
});

it('an acquire that timed out on a frozen Redis is released as soon as its late grant lands (no orphan lock)', async () => {
  const key = uniqueId('orphan');
  const guard = new LockGuard({ store, ttl: '30s', timeout: TIMEOUT_MS, logger: logger() });
  const loop = watchEventLoop();
  redis.kill('SIGSTOP');
  const started = performance.now();
  try {
    await expect(guard.acquire(key)).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE_TIMEOUT' });
    expect(performance.now() - started).toBeLessThanOrEqual(TIMEOUT_MS + 50 + loop().max);
    await sleep(300 - TIMEOUT_MS);
  } finally {
    redis.kill('SIGCONT');
  }
  const resumed = performance.now();
  // The late SET NX lands, then onLate's token-checked release: the key is free well before its 30 s ttl.
  let lease;
  while (!lease && performance.now() - resumed < 2_000) {
    lease = await guard.acquire(key).catch((err: unknown) => {
      if (err instanceof LockBusyError) return undefined;
      throw err;
    });
    if (!lease) await sleep(10);
  }
  expect(lease).toBeDefined();
  expect(performance.now() - resumed).toBeLessThan(500);
  await lease!.release();
});

it('an idempotency begin that timed out is aborted when it lands, so the retry runs', async () => {
  const id = uniqueId('orphan-record');
  const guard = new IdempotencyGuard({ store, ttl: '30s', timeout: TIMEOUT_MS, logger: logger() });
  redis.kill('SIGSTOP');
  try {
    await expect(guard.begin(id, 'fp')).rejects.toMatchObject({ code: 'ERR_RATELOCK_STORE_TIMEOUT' });
    await sleep(200);
  } finally {
    redis.kill('SIGCONT');
  }
  // The late begin lands after SIGCONT, then its abort: the retry finds the record in flight until then.
  const resumed = performance.now();
  let outcome = await guard.begin(id, 'fp');
  while (outcome.state === 'in-flight' && performance.now() - resumed < 2_000) {
    await sleep(10);
    outcome = await guard.begin(id, 'fp');
  }
  expect(outcome.state).toBe('acquired');
  expect(performance.now() - resumed).toBeLessThan(500); // well before the record's 30 s ttl
  if (outcome.state === 'acquired') await outcome.lease.abort();
});

it('fences keep increasing across a Redis restart that lost every key', async () => {
  const key = uniqueId('fence');
  const locks = new LockGuard({ store, ttl: '30s' });
  const records = new IdempotencyGuard({ store, ttl: '30s' });
  const before = await locks.acquire(key);
  await before.release();
  const recordBefore = await records.begin(key, 'fp');
  expect(recordBefore.state).toBe('acquired');
  await redis.restart();
  await waitUntilReady();
  const after = await locks.acquire(key);
  const recordAfter = await records.begin(key, 'fp');
  expect(after.fence).toBeGreaterThan(before.fence);
  expect(recordAfter.state).toBe('acquired');
  if (recordBefore.state === 'acquired' && recordAfter.state === 'acquired') {
    expect(recordAfter.lease.fence).toBeGreaterThan(recordBefore.lease.fence);
    await recordAfter.lease.abort();
  }
  await after.release();
});

it('onStoreError may choose "open": the handler then runs without a lock (req.lock unset)', async () => {
  const seen: unknown[] = [];
  let lockSeen: unknown = 'not run';
  const server = await listen(
    lockApp('express', {
      lock: {
        store: new RedisStore({ client }),
        timeout: TIMEOUT_MS,
        logger: logger(),
        onStoreError: (err: { code: string }, req: { method: string }) => {
          seen.push([err.code, req.method]);
          return 'open';
        },
      },
      handler: ({ lock }) => {
        lockSeen = lock;
        return { status: 200, body: 'unguarded' };
      },
    }),
  );
  servers.push(server);
  redis.kill('SIGKILL');
  try {
    const response = await send(server.port, { headers: { 'Idempotency-Key': uniqueId('open') } });
    expect(response.status).toBe(200);
    expect(response.text).toBe('unguarded');
  } finally {
    await redis.restart();
    await waitUntilReady();
  }
  expect(lockSeen).toBeUndefined();
  expect(seen).toEqual([['ERR_RATELOCK_STORE', 'POST']]);
});
