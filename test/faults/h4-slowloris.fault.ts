/**
 * RELIABILITY H4: slow clients on a locked route (Express 5 and Koa 3, RedisStore). A client may
 * hold a lock no longer than the server lets it: `maxHold` (auto-extension stops, the lease then
 * ends within `ttl`) and the server's `requestTimeout`.
 *
 * - Slow body, body parser before withLock (the documented order): the lease is taken only once the
 *   body is in, so a body trickling at 1 B/s holds nothing; Node ends it at `requestTimeout` (408).
 * - Slow body read by the handler itself (lease taken before the body): held until the upload
 *   ends or is cut, bounded by maxHold + ttl.
 * - Slow reader of a 32 MB response: the handler is done but the response drains for as long as
 *   the client reads; the hold is bounded by maxHold + ttl.
 *
 * Contenders (no wait) probe the route every 100 ms: their 409s show how long the key stays held.
 */
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/index.js';
import { withLock as expressWithLock } from '../../src/express.js';
import { withLock as koaWithLock } from '../../src/koa.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { listen, send, type TestServer } from './support/http.js';
import { record } from './support/record.js';
import { now, round } from './support/stats.js';

const TTL_MS = 500;
const MAX_HOLD_MS = 1_500;
const REQUEST_TIMEOUT_MS = 2_000;
/** How often Node checks requestTimeout (its default, 30 s, would hide the timeout in a short test). */
const CHECK_INTERVAL_MS = 200;
const PROBE_EVERY_MS = 100;
const SLOW_CLIENT_MS = 4_000;
const BIG_BODY_BYTES = 32 * 1024 * 1024;
/** Scheduling and polling slack on a noisy machine. */
const SLACK_MS = 400;
const HOLD_BOUND_MS = MAX_HOLD_MS + TTL_MS + SLACK_MS;
const quiet = { warn: () => undefined };

type Case = 'parsed' | 'raw' | 'big';

let redis: RedisServerHandle;
let client: Redis;
let store: RedisStore;

function lockOptions(name: string) {
  return { store, key: () => name, ttl: TTL_MS, maxHold: MAX_HOLD_MS, logger: quiet };
}

function expressApp(framework: string) {
  const app = express();
  app.post('/parsed', express.json(), expressWithLock(lockOptions(`${framework}:parsed`)), (_req, res) => void res.json({ ok: true }));
  app.post('/raw', expressWithLock(lockOptions(`${framework}:raw`)), async (req, res) => {
    try {
      for await (const chunk of req) void chunk; // reads the body itself, after the lock
      res.send('ok');
    } catch {
      res.destroy();
    }
  });
  app.post('/big', expressWithLock(lockOptions(`${framework}:big`)), (req, res) => {
    res.send(req.query.small ? 'small' : Buffer.alloc(BIG_BODY_BYTES, 97));
  });
  return app;
}

function koaApp(framework: string) {
  const app = new Koa();
  app.silent = true;
  const parsed = koaWithLock(lockOptions(`${framework}:parsed`));
  const raw = koaWithLock(lockOptions(`${framework}:raw`));
  const big = koaWithLock(lockOptions(`${framework}:big`));
  const parse = bodyParser();
  app.use(async (ctx, next) => {
    if (ctx.path === '/parsed') {
      await parse(ctx, () => parsed(ctx, async () => void (ctx.body = { ok: true })));
    } else if (ctx.path === '/raw') {
      await raw(ctx, async () => {
        for await (const chunk of ctx.req) void chunk;
        ctx.body = 'ok';
      });
    } else if (ctx.path === '/big') {
      await big(ctx, async () => void (ctx.body = ctx.query.small ? 'small' : Buffer.alloc(BIG_BODY_BYTES, 97)));
    } else await next();
  });
  return app;
}

/** A client that sends its headers, then its JSON body 1 byte per second. */
function slowUploader(port: number, path: string): { done: Promise<{ status: string; closedAfterMs: number }> } {
  const body = '{"a":"slow-loris-body-0123456789"}';
  const socket = createConnection({ host: '127.0.0.1', port });
  const started = now();
  let answer = '';
  socket.on('data', (chunk: Buffer) => void (answer += chunk.toString('latin1')));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < body.length && !socket.destroyed) socket.write(body[sent++]!);
  }, 1_000);
  const done = new Promise<{ status: string; closedAfterMs: number }>((resolve) => {
    const finish = () => {
      clearInterval(timer);
      resolve({ status: /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 'none', closedAfterMs: now() - started });
    };
    socket.on('close', finish);
    socket.on('error', () => undefined);
    setTimeout(() => socket.destroy(), SLOW_CLIENT_MS + 1_000);
  });
  return { done };
}

/** A client that requests the 32 MB response and reads one chunk every 500 ms. */
function slowReader(port: number): { socket: Socket; received: () => number } {
  const socket = createConnection({ host: '127.0.0.1', port });
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), 500);
  });
  socket.on('error', () => undefined);
  socket.write('POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n');
  return { socket, received: () => received };
}

/** Probes the route every 100 ms for `durationMs`; returns each probe's start (ms after `origin`) and status. */
async function probe(port: number, path: string, origin: number, durationMs: number): Promise<{ at: number; status: number }[]> {
  const probes: Promise<{ at: number; status: number }>[] = [];
  while (now() - origin < durationMs) {
    const at = now() - origin;
    probes.push(send(port, { method: 'POST', path, body: '{"a":1}', timeoutMs: 5_000 }).then((reply) => ({ at, status: reply.status })));
    await sleep(PROBE_EVERY_MS);
  }
  return Promise.all(probes);
}

/** How long the key stayed held: from the slow request's start to the first 200 after a 409 (0 without 409). */
function heldFor(probes: readonly { at: number; status: number }[]): number {
  const firstBusy = probes.findIndex((p) => p.status === 409);
  if (firstBusy < 0) return 0;
  const freed = probes.slice(firstBusy).find((p) => p.status === 200);
  return freed ? freed.at : Number.POSITIVE_INFINITY;
}

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  client.on('error', () => undefined);
  store = new RedisStore({ client });
  await store.ready();
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe.each([
  ['express', expressApp],
  ['koa', (name: string) => koaApp(name).callback()],
] as const)('H4 on %s', (framework, makeApp) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await listen(makeApp(framework) as Parameters<typeof listen>[0], {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const run: Record<Case, () => Promise<void>> = {
    async parsed() {
      const origin = now();
      const slow = slowUploader(server.port, '/parsed');
      const probes = await probe(server.port, '/parsed', origin, SLOW_CLIENT_MS);
      const ended = await slow.done;
      const busy = probes.filter((p) => p.status === 409).length;
      record({
        check: 'H4',
        case: `${framework}: slow body, parser before withLock`,
        done: `a JSON body sent at 1 B/s to a locked route whose body parser runs first; server requestTimeout ${REQUEST_TIMEOUT_MS} ms; a contender every ${PROBE_EVERY_MS} ms for ${SLOW_CLIENT_MS / 1000} s`,
        bound: `the slow request holds no lock: contenders' 409 = 0; Node ends it (408) by requestTimeout + ${SLACK_MS} ms`,
        figures: {
          'lock held ms': heldFor(probes),
          "contenders' 409": busy,
          'contenders served': probes.filter((p) => p.status === 200).length,
          'slow request status': ended.status,
          'slow request ended after ms': round(ended.closedAfterMs, 0),
        },
      });
      expect(busy).toBe(0);
      expect(ended.status).toBe('408');
      expect(ended.closedAfterMs).toBeLessThanOrEqual(REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + SLACK_MS);
    },
    async raw() {
      const origin = now();
      const slow = slowUploader(server.port, '/raw');
      await sleep(50); // the slow request takes the lock first
      const probes = await probe(server.port, '/raw', origin, SLOW_CLIENT_MS);
      const ended = await slow.done;
      const held = heldFor(probes);
      record({
        check: 'H4',
        case: `${framework}: slow body read by the handler`,
        done: `a body sent at 1 B/s to a locked handler that reads it itself (lease taken first); ttl ${TTL_MS} ms, maxHold ${MAX_HOLD_MS} ms, requestTimeout ${REQUEST_TIMEOUT_MS} ms; a contender every ${PROBE_EVERY_MS} ms`,
        bound: `key held ≤ maxHold + ttl + ${SLACK_MS} ms = ${HOLD_BOUND_MS} ms`,
        figures: {
          'lock held ms': round(held, 0),
          "contenders' 409": probes.filter((p) => p.status === 409).length,
          'slow request ended after ms': round(ended.closedAfterMs, 0),
          'slow request status': ended.status,
        },
      });
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(HOLD_BOUND_MS);
    },
    async big() {
      const origin = now();
      const reader = slowReader(server.port);
      await sleep(100); // the slow reader's request takes the lock first
      const probes = await probe(server.port, '/big?small=1', origin, SLOW_CLIENT_MS);
      const received = reader.received();
      reader.socket.destroy();
      const held = heldFor(probes);
      record({
        check: 'H4',
        case: `${framework}: slow reader of a 32 MB response`,
        done: `a 32 MB response read one chunk per 500 ms for ${SLOW_CLIENT_MS / 1000} s (still unread at the end); ttl ${TTL_MS} ms, maxHold ${MAX_HOLD_MS} ms; a contender every ${PROBE_EVERY_MS} ms`,
        bound: `key held ≤ maxHold + ttl + ${SLACK_MS} ms = ${HOLD_BOUND_MS} ms while the response drains for longer`,
        figures: {
          'lock held ms': round(held, 0),
          "contenders' 409": probes.filter((p) => p.status === 409).length,
          'slow request duration ms': `> ${SLOW_CLIENT_MS} (cut by the test)`,
          'MB read by the slow reader': round(received / 1_048_576, 1),
        },
      });
      expect(received).toBeLessThan(BIG_BODY_BYTES); // the response was still draining at the end
      expect(held).toBeLessThanOrEqual(HOLD_BOUND_MS);
    },
  };

  // Timing bounds on a shared 2-core machine: one retry absorbs a run disturbed by other load.
  it.each(['parsed', 'raw', 'big'] as const)('%s: the hold stays bounded', { retry: 1 }, async (which) => {
    await run[which]();
  });
});
