/**
 * Exactness across processes (RELIABILITY D1): 6 app processes (Express 5, Express 4, Koa 3, Koa 2,
 * Fastify 5, Hono 4) share one RedisStore, on the shared standalone Redis and then on the shared
 * Cluster.
 *
 * - Burst: 1000 concurrent requests on one key, limit 100 per minute → exactly 100 × 200 and
 *   900 × 429, each 429 with a Retry-After of whole seconds ≥ 1; no other status.
 * - Boundary: limit 20 per 1 s, one request every 10 ms for 3 s spread over the 6 processes →
 *   never more than 20 admitted in any 1 s span. Each admission's Redis time lies between the
 *   app's `startedAt` and `decidedAt`, so for any 21 admissions (sorted by `startedAt`) the
 *   latest `decidedAt` minus the earliest `startedAt` must reach the window (less 2 ms of
 *   millisecond rounding): a sound check that does not depend on scheduling luck.
 *
 * Children are started with `node --import tsx` on free ports (port 0) and stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNodes, redisUrl } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP_SERVER = 'test/concurrency/app-server.ts';
const LUA_HOOK = './examples/support/register-lua-text.mjs';
const FRAMEWORKS = ['express', 'express4', 'koa', 'koa2', 'fastify', 'hono'] as const;

const BURST = { limit: 100, window: 60_000, requests: 1_000 };
const EDGE = { limit: 20, window: 1_000, durationMs: 3_000, intervalMs: 10 };
/** Ceilings so a stuck run fails instead of hanging. */
const START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 20_000;
/** Sockets per app process: the client pool is bounded, requests queue in the agent. */
const MAX_SOCKETS = 50;

interface AppProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly agent: Agent;
}

interface Reply {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: string;
}

function startApp(framework: string, target: string, limits: unknown): Promise<AppProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', LUA_HOOK, APP_SERVER, framework, target, JSON.stringify(limits)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const onExit = (code: number | null) => fail(new Error(`${framework} app exited with ${code} before it was ready: ${stderr}`));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      fail(new Error(`${framework} app not ready within ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      reject(err);
    };
    child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      const port = /ready (\d+)/.exec(chunk.toString())?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ child, port: Number(port), agent: new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS }) });
    });
    child.once('exit', onExit);
  });
}

async function stopApp(app: AppProcess): Promise<void> {
  app.agent.destroy();
  const { child } = app;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
  if (!stopped && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
}

function get(app: AppProcess, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: app.port, path, agent: app.agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => void (body += chunk));
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${app.port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function countStatuses(replies: readonly Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const reply of replies) counts[reply.status] = (counts[reply.status] ?? 0) + 1;
  return counts;
}

describe.each([
  ['standalone Redis', () => redisUrl()],
  ['Redis Cluster', () => `cluster:${clusterNodes().map((node) => `${node.host}:${node.port}`).join(',')}`],
])(`${FRAMEWORKS.length} app processes on %s`, (_name, target) => {
  const run = uniqueId('mp');
  const limits = {
    '/burst': { limit: BURST.limit, window: BURST.window, prefix: `${run}:burst:` },
    '/edge': { limit: EDGE.limit, window: EDGE.window, prefix: `${run}:edge:` },
  };
  let apps: AppProcess[] = [];

  beforeAll(async () => {
    const started = await Promise.allSettled(FRAMEWORKS.map((framework) => startApp(framework, target(), limits)));
    apps = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
  }, START_TIMEOUT_MS + 5_000);

  afterAll(async () => {
    await Promise.all(apps.map(stopApp));
  });

  it(`admits exactly ${BURST.limit} of ${BURST.requests} concurrent requests on one key`, async () => {
    const replies = await Promise.all(Array.from({ length: BURST.requests }, (_, i) => get(apps[i % apps.length]!, '/burst')));
    expect(countStatuses(replies)).toEqual({ 200: BURST.limit, 429: BURST.requests - BURST.limit });
    for (const reply of replies.filter((r) => r.status === 429)) {
      const seconds = Number(reply.retryAfter);
      expect(Number.isInteger(seconds) && seconds >= 1 && seconds <= BURST.window / 1000, `Retry-After ${reply.retryAfter}`).toBe(true);
    }
  });

  it(`never admits more than ${EDGE.limit} in any ${EDGE.window} ms span`, async () => {
    const pending: Promise<Reply>[] = [];
    const started = performance.now();
    for (let i = 0; performance.now() - started < EDGE.durationMs; i++) {
      pending.push(get(apps[i % apps.length]!, '/edge'));
      await sleep(EDGE.intervalMs);
    }
    const replies = await Promise.all(pending);
    expect(Object.keys(countStatuses(replies)).sort()).toEqual(['200', '429']);
    const admitted = replies
      .filter((reply) => reply.status === 200)
      .map((reply) => JSON.parse(reply.body) as { startedAt: number; decidedAt: number })
      .sort((a, b) => a.startedAt - b.startedAt);
    // Demand never stops for 3 s: at least two windows' worth get through.
    expect(admitted.length).toBeGreaterThanOrEqual(2 * EDGE.limit);
    let tightest = Number.POSITIVE_INFINITY;
    for (let i = 0; i + EDGE.limit < admitted.length; i++) {
      const group = admitted.slice(i, i + EDGE.limit + 1);
      const span = Math.max(...group.map((a) => a.decidedAt)) - admitted[i]!.startedAt;
      tightest = Math.min(tightest, span);
    }
    expect(tightest).toBeGreaterThanOrEqual(EDGE.window - 2);
  });
});
