/**
 * Bench settings: `--quick` (npm run bench:quick, < 2 min) or the full run (npm run bench, < 15 min),
 * each overridable by environment variables:
 *
 *   BENCH_CASES        HTTP cases to run: ids or globs, comma-separated (`koa-*,*-block-*`); bare cases are added
 *   BENCH_PARTS        `http`, `core` or `http,core` (default)
 *   BENCH_ROUNDS       interleaved rounds (HTTP and core)            full 3, quick 1
 *   BENCH_SECONDS      measured seconds per HTTP case and round       full 4, quick 2
 *   BENCH_WARMUP       warm-up seconds per HTTP case and round        1
 *   BENCH_CONNECTIONS  HTTP connections                               50
 *   BENCH_CORE_SECONDS measured seconds per core scenario and round   full 1, quick 0.5
 *   BENCH_NODE_FLAGS   extra node flags for the HTTP servers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 *   BENCH_OUT          directory of results.md, results.json, chart.svg  full: bench/, quick: bench/quick/
 *   BENCH_LOAD         `wrk` or `autocannon` (default: wrk when installed)
 */
import { fileURLToPath } from 'node:url';
import { selectCases, type HttpCase } from './http/cases.js';

export interface BenchConfig {
  quick: boolean;
  http: boolean;
  core: boolean;
  cases: HttpCase[];
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  coreSeconds: number;
  coreConcurrency: number[];
  coreKeyCounts: number[];
  lockConcurrency: number[];
  serverNodeFlags: string[];
  outDir: string;
  load: 'wrk' | 'autocannon' | undefined;
  /** The npm command that reproduces this run. */
  command: string;
}

function numberEnv(name: string, fallback: number, { integer = false } = {}): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}; got '${raw}'`);
  }
  return value;
}

export function loadConfig(argv: readonly string[]): BenchConfig {
  const quick = argv.includes('--quick');
  const parts = (process.env.BENCH_PARTS ?? 'http,core').split(',').map((p) => p.trim());
  const load = process.env.BENCH_LOAD;
  if (load !== undefined && load !== 'wrk' && load !== 'autocannon') throw new Error(`BENCH_LOAD must be wrk or autocannon; got '${load}'`);
  return {
    quick,
    http: parts.includes('http'),
    core: parts.includes('core'),
    cases: selectCases(process.env.BENCH_CASES, quick),
    rounds: numberEnv('BENCH_ROUNDS', quick ? 1 : 3, { integer: true }),
    // wrk takes whole seconds only.
    seconds: numberEnv('BENCH_SECONDS', quick ? 2 : 4, { integer: true }),
    warmupSeconds: numberEnv('BENCH_WARMUP', 1, { integer: true }),
    connections: numberEnv('BENCH_CONNECTIONS', 50, { integer: true }),
    coreSeconds: numberEnv('BENCH_CORE_SECONDS', quick ? 0.5 : 1),
    coreConcurrency: [1, 64, 256],
    coreKeyCounts: [1, 10_000],
    lockConcurrency: [1, 64],
    serverNodeFlags: (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
    outDir: process.env.BENCH_OUT ?? fileURLToPath(new URL(quick ? './quick/' : './', import.meta.url)),
    load,
    command: quick ? 'npm run bench:quick' : 'npm run bench',
  };
}

/** Rough duration: measured time plus ~1.5 s per HTTP case (server start, stop) and ~0.4 s per core scenario (warm-up). */
export function estimatedMinutes(c: BenchConfig): number {
  const http = c.http ? c.cases.length * c.rounds * (c.warmupSeconds + c.seconds + 1.5) : 0;
  const scenarios = c.coreConcurrency.length * c.coreKeyCounts.length * 3 + c.lockConcurrency.length * 2;
  const core = c.core ? scenarios * c.rounds * (c.coreSeconds + 0.4) + 5 : 0;
  return (http + core + 5) / 60;
}
