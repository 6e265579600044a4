/**
 * `npm run bench` (full, < 15 min) and `npm run bench:quick` (a subset, < 2 min): HTTP throughput
 * and cost of ratelock against the bare frameworks, the peer libraries and a hand-written floor, then
 * the core bench without HTTP; all against one throwaway redis-server, in one run. Writes
 * results.md, chart.svg and the raw per-round figures in results.json (full: bench/, quick:
 * bench/quick/). Settings: see config.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { estimatedMinutes, loadConfig } from './config.js';
import { runCoreBench } from './core/run-core.js';
import type { CoreSample } from './core/results.js';
import { autocannonLoad, wrkLoad } from './http/load.js';
import { runHttpRounds, type CaseFailure, type HttpSample } from './http/measure.js';
import { shareOfBareChart } from './report/chart.js';
import { summarizeHttp, type HttpRow } from './report/http-summary.js';
import { resultsMarkdown, settingsLine, type RunInfo } from './report/results-md.js';
import { openSession } from './session.js';
import { sourceRevision, wrkVersion } from './sys/machine.js';
import { cleanupAll } from './sys/processes.js';
import { buildLibrary } from './library.js';

const config = loadConfig(process.argv.slice(2));
const startedAt = new Date();
// Read at the start: src/ may change while the bench runs.
const revision = sourceRevision();
const wrk = config.load === 'autocannon' ? undefined : wrkVersion();
if (config.load === 'wrk' && !wrk) throw new Error('BENCH_LOAD=wrk but wrk is not installed (apt-get install -y wrk)');
const loadGenerator = wrk ? `wrk ${wrk}, 1 thread` : config.load === 'autocannon' ? 'autocannon' : 'autocannon (wrk not installed: apt-get install -y wrk)';

console.error(`${config.command}: about ${estimatedMinutes(config).toFixed(0)} min`);
buildLibrary(); // measured: dist/, as users run it (see library.ts)
try {
  const session = await openSession();
  let httpRows: HttpRow[] | undefined;
  let core: CoreSample[] | undefined;
  let httpSamples: HttpSample[] = [];
  let httpFailures: CaseFailure[] = [];
  if (config.http) {
    console.error(`HTTP: ${config.cases.length} cases × ${config.rounds} round(s), load: ${loadGenerator}`);
    const { samples, failures } = await runHttpRounds(config.cases, config.rounds, {
      redis: session.redis,
      load: wrk ? wrkLoad : autocannonLoad,
      serverCpu: session.serverCpu,
      loadCpu: session.loadCpu,
      seconds: config.seconds,
      warmupSeconds: config.warmupSeconds,
      connections: config.connections,
      serverNodeFlags: config.serverNodeFlags,
    });
    httpRows = summarizeHttp(config.cases, samples);
    httpSamples = samples;
    httpFailures = failures;
  }
  if (config.core) {
    console.error(`core: ${config.rounds} round(s) of ${config.coreSeconds} s per scenario`);
    core = await runCoreBench(config, session.redis.url, session.serverCpu);
  }

  const info: RunInfo = {
    config,
    machine: session.machine,
    redisVersion: session.redis.version,
    loadGenerator,
    revision,
    pinned: session.pinned,
    startedAt,
    minutes: (Date.now() - startedAt.getTime()) / 60_000,
  };
  const markdown = resultsMarkdown(info, httpRows, httpFailures, core);
  mkdirSync(config.outDir, { recursive: true });
  writeFileSync(join(config.outDir, 'results.md'), markdown);
  // Every round's raw figures, for a closer look at the spread behind the medians.
  writeFileSync(join(config.outDir, 'results.json'), `${JSON.stringify({ info, http: httpSamples, failures: httpFailures, core: core ?? [] }, null, 1)}\n`);
  if (httpRows) {
    const subtitle = [
      `${startedAt.toISOString().slice(0, 10)} · ${session.machine.cpus} CPUs (${session.machine.cpuModel}) · Node ${session.machine.node} · Redis ${session.redis.version} · ${loadGenerator}`,
      `${settingsLine(info)} · ioredis clients at their defaults unless "auto-pipelining"`,
    ];
    writeFileSync(join(config.outDir, 'chart.svg'), shareOfBareChart(httpRows, subtitle));
  }
  console.log(markdown);
  console.error(`wrote ${join(config.outDir, 'results.md')}, results.json${httpRows ? ', chart.svg' : ''} in ${info.minutes.toFixed(1)} min`);
  if (httpFailures.length > 0) {
    console.error(`${httpFailures.length} HTTP measurement(s) failed: ${[...new Set(httpFailures.map((f) => f.caseId))].join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  await cleanupAll();
}
