/** The Markdown tables of results.md (and of the console). */
import { LIMITER_LABEL, LOCK_LABEL, type CoreSample, type LimiterImpl, type LockImpl } from '../core/results.js';
import type { Framework } from '../http/cases.js';
import type { HttpRow } from './http-summary.js';
import { fixed, median, thousands } from './stats.js';

const FRAMEWORK_TITLE: Record<Framework, string> = { express: 'Express 5', koa: 'Koa 3' };

export function httpTable(rows: readonly HttpRow[], framework: Framework): string {
  const lines = [
    `| ${FRAMEWORK_TITLE[framework]} case | req/s | × bare | p50 ms | p99 ms | Node CPU µs/req | added vs bare µs | Redis CPU µs/req | Redis scripts/req | Redis cmds/req | 429 share |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows.filter((row) => row.c.framework === framework)) {
    const bare = r.c.impl === 'bare';
    const redis = (text: string) => (r.c.usesRedis ? text : '–');
    const flag = !Number.isFinite(r.rps) ? ' (**failed**, see below)' : r.errors > 0 ? ` (${r.errors} socket errors)` : '';
    lines.push(
      `| ${r.c.label}${flag} | ${thousands(r.rps)} | ${fixed(r.ratio, 2)} | ${fixed(r.p50Ms, 2)} | ${fixed(r.p99Ms, 2)} | ${fixed(r.nodeCpuUs, 1)} | ` +
        `${bare ? '–' : signed(r.addedUs)} | ${redis(fixed(r.redisCpuUs, 1))} | ${redis(fixed(r.scriptCalls, 3))} | ${redis(fixed(r.redisCommands, 2))} | ${percent(r.refusedShare)} |`,
    );
  }
  return lines.join('\n');
}

const signed = (value: number): string => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(1)}` : '–');
const percent = (share: number): string => (!Number.isFinite(share) ? '–' : share === 0 ? '0 %' : `${(share * 100).toFixed(share > 0.999 && share < 1 ? 2 : 1)} %`);

interface CoreRow {
  impl: string;
  keyCount: number;
  concurrency: number;
  opsPerSecond: number;
  nodeCpuUs: number;
  redisCpuUs: number;
  redisCommands: number;
  failures: number;
}

/** Rows of one kind, grouped by scenario; ordered by keys, then concurrency, so the libraries compared sit together. */
function coreRows(samples: readonly CoreSample[], kind: CoreSample['kind']): CoreRow[] {
  const groups = new Map<string, CoreSample[]>();
  for (const s of samples.filter((x) => x.kind === kind)) {
    const key = `${s.impl}|${s.keyCount}|${s.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const rows = [...groups.values()].map((group) => ({
    impl: group[0]!.impl,
    keyCount: group[0]!.keyCount,
    concurrency: group[0]!.concurrency,
    opsPerSecond: median(group.map((s) => s.opsPerSecond)),
    nodeCpuUs: median(group.map((s) => s.nodeCpuUs)),
    redisCpuUs: median(group.map((s) => s.redis.cpuUs)),
    redisCommands: median(group.map((s) => s.redis.commands)),
    failures: group.reduce((sum, s) => sum + s.failures, 0),
  }));
  return rows.sort((a, b) => a.keyCount - b.keyCount || a.concurrency - b.concurrency);
}

export function coreLimiterTable(samples: readonly CoreSample[]): string {
  const rows = coreRows(samples, 'limiter');
  const rlf = (r: CoreRow) => rows.find((x) => x.impl === 'rlf-redis' && x.keyCount === r.keyCount && x.concurrency === r.concurrency);
  const lines = [
    '| limiter | keys | concurrency | decisions/s | × rate-limiter-flexible | Node CPU µs/decision | Redis CPU µs/decision | Redis cmds/decision |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const memory = r.impl === 'ratelock-memory';
    const ratio = memory ? '–' : r.impl === 'rlf-redis' ? '1.00' : fixed(r.opsPerSecond / (rlf(r)?.opsPerSecond ?? NaN), 2);
    const flag = r.failures > 0 ? ` (${r.failures} failed)` : '';
    lines.push(
      `| ${LIMITER_LABEL[r.impl as LimiterImpl]}${flag} | ${thousands(r.keyCount)} | ${r.concurrency} | ${thousands(r.opsPerSecond)} | ${ratio} | ` +
        `${fixed(r.nodeCpuUs, 1)} | ${memory ? '–' : fixed(r.redisCpuUs, 1)} | ${memory ? '–' : fixed(r.redisCommands, 2)} |`,
    );
  }
  return lines.join('\n');
}

export function coreLockTable(samples: readonly CoreSample[]): string {
  const lines = [
    '| lock | concurrency (1 key each) | acquire + release /s | Node CPU µs/pair | Redis CPU µs/pair | Redis cmds/pair |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of coreRows(samples, 'lock')) {
    const flag = r.failures > 0 ? ` (${r.failures} failed)` : '';
    lines.push(
      `| ${LOCK_LABEL[r.impl as LockImpl]}${flag} | ${r.concurrency} | ${thousands(r.opsPerSecond)} | ${fixed(r.nodeCpuUs, 1)} | ${fixed(r.redisCpuUs, 1)} | ${fixed(r.redisCommands, 2)} |`,
    );
  }
  return lines.join('\n');
}
