/**
 * RELIABILITY A6: Redis out of memory (`maxmemory 1mb`, policy `noeviction`, used memory above it)
 * while requests consume, acquire and complete.
 *
 * ratelock's Redis Functions declare flags (none of them `allow-oom`), so Redis refuses every call
 * before it runs: nothing is half-written, the guard follows `onStoreError` (limiter open or closed,
 * lock 503), and every key keeps its TTL. An idempotency record whose `complete` is refused is
 * retried (while the lease lasts and one ttl after it), and lands once memory is back: a retry of
 * the request replays it, the handler having run once.
 *
 * The same runs on EVALSHA (a server without Functions: FUNCTION and FCALL renamed away), where Redis
 * checks memory only at a script's first write that may grow memory: a consume whose first write
 * frees memory (dropping an expired log) goes on and writes. Still whole, never half-written.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockGuard, RateLimiter, RedisStore, withLock, type LockLease } from '../../src/express.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { sendCommand } from '../helpers/resp.js';
import { listen, send, type Reply, type TestServer } from './support/http.js';
import { adminClient, scanKeys, usedMemory } from './support/redis-admin.js';
import { record } from './support/record.js';

const LEASE_MS = 1_000;
const quiet = { warn: () => undefined };

interface Snapshot {
  readonly keys: Map<string, { type: string; size: number; pttl: number }>;
}

async function snapshot(admin: Redis, ignore: (key: string) => boolean): Promise<Snapshot> {
  const keys = new Map<string, { type: string; size: number; pttl: number }>();
  for (const key of await scanKeys(admin)) {
    if (ignore(key)) continue;
    const type = await admin.type(key);
    const size = type === 'list' ? await admin.llen(key) : type === 'hash' ? await admin.hlen(key) : 1;
    keys.set(key, { type, size, pttl: await admin.pttl(key) });
  }
  return { keys };
}

/**
 * Keys written between two snapshots: created, or still there with another size. (A key gone may
 * have expired: listed apart by `deleted`.)
 */
function changes(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [key, now] of after.keys) {
    const then = before.keys.get(key);
    if (!then) out.push(`+${key} (${now.type} ${now.size})`);
    else if (then.size !== now.size || then.type !== now.type) out.push(`~${key} (${then.size} → ${now.size})`);
  }
  return out;
}

/**
 * Keys gone between two snapshots taken `elapsedMs` apart, except those whose TTL ran out meanwhile
 * (Redis expiring them is no write of ours).
 */
function deleted(before: Snapshot, after: Snapshot, elapsedMs: number): string[] {
  return [...before.keys].filter(([key, then]) => !after.keys.has(key) && !(then.pttl >= 0 && then.pttl <= elapsedMs)).map(([key]) => key);
}

/**
 * State a script aborted midway would leave: an idempotency record missing its fields (or done
 * without a status), a lock without its fence.
 */
async function halfWrittenState(admin: Redis): Promise<string[]> {
  const problems: string[] = [];
  for (const key of await scanKeys(admin, 'idem:*')) {
    if (key.endsWith(':fence')) continue;
    const fields = await admin.hgetall(key);
    const running = fields.state === 'run' && fields.token && fields.fp && fields.fence && fields.status === undefined;
    const done = fields.state === 'done' && fields.status !== undefined && fields.headers !== undefined;
    if (!running && !done) problems.push(`${key} ${JSON.stringify(Object.keys(fields))}`);
  }
  const lockKeys = await scanKeys(admin, 'a6l:*');
  for (const key of lockKeys) {
    if (!key.endsWith(':fence') && !lockKeys.includes(`${key}:fence`)) problems.push(`${key} without its fence`);
  }
  return problems;
}

/** The state field of the one idempotency record (not its fence key), or 'none'. */
async function recordStateOf(admin: Redis): Promise<string> {
  const key = (await scanKeys(admin, 'idem:*')).find((name) => !name.endsWith(':fence'));
  return key === undefined ? 'none' : ((await admin.hget(key, 'state')) ?? 'none');
}

describe.each(['function', 'eval'] as const)('A6: out of memory (%s mode)', (mode) => {
  let server: RedisServerHandle;
  let client: Redis;
  let admin: Redis;
  let store: RedisStore;
  let http: TestServer;
  let gate: () => void = () => undefined;
  let executions = 0;

  beforeAll(async () => {
    // A server without Redis Functions (as Redis < 7): FUNCTION and FCALL renamed away, so RedisStore
    // falls back to EVALSHA by itself.
    const withoutFunctions = mode === 'eval' ? ['--rename-command', 'FUNCTION', '', '--rename-command', 'FCALL', ''] : [];
    server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction', ...withoutFunctions] });
    admin = adminClient(server.url);
    client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    store = new RedisStore({ client });
    await store.ready();
    const app = express();
    app.use(express.json());
    app.post('/pay', withLock({ store, replay: { ttl: '1h' }, ttl: LEASE_MS, logger: quiet }), async (_req, res) => {
      executions++;
      await new Promise<void>((resolve) => (gate = resolve));
      res.status(201).json({ paid: true });
    });
    http = await listen(app);
  });

  afterAll(async () => {
    await http?.close();
    client?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it('refuses consume, acquire and complete before any write; every key keeps a TTL; nothing half-written', async () => {
    const open = new RateLimiter({ store, limit: 5, window: '1h', prefix: 'a6o:', logger: quiet });
    const closed = new RateLimiter({ store, limit: 5, window: '1h', prefix: 'a6c:', onStoreError: 'closed', logger: quiet });
    // A log whose entries have all expired: the next consume first drops it (a write that frees memory).
    const expiring = new RateLimiter({ store, limit: 5, window: 1_000, prefix: 'a6x:', logger: quiet });
    const locks = new LockGuard({ store, ttl: '3s', prefix: 'a6l:', logger: quiet });
    // Start just after a second begins: the short log's key then outlives its entries by ~0.9 s
    // (a log expires at the end of the window epoch after its newest entry's, lua/sliding-log.lua).
    await sleep(1_000 - (Date.now() % 1_000) + 5);
    for (let i = 0; i < 2; i++) {
      expect((await open.consume('k')).reason).toBe('allowed');
      expect((await closed.consume('k')).reason).toBe('allowed');
      expect((await expiring.consume('k')).reason).toBe('allowed');
    }
    const held: LockLease = await locks.acquire('held');
    executions = 0;
    const first = send(http.port, { method: 'POST', path: '/pay', headers: { 'idempotency-key': 'k1' }, body: '{"amount":1}' });
    while (executions === 0) await sleep(5); // the first payment runs, holding its record
    await sleep(1_100); // the short log's entries leave its window (its key stays until the next second ends)
    const before = await snapshot(admin, (key) => key === 'a6:junk');
    const beforeAt = Date.now();

    // Out of memory: 1.5 MB of junk over a 1 MB maxmemory, nothing evictable.
    await admin.set('a6:junk', 'x'.repeat(1_500_000));
    await sendCommand(server.port, ['CONFIG', 'SET', 'maxmemory', '1mb'], 2_000);
    const oomProbe = await admin.set('a6:probe', '1').then(
      () => 'accepted',
      (err: Error) => err.message.split(' ')[0],
    );
    const usedAtOom = await usedMemory(server.port);

    const openDuring = await open.consume('k');
    const closedDuring = await closed.consume('k');
    const expiringDuring = await expiring.consume('k');
    const acquire = await locks.acquire('new').then(
      (lease) => `acquired ${lease.fence}`,
      (err: { code?: string }) => err.code ?? String(err),
    );
    const releaseHeld = await held.release().then(
      () => 'released',
      (err: { code?: string }) => err.code ?? String(err),
    );
    const second: Reply = await send(http.port, { method: 'POST', path: '/pay', headers: { 'idempotency-key': 'k2' }, body: '{"amount":2}' });
    gate(); // the first payment's handler ends: its complete meets the OOM, and is retried
    await sleep(300);
    const recordDuring = await recordStateOf(admin);
    const during = await snapshot(admin, (key) => key === 'a6:junk' || key === 'a6:probe');
    const elapsedMs = Date.now() - beforeAt;

    await sendCommand(server.port, ['CONFIG', 'SET', 'maxmemory', '0'], 2_000);
    await admin.del('a6:junk');
    // Memory is back within the complete's retries (the lease and one ttl after it): it lands.
    const firstReply = await first;
    const written = changes(before, during);
    const gone = deleted(before, during, elapsedMs);
    const noTtl = [...during.keys].filter(([, entry]) => entry.pttl === -1).map(([key]) => key);
    const halfWritten = await halfWrittenState(admin);
    const recordAfter = await recordStateOf(admin);

    // A retry of the first payment replays its stored response: the handler ran once.
    const retryReply = await send(http.port, { method: 'POST', path: '/pay', headers: { 'idempotency-key': 'k1' }, body: '{"amount":1}' });

    record({
      check: 'A6',
      case: `OOM, ${mode === 'function' ? 'Redis Functions (FCALL)' : 'EVALSHA'}`,
      done: `maxmemory 1mb, noeviction, 1.5 MB of junk (used ${Math.round(usedAtOom / 1024)} KB); during OOM: consume on a limiter open and one closed, a consume whose log had expired, a lock acquire, a held lock's release, a new idempotent request, and the complete of one in flight`,
      bound:
        (mode === 'function'
          ? 'every call refused before it writes (keys written 0, even a release); '
          : 'only a script whose first write frees memory may go on writing (Redis rule for scripts without flags); ') +
        'nothing half-written; every key keeps a TTL; limiter open → allowed, closed → 503, lock and new idempotent request → 503; a complete refused under OOM is retried (while the lease lasts and one ttl after) and lands once memory is back: the record is done, a retry replays it, the handler ran once',
      figures: {
        'plain SET while OOM': oomProbe ?? '?',
        'limiter open → reason': openDuring.reason,
        'limiter closed → allowed': closedDuring.allowed,
        'consume of an expired log → reason': expiringDuring.reason,
        'lock acquire': acquire,
        "held lock's release": releaseHeld,
        'new idempotent request status': second.status,
        'in-flight request status (complete refused, then retried)': firstReply.status,
        'keys written during OOM': written.length,
        'keys deleted during OOM': gone.length,
        'keys without TTL': noTtl.length,
        'half-written keys': halfWritten.length,
        'its record during OOM': recordDuring,
        'its record once memory is back': recordAfter,
        'retry: status': retryReply.status,
        'retry: replayed': String(retryReply.headers['idempotent-replayed'] ?? 'no'),
        executions,
      },
      ...(written.length + gone.length > 0 ? { note: `during OOM: ${[...written, ...gone.map((key) => `-${key}`)].join(', ')}` } : {}),
    });

    expect(oomProbe).toBe('OOM');
    expect(closedDuring.allowed).toBe(false);
    expect(closedDuring.reason).toBe('store-error');
    expect(openDuring).toMatchObject({ allowed: true, reason: 'store-error' });
    expect(acquire).toBe('ERR_RATELOCK_STORE');
    expect(second.status).toBe(503);
    expect(noTtl).toEqual([]);
    expect(halfWritten).toEqual([]);
    expect(recordDuring).toBe('run');
    expect(firstReply.status).toBe(201);
    expect(recordAfter).toBe('done');
    expect(retryReply.status).toBe(201);
    expect(retryReply.headers['idempotent-replayed']).toBe('true');
    expect(executions).toBe(1);
    if (mode === 'function') {
      expect(expiringDuring.reason).toBe('store-error');
      expect(written).toEqual([]);
      expect(gone).toEqual([]);
      expect(releaseHeld).toBe('ERR_RATELOCK_STORE'); // refused too: the held lock ends with its ttl
    } else {
      // EVALSHA: Redis lets a script that first freed memory go on writing (Redis docs); whole, with a
      // TTL: the expired log's new entry, and its call's record (lua/batch.lua, kept 10 s); the held
      // lock's release, which deleted the lock first, and its settled mark (lua/prelude.lua, 10 s).
      expect(written.every((change) => change.includes('a6x:') || change.includes('#call:') || change.includes('#settled:'))).toBe(true);
    }
  });
});
