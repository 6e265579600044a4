/**
 * Vitest global setup: runs once per `vitest run`, before any worker starts.
 *
 * - Standalone: uses `REDIS_URL` if set (a disposable server: tests FLUSHDB logical DBs 1…n on
 *   it), else starts one throwaway redis-server with 256 logical DBs (one per worker, see redis.ts).
 * - Cluster: uses `REDIS_CLUSTER_NODES=host:port,…` (its masters) if set, else starts a throwaway
 *   3-master cluster (needs redis-server and redis-cli on PATH).
 *
 * Their addresses are published as environment variables (shared-servers.ts) and the servers are
 * stopped in teardown. If vitest itself is killed, the process guard stops them.
 */
import { Redis } from 'ioredis';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';
import { parseNodes, publishSharedServers, withdrawSharedServers } from './shared-servers.js';

/** Plenty for one DB per worker even on many-core machines (an empty DB costs nothing). */
const OWN_SERVER_DATABASES = 256;
/** What a server that refuses `CONFIG GET` (e.g. a managed one) is assumed to have: Redis's default. */
const DEFAULT_DATABASES = 16;

export default async function setup(): Promise<() => Promise<void>> {
  let standalone: RedisServerHandle | undefined;
  let cluster: RedisClusterHandle | undefined;
  const teardown = async (): Promise<void> => {
    withdrawSharedServers();
    await Promise.all([standalone?.stop(), cluster?.stop()]);
  };

  // allSettled, not all: when one start fails, the other must have finished before teardown runs.
  const [redis, clusterNodes] = await Promise.allSettled([
    (async () => {
      const external = process.env.REDIS_URL;
      if (external) return { url: external, databases: await countDatabases(external) };
      standalone = await startRedisServer({ args: ['--databases', String(OWN_SERVER_DATABASES)] });
      return { url: standalone.url, databases: OWN_SERVER_DATABASES };
    })(),
    (async () => {
      const external = process.env.REDIS_CLUSTER_NODES;
      if (external) return parseNodes(external, 'REDIS_CLUSTER_NODES');
      const started = Date.now();
      cluster = await startRedisCluster();
      console.log(`[ratelock tests] throwaway 3-master Redis Cluster ready in ${Date.now() - started} ms`);
      return cluster.masters.map((node) => ({ host: '127.0.0.1', port: node.port }));
    })(),
  ]);
  if (redis.status === 'rejected' || clusterNodes.status === 'rejected') {
    await teardown();
    const errors = [redis, clusterNodes].flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'the shared test Redis servers failed to start');
  }
  publishSharedServers({ redisUrl: redis.value.url, databases: redis.value.databases, clusterNodes: clusterNodes.value });
  return teardown;
}

async function countDatabases(url: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 5_000, lazyConnect: true });
  try {
    await client.connect();
    const reply = (await client.config('GET', 'databases').catch(() => [])) as string[];
    const databases = Number(reply[1]);
    return Number.isInteger(databases) && databases > 0 ? databases : DEFAULT_DATABASES;
  } catch (err) {
    throw new Error(`REDIS_URL=${url} is not reachable`, { cause: err });
  } finally {
    client.disconnect();
  }
}
