/**
 * One HTTP measurement: a fresh server process for the case (on the server CPU), the block path's
 * keys spent, a warm-up, then a measured load with CPU and Redis snapshots around it.
 */
import { processCpuUs } from '../sys/cpu.js';
import { spawnNodeEntry, waitForLine } from '../sys/node-child.js';
import { stopChild } from '../sys/processes.js';
import { redisPer, redisSnapshot, type RedisSnapshot } from '../sys/redis-stats.js';
import type { BenchRedis } from '../sys/redis-server.js';
import type { HttpCase } from './cases.js';
import type { LoadGenerator } from './load.js';
import { spendEveryKey } from './prefill.js';

export interface HttpSample {
  caseId: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Node CPU (user + system, every thread of the server) per request. */
  nodeCpuUs: number;
  redis: RedisSnapshot;
  /** Share of responses that were not 2xx (the 429s of the block path). */
  refusedShare: number;
  errors: number;
}

export interface HttpBenchEnv {
  redis: BenchRedis;
  load: LoadGenerator;
  serverCpu: number | undefined;
  loadCpu: number | undefined;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  serverNodeFlags: readonly string[];
}

const SERVER_SCRIPT = new URL('./server.ts', import.meta.url);
const READY_TIMEOUT_MS = 30_000;

export async function measureCase(c: HttpCase, round: number, env: HttpBenchEnv): Promise<HttpSample> {
  await env.redis.admin.flushall();
  const server = spawnNodeEntry(SERVER_SCRIPT, [c.id, env.redis.url], env.serverCpu, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
    nodeFlags: env.serverNodeFlags,
  });
  try {
    const port = Number(await waitForLine(server, /^ready (\d+)$/m, READY_TIMEOUT_MS, `server ${c.id}`));
    const pid = server.pid!;
    const load = (seconds: number) => env.load({ port, keyCount: c.keyCount, seconds, connections: env.connections, cpu: env.loadCpu });
    if (c.path === 'block') await spendEveryKey(port, c.keyCount);
    await load(env.warmupSeconds);

    const cpuBefore = processCpuUs(pid);
    const redisBefore = await redisSnapshot(env.redis.admin);
    const result = await load(env.seconds);
    const cpuAfter = processCpuUs(pid);
    const redisAfter = await redisSnapshot(env.redis.admin);

    const requests = Math.max(result.requests, 1);
    return {
      caseId: c.id,
      round,
      rps: result.requests / result.seconds,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      nodeCpuUs: (cpuAfter - cpuBefore) / requests,
      redis: redisPer(redisBefore, redisAfter, requests),
      refusedShare: result.non2xx / requests,
      errors: result.errors,
    };
  } finally {
    await stopChild(server);
  }
}

export interface CaseFailure {
  caseId: string;
  round: number;
  message: string;
}

/**
 * Interleaved rounds (round 1: every case, round 2: every case…), so slow drifts of a shared machine
 * hit every case alike. A case that fails is reported and skipped, the others still run.
 */
export async function runHttpRounds(cases: readonly HttpCase[], rounds: number, env: HttpBenchEnv): Promise<{ samples: HttpSample[]; failures: CaseFailure[] }> {
  const samples: HttpSample[] = [];
  const failures: CaseFailure[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const [index, c] of cases.entries()) {
      let s: HttpSample;
      try {
        s = await measureCase(c, round, env);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push({ caseId: c.id, round, message });
        console.error(`[round ${round}/${rounds}, ${index + 1}/${cases.length}] ${c.id}: FAILED: ${message}`);
        continue;
      }
      samples.push(s);
      const redis = c.usesRedis ? `, Redis ${s.redis.cpuUs.toFixed(1)} µs ${s.redis.scriptCalls.toFixed(2)} scripts` : '';
      const refused = s.refusedShare > 0 ? `, ${(s.refusedShare * 100).toFixed(1)} % refused` : '';
      const errors = s.errors > 0 ? `, ${s.errors} socket errors` : '';
      console.error(
        `[round ${round}/${rounds}, ${index + 1}/${cases.length}] ${c.id}: ${Math.round(s.rps)} req/s, Node ${s.nodeCpuUs.toFixed(1)} µs/req${redis}${refused}${errors}`,
      );
    }
  }
  return { samples, failures };
}
