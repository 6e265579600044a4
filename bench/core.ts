/**
 * `npm run bench:core`: only the core bench (no HTTP): limiter decisions/s at concurrency 1, 64, 256
 * over 1 hot key and 10 000 keys, ratelock vs rate-limiter-flexible, and lock acquire + release vs
 * redis-semaphore. Prints its tables; `npm run bench` runs it too and keeps them in results.md.
 * Honours BENCH_ROUNDS, BENCH_CORE_SECONDS and `--quick` (see config.ts).
 */
import { loadConfig } from './config.js';
import { runCoreBench } from './core/run-core.js';
import { coreLimiterTable, coreLockTable } from './report/tables.js';
import { openSession } from './session.js';
import { cleanupAll } from './sys/processes.js';
import { buildLibrary } from './library.js';

const config = loadConfig(process.argv.slice(2));
buildLibrary(); // measured: dist/, as users run it (see library.ts)
try {
  const session = await openSession();
  const samples = await runCoreBench(config, session.redis.url, session.serverCpu);
  console.log(`Node ${session.machine.node}, Redis ${session.redis.version}, ${session.machine.cpus} CPUs (${session.machine.cpuModel}), pinned: ${session.pinned}`);
  console.log(`${config.rounds} round(s) of ${config.coreSeconds} s per scenario, medians\n`);
  console.log(coreLimiterTable(samples));
  console.log('');
  console.log(coreLockTable(samples));
} finally {
  await cleanupAll();
}
