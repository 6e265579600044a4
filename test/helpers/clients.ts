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

export const clientKinds = ['ioredis', 'ioredis-ap', 'node-redis', 'node-redis-resp3', 'node-redis5', 'glide'] as const;
export type ClientKind = (typeof clientKinds)[number];
/** The clients other than ioredis (the default everywhere), for suites that add them. */
export const otherClientKinds = clientKinds.filter((kind): kind is Exclude<ClientKind, 'ioredis'> => kind !== 'ioredis');

export const CLIENT_LABELS: Readonly<Record<ClientKind, string>> = {
  ioredis: 'ioredis 6',
  'ioredis-ap': 'ioredis 6 (enableAutoPipelining)',
  'node-redis': 'node-redis 6 (RESP2)',
  'node-redis-resp3': 'node-redis 6 (RESP3)',
  'node-redis5': 'node-redis 5',
  glide: 'Valkey GLIDE 2',
};

export type ClientTarget = { readonly url: string } | { readonly nodes: readonly { host: string; port: number }[] };

export interface ConnectOptions {
  /** Leave the client at its library's defaults (offline queue, retries, timeouts). */
  readonly defaults?: boolean;
  /**
   * `'await'` (default): resolve once connected. `'start'`: resolve at once, the connection under
   * way (an app serving requests right after creating its client). `'lazy'`: not started (ioredis
   * `lazyConnect`, node-redis before `connect()`, GLIDE `lazyConnect`); `connect()` starts it.
   */
  readonly connection?: 'await' | 'start' | 'lazy';
  /** `false`: ioredis `enableOfflineQueue: false`, node-redis `disableOfflineQueue: true` (GLIDE has none). */
  readonly offlineQueue?: boolean;
  /** GLIDE only: configuration to merge in (e.g. `requestTimeout`, default 250 ms or 5 s in test settings; `connectionBackoff`). */
  readonly glide?: Readonly<Record<string, unknown>>;
}

export interface TestClient {
  readonly kind: ClientKind;
  /** The client as the library made it, to hand to RedisStore. */
  readonly client: RedisClientLike;
  /** Connects a `'lazy'` client, or waits for a `'start'`ed one. */
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
  const { defaults = false, connection = 'await', offlineQueue = true } = options;
  const lazy = connection === 'lazy';
  switch (kind) {
    case 'ioredis':
    case 'ioredis-ap': {
      const queue = { ...(offlineQueue ? {} : { enableOfflineQueue: false }), ...(kind === 'ioredis-ap' ? { enableAutoPipelining: true } : {}) };
      const client =
        'url' in target
          ? new Redis(target.url, { ...(defaults ? {} : { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy: backoff }), lazyConnect: lazy, ...queue })
          : new Cluster([...target.nodes], {
              ...(defaults
                ? {}
                : { redisOptions: { maxRetriesPerRequest: 1, connectTimeout: CONNECT_TIMEOUT_MS }, clusterRetryStrategy: backoff, slotsRefreshTimeout: CONNECT_TIMEOUT_MS }),
              lazyConnect: lazy,
              ...queue,
            });
      client.on('error', ignore);
      if ('nodes' in target) client.on('node error', ignore);
      if (connection === 'await') await readyOf(client);
      return {
        kind,
        client,
        connect: async () => {
          if (client.status === 'wait') await client.connect();
          await readyOf(client);
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
      const queue = offlineQueue ? {} : { disableOfflineQueue: true };
      // Both majors have the same methods; typed loosely (their generic signatures do not unify).
      type NodeRedis = { connect(): Promise<unknown>; destroy(): void; on(event: string, listener: () => void): unknown };
      let client: NodeRedis;
      if ('url' in target) {
        const clientOptions = { url: target.url, RESP, socket, ...queue } as const;
        client = (v5 ? createClient5(clientOptions) : createClient(clientOptions)) as unknown as NodeRedis;
      } else {
        const rootNodes = target.nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` }));
        const clusterOptions = { rootNodes, RESP, defaults: { socket, ...queue } } as const;
        client = (v5 ? createCluster5(clusterOptions) : createCluster(clusterOptions)) as unknown as NodeRedis;
      }
      client.on('error', ignore);
      let connecting: Promise<unknown> | undefined;
      const connect = async (): Promise<void> => {
        connecting ??= client.connect();
        await connecting;
      };
      if (connection === 'await') await connect();
      else if (connection === 'start') connect().catch(ignore);
      return {
        kind,
        client: client as unknown as RedisClientLike,
        connect,
        close: async () => {
          // A connect() that keeps retrying (Redis down) settles only once the client is destroyed.
          const settled = connecting?.catch(ignore);
          try {
            client.destroy();
          } catch {
            // already closed
          }
          await settled;
        },
      };
    }
    case 'glide': {
      const base = {
        protocol: ProtocolVersion.RESP3,
        ...(defaults ? {} : { requestTimeout: GLIDE_TEST_REQUEST_TIMEOUT_MS }),
        ...options.glide,
        ...(connection === 'await' ? {} : { lazyConnect: true }),
      };
      const client =
        'url' in target
          ? await GlideClient.createClient({ ...base, ...glideAddress(target.url) })
          : await GlideClusterClient.createClient({ ...base, addresses: target.nodes.map(({ host, port }) => ({ host, port })) });
      return {
        kind,
        client: client as unknown as RedisClientLike,
        connect: async () => void (await client.customCommand(['PING'])),
        close: async () => client.close(),
      };
    }
    default:
      throw new RangeError(`connectClient: kind must be one of ${clientKinds.join(', ')}; got ${String(kind)}`);
  }
}

/** Commands a client was handed and has not settled, counted at the method RedisStore's adapter calls. */
export interface CommandCounter {
  /** The client to hand to RedisStore (a transparent Proxy of the real one). */
  readonly client: RedisClientLike;
  /** Commands handed to the client so far. */
  readonly sent: number;
  /** Commands handed to the client and not settled yet. */
  readonly pending: number;
}

/** The method each client kind's adapter sends through (src/stores/redis/clients/). */
const SEND_METHODS: Readonly<Record<ClientKind, readonly string[]>> = {
  ioredis: ['call', 'callBuffer'],
  'ioredis-ap': ['call', 'callBuffer', 'fcallBuffer', 'evalshaBuffer', 'evalBuffer'],
  'node-redis': ['sendCommand'],
  'node-redis-resp3': ['sendCommand'],
  'node-redis5': ['sendCommand'],
  glide: ['customCommand'],
};

/**
 * `client` behind a Proxy that counts the commands RedisStore hands it. What a client was handed
 * while its server could not answer is what waits in its queues (written to the socket, or held
 * for a reconnect) until the server answers, whatever the client's own timeouts do with the
 * caller's promise.
 */
export function countCommands(kind: ClientKind, client: RedisClientLike): CommandCounter {
  const methods = new Set<PropertyKey>(SEND_METHODS[kind]);
  const counts = { sent: 0, pending: 0 };
  const wrappers = new Map<PropertyKey, unknown>();
  const settle = (): void => void counts.pending--;
  const proxy = new Proxy(client as object, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (!methods.has(property) || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      let wrapper = wrappers.get(property);
      if (wrapper === undefined) {
        wrapper = (...args: unknown[]) => {
          counts.sent++;
          counts.pending++;
          const result = Reflect.apply(value, target, args) as Promise<unknown>;
          result.then(settle, settle);
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
  return {
    client: proxy as RedisClientLike,
    get sent() {
      return counts.sent;
    },
    get pending() {
      return counts.pending;
    },
  };
}

/** GLIDE's address and database from a `redis://host:port/db` URL. */
function glideAddress(url: string): { addresses: { host: string; port: number }[]; databaseId?: number; credentials?: { username?: string; password: string } } {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return {
    addresses: [{ host: parsed.hostname, port: Number(parsed.port || 6379) }],
    ...(db ? { databaseId: Number(db) } : {}),
    ...(parsed.password ? { credentials: { ...(parsed.username ? { username: parsed.username } : {}), password: parsed.password } } : {}),
  };
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
