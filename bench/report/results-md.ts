/** results.md: the machine, the settings, the command to reproduce, then every table. */
import type { BenchConfig } from '../config.js';
import type { CoreSample } from '../core/results.js';
import type { Machine } from '../sys/machine.js';
import type { CaseFailure } from '../http/measure.js';
import type { HttpRow } from './http-summary.js';
import { coreLimiterTable, coreLockTable, httpTable } from './tables.js';

export interface RunInfo {
  config: BenchConfig;
  machine: Machine;
  redisVersion: string;
  loadGenerator: string;
  revision: string;
  pinned: boolean;
  startedAt: Date;
  minutes: number;
}

export function settingsLine(info: RunInfo): string {
  const { config } = info;
  return `${config.connections} connections, ${config.rounds} interleaved round(s) of ${config.seconds} s per case, medians`;
}

export function resultsMarkdown(
  info: RunInfo,
  httpRows: readonly HttpRow[] | undefined,
  failures: readonly CaseFailure[],
  core: readonly CoreSample[] | undefined,
): string {
  const { config, machine } = info;
  const pinning = info.pinned
    ? 'Node server (and the core bench process) alone on CPU 0; the load generator and `redis-server` on CPU 1 (`taskset`).'
    : '**Not pinned** (needs `taskset` and ≥ 2 CPUs): figures are less comparable.';
  const out: string[] = [
    `# ratelock benchmarks${config.quick ? ' (quick run)' : ''}`,
    '',
    `Measured ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${config.command}\` (${info.minutes.toFixed(1)} min).`,
    '',
    `- **Machine:** ${machine.cpus} CPUs (${machine.cpuModel}), Linux ${machine.kernel}`,
    `- **Software:** Node ${machine.node}, Redis ${info.redisVersion} (throwaway \`redis-server\` on 127.0.0.1, no persistence), load: ${info.loadGenerator}`,
    `- **Pinning:** ${pinning}`,
    `- **ratelock:** the package built from ${info.revision} (dist/, as users run it)`,
    `- **Reproduce:** \`npm install && ${config.command}\` (needs \`redis-server\`; wrk from \`apt-get install -y wrk\`, else autocannon is used).`,
    '',
  ];
  if (httpRows) {
    out.push(
      '## HTTP',
      '',
      `\`GET /\` answering \`ok\`, ${settingsLine(info)}. Every request carries an \`x-api-key\` header and every limiter is keyed by it: ` +
        '"1 key" = one hot key, "10,000 keys" = the header cycles through 10 000 values. allow = a limit never reached (10⁹ per 1 s window); ' +
        'block = limit 1 per hour with every key spent before the measurement, so each measured request is a 429. ' +
        'Clients: ioredis at its defaults unless "auto-pipelining" (`enableAutoPipelining: true`). Peers at their documented setups.',
      '',
      '![Throughput as a share of the bare framework](chart.svg)',
      '',
      httpTable(httpRows, 'express'),
      '',
      httpTable(httpRows, 'koa'),
      '',
      ...failures.map((f) => `- **FAILED** \`${f.caseId}\` (round ${f.round}): ${f.message.split('\n')[0]}`),
      '- **× bare**: req/s ÷ the bare framework\'s req/s in the same round (median over rounds). **Node CPU**: user + system time of the server process ' +
        '(`/proc/<pid>/stat`) ÷ requests; **added vs bare**: that minus the bare framework\'s, same round.',
      '- **Redis CPU**: `used_cpu_user + used_cpu_sys` (INFO) ÷ requests. **Redis scripts/req**: EVAL/EVALSHA/FCALL calls ÷ requests (one round trip each for ' +
        'every limiter here). **Redis cmds/req**: every command Redis executed (INFO commandstats), including those run inside scripts.',
      '',
    );
  }
  if (core) {
    out.push(
      '## Core, without HTTP',
      '',
      `One Node process on CPU 0 calling the library directly, ${config.rounds} interleaved round(s) of ${config.coreSeconds} s per scenario, medians. ` +
        'ioredis clients at their defaults. Limiters: allow path (10⁹ per 1 s window); keys round-robin over all callers. Node CPU from `process.cpuUsage()`. ' +
        'At concurrency 1 every call waits a full round trip, so both CPUs go idle between calls and the CPU figures include waking them (costly on a VM).',
      '',
      coreLimiterTable(core),
      '',
      'Locks: each caller acquires and releases its own key (a free lock), library defaults (ratelock: 30 s lease; redis-semaphore: 10 s lock timeout, refresh timer).',
      '',
      coreLockTable(core),
      '',
    );
  }
  return out.join('\n');
}
