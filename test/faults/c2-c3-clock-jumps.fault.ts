/**
 * RELIABILITY C2 / C3: the Redis server's wall clock steps +1 h, then −1 h (redis-server under
 * Debian's libfaketime; see support/faketime.ts). ratelock takes `now` from Redis `TIME` inside its
 * scripts, so such a step is what every app process sees at once.
 *
 * - C2 (+1 h): the limiter forgets at most one window (≤ limit extra admissions); a lease expires
 *   early (Redis TTLs follow the wall clock), so a contender gets the lock while the first holder
 *   still runs — detectable: the contender's fence is greater, and the old holder's extend and
 *   release fail without touching the new holder's lock.
 * - C3 (−1 h): entries stamped before the step lie an hour in the future; no client may stay
 *   blocked by them longer than a window, and Retry-After stays finite, ≥ 1 s and ≤ the window.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError, LockGuard, RateLimiter, RedisStore, type Decision } from '../../src/index.js';
import { FAKETIME_MISSING, libfaketimePath, startFaketimeRedis, type FaketimeRedis } from './support/faketime.js';
import { adminClient, scanKeys } from './support/redis-admin.js';
import { record } from './support/record.js';
import { now, round } from './support/stats.js';

const HOUR_S = 3_600;
const LIMIT = 10;
const WINDOW_MS = 10_000;
/** Scheduling slack on a noisy 2-core machine. */
const TOLERANCE_MS = 1_000;
const LOCK_TTL_MS = 5_000;

const hasFaketime = libfaketimePath() !== undefined;
const quiet = { warn: () => undefined };

let clock: FaketimeRedis;
let client: Redis;
let admin: Redis;
let store: RedisStore;

/** The server's TIME in ms, read by the admin client. */
async function redisTimeMs(): Promise<number> {
  const [seconds, micros] = (await admin.time()) as [number | string, number | string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** Steps the server's clock and waits until TIME shows it (libfaketime re-reads its file per call). */
async function stepClock(offsetSeconds: number): Promise<void> {
  clock.setOffset(offsetSeconds);
  const target = Date.now() + offsetSeconds * 1000;
  for (let i = 0; i < 100; i++) {
    if (Math.abs((await redisTimeMs()) - target) < 2_000) return;
    await sleep(20);
  }
  throw new Error(`the server's clock did not step to ${offsetSeconds} s`);
}

function limiter(prefix: string): RateLimiter {
  // Fails closed: every allowed decision was counted by Redis.
  return new RateLimiter({ store, limit: LIMIT, window: WINDOW_MS, prefix, onStoreError: 'closed', logger: quiet });
}

async function fill(rl: RateLimiter, key: string): Promise<void> {
  for (let i = 0; i < LIMIT; i++) {
    const decision = await rl.consume(key);
    if (!decision.allowed) throw new Error(`fill: request ${i + 1} of ${LIMIT} was refused (${decision.reason})`);
  }
  expect((await rl.consume(key)).reason).toBe('limited');
}

describe.skipIf(!hasFaketime)('Redis clock steps (redis-server under libfaketime)', () => {
  beforeAll(async () => {
    clock = await startFaketimeRedis();
    client = new Redis(clock.server.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    admin = adminClient(clock.server.url);
    store = new RedisStore({ client });
    await store.ready();
    expect(Math.abs((await redisTimeMs()) - Date.now())).toBeLessThan(2_000);
  });

  afterAll(async () => {
    client?.disconnect();
    admin?.disconnect();
    await clock?.stop();
  });

  it('C2: +1 h — the limiter forgets at most one window; an early-expired lease is detectable by its fence and cannot touch its successor', async () => {
    await stepClock(0);
    const rl = limiter('c2:');
    const started = now();
    await fill(rl, 'client');
    const locks = new LockGuard({ store, ttl: LOCK_TTL_MS, prefix: 'c2l:', logger: quiet });
    const holder = await locks.acquire('job');

    await stepClock(HOUR_S);
    // Burst of 2 × limit right after the step, still inside the real window of the fill.
    const after: Decision[] = [];
    for (let i = 0; i < 2 * LIMIT; i++) after.push(await rl.consume('client'));
    const extra = after.filter((decision) => decision.allowed).length;
    const spanMs = now() - started;

    // The holder's 5 s lease expired with the step: a contender gets the lock while it still runs.
    const contender = await locks.acquire('job');
    const overlapping = holder.state !== 'ended' ? 1 : 0;
    const holderExtend = await holder.extend().then(
      () => 'extended',
      (err: unknown) => (err instanceof LeaseLostError ? 'LeaseLostError' : String(err)),
    );
    const holderRelease = await holder.release().then(
      () => 'released',
      (err: unknown) => (err instanceof LeaseLostError ? 'LeaseLostError' : String(err)),
    );
    const successorIntact = await contender.extend().then(
      () => true,
      () => false,
    );
    await contender.release();

    record({
      check: 'C2',
      case: 'clock +1 h',
      done: `limit ${LIMIT} per ${WINDOW_MS / 1000} s filled, server clock stepped +1 h, ${2 * LIMIT} more requests at once; a ${LOCK_TTL_MS / 1000} s lease held across the step, then a contender, the old holder's extend and release`,
      bound: `extra admissions ≤ limit (${LIMIT}) within the real window; fence of the contender > old holder's; old holder's extend/release fail with LeaseLostError and leave the successor's lock intact`,
      figures: {
        'extra admissions after the step': extra,
        'real time spanned ms': round(spanMs, 0),
        'overlapping holders (expected with early expiry)': overlapping,
        'fence regressions': contender.fence > holder.fence ? 0 : 1,
        "old holder's extend": holderExtend,
        "old holder's release": holderRelease,
        "successor's lock intact": successorIntact,
      },
    });
    expect(spanMs).toBeLessThan(WINDOW_MS);
    expect(extra).toBeLessThanOrEqual(LIMIT);
    expect(contender.fence).toBeGreaterThan(holder.fence);
    expect(holderExtend).toBe('LeaseLostError');
    expect(holderRelease).toBe('LeaseLostError');
    expect(successorIntact).toBe(true);
    await stepClock(0);
  });

  it('C3: −1 h — no client is blocked by entries from before the step longer than a window; Retry-After stays finite, ≥ 1 s and ≤ the window', async () => {
    await stepClock(0);
    const rl = limiter('c3:');
    await fill(rl, 'client');
    const blocked = await rl.consume('client');

    await stepClock(-HOUR_S);
    const stepped = now();
    const retryAfters: number[] = [blocked.retryAfterMs];
    let firstAllowedMs: number | undefined;
    let extra = 0;
    // A request every 50 ms until one passes (at most a window + tolerance), then a burst of 2 × limit.
    while (now() - stepped < WINDOW_MS + TOLERANCE_MS) {
      const decision = await rl.consume('client');
      if (decision.allowed) {
        firstAllowedMs = now() - stepped;
        extra = 1;
        break;
      }
      expect(decision.reason).toBe('limited');
      retryAfters.push(decision.retryAfterMs);
      await sleep(50);
    }
    for (let i = 0; firstAllowedMs !== undefined && i < 2 * LIMIT; i++) {
      const decision = await rl.consume('client');
      if (decision.allowed) extra++;
      else retryAfters.push(decision.retryAfterMs);
    }

    // A lease taken before the step and never released (a crashed holder): Redis expiry follows the
    // wall clock, so it now ends an hour later than its ttl said. Measured, documented (Redis lock docs).
    await stepClock(0);
    const locks = new LockGuard({ store, ttl: LOCK_TTL_MS, prefix: 'c3l:', logger: quiet });
    const crashed = await locks.acquire('job');
    await stepClock(-HOUR_S);
    const lockKey = (await scanKeys(admin, 'c3l:*')).find((key) => !key.endsWith(':fence'));
    const orphanPttl = lockKey === undefined ? -2 : await admin.pttl(lockKey);
    await crashed.release(); // a live holder still releases normally
    const next = await locks.acquire('job');
    const fenceIncreases = next.fence > crashed.fence;
    await next.release();
    await stepClock(0);

    const minRetry = Math.min(...retryAfters);
    const maxRetry = Math.max(...retryAfters);
    record({
      check: 'C3',
      case: 'clock −1 h',
      done: `limit ${LIMIT} per ${WINDOW_MS / 1000} s filled (blocked), server clock stepped −1 h, then a request every 50 ms until one passes and a burst; a ${LOCK_TTL_MS / 1000} s lease taken before another −1 h step`,
      bound: `blocked after the step ≤ window + ${TOLERANCE_MS} ms; extra admissions ≤ limit; Retry-After ≥ 1 s and ≤ window (${WINDOW_MS} ms), finite`,
      figures: {
        'blocked after the step ms': firstAllowedMs === undefined ? 'never passed' : round(firstAllowedMs, 0),
        'extra admissions after the step': extra,
        'min Retry-After ms': minRetry,
        'max Retry-After ms': maxRetry,
        "lock TTL left after −1 h (crashed holder's key) ms": orphanPttl,
        'fence increases after the step': fenceIncreases,
      },
      note: 'A lease that is never released outlives its ttl by the size of a backward step: Redis key expiry follows the wall clock (Redis distributed-lock docs); ratelock cannot shorten it.',
    });
    expect(firstAllowedMs).toBeDefined();
    expect(firstAllowedMs!).toBeLessThanOrEqual(WINDOW_MS + TOLERANCE_MS);
    expect(extra).toBeLessThanOrEqual(LIMIT);
    expect(minRetry).toBeGreaterThanOrEqual(1);
    expect(maxRetry).toBeLessThanOrEqual(WINDOW_MS);
    expect(Number.isFinite(maxRetry)).toBe(true);
    expect(fenceIncreases).toBe(true);
  });

  // Known limitation, found by this tier: the fence's floor after a lost counter is the Redis time
  // in µs, so a counter lost (DEL, restart without persistence, failover) while the clock stands an
  // hour back reissues smaller fences. README promises "strictly increases per key, even after Redis
  // lost the counter". Flip to `it` once the fence survives both faults together.
  it.fails('C3 + E6: a fence counter lost while the clock stands 1 h back still yields a greater fence', async () => {
    await stepClock(0);
    const locks = new LockGuard({ store, ttl: LOCK_TTL_MS, prefix: 'c3e6:', logger: quiet });
    const before = await locks.acquire('job');
    await before.release();
    const fenceKey = (await scanKeys(admin, 'c3e6:*')).find((key) => key.endsWith(':fence'));
    expect(fenceKey).toBeDefined();
    await admin.del(fenceKey!); // the counter is lost
    await stepClock(-HOUR_S);
    const after = await locks.acquire('job');
    await after.release();
    await stepClock(0);
    record({
      check: 'C3',
      case: 'fence after counter loss at −1 h',
      done: 'lock acquired and released at +0, its fence key deleted, server clock stepped −1 h, lock acquired again',
      bound: 'the new fence is greater than the one before (README: fences increase even after the counter is lost)',
      figures: { 'fence before': before.fence, 'fence after': after.fence, 'fence regressions': after.fence > before.fence ? 0 : 1 },
      note: 'Known limitation: the fence floor is Redis TIME in µs; a backward clock step defeats it when the counter is lost too.',
    });
    expect(after.fence).toBeGreaterThan(before.fence);
  });
});

// Without faketime (FAULTS_WITHOUT_FAKETIME=1), the report says why C2/C3 have no figures.
if (!hasFaketime) {
  describe('Redis clock steps', () => {
    it('C2/C3: not run — faketime is not installed', () => {
      record({ check: 'C2', case: 'clock +1 h', done: 'not run', bound: '—', figures: {}, note: FAKETIME_MISSING });
      record({ check: 'C3', case: 'clock −1 h', done: 'not run', bound: '—', figures: {}, note: FAKETIME_MISSING });
    });
  });
}
