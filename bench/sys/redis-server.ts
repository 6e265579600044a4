/**
 * The throwaway redis-server every bench talks to: 127.0.0.1 only, free port, no persistence
 * (the test harness's startRedisServer), pinned to the load generator's CPU, stopped by PID.
 */
import { Redis } from 'ioredis';
import { startRedisServer } from '../../test/helpers/redis.js';
import { onCleanup, pinProcess } from './processes.js';

export interface BenchRedis {
  url: string;
  /** Admin connection (INFO, FLUSHALL), separate from any client under test. */
  admin: Redis;
  version: string;
}

export async function startBenchRedis(cpu: number | undefined): Promise<BenchRedis> {
  const server = await startRedisServer();
  onCleanup(() => server.stop());
  if (cpu !== undefined) pinProcess(server.pid, cpu);
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  onCleanup(async () => void admin.disconnect());
  const info = await admin.info('server');
  const version = /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown';
  return { url: server.url, admin, version };
}
