/**
 * The one place that tells which Redis client RedisStore was given, by its shape alone (ratelock
 * imports none of them, so an app pulls in only the client it uses), and builds the store's view
 * of it (client.ts): ioredis, node-redis (createClient / createCluster) or Valkey GLIDE (GlideClient /
 * GlideClusterClient). Order matters only where shapes could overlap: a node-redis cluster also has
 * `sendCommand`, so clusters are recognised before clients.
 */
import type { StoreClient } from '../client.js';
import { glideClient, glideCluster, isGlideClient, isGlideCluster, type GlideClientLike, type GlideClusterClientLike } from './glide.js';
import { ioredisClient, isIoredis, type IoredisLike } from './ioredis.js';
import {
  isNodeRedisClient,
  isNodeRedisCluster,
  nodeRedisClient,
  nodeRedisCluster,
  type NodeRedisClientLike,
  type NodeRedisClusterLike,
} from './node-redis.js';

export type { IoredisLike } from './ioredis.js';
export type { NodeRedisClientLike, NodeRedisClusterLike } from './node-redis.js';
export type { GlideClientLike, GlideClusterClientLike } from './glide.js';

/**
 * A client RedisStore accepts, as it is: an ioredis `Redis` or `Cluster` (5, 6), a node-redis
 * client or cluster (`createClient()` / `createCluster()`, 5, 6; RESP2 or RESP3), a Valkey GLIDE
 * `GlideClient` or `GlideClusterClient` (2).
 */
export type RedisClientLike = IoredisLike | NodeRedisClientLike | NodeRedisClusterLike | GlideClientLike | GlideClusterClientLike;

/** The store's view of `client`, or undefined when it is none of the supported clients. */
export function detectClient(client: unknown): StoreClient | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  if (isIoredis(client)) return ioredisClient(client);
  if (isNodeRedisCluster(client)) return nodeRedisCluster(client);
  if (isNodeRedisClient(client)) return nodeRedisClient(client);
  if (isGlideCluster(client)) return glideCluster(client);
  if (isGlideClient(client)) return glideClient(client);
  return undefined;
}
