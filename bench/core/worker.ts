/**
 * The core bench's measuring process, pinned alone on the server CPU by the driver:
 * `worker.ts <config json>`. Interleaved rounds over every scenario; Node CPU from
 * process.cpuUsage(), Redis CPU and commands from INFO. Prints one `CORE_RESULT <json>` line.
 */
import { Redis } from 'ioredis';
import { redisPer, redisSnapshot } from '../sys/redis-stats.js';
import { drive, type Operation } from './drive.js';
import { LIMITER_IMPLS, LOCK_IMPLS, RESULT_PREFIX, type CoreSample, type CoreWorkerConfig, type LimiterImpl, type LockImpl } from './results.js';
import { createSubjects } from './scenarios.js';

const config = JSON.parse(process.argv[2] ?? '') as CoreWorkerConfig;
const WARMUP_SECONDS = Math.min(0.3, config.seconds / 3);
// Before round 1, every library runs this long at concurrency 64: JIT, script/Function loading and
// connection buffers warmed, so the first scenario measured is not also the first one run.
const INITIAL_WARMUP_SECONDS = 0.5;
const WARMUP_CONCURRENCY = 64;

interface Scenario {
  kind: CoreSample['kind'];
  impl: LimiterImpl | LockImpl;
  keyCount: number;
  concurrency: number;
  op: () => Operation;
}

const subjects = await createSubjects(config.redisUrl);
const admin = new Redis(config.redisUrl);
const scenarios: Scenario[] = [
  ...LIMITER_IMPLS.flatMap((impl) =>
    config.keyCounts.flatMap((keyCount) =>
      config.concurrency.map((concurrency): Scenario => ({ kind: 'limiter', impl, keyCount, concurrency, op: () => subjects.limiter(impl, keyCount) })),
    ),
  ),
  ...LOCK_IMPLS.flatMap((impl) =>
    config.lockConcurrency.map((concurrency): Scenario => ({ kind: 'lock', impl, keyCount: concurrency, concurrency, op: () => subjects.lock(impl, concurrency) })),
  ),
];

const samples: CoreSample[] = [];
try {
  const warmups = [
    ...LIMITER_IMPLS.map((impl) => subjects.limiter(impl, Math.max(...config.keyCounts))),
    ...LOCK_IMPLS.map((impl) => subjects.lock(impl, WARMUP_CONCURRENCY)),
  ];
  for (const op of warmups) await drive(op, WARMUP_CONCURRENCY, INITIAL_WARMUP_SECONDS);
  for (let round = 1; round <= config.rounds; round++) {
    for (const s of scenarios) {
      await admin.flushall();
      const op = s.op();
      await drive(op, s.concurrency, WARMUP_SECONDS);
      const redisBefore = await redisSnapshot(admin);
      const cpuBefore = process.cpuUsage();
      const result = await drive(op, s.concurrency, config.seconds);
      const cpu = process.cpuUsage(cpuBefore);
      const redisAfter = await redisSnapshot(admin);
      const ops = Math.max(result.ops, 1);
      const sample: CoreSample = {
        kind: s.kind,
        impl: s.impl,
        keyCount: s.keyCount,
        concurrency: s.concurrency,
        round,
        opsPerSecond: result.ops / result.seconds,
        nodeCpuUs: (cpu.user + cpu.system) / ops,
        redis: redisPer(redisBefore, redisAfter, ops),
        failures: result.failures,
      };
      samples.push(sample);
      console.error(
        `[core round ${round}/${config.rounds}] ${s.impl}, ${s.kind === 'limiter' ? `${s.keyCount} keys, ` : ''}concurrency ${s.concurrency}: ` +
          `${Math.round(sample.opsPerSecond)}/s, Node ${sample.nodeCpuUs.toFixed(1)} µs${sample.failures ? `, ${sample.failures} failed` : ''}`,
      );
    }
  }
} finally {
  subjects.close();
  admin.disconnect();
}
console.log(RESULT_PREFIX + JSON.stringify(samples));
