/**
 * RELIABILITY A1 / A2 / A4 and issue 12 item 4 (observable failure): Redis SIGKILLed mid-traffic
 * and restarted empty; Redis frozen with SIGSTOP (TCP stays open, no error event) and resumed;
 * FUNCTION FLUSH again and again under concurrent callers — on every Redis client RedisStore
 * accepts: ioredis 6, node-redis 6 and 5, Valkey GLIDE 2, each at its library's defaults, as an
 * app would create it (RESP2/RESP3 changes nothing here; the store tests run both).
 *
 * Per client, two apps, Express 5 and Koa 3, each with its own client and RedisStore, as two app
 * processes would have; `timeout` 100 ms. Each gets an open loop of 50 requests/s spread over five
 * routes: a limiter that limits (10 per minute), a limiter that counts (huge limit), a fail-closed
 * limiter, a locked route and an idempotent route (withLock with replay). ioredis runs the outages
 * of 5 s; the other clients 3 s (the same bounds; the tier stays within its CI time).
 *
 * Item 4: every fail-open decision carries its reason (`store-error` / `store-timeout`), the outage
 * is logged once when it starts and once when it ends, and a failing store grows no queue: the
 * commands each client is handed while Redis cannot answer are counted at the method the store's
 * adapter calls (test/helpers/clients.ts, countCommands); for ioredis also its own queues.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter, RedisStore, type Decision } from '../../src/index.js';
import { MAX_PROBE_INTERVAL_MS, PROBE_INTERVAL_MS, STALL_MS } from '../../src/stores/redis/client.js';
import { scriptStats } from '../../src/stores/testing.js';
import { CLIENT_LABELS, type ClientKind, type CommandCounter, type TestClient, connectClient, countCommands } from '../helpers/clients.js';
import * as expressAdapter from '../../src/express.js';
import * as koaAdapter from '../../src/koa.js';
import { commandCalls, startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { logLength } from '../helpers/sliding-logs.js';
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
/**
 * Redis answers again within the client's reconnect backoff cap plus a call: ioredis min(n × 50,
 * 2000) ms; node-redis min(2^n × 50, 2000) + up to 200 ms jitter; GLIDE reconnects by itself within
 * ms, and the store finds it back with its next probe (≤ MAX_PROBE_INTERVAL_MS after the last).
 */
const RECOVERY_BOUND_MS: Readonly<Record<FaultClient, number>> = { ioredis: 2_500, 'node-redis': 2_700, 'node-redis5': 2_700, glide: 2_500 };
/** The counting limiter's limit: its decisions are told apart from the others' by it. */
const COUNTED_LIMIT = 1_000_000;
/** Calls that may enter ioredis's offline queue at the instant of the kill (see A1). */
const OFFLINE_SLIP = 2;
const ROUTES = ['limited', 'counted', 'strict', 'lock', 'pay'] as const;
/**
 * GLIDE as the README asks GLIDE users to configure it, the rest at its defaults:
 * - `requestTimeout` of a few seconds, well above ratelock's budget: at its default (250 ms) GLIDE
 *   gives up on a request and drops the reply when it comes, so a consume Redis ran after that
 *   (Redis frozen, then resumed) is never seen by ratelock, which cannot give it back, and a lock
 *   granted late is not released at once;
 * - `connectionBackoff` capped at 2 s, as ioredis's: GLIDE's own backoff grows past A1's recovery
 *   bound within a 3 s outage (seen: one app reconnected > 3 s after Redis was back).
 */
const GLIDE_CONFIG = { requestTimeout: 5_000, connectionBackoff: { numberOfRetries: 4, factor: 125, exponentBase: 2 } } as const;
/** The clients of this tier (RESP3 runs in the store tests: it changes nothing for outages). */
const FAULT_CLIENTS = ['ioredis', 'node-redis', 'node-redis5', 'glide'] as const satisfies readonly ClientKind[];
type FaultClient = (typeof FAULT_CLIENTS)[number];
/** Outage lengths: ioredis as RELIABILITY.md states them (5 s), the other clients 3 s. */
const OUTAGE_MS: Readonly<Record<FaultClient, number>> = { ioredis: 5_000, 'node-redis': 3_000, 'node-redis5': 3_000, glide: 3_000 };
/**
 * Commands a store may hand its client while Redis cannot answer: one budget's worth of calls
 * (≤ 2 store calls per request at 50 requests/s), which covers the in-flight gate's window
 * (STALL_MS and one event-loop turn), plus its probes (src/stores/redis/client.ts): at STALL_MS,
 * then 250 ms, 500 ms, then every MAX_PROBE_INTERVAL_MS.
 */
function queueBound(outageMs: number): number {
  const budgetsWorth = Math.ceil((1000 / TICK_MS) * (TIMEOUT_MS / 1000) * 2) + 2;
  let probes = 0;
  for (let at = STALL_MS, interval = PROBE_INTERVAL_MS; at < outageMs; at += interval, interval = Math.min(interval * 2, MAX_PROBE_INTERVAL_MS)) probes++;
  return budgetsWorth + probes;
}

type Route = (typeof ROUTES)[number];

interface AppUnderTest {
  readonly name: 'express' | 'koa';
  readonly client: TestClient;
  /** The commands the store hands its client. */
  readonly commands: CommandCounter;
  readonly server: TestServer;
  readonly lines: string[];
  readonly decisions: { at: number; decision: Decision }[];
  /** Handler runs of the locked and idempotent routes, with their time. */
  readonly runs: { at: number; route: Route }[];
  /** ioredis only (its internals): commands sent and awaiting a reply, and waiting in the offline queue. */
  maxAwaitingReply: number;
  maxOffline: number;
  /** Commands handed to the client and not settled (every client). */
  maxPending: number;
}

interface Sent {
  readonly app: AppUnderTest;
  readonly route: Route;
  readonly start: number;
  readonly end: number;
  readonly reply: Reply;
}

// One client kind at a time (describe.each below runs them one after another).
let redis: RedisServerHandle;
let admin: Redis;
const apps: AppUnderTest[] = [];

function routeOptions(app: Omit<AppUnderTest, 'server' | 'commands' | 'client'>, store: RedisStore) {
  const logger = { warn: (line: string) => void app.lines.push(line) };
  const onDecision = (_req: unknown, decision: Decision) => void app.decisions.push({ at: now(), decision });
  return {
    limited: { store, limit: 10, window: '1m', key: () => `client-${attempt}`, prefix: `${app.name}:lim:`, timeout: TIMEOUT_MS, logger, onDecision },
    counted: { store, limit: COUNTED_LIMIT, window: '1h', key: () => 'client', prefix: `${app.name}:cnt:`, timeout: TIMEOUT_MS, logger, onDecision },
    strict: { store, limit: 999_999, window: '1h', key: () => 'client', prefix: `${app.name}:str:`, onStoreError: 'closed' as const, timeout: TIMEOUT_MS, logger, onDecision },
    lock: { store, key: () => 'job', prefix: `${app.name}:lk:`, ttl: LOCK_TTL_MS, timeout: TIMEOUT_MS, logger },
    pay: { store, replay: { ttl: '1h' }, prefix: `${app.name}:idem:`, ttl: LOCK_TTL_MS, timeout: TIMEOUT_MS, logger },
  };
}

async function startApp(name: 'express' | 'koa', kind: FaultClient): Promise<AppUnderTest> {
  // As an app would create it; GLIDE as the README asks (GLIDE_CONFIG).
  const client = await connectClient(kind, { url: redis.url }, { defaults: true, glide: GLIDE_CONFIG });
  const commands = countCommands(kind, client.client);
  const store = new RedisStore({ client: commands.client });
  await store.ready();
  const base = {
    name,
    client,
    commands,
    lines: [] as string[],
    decisions: [] as AppUnderTest['decisions'],
    runs: [] as AppUnderTest['runs'],
    maxAwaitingReply: 0,
    maxOffline: 0,
    maxPending: 0,
  };
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
        if (app.client.kind === 'ioredis') {
          const queues = clientQueues(app.client.client as Redis);
          app.maxAwaitingReply = Math.max(app.maxAwaitingReply, queues.awaitingReply);
          app.maxOffline = Math.max(app.maxOffline, queues.offline);
        }
        app.maxPending = Math.max(app.maxPending, app.commands.pending);
      }
    },
  });
  return result.samples.flatMap((sample) => sample.value);
}

/**
 * Runs so far: the limiting route keys its client by it, so a retried run does not start limited
 * (its refusals of the previous run still answered locally until they end).
 */
let attempt = 0;

function resetCounters(): void {
  attempt++;
  for (const app of apps) {
    app.lines.length = 0;
    app.decisions.length = 0;
    app.runs.length = 0;
    app.maxAwaitingReply = 0;
    app.maxOffline = 0;
    app.maxPending = 0;
  }
}

/** Commands each app's store handed its client so far. */
function commandsSent(): number[] {
  return apps.map((app) => app.commands.sent);
}

const isFallback = (decision: Decision) => decision.reason === 'store-error' || decision.reason === 'store-timeout';

describe.each(FAULT_CLIENTS)('%s', (kind: FaultClient) => {
  const label = CLIENT_LABELS[kind];
  const outageMs = OUTAGE_MS[kind];
  const seconds = outageMs / 1000;

  beforeAll(async () => {
    redis = await startRedisServer();
    admin = adminClient(redis.url);
    apps.push(await startApp('express', kind), await startApp('koa', kind));
  });

  afterAll(async () => {
    for (const app of apps.splice(0)) {
      await app.server.close();
      await app.client.close();
    }
    admin?.disconnect();
    await redis?.stop();
  });

  describe(`A1: Redis SIGKILLed mid-traffic, down ${seconds} s, restarted empty`, () => {
    // Latency bounds on a shared 2-core machine: one retry absorbs a run disturbed by other load.
    it('answers every request within the bound (limiter open, locks 503, handlers not run), logs the outage once each way, and limits again', { retry: 1 }, async () => {
      resetCounters();
      const loop = watchEventLoop();
      const KILL_AT = 1_000;
      const END = KILL_AT + outageMs + 4_000;
      // down: from the kill until the restart begins (from then on a client may reconnect before
      // the harness has seen the new server answer: `ready`, PING-ready).
      const marks = { kill: 0, restart: 0, ready: 0 };
      const sent = { atKill: [] as number[], atReady: [] as number[] };
      const reconnected = new Map<AppUnderTest, number>();
      const faults = (async () => {
        await sleep(KILL_AT);
        marks.kill = now();
        sent.atKill = commandsSent();
        redis.kill('SIGKILL');
        // When each app's client is connected again (its own backoff), apart from ratelock; GLIDE tells nobody.
        for (const app of apps) {
          const events = app.client.client as { once?: (event: string, listener: () => void) => unknown };
          if (app.client.kind !== 'glide') events.once?.('ready', () => reconnected.set(app, now()));
        }
        await sleep(outageMs);
        sent.atReady = commandsSent();
        marks.restart = now();
        await redis.restart(); // resolves once the new server answers (PING-ready)
        marks.ready = now();
      })();
      const [requests] = await Promise.all([traffic(END), faults]);
      const lag = loop();
      await sleep(1_500); // the "recovered" line follows a quiet second without failures

      const down = requests.filter((s) => s.start >= marks.kill && s.start < marks.restart);
      const rows = apps.map((app, index) => {
        const mine = down.filter((s) => s.app === app);
        const first = mine.reduce((a, b) => (b.start < a.start ? b : a));
        const afterReady = requests.filter((s) => s.app === app && s.start >= marks.ready);
        const firstRedisAnswer = app.decisions.find((d) => d.at >= marks.restart && !isFallback(d.decision));
        const first429 = afterReady.find((s) => s.route === 'limited' && s.reply.status === 429);
        const decisionsDown = app.decisions.filter((d) => d.at >= marks.kill && d.at < marks.restart);
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
          handlersRunDown: app.runs.filter((r) => r.at >= marks.kill && r.at < marks.restart).length,
          invisible: decisionsDown.filter((d) => d.decision.allowed && !isFallback(d.decision)).length,
          fallbacksVisible: decisionsDown.filter((d) => isFallback(d.decision)).length,
          unavailable: app.lines.filter((line) => line.includes('unavailable')).length,
          recovered: app.lines.filter((line) => line.includes('recovered')).length,
          recoveryMs: firstRedisAnswer ? Math.max(0, firstRedisAnswer.at - marks.ready) : Number.POSITIVE_INFINITY,
          first429Ms: first429 ? first429.end - marks.ready : Number.POSITIVE_INFINITY,
          sentWhileDown: sent.atReady[index]! - sent.atKill[index]!,
        };
      });
      const all = rows.flatMap((row) => row.latencies);
      const bound = queueBound(outageMs);
      record({
        check: 'A1',
        case: `SIGKILL, ${seconds} s down, restart empty (${label})`,
        done: `${label}: Express 5 and Koa 3 apps (own client and store each, client defaults, timeout ${TIMEOUT_MS} ms), open loop of 50 req/s each over a limiter, a counting limiter, a fail-closed limiter, a locked and an idempotent route; Redis SIGKILLed, restarted empty on its port ${seconds} s later`,
        bound: `first response after the kill ≤ ${FIRST_RESPONSE_BOUND_MS} ms; while down p99 ≤ ${P99_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; limiters 200 (the fail-closed one 503), lock and idempotent routes 503 + Retry-After, handlers not run; log: 1 unavailable + 1 recovered per app; commands handed to the client while down ≤ ${bound} per app${kind === 'ioredis' ? `, offline queue ≤ ${OFFLINE_SLIP}` : ''} (no growth); Redis answers again ≤ ${RECOVERY_BOUND_MS[kind]} ms after PING-ready`,
        figures: {
          'requests while down': down.length,
          ...Object.fromEntries(rows.map((row) => [`${row.app.name}: first response after kill ms`, round(row.firstResponseMs, 1)])),
          ...latencyFigures('while down', all),
          'wrong statuses while down': rows.reduce((n, row) => n + row.wrongStatus, 0),
          'handlers run while down': rows.reduce((n, row) => n + row.handlersRunDown, 0),
          'log lines unavailable / recovered (per app)': rows.map((row) => `${row.unavailable}/${row.recovered}`).join(', '),
          'commands handed to the client while down (per app)': rows.map((row) => row.sentWhileDown).join(', '),
          ...(kind === 'ioredis'
            ? { 'max offline queue': max(rows.map((row) => row.app.maxOffline)), 'max commands awaiting a reply': max(rows.map((row) => row.app.maxAwaitingReply)) }
            : {}),
          'client connected again after PING-ready ms': kind === 'glide' ? 'not reported by GLIDE' : round(max(apps.map((app) => (reconnected.get(app) ?? Number.NaN) - marks.ready)), 0),
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
        expect(row.sentWhileDown).toBeLessThanOrEqual(bound);
        expect(row.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS[kind]);
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
        case: `item 4: fallback decisions visible (${label})`,
        done: `${label}: every rateLimit decision of the A1 run (fail-open and fail-closed limiters), through onDecision`,
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

  describe(`A2: Redis frozen ${seconds} s (SIGSTOP), then resumed`, () => {
    const STOP_AT = 1_000;
    const END = STOP_AT + outageMs + 3_000;
    let requests: Sent[] = [];
    const marks = { stop: 0, cont: 0 };
    let sentWhileFrozen: number[] = [];
    let lag = { p99: 0, max: 0 };
    const entriesBefore = new Map<string, number>();

    /** Entries in an app's counting limiter's log now. */
    async function countedEntries(app: AppUnderTest): Promise<number> {
      let entries = 0;
      for (const key of await scanKeys(admin, `${app.name}:cnt:*`)) entries += await logLength(admin, key);
      return entries;
    }

    async function freezeUnderTraffic(): Promise<void> {
      for (let i = 0; i < 200 && apps.some((app) => app.decisions.length > 0 && isFallback(app.decisions[app.decisions.length - 1]!.decision)); i++) await sleep(25);
      resetCounters();
      for (const app of apps) entriesBefore.set(app.name, await countedEntries(app));
      const loop = watchEventLoop();
      const faults = (async () => {
        await sleep(STOP_AT);
        marks.stop = now();
        const before = commandsSent();
        redis.kill('SIGSTOP');
        await sleep(outageMs);
        sentWhileFrozen = commandsSent().map((sent, i) => sent - before[i]!);
        redis.kill('SIGCONT');
        marks.cont = now();
      })();
      [requests] = await Promise.all([traffic(END), faults]);
      lag = loop();
      await sleep(1_000); // late commands land, late grants are given back
    }

    // Latency bounds on a shared 2-core machine: one retry (a new frozen period) absorbs a run
    // disturbed by other load.
    it('answers within the bound while frozen; late commands change nothing (no count drift, no orphan lock or record)', { retry: 1, timeout: 60_000 }, async () => {
      await freezeUnderTraffic();
      const stopped = requests.filter((s) => s.start >= marks.stop && s.start < marks.cont);
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
        case: `SIGSTOP ${seconds} s (${label})`,
        done: `${label}: same two apps and load as A1; Redis SIGSTOPped for ${seconds} s then SIGCONT, 1 s to settle`,
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

    // Found by this tier (was it.fails): while Redis is frozen the client stays "ready", so every new
    // decision was written to the socket and waited there for a reply long after its budget ran out.
    // The store's in-flight gate (src/stores/redis/client.ts) now stops handing the client commands
    // once the connection has not answered for STALL_MS: one probe at a time until Redis answers.
    it('item 4: a frozen Redis grows no queue of commands awaiting a reply', () => {
      const bound = queueBound(outageMs);
      record({
        check: 'A2',
        case: `item 4: pending commands while frozen (${label})`,
        done: `${label}, the A2 run: commands each app's store handed its client while Redis was frozen ${seconds} s at 50 req/s per app (counted where the store's adapter calls the client)${kind === 'ioredis' ? `, and the commands ioredis held awaiting a reply (sampled every ${TICK_MS} ms)` : ''}`,
        bound: `≤ ${bound} per app (one timeout budget's worth of calls, plus the gate's probes)${kind === 'ioredis' ? `; ioredis: awaiting a reply ≤ ${bound}, offline queue ≤ ${OFFLINE_SLIP}` : ''}`,
        figures: {
          ...Object.fromEntries(apps.map((app, i) => [`${app.name}: commands handed to the client while frozen`, sentWhileFrozen[i]!])),
          ...Object.fromEntries(apps.map((app) => [`${app.name}: max commands not settled`, app.maxPending])),
          ...(kind === 'ioredis'
            ? {
                ...Object.fromEntries(apps.map((app) => [`${app.name}: max commands awaiting a reply`, app.maxAwaitingReply])),
                'max offline queue': max(apps.map((app) => app.maxOffline)),
              }
            : {}),
        },
      });
      for (const sent of sentWhileFrozen) expect(sent).toBeLessThanOrEqual(bound);
      expect(max(apps.map((app) => app.maxOffline))).toBeLessThanOrEqual(OFFLINE_SLIP);
      for (const app of apps) expect(app.maxAwaitingReply).toBeLessThanOrEqual(bound);
    });
  });

  describe('A4: FUNCTION FLUSH again and again under concurrent callers', () => {
    const CALLERS = 20;
    const FLUSH_EVERY_MS = 5;
    const RUN_MS = 3_000;

    // Issue 12 item 1: a call that meets a lost library while another caller reloads it must wait
    // for that reload and be sent again, never fail. The previous reload logic (one resend, after a
    // reload that may have checked the server before the loss) failed 60–360 of 60–130 k decisions
    // per client in every run of this test (2 runs × 4 clients); it lost 1 decision in 6 runs at the
    // gentler rate issue 12 reported. Fail-closed limiters: a decision Redis did not make shows as refused.
    it('decides every call on Redis (none fails open or closed) and counts exactly, while the library keeps vanishing', async () => {
      const client: TestClient = await connectClient(kind, { url: redis.url }, { defaults: true, glide: GLIDE_CONFIG });
      try {
        const store = new RedisStore({ client: client.client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: COUNTED_LIMIT, window: '1h', prefix: 'a4:', onStoreError: 'closed', timeout: 500, logger: { warn: () => undefined } });
        const exact = new RateLimiter({ store, limit: 100, window: '1h', prefix: 'a4x:', onStoreError: 'closed', timeout: 500, logger: { warn: () => undefined } });
        const loadsBefore = [...scriptStats(store).libraryLoads.values()].reduce((a, b) => a + b, 0);
        const evalsBefore = await commandCalls(admin, 'eval');
        const decisions: Decision[] = [];
        const exactDecisions: Decision[] = [];
        let flushes = 0;
        const end = now() + RUN_MS;
        const flusher = (async () => {
          while (now() < end) {
            await admin.function('FLUSH');
            flushes++;
            await sleep(FLUSH_EVERY_MS);
          }
        })();
        const callers = Array.from({ length: CALLERS }, async (_, caller) => {
          for (let i = 0; now() < end; i++) {
            // Some turns carry several decisions (one batch call), some a lone one.
            const turn = [limiter.consume('client')];
            if (i % 3 === 0) turn.push(limiter.consume('client'), exact.consume('exact'));
            const [first, ...others] = await Promise.all(turn);
            decisions.push(first!, ...others.slice(0, 1));
            if (others[1] !== undefined) exactDecisions.push(others[1]);
            if (caller === 0 && i % 10 === 0) await sleep(1);
          }
        });
        await Promise.all([flusher, ...callers]);
        const failed = [...decisions, ...exactDecisions].filter(isFallback);
        const entries = (await Promise.all((await scanKeys(admin, 'a4:*')).map((key) => logLength(admin, key)))).reduce((a, b) => a + b, 0);
        const reloads = [...scriptStats(store).libraryLoads.values()].reduce((a, b) => a + b, 0) - loadsBefore;
        const evals = (await commandCalls(admin, 'eval')) - evalsBefore;
        record({
          check: 'A4',
          case: `FUNCTION FLUSH every ${FLUSH_EVERY_MS} ms under ${CALLERS} callers (${label})`,
          done: `${label} at its defaults: ${CALLERS} concurrent callers (lone decisions and turns of three) on fail-closed limiters for ${RUN_MS / 1000} s while FUNCTION FLUSH runs every ${FLUSH_EVERY_MS} ms`,
          bound: 'every decision made by Redis (0 fail-open or fail-closed); log entries = allowed decisions; exactly 100 allowed on a limit of 100',
          figures: {
            decisions: decisions.length + exactDecisions.length,
            'FUNCTION FLUSHes': flushes,
            'FUNCTION LOADs by the store': reloads,
            'calls resent as EVAL (library gone again after its reload)': evals,
            'decisions failed (open or closed)': failed.length,
            'log entries − allowed decisions': entries - decisions.filter((d) => d.allowed).length,
            'allowed on the limit of 100': exactDecisions.filter((d) => d.allowed).length,
          },
        });
        expect(failed.map((d) => d.error?.message)).toEqual([]);
        expect(entries).toBe(decisions.filter((d) => d.allowed).length);
        expect(exactDecisions.length).toBeGreaterThan(100);
        expect(exactDecisions.filter((d) => d.allowed)).toHaveLength(100);
        expect(reloads).toBeGreaterThan(0);
        expect(reloads).toBeLessThanOrEqual(flushes + 1); // single-flight: at most one load per loss
      } finally {
        await client.close();
      }
    });
  });
});
