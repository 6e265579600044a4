/** Driver side of the core bench: runs the worker pinned on the server CPU and collects its samples. */
import type { BenchConfig } from '../config.js';
import { exited } from '../sys/processes.js';
import { spawnNodeEntry } from '../sys/node-child.js';
import { RESULT_PREFIX, type CoreSample, type CoreWorkerConfig } from './results.js';

const WORKER_SCRIPT = new URL('./worker.ts', import.meta.url);

export async function runCoreBench(config: BenchConfig, redisUrl: string, cpu: number | undefined): Promise<CoreSample[]> {
  const workerConfig: CoreWorkerConfig = {
    redisUrl,
    rounds: config.rounds,
    seconds: config.coreSeconds,
    concurrency: config.coreConcurrency,
    keyCounts: config.coreKeyCounts,
    lockConcurrency: config.lockConcurrency,
  };
  const worker = spawnNodeEntry(WORKER_SCRIPT, [JSON.stringify(workerConfig)], cpu, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  worker.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await exited(worker);
  const line = output.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (worker.exitCode !== 0 || !line) throw new Error(`core bench worker failed (exit ${worker.exitCode ?? worker.signalCode})`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as CoreSample[];
}
