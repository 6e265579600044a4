/**
 * RELIABILITY A3: a slow or odd Redis — `DEBUG SLEEP 0.3` every second, a script running past
 * `busy-reply-threshold` (every other client gets `-BUSY`), a client pointed at a replica
 * (`-READONLY`). Each is a store timeout or error: the limiter follows `onStoreError` (open here),
 * a lock acquire fails (503 over HTTP); no request waits for the slow reply; calls recover as soon
 * as the fault ends; and a consume that timed out but ran late leaves no entry behind.
 *
 * Load: an open loop of 100 decisions/s (one every 10 ms) on one ioredis client at its defaults,
 * `timeout` 100 ms (RELIABILITY's convention); bounds: p99 ≤ timeout + 50 ms, max ≤ timeout + 250 ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockGuard, RateLimiter, RedisStore, type Decision } from '../../src/index.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { logLength } from '../helpers/sliding-logs.js';
import { sendCommand } from '../helpers/resp.js';
import { openLoop, type Sample } from './support/load.js';
import { adminClient, clientQueues, commandAttempts, info, scanKeys } from './support/redis-admin.js';
import { record } from './support/record.js';
import { latencyFigures, max, now, percentile, round, watchEventLoop } from './support/stats.js';

const TIMEOUT_MS = 100;
const P99_BOUND_MS = TIMEOUT_MS + 50;
const MAX_BOUND_MS = TIMEOUT_MS + 250;
const INTERVAL_MS = 10;
/** A decision is "recovered" when one passes within this long after the fault ended. */
const RECOVERY_BOUND_MS = 250;
/** Most calls of ours in flight at once: rate × (timeout + slack). */
const IN_FLIGHT_BOUND = Math.ceil((1000 / INTERVAL_MS) * (MAX_BOUND_MS / 1000));
/** Late replies and late refunds land within this. */
const SETTLE_MS = 500;

interface Outcome {
  readonly decision: Decision;
  /** How long the decision alone took (ms). */
  readonly decisionMs: number;
  /** Every 10th tick also takes and releases a lock: its outcome. */
  readonly lock?: 'acquired' | 'store-error' | 'store-timeout';
}

function logger() {
  const lines: string[] = [];
  return { lines, warn: (line: string) => void lines.push(line) };
}

/** The fault's error text (BUSY …, READONLY …) under ratelock's StoreError. */
function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

class Rig {
  readonly log = logger();
  readonly client: Redis;
  readonly store: RedisStore;
  readonly limiter: RateLimiter;
  readonly locks: LockGuard;
  maxAwaitingReply = 0;
  maxOffline = 0;

  constructor(url: string, readonly prefix: string) {
    this.client = new Redis(url); // ioredis defaults, as an app would create it
    this.client.on('error', () => undefined);
    this.store = new RedisStore({ client: this.client });
    this.limiter = new RateLimiter({ store: this.store, limit: 1_000_000, window: '1h', prefix: `${prefix}rl:`, timeout: TIMEOUT_MS, logger: this.log });
    this.locks = new LockGuard({ store: this.store, ttl: '2s', prefix: `${prefix}lk:`, timeout: TIMEOUT_MS, logger: this.log });
  }

  async fire(index: number): Promise<Outcome> {
    const started = now();
    const decision = await this.limiter.consume('client');
    const decisionMs = now() - started;
    if (index % 10 !== 0) return { decision, decisionMs };
    try {
      const lease = await this.locks.acquire(`job:${index}`);
      await lease.release().catch(() => undefined);
      return { decision, decisionMs, lock: 'acquired' };
    } catch (err) {
      return { decision, decisionMs, lock: (err as { code?: string }).code === 'ERR_RATELOCK_STORE_TIMEOUT' ? 'store-timeout' : 'store-error' };
    }
  }

  sample(): void {
    const queues = clientQueues(this.client);
    this.maxAwaitingReply = Math.max(this.maxAwaitingReply, queues.awaitingReply);
    this.maxOffline = Math.max(this.maxOffline, queues.offline);
  }

  /** Event-loop delay of this process during the last run (see stats.ts). */
  lag = { p99: 0, max: 0 };

  async run(durationMs: number) {
    const loop = watchEventLoop();
    const result = await openLoop({ intervalMs: INTERVAL_MS, durationMs, fire: (index) => this.fire(index), onTick: () => this.sample() });
    this.lag = loop();
    return result;
  }
}

/** Figures and checks shared by the three faults. */
function summarise(samples: readonly Sample<Outcome>[], faultEndedAt: number) {
  const latencies = samples.map((sample) => sample.value.decisionMs);
  const failed = samples.filter((sample) => sample.value.decision.reason !== 'allowed' && sample.value.decision.reason !== 'limited');
  const recovered = samples.find((sample) => sample.end >= faultEndedAt && sample.value.decision.reason === 'allowed');
  const locks = samples.flatMap((sample) => (sample.value.lock ? [sample.value.lock] : []));
  return {
    latencies,
    failed,
    recoveryMs: recovered ? Math.max(0, recovered.end - faultEndedAt) : Number.POSITIVE_INFINITY,
    figures: {
      decisions: samples.length,
      'failed open %': round((100 * failed.length) / samples.length, 1),
      ...latencyFigures('decision', latencies),
      'lock acquires refused (503)': locks.filter((outcome) => outcome !== 'acquired').length,
      'lock acquires': locks.length,
    },
  };
}

/** Entries in the limiter's log vs decisions Redis allowed (a late consume must have been refunded). */
async function phantomEntries(admin: Redis, prefix: string, samples: readonly Sample<Outcome>[]): Promise<number> {
  const keys = await scanKeys(admin, `${prefix}rl:*`);
  let entries = 0;
  for (const key of keys) entries += await logLength(admin, key);
  return entries - samples.filter((sample) => sample.value.decision.reason === 'allowed').length;
}

/** Lock keys (not fences) still there: a timed-out acquire that landed late must have been given back. */
async function orphanLocks(admin: Redis, prefix: string): Promise<number> {
  return (await scanKeys(admin, `${prefix}lk:*`)).filter((key) => !key.endsWith(':fence')).length;
}

// Latency bounds on a shared 2-core machine: one retry absorbs a run disturbed by other load.
describe('A3: a slow or odd Redis', { retry: 1 }, () => {
  let server: RedisServerHandle;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedisServer({ args: ['--enable-debug-command', 'yes'] });
    admin = adminClient(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('DEBUG SLEEP 0.3 every second: each call answers within its budget (failing open), recovers at once, leaves no phantom entry', async () => {
    const rig = new Rig(server.url, 'a3s:');
    await rig.store.ready();
    const faults: number[] = [];
    let faultEndedAt = 0;
    const origin = now();
    const sleeper = (async () => {
      for (let k = 0; k < 5; k++) {
        const due = origin + 500 + k * 1_000;
        if (due > now()) await sleep(due - now());
        const started = now();
        await sendCommand(server.port, ['DEBUG', 'SLEEP', '0.3'], 2_000);
        faultEndedAt = now();
        faults.push(faultEndedAt - started);
      }
    })();
    const [{ samples, maxInFlight }] = await Promise.all([rig.run(6_000), sleeper]);
    await sleep(SETTLE_MS);
    const summary = summarise(samples, faultEndedAt);
    const phantoms = await phantomEntries(admin, rig.prefix, samples);
    const orphans = await orphanLocks(admin, rig.prefix);
    record({
      check: 'A3',
      case: 'DEBUG SLEEP 0.3 s every second',
      done: `5 × DEBUG SLEEP 0.3 one second apart under an open loop of ${1000 / INTERVAL_MS} decisions/s for 6 s (every 10th also a lock acquire + release); timeout ${TIMEOUT_MS} ms, limiter onStoreError 'open'`,
      bound: `p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; in-flight calls ≤ ${IN_FLIGHT_BOUND}; first allowed decision ≤ ${RECOVERY_BOUND_MS} ms after the last sleep; phantom log entries 0; orphan locks 0`,
      figures: {
        ...summary.figures,
        'sleeps measured ms': round(max(faults), 0),
        'max calls in flight': maxInFlight,
        'max commands awaiting a reply (ioredis)': rig.maxAwaitingReply,
        'max offline queue (ioredis)': rig.maxOffline,
        'recovery after the last sleep ms': round(summary.recoveryMs, 0),
        'phantom log entries': phantoms,
        'orphan locks': orphans,
        'outage log lines': rig.log.lines.length,
        'event-loop delay p99 / max ms (test process)': `${rig.lag.p99} / ${rig.lag.max}`,
      },
    });
    rig.client.disconnect();
    expect(summary.failed.length).toBeGreaterThan(0); // the sleeps were felt
    expect(percentile(summary.latencies, 99)).toBeLessThanOrEqual(P99_BOUND_MS);
    expect(max(summary.latencies)).toBeLessThanOrEqual(MAX_BOUND_MS);
    expect(maxInFlight).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    expect(summary.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    expect(summary.failed.every((sample) => sample.value.decision.allowed)).toBe(true); // fail open
    expect(phantoms).toBe(0);
    expect(orphans).toBe(0);
  });

  it('a script past busy-reply-threshold: -BUSY is a store error answered at once, and calls recover when the script ends', async () => {
    const THRESHOLD_MS = 500;
    const SCRIPT_MS = 2_000;
    await sendCommand(server.port, ['CONFIG', 'SET', 'busy-reply-threshold', String(THRESHOLD_MS)], 2_000);
    const rig = new Rig(server.url, 'a3b:');
    await rig.store.ready();
    // A read-only script that spins for SCRIPT_MS (killable; it writes nothing).
    const spin = `local t0 = redis.call('TIME') local start = t0[1] * 1000 + math.floor(t0[2] / 1000)
      while true do local t = redis.call('TIME') if t[1] * 1000 + math.floor(t[2] / 1000) - start >= tonumber(ARGV[1]) then break end end
      return 1`;
    let faultEndedAt = 0;
    const script = (async () => {
      await sleep(500);
      await sendCommand(server.port, ['EVAL', spin, '0', String(SCRIPT_MS)], SCRIPT_MS + 5_000);
      faultEndedAt = now();
    })();
    const [{ samples, maxInFlight }] = await Promise.all([rig.run(3_500), script]);
    await sleep(SETTLE_MS);
    const summary = summarise(samples, faultEndedAt);
    const busy = summary.failed.filter((sample) => /^BUSY/.test(rootMessage(sample.value.decision.error)));
    const busyLatencies = busy.map((sample) => sample.value.decisionMs);
    const phantoms = await phantomEntries(admin, rig.prefix, samples);
    record({
      check: 'A3',
      case: `script past busy-reply-threshold`,
      done: `a ${SCRIPT_MS / 1000} s read-only script with busy-reply-threshold ${THRESHOLD_MS} ms, under an open loop of ${1000 / INTERVAL_MS} decisions/s for 3.5 s; timeout ${TIMEOUT_MS} ms`,
      bound: `p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; BUSY answered as a store error (fail open); first allowed decision ≤ ${RECOVERY_BOUND_MS} ms after the script; phantom entries 0`,
      figures: {
        ...summary.figures,
        'answered BUSY': busy.length,
        'BUSY answer max ms': round(max(busyLatencies), 1),
        'max calls in flight': maxInFlight,
        'recovery after the script ms': round(summary.recoveryMs, 0),
        'phantom log entries': phantoms,
        'outage log lines': rig.log.lines.length,
        'event-loop delay p99 / max ms (test process)': `${rig.lag.p99} / ${rig.lag.max}`,
      },
    });
    rig.client.disconnect();
    await sendCommand(server.port, ['CONFIG', 'SET', 'busy-reply-threshold', '5000'], 2_000);
    expect(busy.length).toBeGreaterThan(0);
    expect(summary.failed.every((sample) => sample.value.decision.allowed)).toBe(true);
    expect(percentile(summary.latencies, 99)).toBeLessThanOrEqual(P99_BOUND_MS);
    expect(max(summary.latencies)).toBeLessThanOrEqual(MAX_BOUND_MS);
    expect(summary.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    expect(phantoms).toBe(0);
  });

  it('a client pointed at a replica: -READONLY is a store error answered at once; calls recover once the node is a master again', async () => {
    // Full syncs start at once instead of after the default 5 s wait for more replicas.
    await sendCommand(server.port, ['CONFIG', 'SET', 'repl-diskless-sync-delay', '0'], 2_000);
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(server.port), '--repl-diskless-sync-delay', '0'] });
    try {
      for (let i = 0; i < 200 && (await info(replica.port, 'replication')).get('master_link_status') !== 'up'; i++) await sleep(25);
      const rig = new Rig(server.url, 'a3r:');
      await rig.store.ready();
      // The node the client uses becomes a replica of the other one (a failover the app's client did
      // not follow), then a master again.
      let faultEndedAt = 0;
      const swap = (async () => {
        await sleep(1_000);
        await sendCommand(replica.port, ['REPLICAOF', 'NO', 'ONE'], 2_000);
        await sendCommand(server.port, ['REPLICAOF', '127.0.0.1', String(replica.port)], 2_000);
        await sleep(1_500);
        await sendCommand(server.port, ['REPLICAOF', 'NO', 'ONE'], 2_000);
        faultEndedAt = now();
      })();
      const [{ samples, maxInFlight }] = await Promise.all([rig.run(4_000), swap]);
      await sleep(SETTLE_MS);
      const summary = summarise(samples, faultEndedAt);
      const readonly = summary.failed.filter((sample) => /READONLY|read only replica/i.test(rootMessage(sample.value.decision.error)));

      // A store created on a replica from the start: what each failed call costs it.
      const onReplica = new Rig(replica.url, 'a3r2:');
      await sendCommand(replica.port, ['REPLICAOF', '127.0.0.1', String(server.port)], 2_000);
      for (let i = 0; i < 200 && (await info(replica.port, 'replication')).get('master_link_status') !== 'up'; i++) await sleep(25);
      const loadsBefore = await commandAttempts(replica.port, 'function|load');
      const CALLS = 20;
      const replicaDecisions: Decision[] = [];
      for (let i = 0; i < CALLS; i++) replicaDecisions.push(await onReplica.limiter.consume('client'));
      const loadsPerCall = ((await commandAttempts(replica.port, 'function|load')) - loadsBefore) / CALLS;
      onReplica.client.disconnect();

      record({
        check: 'A3',
        case: 'client pointed at a replica (READONLY)',
        done: `the client's node turned into a replica for 1.5 s (REPLICAOF), then a master again, under an open loop of ${1000 / INTERVAL_MS} decisions/s; plus ${CALLS} decisions of a store created on a replica`,
        bound: `READONLY answered as a store error (fail open, lock 503); p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; first allowed decision ≤ ${RECOVERY_BOUND_MS} ms after the node is a master again`,
        figures: {
          ...summary.figures,
          'answered READONLY': readonly.length,
          'max calls in flight': maxInFlight,
          'recovery after REPLICAOF NO ONE ms': round(summary.recoveryMs, 0),
          'store on a replica: decisions failed open': replicaDecisions.filter((decision) => decision.reason === 'store-error').length,
          'store on a replica: FUNCTION LOADs per call': round(loadsPerCall, 2),
          'outage log lines': rig.log.lines.length,
          'event-loop delay p99 / max ms (test process)': `${rig.lag.p99} / ${rig.lag.max}`,
        },
        ...(loadsPerCall >= 1 ? { note: 'A store whose client points at a replica sends FUNCTION LOAD (the whole library) again with every call: the load never succeeds there.' } : {}),
      });
      rig.client.disconnect();
      expect(readonly.length).toBeGreaterThan(0);
      expect(summary.failed.every((sample) => sample.value.decision.allowed)).toBe(true);
      expect(percentile(summary.latencies, 99)).toBeLessThanOrEqual(P99_BOUND_MS);
      expect(max(summary.latencies)).toBeLessThanOrEqual(MAX_BOUND_MS);
      expect(summary.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(replicaDecisions.every((decision) => decision.reason === 'store-error' && decision.allowed)).toBe(true);
    } finally {
      await replica.stop();
    }
  });
});
