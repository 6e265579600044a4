/**
 * Figures for the docs and the lead, on an own server (CONFIG RESETSTAT and INFO are
 * server-wide): memory of one log per limit size, Redis time per consume (allowed, blocked) with
 * 50 concurrent callers (so coalesced into batch calls), and store.consume decisions/s with 50
 * concurrent callers on one client. Each figure is printed; the assertions are the deterministic
 * parts (exact counts, memory bounds, calls coalesced), never a speed band.
 * RATELOCK_MEASURE_MS sets the throughput run (default 1000 ms).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { redisStoreForTests } from '../../src/stores/testing.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const CALLERS = 50;
const RUN_MS = Number(process.env.RATELOCK_MEASURE_MS ?? 1000);

let server: RedisServerHandle;
let client: Redis;
let store: RedisStore;

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  store = new RedisStore({ client });
  await store.ready();
});

afterAll(async () => {
  client.disconnect();
  await server.stop();
});

function limitOf(max: number, windowMs: number): StoreLimit {
  return { key: limitKey('rl:', uniqueId('measure'), 'w'), windowMs, limit: max };
}

/** Runs `total` calls of `call`, `CALLERS` at a time. */
async function runConcurrently(total: number, call: () => Promise<unknown>): Promise<void> {
  let started = 0;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (started < total) {
        started++;
        await call();
      }
    }),
  );
}

/**
 * Over `decisions` calls of `decide` (`CALLERS` at a time): FCALLs per decision, script time
 * (`cmdstat_fcall` usec) and Redis CPU µs per decision.
 */
async function redisCost(decisions: number, decide: () => Promise<unknown>): Promise<{ callsPer: number; scriptUs: number; cpuUs: number }> {
  const cpu = async () => {
    const info = await client.info('cpu');
    const read = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)![1]);
    return read('used_cpu_user') + read('used_cpu_sys');
  };
  await client.config('RESETSTAT');
  const cpuBefore = await cpu();
  await runConcurrently(decisions, decide);
  const cpuAfter = await cpu();
  const stats = /^cmdstat_fcall:calls=(\d+),usec=(\d+)/m.exec(await client.info('commandstats'))!;
  const calls = Number(stats[1]);
  // Coalesced: CALLERS decisions per turn share a call (a few turns start alone).
  expect(calls).toBeLessThan(decisions / 10);
  return { callsPer: calls / decisions, scriptUs: Number(stats[2]) / decisions, cpuUs: ((cpuAfter - cpuBefore) * 1e6) / decisions };
}

const describeCost = (label: string, cost: { callsPer: number; scriptUs: number; cpuUs: number }) =>
  `${label}: ${cost.callsPer.toFixed(3)} FCALL/decision, script ${cost.scriptUs.toFixed(1)} µs/decision, Redis CPU ${cost.cpuUs.toFixed(1)} µs/decision`;

describe('memory', () => {
  it.each([10, 100, 1000, 10_000])('of one log filled to limit %i with cost-1 entries', async (max) => {
    const log = limitOf(max, 3_600_000);
    await runConcurrently(max, () => store.consume([log], 1));
    expect(await client.llen(log.key)).toBe(max);
    const bytes = (await client.memory('USAGE', log.key, 'SAMPLES', 0)) as number;
    console.log(`[measure] MEMORY USAGE at limit ${max}: ${bytes} B (${(bytes / max).toFixed(1)} B/entry)`);
    expect(bytes).toBeLessThan(200 + 12 * max); // ~10 B per integer entry in listpack nodes
  });
});

describe(`Redis time per consume (10 000 decisions on one hot key, ${CALLERS} callers)`, () => {
  it('allowed, steady trimming (limit 10^6 per 100 ms)', async () => {
    const hot = limitOf(1_000_000, 100);
    console.log(`[measure] ${describeCost('allowed', await redisCost(10_000, () => store.consume([hot], 1)))}`);
  });

  it('allowed, no trimming (limit 10^6 per 1 h)', async () => {
    const hot = limitOf(1_000_000, 3_600_000);
    console.log(`[measure] ${describeCost('allowed (no trim)', await redisCost(10_000, () => store.consume([hot], 1)))}`);
    expect(await client.llen(hot.key)).toBe(10_000);
  });

  it('blocked (limit 10 per day, full)', async () => {
    // Store time = Date.now through the test clock: a store that asks Redis for every decision
    // (no refusal remembered locally), so this measures the script.
    const asking = redisStoreForTests(client, { clock: () => Date.now() });
    const full = limitOf(10, 86_400_000);
    await asking.consume([full], 10);
    const cost = await redisCost(10_000, async () => expect((await asking.consume([full], 1)).allowed).toBe(false));
    console.log(`[measure] ${describeCost('blocked', cost)}`);
  });
});

describe('throughput', () => {
  it(`store.consume with ${CALLERS} concurrent callers on one client admits exactly the limit`, async () => {
    const quota = limitOf(1000, 3_600_000);
    let allowed = 0;
    let decisions = 0;
    const deadline = performance.now() + RUN_MS;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < deadline) {
          if ((await store.consume([quota], 1)).allowed) allowed++;
          decisions++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`[measure] ${decisions} decisions in ${seconds.toFixed(2)} s: ${Math.round(decisions / seconds)} decisions/s`);
    expect(allowed).toBe(1000);
    expect(decisions).toBeGreaterThan(1000);
  });
});
