/**
 * HTTP load: wrk when it is installed (pinned to the load CPU), else autocannon in this process.
 * Both send the same requests: `GET /` with `x-api-key: k<i>`, i cycling over the case's keys.
 */
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { exited, spawnTracked } from '../sys/processes.js';
import { HEADER } from './cases.js';

export interface LoadResult {
  requests: number;
  seconds: number;
  /** Responses that were not 2xx/3xx (the 429s of a block path). */
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadOptions {
  port: number;
  keyCount: number;
  seconds: number;
  connections: number;
  /** CPU of the load generator, when pinning. */
  cpu: number | undefined;
}

export type LoadGenerator = (options: LoadOptions) => Promise<LoadResult>;

const WRK_SCRIPT = fileURLToPath(new URL('./wrk-keys.lua', import.meta.url));

export const wrkLoad: LoadGenerator = async ({ port, keyCount, seconds, connections, cpu }) => {
  // One thread: it shares its CPU with redis-server, more threads would only contend.
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', WRK_SCRIPT, `http://127.0.0.1:${port}/`, '--', String(keyCount)];
  const child = spawnTracked('wrk', args, cpu, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await exited(child);
  const line = /^BENCH_RESULT (.+)$/m.exec(output)?.[1];
  if (child.exitCode !== 0 || !line) throw new Error(`wrk failed (exit ${child.exitCode}):\n${output}`);
  const r = JSON.parse(line) as { requests: number; durationUs: number; non2xx: number; errors: number; p50Us: number; p99Us: number };
  return { requests: r.requests, seconds: r.durationUs / 1e6, non2xx: r.non2xx, errors: r.errors, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000 };
};

export const autocannonLoad: LoadGenerator = async ({ port, keyCount, seconds, connections }) => {
  let next = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => {
          const key = `k${next}`;
          next = (next + 1) % keyCount;
          return { ...req, headers: { ...req.headers, [HEADER]: key } };
        },
      },
    ],
  });
  return {
    requests: result.requests.total,
    seconds: result.duration,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
};
