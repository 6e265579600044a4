/**
 * Every Redis client RedisStore accepts, made the way an app makes it, so that one suite runs on
 * each (`describe.each(clientKinds)`): ioredis 6, node-redis 6 (RESP2 and RESP3), node-redis 5
 * (the `redis5` alias) and Valkey GLIDE 2 — each standalone and as a Cluster client.
 *
 * `connectClient(kind, target, { defaults })`: a connected client of `kind` on a standalone URL or
 * on cluster nodes. Test settings fail fast (short connect timeouts and reconnect backoffs, as
 * redis.ts does for ioredis); `defaults: true` leaves the client at its library's defaults (the
 * fault tests: "as an app would create it"). `close()` closes it whatever state it is in.
 *
 * The clients are imported here, not by ratelock: RedisStore tells them apart by their shape.
 */
import { GlideClient, GlideClusterClient, Logger, ProtocolVersion } from '@valkey/valkey-glide';
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5';
import type { RedisClientLike } from '../../src/stores/redis/clients/index.js';

// GLIDE logs every error reply at WARN from its Rust core; the tests provoke many on purpose.
Logger.setLoggerConfig('off');

export const clientKinds = ['ioredis', 'node-redis', 'node-redis-resp3', 'node-redis5', 'glide'] as const;
export type ClientKind = (typeof clientKinds)[number];
/** The clients other than ioredis (the default everywhere), for suites that add them. */
export const otherClientKinds = clientKinds.filter((kind): kind is Exclude<ClientKind, 'ioredis'> => kind !== 'ioredis');

export const CLIENT_LABELS: Readonly<Record<ClientKind, string>> = {
  ioredis: 'ioredis 6',
  'node-redis': 'node-redis 6 (RESP2)',
  'node-redis-resp3': 'node-redis 6 (RESP3)',
  'node-redis5': 'node-redis 5',
  glide: 'Valkey GLIDE 2',
};

export type ClientTarget = { readonly url: string } | { readonly nodes: readonly { host: string; port: number }[] };

export interface ConnectOptions {
  /** Leave the client at its library's defaults (offline queue, retries, timeouts). */
  readonly defaults?: boolean;
  /** Do not wait for the connection (ioredis `lazyConnect`, node-redis `connect()` not awaited). */
  readonly lazy?: boolean;
}

export interface TestClient {
  readonly kind: ClientKind;
  /** The client as the library made it, to hand to RedisStore. */
  readonly client: RedisClientLike;
  /** Starts a `lazy` client's connection (node-redis `connect()`; ioredis and GLIDE connect by themselves). */
  connect(): Promise<void>;
  /** Closes the client, connected or not; never throws. */
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 2_000;
/** GLIDE's request timeout in test settings: long enough for a loaded CI machine. */
const GLIDE_TEST_REQUEST_TIMEOUT_MS = 5_000;
const backoff = (attempt: number): number => Math.min(attempt * 50, 500);
const ignore = (): undefined => undefined;

export async function connectClient(kind: ClientKind, target: ClientTarget, options: ConnectOptions = {}): Promise<TestClient> {
  const { defaults = false, lazy = false } = options;
  switch (kind) {
    case 'ioredis': {
      const client =
        'url' in target
          ? new Redis(target.url, defaults ? { lazyConnect: lazy } : { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy: backoff, lazyConnect: lazy })
          : new Cluster([...target.nodes], defaults ? { lazyConnect: lazy } : {
              redisOptions: { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS },
              clusterRetryStrategy: backoff,
              slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
              lazyConnect: lazy,
            });
      client.on('error', ignore);
      if ('nodes' in target) client.on('node error', ignore);
      if (!lazy) await readyOf(client);
      return {
        kind,
        client,
        connect: async () => {
          if (client.status === 'wait') await client.connect();
        },
        close: async () => void client.disconnect(),
      };
    }
    case 'node-redis':
    case 'node-redis-resp3':
    case 'node-redis5': {
      const RESP = kind === 'node-redis-resp3' ? 3 : 2;
      const v5 = kind === 'node-redis5';
      const socket = defaults ? {} : { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: backoff };
      // Both majors have the same methods; typed as v6 (their generic signatures do not unify).
      type NodeRedis = { connect(): Promise<unknown>; destroy(): void; on(event: string, listener: () => void): unknown };
      let client: NodeRedis;
      if ('url' in target) {
        const clientOptions = { url: target.url, RESP, socket } as const;
        client = (v5 ? createClient5(clientOptions) : createClient(clientOptions)) as unknown as NodeRedis;
      } else {
        const rootNodes = target.nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` }));
        const clusterOptions = { rootNodes, RESP, defaults: { socket } } as const;
        client = (v5 ? createCluster5(clusterOptions) : createCluster(clusterOptions)) as unknown as NodeRedis;
      }
      client.on('error', ignore);
      let connecting: Promise<unknown> | undefined;
      const connect = async (): Promise<void> => {
        connecting ??= client.connect();
        await connecting;
      };
      if (!lazy) await connect();
      return {
        kind,
        client: client as unknown as RedisClientLike,
        connect,
        close: async () => {
          await connecting?.catch(ignore);
          try {
            client.destroy();
          } catch {
            // already closed
          }
        },
      };
    }
    case 'glide': {
      const base = {
        protocol: ProtocolVersion.RESP3,
        ...(defaults ? {} : { requestTimeout: GLIDE_TEST_REQUEST_TIMEOUT_MS }),
        ...(lazy ? { lazyConnect: true } : {}),
      };
      const client =
        'url' in target
          ? await GlideClient.createClient({ ...base, ...glideAddress(target.url) })
          : await GlideClusterClient.createClient({ ...base, addresses: target.nodes.map(({ host, port }) => ({ host, port })) });
      return { kind, client: client as unknown as RedisClientLike, connect: async () => undefined, close: async () => client.close() };
    }
    default:
      throw new RangeError(`connectClient: kind must be one of ${clientKinds.join(', ')}; got ${String(kind)}`);
  }
}

/** GLIDE's address and database from a `redis://host:port/db` URL. */
function glideAddress(url: string): { addresses: { host: string; port: number }[]; databaseId?: number } {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return { addresses: [{ host: parsed.hostname, port: Number(parsed.port || 6379) }], ...(db ? { databaseId: Number(db) } : {}) };
}

function readyOf(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`ioredis client not ready within ${CONNECT_TIMEOUT_MS * 5} ms`));
    }, CONNECT_TIMEOUT_MS * 5);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
