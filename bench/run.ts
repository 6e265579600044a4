/**
 * `npm run bench`: HTTP throughput of ratelock against the bare frameworks and the peer libraries,
 * measured in ONE run (same machine, same Redis, interleaved rounds, medians), plus core decisions/s
 * without HTTP. Starts its own throwaway redis-server on 127.0.0.1 (or uses REDIS_URL).
 *
 * Options (env): BENCH_SECONDS (default 3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (50), BENCH_CASES (comma list).
 * Writes the tables to stdout and to bench/results.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/helpers/redis.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ALL_CASES = [
  'express-bare',
  'express-ratelock-memory',
  'express-ratelock-redis',
  'express-erl-redis',
  'express-rlf-redis',
  'koa-bare',
  'koa-ratelock-redis',
  'koa-ratelimit-redis',
];
const CASES = process.env.BENCH_CASES ? process.env.BENCH_CASES.split(',') : ALL_CASES;
const BARE: Record<string, string> = { express: 'express-bare', koa: 'koa-bare' };
const CLK_TCK = 100; // /proc/<pid>/stat reports CPU time in clock ticks (100 Hz on Linux)

interface Sample {
  rps: number;
  p99: number;
  serverCpuUs: number;
  redisCpuUs: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000; // utime + stime
}

async function redisCpuMs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000;
}

async function startServer(caseName: string, redisUrl: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const script = fileURLToPath(new URL('./servers.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', fileURLToPath(new URL('../examples/support/register-lua-text.mjs', import.meta.url)), script, caseName, String(port), redisUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${caseName} did not start within 20 s`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`${caseName} exited with ${code}`)));
  });
  return { child, port };
}

async function measure(caseName: string, redisUrl: string, redis: Redis): Promise<Sample> {
  const { child, port } = await startServer(caseName, redisUrl);
  try {
    const url = `http://127.0.0.1:${port}/`;
    await autocannon({ url, connections: CONNECTIONS, duration: 1 }); // warm-up (JIT, connections, script load)
    const cpuBefore = processCpuMs(child.pid!);
    const redisBefore = await redisCpuMs(redis);
    const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS });
    const requests = result.requests.total;
    const non2xx = result.non2xx + result.errors;
    if (non2xx > 0) throw new Error(`${caseName}: ${non2xx} non-2xx responses or errors`);
    return {
      rps: result.requests.average,
      p99: result.latency.p99,
      serverCpuUs: ((processCpuMs(child.pid!) - cpuBefore) * 1000) / requests,
      redisCpuUs: caseName.endsWith('redis') ? (((await redisCpuMs(redis)) - redisBefore) * 1000) / requests : 0,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const server = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? server!.url;
  const redis = new Redis(redisUrl);
  const samples = new Map<string, Sample[]>(CASES.map((name) => [name, []]));
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const caseName of CASES) {
        await redis.flushdb();
        const sample = await measure(caseName, redisUrl, redis);
        samples.get(caseName)!.push(sample);
        console.error(`round ${round}/${ROUNDS} ${caseName}: ${Math.round(sample.rps)} req/s`);
      }
    }
  } finally {
    redis.disconnect();
    await server?.stop();
  }

  const rows = CASES.map((name) => {
    const runs = samples.get(name)!;
    const rps = median(runs.map((s) => s.rps));
    const bare = samples.get(BARE[name.split('-')[0]!]!);
    const ratio = bare ? rps / median(bare.map((s) => s.rps)) : NaN;
    return `| ${name} | ${Math.round(rps)} | ${ratio.toFixed(2)} | ${median(runs.map((s) => s.p99))} | ${median(runs.map((s) => s.serverCpuUs)).toFixed(0)} | ${name.endsWith('redis') ? median(runs.map((s) => s.redisCpuUs)).toFixed(1) : '–'} |`;
  });
  const table = [
    `HTTP, ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} interleaved rounds, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| case | req/s | × bare framework | p99 ms | server CPU µs/req | Redis CPU µs/req |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
  console.log(table);
  writeFileSync(new URL('./results.md', import.meta.url), `${table}\n`);
}

await main();
