/**
 * A frozen Redis (SIGSTOP: the TCP connection stays open, no error, the client stays "ready"):
 * each call answers within its budget, and once the connection has not answered for STALL_MS the
 * store stops handing the client new commands (they fail at once, one probe at a time), so the
 * client's queue of commands awaiting a reply stops growing; the first reply after SIGCONT opens
 * the gate again. On every client: standalone, and on Cluster with one master frozen, where the
 * other masters keep answering (the gate is per server). The fault tier (a1-a2-outages.fault.ts)
 * measures the same over HTTP for longer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { MAX_PROBE_INTERVAL_MS, STALL_MS } from '../../src/stores/redis/client.js';
import { keySlot } from '../../src/stores/redis/hash-tag.js';
import { type ClientKind, clientKinds, connectClient, countCommands } from '../helpers/clients.js';
import { limitKey } from '../helpers/keys.js';
import { startRedisCluster, startRedisServer, type RedisClusterHandle, type RedisServerHandle } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';
import { watchEventLoop } from '../helpers/event-loop.js';

const TIMEOUT_MS = 100;
const INTERVAL_MS = 10;
const FROZEN_MS = 600;
/** Calls made while the gate is still open (STALL_MS + a turn, at one per INTERVAL_MS), plus probes. */
const SENT_WHILE_FROZEN_BOUND = Math.ceil((STALL_MS + 50) / INTERVAL_MS) + 3;
/** How late a call may answer past its budget, on top of the event loop's own delay in the run. */
const LATE_MS = 60;
const quiet = { warn: () => undefined };

interface Sample {
  readonly at: number;
  readonly ms: number;
  readonly reason: string;
}

/** Decisions on `id` every INTERVAL_MS for `durationMs`; each one's start (from `origin`), duration and reason. */
async function traffic(limiter: RateLimiter, id: () => string, durationMs: number, origin: number): Promise<Sample[]> {
  const pending: Promise<Sample>[] = [];
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    const started = performance.now();
    pending.push(limiter.consume(id()).then((decision) => ({ at: started - origin, ms: performance.now() - started, reason: decision.reason })));
    await sleep(INTERVAL_MS);
  }
  return Promise.all(pending);
}

describe.each(clientKinds)('%s client, Redis frozen', (kind: ClientKind) => {
  describe('standalone', () => {
    let server: RedisServerHandle;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(() => server.stop());

    it('answers every call within its budget, stops sending once the connection stalls, and recovers after SIGCONT', async () => {
      const tested = await connectClient(kind, { url: server.url }, { defaults: true });
      try {
        const counter = countCommands(kind, tested.client);
        const store = new RedisStore({ client: counter.client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: 1_000_000, window: '1h', timeout: TIMEOUT_MS, logger: quiet });
        const id = uniqueId('stall');
        const origin = performance.now();
        const loop = watchEventLoop();
        server.kill('SIGSTOP');
        const sentBefore = counter.sent;
        const frozen = traffic(limiter, () => id, FROZEN_MS, origin);
        await sleep(FROZEN_MS);
        const sentWhileFrozen = counter.sent - sentBefore;
        const continuedAt = performance.now() - origin;
        server.kill('SIGCONT');
        const samples = await frozen;
        const loopDelay = loop();
        // After SIGCONT: the gate opens at the first reply (GLIDE: its next probe, ≤ MAX_PROBE_INTERVAL_MS).
        const resumed = performance.now();
        let recoveredAfter = Number.POSITIVE_INFINITY;
        while (performance.now() - resumed < MAX_PROBE_INTERVAL_MS + 300) {
          if ((await limiter.consume(id)).reason === 'allowed') {
            recoveredAfter = performance.now() - resumed;
            break;
          }
          await sleep(INTERVAL_MS);
        }

        expect(Math.max(...samples.map((sample) => sample.ms))).toBeLessThan(TIMEOUT_MS + LATE_MS + loopDelay.max);
        // A call still waiting when Redis resumes (the last ones started, or a probe) may be answered:
        // only after SIGCONT, never while frozen.
        const answered = samples.filter((sample) => sample.reason !== 'store-timeout' && sample.reason !== 'store-error');
        expect(answered.filter((sample) => sample.reason !== 'allowed' || sample.at + sample.ms < continuedAt)).toEqual([]);
        expect(answered.length).toBeLessThanOrEqual(samples.length / 4);
        expect(samples.some((sample) => sample.reason === 'store-error')).toBe(true); // failed at once, not sent
        expect(sentWhileFrozen).toBeLessThanOrEqual(SENT_WHILE_FROZEN_BOUND);
        expect(recoveredAfter).toBeLessThanOrEqual(MAX_PROBE_INTERVAL_MS + 300);
        expect((await limiter.consume(id)).reason).toBe('allowed');
      } finally {
        server.kill('SIGCONT');
        await tested.close();
      }
    });

    // A review saw lock routes with `timeout: 3000` answer 503 in bursts on a loaded host: Redis
    // replied after more than STALL_MS, and the gate refused calls that had 3 s to wait. The
    // gate now waits as long as the longest budget of the store's guards.
    it('waits out a silence shorter than its guards’ budget: every call is sent and answered by Redis', async () => {
      // GLIDE's own requestTimeout (250 ms by default) would fail the first call itself.
      const tested = await connectClient(kind, { url: server.url }, { defaults: true, glide: { requestTimeout: 2_000 } });
      try {
        const store = new RedisStore({ client: tested.client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: 1_000_000, window: '1h', timeout: 1_500, logger: quiet });
        // A guard with a short budget on the same store changes nothing: the longest one counts.
        new RateLimiter({ store, limit: 10, window: '1s', timeout: 50, logger: quiet });
        const id = uniqueId('slow');
        server.kill('SIGSTOP');
        const resume = setTimeout(() => server.kill('SIGCONT'), 400); // 4 × STALL_MS
        const samples = await traffic(limiter, () => id, 300, performance.now());
        clearTimeout(resume);
        server.kill('SIGCONT');
        expect(samples.length).toBeGreaterThan(5);
        expect(samples.filter((sample) => sample.reason !== 'allowed')).toEqual([]);
      } finally {
        server.kill('SIGCONT');
        await tested.close();
      }
    });

    // Found by the fault tier: its counting Proxy binds the Store methods to the store and hands
    // anything else out as it is, so a symbol-keyed method ran with the Proxy as `this`.
    it('takes the budget through a Proxy that binds only the Store methods (an instrumentation wrapper)', async () => {
      const tested = await connectClient(kind, { url: server.url });
      try {
        const wrapped = new Proxy(new RedisStore({ client: tested.client }), {
          get(target, property) {
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' && typeof property === 'string' ? (value as () => unknown).bind(target) : value;
          },
        });
        const limiter = new RateLimiter({ store: wrapped, limit: 10, window: '1m', timeout: 1_000, logger: quiet });
        expect((await limiter.consume(uniqueId('proxied'))).reason).toBe('allowed');
      } finally {
        await tested.close();
      }
    });
  });

  describe('Cluster, one master frozen', () => {
    let cluster: RedisClusterHandle;
    beforeAll(async () => {
      cluster = await sharedCluster();
    });

    it('keeps answering on the other masters while the frozen one fails fast', async () => {
      const nodes = cluster.masters.map((node) => ({ host: '127.0.0.1', port: node.port }));
      const tested = await connectClient(kind, { nodes }, { defaults: true });
      const frozen = cluster.masters[0]!;
      try {
        const store = new RedisStore({ client: tested.client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: 1_000_000, window: '1h', timeout: TIMEOUT_MS, logger: quiet });
        // Ids whose keys live on the frozen master and elsewhere, by the slot ranges as created (3 equal parts).
        const onFrozen = idServedBy(limiter, (slot) => slot <= 5460);
        const elsewhere = idServedBy(limiter, (slot) => slot > 5460);
        const origin = performance.now();
        const loop = watchEventLoop();
        frozen.kill('SIGSTOP');
        const [stuck, served] = await Promise.all([traffic(limiter, () => onFrozen, FROZEN_MS, origin), traffic(limiter, () => elsewhere, FROZEN_MS, origin)]);
        frozen.kill('SIGCONT');
        const loopDelay = loop();
        expect(Math.max(...stuck.map((sample) => sample.ms))).toBeLessThan(TIMEOUT_MS + LATE_MS + loopDelay.max);
        expect(stuck.some((sample) => sample.reason === 'store-error' && sample.ms < 20)).toBe(true);
        expect(served.every((sample) => sample.reason === 'allowed')).toBe(true);
      } finally {
        frozen.kill('SIGCONT');
        await tested.close();
      }
    });
  });
});

let clusterStarted: Promise<RedisClusterHandle> | undefined;
/** One throwaway cluster for the file (SIGSTOP is node-wide), stopped after the last client. */
function sharedCluster(): Promise<RedisClusterHandle> {
  clusterStarted ??= startRedisCluster();
  return clusterStarted;
}
afterAll(async () => {
  await (await clusterStarted)?.stop();
});

/** An id whose limit key (as `limiter` builds it) hashes to a slot `wanted` accepts. */
function idServedBy(limiter: RateLimiter, wanted: (slot: number) => boolean): string {
  for (;;) {
    const id = uniqueId('stall');
    const limit: StoreLimit = { key: limitKey('rl:', id, limiter.policies[0]!.name), windowMs: 3_600_000, limit: 1 };
    if (wanted(keySlot(limit.key))) return id;
  }
}
