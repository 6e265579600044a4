/**
 * No timer or handle outlives its request: 10 000 locked requests (Express, lock mode), 10 000
 * idempotent ones (Koa, replay mode), and 2 000 of each on Fastify (lock) and Hono (replay), whose
 * adapters hold leases through their own paths, on the in-memory store; then every Timeout created
 * meanwhile must be gone (tracked with async_hooks, which also sees `unref()`'d timers that
 * `process.getActiveResourcesInfo()` leaves out), and the active resources back to the baseline.
 */
import { createHook } from 'node:async_hooks';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import { MemoryStore } from '../../src/stores/memory.js';
import { lockApp, type FrameworkName } from './support/apps.js';
import { listen } from './support/http.js';

const REQUESTS = 10_000;
/** Fastify and Hono: fewer, the paths the two big runs cover are shared; theirs are their own lease paths. */
const NEWER_REQUESTS = 2_000;
const CONCURRENCY = 16;
const store = new MemoryStore({ sweepIntervalMs: 0 });
afterAll(() => store.close());

function countByType(types: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of types) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Sends `total` requests, `CONCURRENCY` at a time over keep-alive connections; returns the status counts. */
async function hammer(port: number, total: number, headers: (i: number) => Record<string, string>): Promise<Record<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const statuses: Record<number, number> = {};
  let next = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: headers(i) }, (res) => {
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await one(next++);
    }),
  );
  agent.destroy();
  return statuses;
}

it(`leaves no timer or handle behind after ${REQUESTS} locked and ${REQUESTS} idempotent requests (and ${NEWER_REQUESTS} of each on Fastify and Hono)`, { timeout: 120_000 }, async () => {
  const baseline = countByType(process.getActiveResourcesInfo());
  const liveTimers = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') liveTimers.add(id);
    },
    destroy(id) {
      liveTimers.delete(id);
    },
  }).enable();

  const started = performance.now();
  const runs: [FrameworkName, Record<string, unknown>, (i: number) => Record<string, string>, number][] = [
    ['express', { store, ttl: '5s' }, (i) => ({ 'Idempotency-Key': `lock-${i % 50}` }), REQUESTS],
    ['koa', { store, ttl: '5s', replay: { ttl: '1m' } }, (i) => ({ 'Idempotency-Key': `replay-${i}` }), REQUESTS],
    ['fastify', { store, ttl: '5s' }, (i) => ({ 'Idempotency-Key': `fastify-lock-${i % 50}` }), NEWER_REQUESTS],
    ['hono', { store, ttl: '5s', replay: { ttl: '1m' } }, (i) => ({ 'Idempotency-Key': `hono-replay-${i}` }), NEWER_REQUESTS],
  ];
  for (const [name, lock, headers, count] of runs) {
    const server = await listen(lockApp(name, { lock, handler: ({ lock: info }) => ({ status: 200, body: String(info?.fence) }) }));
    const statuses = await hammer(server.port, count, headers);
    await server.close();
    // Every request was answered by the handler or, for a key busy at that moment, with 409.
    expect((statuses[200] ?? 0) + (statuses[409] ?? 0), name).toBe(count);
    expect(statuses[200], name).toBeGreaterThan(count / 2);
  }
  const elapsedMs = performance.now() - started;
  // Node's own Date-header cache timer lives ≤ 1 s; destroy hooks are delivered a tick later.
  await sleep(1_100);
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  hook.disable();

  const after = countByType(process.getActiveResourcesInfo());
  console.log(`[lock] ${2 * REQUESTS + 2 * NEWER_REQUESTS} requests in ${Math.round(elapsedMs)} ms; timers left: ${liveTimers.size}; active resources before ${JSON.stringify(baseline)} after ${JSON.stringify(after)}`);
  expect(liveTimers.size).toBe(0);
  for (const [type, count] of Object.entries(after)) expect(count, type).toBeLessThanOrEqual(baseline[type] ?? 0);
});
