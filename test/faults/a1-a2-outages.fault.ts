/**
 * RELIABILITY A1 / A2 and issue 12 item 4 (observable failure): Redis SIGKILLed mid-traffic and
 * restarted empty; then Redis frozen with SIGSTOP (TCP stays open, no error event) and resumed.
 *
 * Two apps, Express 5 and Koa 3, each with its own ioredis client (defaults) and RedisStore, as
 * two app processes would have; `timeout` 100 ms. Each gets an open loop of 50 requests/s spread
 * over four routes: a limiter that limits (10 per minute), a limiter that counts (huge limit), a
 * locked route and an idempotent route (withLock with replay).
 *
 * Item 4: every fail-open decision carries its reason (`store-error` / `store-timeout`), the outage
 * is logged once when it starts and once when it ends, and a failing store grows no queue.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore, type Decision } from '../../src/index.js';
import * as expressAdapter from '../../src/express.js';
import * as koaAdapter from '../../src/koa.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { listen, send, type Reply, type TestServer } from './support/http.js';
import { openLoop } from './support/load.js';
import { adminClient, clientQueues, scanKeys } from './support/redis-admin.js';
import { record } from './support/record.js';
import { latencyFigures, max, now, percentile, round, watchEventLoop } from './support/stats.js';

const TIMEOUT_MS = 100;
const P99_BOUND_MS = TIMEOUT_MS + 50;
const MAX_BOUND_MS = TIMEOUT_MS + 250;
/** RELIABILITY A1's target for the first response after the kill (peers: 12.1–17.2 s). */
const FIRST_RESPONSE_BOUND_MS = 150;
const TICK_MS = 20; // 50 requests/s per app
const LOCK_TTL_MS = 2_000;
/** ioredis reconnects with min(n × 50, 2000) ms between attempts: the backoff cap plus a call. */
const RECOVERY_BOUND_MS = 2_500;
/** The counting limiter's limit: its decisions are told apart from the others' by it. */
const COUNTED_LIMIT = 1_000_000;
/** Calls that may enter ioredis's offline queue at the instant of the kill (see A1). */
const OFFLINE_SLIP = 2;
const ROUTES = ['limited', 'counted', 'strict', 'lock', 'pay'] as const;
type Route = (typeof ROUTES)[number];

interface AppUnderTest {
  readonly name: 'express' | 'koa';
  readonly client: Redis;
  readonly server: TestServer;
  readonly lines: string[];
  readonly decisions: { at: number; decision: Decision }[];
  /** Handler runs of the locked and idempotent routes, with their time. */
  readonly runs: { at: number; route: Route }[];
  maxAwaitingReply: number;
  maxOffline: number;
}

interface Sent {
  readonly app: AppUnderTest;
  readonly route: Route;
  readonly start: number;
  readonly end: number;
  readonly reply: Reply;
}

let redis: RedisServerHandle;
let admin: Redis;
const apps: AppUnderTest[] = [];

function routeOptions(app: Omit<AppUnderTest, 'server'>, store: RedisStore) {
  const logger = { warn: (line: string) => void app.lines.push(line) };
  const onDecision = (_req: unknown, decision: Decision) => void app.decisions.push({ at: now(), decision });
  return {
    limited: { store, limit: 10, window: '1m', key: () => 'client', prefix: `${app.name}:lim:`, timeout: TIMEOUT_MS, logger, onDecision },
    counted: { store, limit: COUNTED_LIMIT, window: '1h', key: () => 'client', prefix: `${app.name}:cnt:`, timeout: TIMEOUT_MS, logger, onDecision },
    strict: { store, limit: 999_999, window: '1h', key: () => 'client', prefix: `${app.name}:str:`, onStoreError: 'closed' as const, timeout: TIMEOUT_MS, logger, onDecision },
    lock: { store, key: () => 'job', prefix: `${app.name}:lk:`, ttl: LOCK_TTL_MS, timeout: TIMEOUT_MS, logger },
    pay: { store, replay: { ttl: '1h' }, prefix: `${app.name}:idem:`, ttl: LOCK_TTL_MS, timeout: TIMEOUT_MS, logger },
  };
}

async function startApp(name: 'express' | 'koa'): Promise<AppUnderTest> {
  const client = new Redis(redis.url); // ioredis defaults, as an app would create it
  client.on('error', () => undefined);
  const store = new RedisStore({ client });
  await store.ready();
  const base = { name, client, lines: [] as string[], decisions: [] as AppUnderTest['decisions'], runs: [] as AppUnderTest['runs'], maxAwaitingReply: 0, maxOffline: 0 };
  const options = routeOptions(base, store);
  let listener;
  if (name === 'express') {
    const app = express();
    app.use(express.json());
    app.get('/limited', expressAdapter.rateLimit(options.limited), (_req, res) => void res.send('ok'));
    app.get('/counted', expressAdapter.rateLimit(options.counted), (_req, res) => void res.send('ok'));
    app.get('/strict', expressAdapter.rateLimit(options.strict), (_req, res) => void res.send('ok'));
    app.post('/lock', expressAdapter.withLock(options.lock), (_req, res) => {
      base.runs.push({ at: now(), route: 'lock' });
      res.send('done');
    });
    app.post('/pay', expressAdapter.withLock(options.pay), (_req, res) => {
      base.runs.push({ at: now(), route: 'pay' });
      res.status(201).json({ paid: true });
    });
    listener = app;
  } else {
    const app = new Koa();
    app.silent = true;
    const limited = koaAdapter.rateLimit(options.limited);
    const counted = koaAdapter.rateLimit(options.counted);
    const strict = koaAdapter.rateLimit(options.strict);
    const lock = koaAdapter.withLock(options.lock);
    const pay = koaAdapter.withLock(options.pay);
    app.use(bodyParser());
    app.use(async (ctx, next) => {
      const done = async () => void (ctx.body = 'ok');
      if (ctx.path === '/limited') await limited(ctx, done);
      else if (ctx.path === '/counted') await counted(ctx, done);
      else if (ctx.path === '/strict') await strict(ctx, done);
      else if (ctx.path === '/lock') {
        await lock(ctx, async () => {
          base.runs.push({ at: now(), route: 'lock' });
          ctx.body = 'done';
        });
      } else if (ctx.path === '/pay') {
        await pay(ctx, async () => {
          base.runs.push({ at: now(), route: 'pay' });
          ctx.status = 201;
          ctx.body = { paid: true };
        });
      } else await next();
    });
    listener = app.callback();
  }
  const server = await listen(listener as Parameters<typeof listen>[0]);
  return Object.assign(base, { server });
}

let requestCounter = 0;
function fire(app: AppUnderTest, route: Route): Promise<Sent> {
  const start = now();
  const path = `/${route}`;
  const reply =
    route === 'limited' || route === 'counted' || route === 'strict'
      ? send(app.server.port, { path })
      : send(app.server.port, { method: 'POST', path, headers: { 'idempotency-key': `req-${++requestCounter}` }, body: '{"amount":1}' });
  return reply.then((r) => ({ app, route, start, end: now(), reply: r }));
}

/** Open loop: every tick, one request to each app, routes in turn; samples the clients' queues. */
async function traffic(durationMs: number): Promise<Sent[]> {
  const result = await openLoop({
    intervalMs: TICK_MS,
    durationMs,
    fire: (tick) => Promise.all(apps.map((app) => fire(app, ROUTES[tick % ROUTES.length]!))),
    onTick: () => {
      for (const app of apps) {
        const queues = clientQueues(app.client);
        app.maxAwaitingReply = Math.max(app.maxAwaitingReply, queues.awaitingReply);
        app.maxOffline = Math.max(app.maxOffline, queues.offline);
      }
    },
  });
  return result.samples.flatMap((sample) => sample.value);
}

function resetCounters(): void {
  for (const app of apps) {
    app.lines.length = 0;
    app.decisions.length = 0;
    app.runs.length = 0;
    app.maxAwaitingReply = 0;
    app.maxOffline = 0;
  }
}

const isFallback = (decision: Decision) => decision.reason === 'store-error' || decision.reason === 'store-timeout';

beforeAll(async () => {
  redis = await startRedisServer();
  admin = adminClient(redis.url);
  apps.push(await startApp('express'), await startApp('koa'));
});

afterAll(async () => {
  for (const app of apps) {
    await app.server.close();
    app.client.disconnect();
  }
  admin?.disconnect();
  await redis?.stop();
});

describe('A1: Redis SIGKILLed mid-traffic, down 5 s, restarted empty', () => {
  // Latency bounds on a shared 2-core machine: one retry absorbs a run disturbed by other load.
  it('answers every request within the bound (limiter open, locks 503, handlers not run), logs the outage once each way, and limits again', { retry: 1 }, async () => {
    resetCounters();
    const loop = watchEventLoop();
    const KILL_AT = 1_000;
    const DOWN_MS = 5_000;
    const END = 10_000;
    const marks = { kill: 0, ready: 0 };
    const reconnected = new Map<AppUnderTest, number>();
    const faults = (async () => {
      await sleep(KILL_AT);
      marks.kill = now();
      redis.kill('SIGKILL');
      // When each app's ioredis client is connected again (its own backoff), apart from ratelock.
      for (const app of apps) app.client.once('close', () => app.client.once('ready', () => reconnected.set(app, now())));
      await sleep(DOWN_MS);
      await redis.restart(); // resolves once the new server answers (PING-ready)
      marks.ready = now();
    })();
    const [sent] = await Promise.all([traffic(END), faults]);
    const lag = loop();
    await sleep(1_500); // the "recovered" line follows a quiet second without failures

    const down = sent.filter((s) => s.start >= marks.kill && s.start < marks.ready);
    const rows = apps.map((app) => {
      const mine = down.filter((s) => s.app === app);
      const first = mine.reduce((a, b) => (b.start < a.start ? b : a));
      const afterReady = sent.filter((s) => s.app === app && s.start >= marks.ready);
      const firstRedisAnswer = app.decisions.find((d) => d.at >= marks.ready && !isFallback(d.decision));
      const first429 = afterReady.find((s) => s.route === 'limited' && s.reply.status === 429);
      const decisionsDown = app.decisions.filter((d) => d.at >= marks.kill && d.at < marks.ready);
      return {
        app,
        latencies: mine.map((s) => s.end - s.start),
        firstResponseMs: first.end - first.start,
        // Limiters fail open (200), except the strict one; locks and records fail closed.
        wrongStatus: mine.filter((s) =>
          s.route === 'lock' || s.route === 'pay' || s.route === 'strict'
            ? s.reply.status !== 503 || s.reply.headers['retry-after'] === undefined
            : s.reply.status !== 200,
        ).length,
        handlersRunDown: app.runs.filter((r) => r.at >= marks.kill && r.at < marks.ready).length,
        invisible: decisionsDown.filter((d) => d.decision.allowed && !isFallback(d.decision)).length,
        fallbacksVisible: decisionsDown.filter((d) => isFallback(d.decision)).length,
        unavailable: app.lines.filter((line) => line.includes('unavailable')).length,
        recovered: app.lines.filter((line) => line.includes('recovered')).length,
        recoveryMs: firstRedisAnswer ? firstRedisAnswer.at - marks.ready : Number.POSITIVE_INFINITY,
        first429Ms: first429 ? first429.end - marks.ready : Number.POSITIVE_INFINITY,
      };
    });
    const all = rows.flatMap((row) => row.latencies);
    record({
      check: 'A1',
      case: 'SIGKILL, 5 s down, restart empty',
      done: `Express 5 and Koa 3 apps (own client and store each, ioredis defaults, timeout ${TIMEOUT_MS} ms), open loop of 50 req/s each over a limiter, a counting limiter, a fail-closed limiter, a locked and an idempotent route; Redis SIGKILLed, restarted empty on its port ${DOWN_MS / 1000} s later`,
      bound: `first response after the kill ≤ ${FIRST_RESPONSE_BOUND_MS} ms; while down p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; limiters 200 (the fail-closed one 503), lock and idempotent routes 503 + Retry-After, handlers not run; log: 1 unavailable + 1 recovered per app; offline queue ≤ ${OFFLINE_SLIP} (no growth); Redis answers again ≤ ${RECOVERY_BOUND_MS} ms after PING-ready`,
      figures: {
        'requests while down': down.length,
        ...Object.fromEntries(rows.map((row) => [`${row.app.name}: first response after kill ms`, round(row.firstResponseMs, 1)])),
        ...latencyFigures('while down', all),
        'wrong statuses while down': rows.reduce((n, row) => n + row.wrongStatus, 0),
        'handlers run while down': rows.reduce((n, row) => n + row.handlersRunDown, 0),
        'log lines unavailable / recovered (per app)': rows.map((row) => `${row.unavailable}/${row.recovered}`).join(', '),
        'max offline queue': max(rows.map((row) => row.app.maxOffline)),
        'max commands awaiting a reply': max(rows.map((row) => row.app.maxAwaitingReply)),
        'ioredis connected again after PING-ready ms': round(max(apps.map((app) => (reconnected.get(app) ?? Number.NaN) - marks.ready)), 0),
        'Redis answers again after PING-ready ms': round(max(rows.map((row) => row.recoveryMs)), 0),
        'first correct 429 after PING-ready ms': round(max(rows.map((row) => row.first429Ms)), 0),
        'event-loop delay p99 / max ms (test process)': `${lag.p99} / ${lag.max}`,
      },
    });
    for (const row of rows) {
      expect(row.firstResponseMs).toBeLessThanOrEqual(FIRST_RESPONSE_BOUND_MS);
      expect(row.wrongStatus).toBe(0);
      expect(row.handlersRunDown).toBe(0);
      expect(row.unavailable).toBe(1);
      expect(row.recovered).toBe(1);
      // A call made in the instant between the kill and ioredis seeing its socket close may still slip
      // into ioredis's offline queue (seen: 1); what must not happen is growth.
      expect(row.app.maxOffline).toBeLessThanOrEqual(OFFLINE_SLIP);
      expect(row.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(row.first429Ms).toBeLessThan(Number.POSITIVE_INFINITY);
    }
    expect(percentile(all, 99)).toBeLessThanOrEqual(P99_BOUND_MS);
    expect(max(all)).toBeLessThanOrEqual(MAX_BOUND_MS);
  });

  it('item 4: every fail-open and fail-closed decision is visible to the app by its reason', () => {
    // From the run above: the decisions onDecision saw.
    const rows = apps.map((app) => ({
      app: app.name,
      open: app.decisions.filter((d) => isFallback(d.decision) && d.decision.allowed).length,
      closed: app.decisions.filter((d) => isFallback(d.decision) && !d.decision.allowed).length,
      silent: app.decisions.filter((d) => isFallback(d.decision) && d.decision.error === undefined).length,
      // A decision Redis never made must never look like one it made.
      disguised: app.decisions.filter((d) => !isFallback(d.decision) && d.decision.error !== undefined).length,
    }));
    record({
      check: 'A1',
      case: 'item 4: fallback decisions visible',
      done: 'every rateLimit decision of the A1 run (fail-open and fail-closed limiters), through onDecision',
      bound: "every fallback decision has reason 'store-error' or 'store-timeout' and carries the error; no other decision carries one",
      figures: Object.fromEntries(
        rows.flatMap((row) => [
          [`${row.app}: failed open`, row.open],
          [`${row.app}: failed closed`, row.closed],
          [`${row.app}: fallbacks without reason or error`, row.silent + row.disguised],
        ]),
      ),
    });
    for (const row of rows) {
      expect(row.open).toBeGreaterThan(0);
      expect(row.closed).toBeGreaterThan(0);
      expect(row.silent).toBe(0);
      expect(row.disguised).toBe(0);
    }
  });
});

describe('A2: Redis frozen 5 s (SIGSTOP), then resumed', () => {
  const STOP_AT = 1_000;
  const STOPPED_MS = 5_000;
  const END = 9_000;
  let sent: Sent[] = [];
  const marks = { stop: 0, cont: 0 };
  let lag = { p99: 0, max: 0 };
  const entriesBefore = new Map<string, number>();

  /** Entries in an app's counting limiter's log now. */
  async function countedEntries(app: AppUnderTest): Promise<number> {
    let entries = 0;
    for (const key of await scanKeys(admin, `${app.name}:cnt:*`)) entries += await admin.llen(key);
    return entries;
  }

  async function freezeUnderTraffic(): Promise<void> {
    for (const app of apps) for (let i = 0; i < 200 && app.client.status !== 'ready'; i++) await sleep(25);
    resetCounters();
    for (const app of apps) entriesBefore.set(app.name, await countedEntries(app));
    const loop = watchEventLoop();
    const faults = (async () => {
      await sleep(STOP_AT);
      marks.stop = now();
      redis.kill('SIGSTOP');
      await sleep(STOPPED_MS);
      redis.kill('SIGCONT');
      marks.cont = now();
    })();
    [sent] = await Promise.all([traffic(END), faults]);
    lag = loop();
    await sleep(1_000); // late commands land, late grants are given back
  }

  // Latency bounds on a shared 2-core machine: one retry (a new frozen period) absorbs a run
  // disturbed by other load.
  it('answers within the bound while frozen; late commands change nothing (no count drift, no orphan lock or record)', { retry: 1, timeout: 60_000 }, async () => {
    await freezeUnderTraffic();
    const stopped = sent.filter((s) => s.start >= marks.stop && s.start < marks.cont);
    const latencies = stopped.map((s) => s.end - s.start);
    let drift = 0;
    for (const app of apps) {
      const added = (await countedEntries(app)) - entriesBefore.get(app.name)!;
      const allowed = app.decisions.filter((d) => d.decision.policy.limit === COUNTED_LIMIT && d.decision.reason === 'allowed').length;
      // Entries added during the run must equal the decisions Redis allowed: a late consume is given back.
      drift += added - allowed;
    }
    const lockKeys = (await scanKeys(admin, '*:lk:*')).filter((key) => !key.endsWith(':fence'));
    const inFlightRecords: string[] = [];
    for (const key of await scanKeys(admin, '*:idem:*')) {
      if (!key.endsWith(':fence') && (await admin.hget(key, 'state')) === 'run') inFlightRecords.push(key);
    }
    const handlersRun = apps.reduce((n, app) => n + app.runs.filter((r) => r.at >= marks.stop && r.at < marks.cont).length, 0);
    record({
      check: 'A2',
      case: 'SIGSTOP 5 s',
      done: `same two apps and load as A1; Redis SIGSTOPped for ${STOPPED_MS / 1000} s then SIGCONT, 1 s to settle`,
      bound: `while frozen p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; handlers not run; count drift (log entries − allowed decisions) 0; orphan locks 0 and in-flight records 0 one second after SIGCONT; log: 1 unavailable + 1 recovered per app`,
      figures: {
        'requests while frozen': stopped.length,
        ...latencyFigures('while frozen', latencies),
        'handlers run while frozen': handlersRun,
        'count drift': drift,
        'orphan locks after SIGCONT + 1 s': lockKeys.length,
        'in-flight records after SIGCONT + 1 s': inFlightRecords.length,
        'log lines unavailable / recovered (per app)': apps
          .map((app) => `${app.lines.filter((l) => l.includes('unavailable')).length}/${app.lines.filter((l) => l.includes('recovered')).length}`)
          .join(', '),
        'event-loop delay p99 / max ms (test process)': `${lag.p99} / ${lag.max}`,
      },
    });
    expect(stopped.length).toBeGreaterThan(0);
    expect(percentile(latencies, 99)).toBeLessThanOrEqual(P99_BOUND_MS);
    expect(max(latencies)).toBeLessThanOrEqual(MAX_BOUND_MS);
    expect(handlersRun).toBe(0);
    expect(drift).toBe(0);
    expect(lockKeys).toEqual([]);
    expect(inFlightRecords).toEqual([]);
    for (const app of apps) {
      // Item 4: the outage is logged once when it starts and once when it ends.
      expect(app.lines.filter((l) => l.includes('unavailable'))).toHaveLength(1);
      expect(app.lines.filter((l) => l.includes('recovered'))).toHaveLength(1);
    }
  });

  // Fails today (found by this tier): while Redis is frozen the client stays "ready", so every new
  // decision is still written to the socket and waits there for a reply after its budget ran out:
  // the commands pending grow with rate × outage. Issue 12 item 4 ("a store that keeps failing never
  // grows a queue"); flip to `it` once calls stop being sent to a store that stopped answering.
  it.fails('item 4: a frozen Redis grows no queue of commands awaiting a reply', () => {
    const perApp = apps.map((app) => app.maxAwaitingReply);
    // What is legitimately in flight: one budget's worth of calls (≤ 2 store calls per request).
    const bound = Math.ceil((1000 / TICK_MS) * (TIMEOUT_MS / 1000) * 2) + 2;
    record({
      check: 'A2',
      case: 'item 4: pending commands while frozen',
      done: `the A2 run: commands each app's ioredis client held awaiting a reply (sampled every ${TICK_MS} ms) while Redis was frozen ${STOPPED_MS / 1000} s at 50 req/s per app`,
      bound: `≤ ${bound} per app (one timeout budget's worth of calls); offline queue ≤ ${OFFLINE_SLIP}`,
      figures: {
        ...Object.fromEntries(apps.map((app) => [`${app.name}: max commands awaiting a reply`, app.maxAwaitingReply])),
        'max offline queue': max(apps.map((app) => app.maxOffline)),
      },
    });
    expect(max(apps.map((app) => app.maxOffline))).toBeLessThanOrEqual(OFFLINE_SLIP);
    for (const pending of perApp) expect(pending).toBeLessThanOrEqual(bound);
  });
});
