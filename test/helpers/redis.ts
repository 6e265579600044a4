/**
 * How tests reach Redis.
 *
 * Shared servers (started once per run by global-setup.ts):
 * - `redisUrl()` / `newRedisClient()`: the standalone server, on THIS WORKER'S OWN logical DB.
 *   Test files run in parallel worker processes; each worker (VITEST_POOL_ID n) gets DB n, so a
 *   file may FLUSHDB its DB without disturbing files running in other workers. The URL carries the
 *   DB (`redis://127.0.0.1:port/n`), so child processes given the URL land in the same DB.
 * - `clusterNodes()` / `newClusterClient()`: the cluster. A cluster has only DB 0 and is shared by
 *   all workers: use unique ids (`uniqueId()` in stores.ts), never FLUSHALL.
 * - Server-wide state is shared by every worker on either server: `FUNCTION FLUSH`, `SCRIPT FLUSH`,
 *   `CONFIG SET`, `DEBUG SLEEP`, `CLIENT KILL`, signals. Tests that do those start their own server
 *   with `startRedisServer()` / `startRedisCluster()` and stop it in `afterAll`.
 *
 * Clients fail fast (`maxRetriesPerRequest: 1`, 2 s connect timeout); close them (`quit()` /
 * `disconnect()`) when done.
 */
import { Cluster, Redis } from 'ioredis';
import { sharedClusterNodes, sharedRedisUrl } from './shared-servers.js';

export { startRedisServer, type RedisServerHandle, type StartRedisServerOptions } from './redis-server.js';
export { startRedisCluster, type RedisClusterHandle, type StartRedisClusterOptions } from './redis-cluster.js';

const CONNECT_TIMEOUT_MS = 2_000;
const retryStrategy = (attempt: number): number => Math.min(attempt * 50, 500);

/**
 * This worker's logical DB on the shared standalone server: VITEST_POOL_ID (1…maxWorkers).
 * DB 0 is never used: behind `REDIS_URL` it may hold someone's data.
 */
export function redisDb(): number {
  const { databases } = sharedRedisUrl();
  const worker = Number(process.env.VITEST_POOL_ID ?? '1');
  if (!Number.isInteger(worker) || worker < 1 || worker > databases - 1) {
    throw new Error(
      `worker VITEST_POOL_ID=${process.env.VITEST_POOL_ID} needs logical DB ${worker} but the shared Redis has ` +
        `${databases} databases (DB 0 is not used): run vitest with --maxWorkers ≤ ${databases - 1} or raise \`databases\``,
    );
  }
  return worker;
}

/** URL of the shared standalone server, on this worker's DB (`redis://127.0.0.1:port/n`). */
export function redisUrl(): string {
  const url = new URL(sharedRedisUrl().url);
  url.pathname = `/${redisDb()}`;
  return url.toString();
}

/** Masters of the shared cluster. */
export function clusterNodes(): { host: string; port: number }[] {
  return sharedClusterNodes();
}

/** A new ioredis client on `redisUrl()` (this worker's DB). */
export function newRedisClient(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy });
}

/** A new ioredis Cluster client on `clusterNodes()`. */
export function newClusterClient(): Cluster {
  return new Cluster(clusterNodes(), {
    redisOptions: { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS },
    clusterRetryStrategy: retryStrategy,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
  });
}

/** Calls of one command on the server so far (INFO commandstats), e.g. `lrange`, `function|load`, `evalsha`. */
export async function commandCalls(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats');
  const match = new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}
