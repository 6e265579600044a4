/**
 * node-redis (package `redis` 5 and 6, RESP2 and RESP3): a client from `createClient()` and a
 * cluster from `createCluster()`, recognised by their shape (ratelock never imports `redis`).
 *
 * - Commands go through `sendCommand` (numbers sent as strings). `callBuffer` asks for bulk
 *   strings as Buffers with a per-command type mapping; `call` passes an empty mapping, so a
 *   client created with its own mapping (numbers as strings…) cannot change what the store reads.
 *   Error replies reject with Redis's text (`ERR Function not found`), as ioredis's do.
 * - Status, in ioredis's words, from `isReady` / `isOpen` and the `ready` / `reconnecting` / `end`
 *   events, so the store fails fast while the client reconnects instead of filling its offline
 *   queue, whatever `disableOfflineQueue` and `reconnectStrategy` are. A client not connected yet
 *   (`await client.connect()` still to come) is waited for, as an ioredis `lazyConnect` one.
 * - Cluster: a script call is routed by its first key (`sendCommand(firstKey, false, args)`, node-
 *   redis follows MOVED and ASK); TRYAGAIN is retried here as ioredis does. A call whose master's
 *   connection is not ready fails fast. The slot map is the cluster's own (`cluster.slots[slot]
 *   .master.address`, refreshed by node-redis on MOVED), the masters' connections its node clients.
 */
import { StoreError } from '../../../core/errors.js';
import { type ClusterTopology, type RedisArgument, type RedisConnection, type StoreClient, firstKeyOf } from '../client.js';
import { keySlot } from '../hash-tag.js';
import { retryingTryAgain, toWire } from './wire.js';

/** Only listeners without arguments are registered. */
type Listener = () => void;

/** The shape of a node-redis client (`createClient()`, v5 / v6) that RedisStore reads. */
export interface NodeRedisClientLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: (string | Buffer)[], options?: object): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
}

/** One master (or replica) of a node-redis cluster's slot map. */
export interface NodeRedisClusterNodeLike {
  readonly address: string;
  readonly client?: NodeRedisClientLike | undefined;
}

/** The shape of a node-redis cluster (`createCluster()`, v5 / v6) that RedisStore reads. */
export interface NodeRedisClusterLike {
  readonly isOpen: boolean;
  sendCommand(firstKey: string | Buffer | undefined, isReadonly: boolean | undefined, args: (string | Buffer)[], options?: object): Promise<unknown>;
  readonly slots: readonly ({ readonly master: NodeRedisClusterNodeLike } | undefined)[];
  readonly masters: readonly NodeRedisClusterNodeLike[];
  nodeClient(node: never): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
}

/** `RESP_TYPES.BLOB_STRING` of @redis/client 5 and 6 (`$`), mapped to Buffer for binary-safe replies. */
const BLOB_STRING = 36;
const AS_BUFFERS = Object.freeze({ typeMapping: Object.freeze({ [BLOB_STRING]: Buffer }) });
const AS_STRINGS = Object.freeze({ typeMapping: Object.freeze({}) });

function hasEvents(client: object): boolean {
  const candidate = client as Partial<NodeRedisClientLike>;
  return typeof candidate.on === 'function' && typeof candidate.once === 'function' && typeof candidate.removeListener === 'function';
}

export function isNodeRedisCluster(client: object): client is NodeRedisClusterLike {
  const candidate = client as Partial<NodeRedisClusterLike>;
  return (
    typeof candidate.sendCommand === 'function' &&
    typeof candidate.nodeClient === 'function' &&
    typeof candidate.isOpen === 'boolean' &&
    Array.isArray(candidate.masters) &&
    hasEvents(client)
  );
}

export function isNodeRedisClient(client: object): client is NodeRedisClientLike {
  const candidate = client as Partial<NodeRedisClientLike>;
  return typeof candidate.sendCommand === 'function' && typeof candidate.isReady === 'boolean' && typeof candidate.isOpen === 'boolean' && hasEvents(client);
}

/** ReadinessGate's events → node-redis client events. */
const CLIENT_EVENTS: Readonly<Record<string, readonly string[]>> = {
  ready: ['ready'],
  close: ['reconnecting', 'end'], // a (first) attempt failed, or the client was closed
  end: ['end'],
};

/** One node-redis client (a standalone one, or a cluster's connection to one node). */
class NodeRedisConnection implements RedisConnection {
  #everReady: boolean;
  /** A connection attempt failed (node-redis retries on its own): no longer the first attempt. */
  #attemptFailed = false;

  constructor(
    private readonly client: NodeRedisClientLike,
    readonly name: string | undefined,
  ) {
    this.#everReady = client.isReady;
    if (!this.#everReady) {
      client.once('ready', () => void (this.#everReady = true));
      client.once('reconnecting', () => void (this.#attemptFailed = true));
    }
  }

  get status(): string {
    const client = this.client;
    if (client.isReady) {
      this.#everReady = true;
      return 'ready';
    }
    if (client.isOpen) return this.#everReady || this.#attemptFailed ? 'reconnecting' : 'connecting';
    return this.#everReady ? 'end' : 'wait';
  }

  call(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.client.sendCommand(toWire(command, args), AS_STRINGS);
  }

  callBuffer(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.client.sendCommand(toWire(command, args), AS_BUFFERS);
  }

  once(event: string, listener: () => void): void {
    for (const name of CLIENT_EVENTS[event] ?? [event]) this.client.once(name, listener);
  }

  removeListener(event: string, listener: () => void): void {
    for (const name of CLIENT_EVENTS[event] ?? [event]) this.client.removeListener(name, listener);
  }
}

export function nodeRedisClient(client: NodeRedisClientLike): StoreClient {
  return { kind: 'node-redis', connection: new NodeRedisConnection(client, addressOf(client)), cluster: undefined, keyPrefix: '', keepsCommandOrder: true };
}

/** `host:port` from the client's options (`socket` or `url`), for diagnostics; undefined if neither says. */
function addressOf(client: NodeRedisClientLike): string | undefined {
  const options = (client as { options?: { socket?: { host?: unknown; port?: unknown }; url?: unknown } }).options;
  const socket = options?.socket;
  if (typeof socket?.host === 'string' || typeof socket?.port === 'number') return `${typeof socket.host === 'string' ? socket.host : 'localhost'}:${typeof socket.port === 'number' ? socket.port : 6379}`;
  if (typeof options?.url !== 'string') return undefined;
  try {
    const url = new URL(options.url);
    return `${url.hostname || 'localhost'}:${url.port || '6379'}`;
  } catch {
    return undefined;
  }
}

/** ReadinessGate's events → node-redis cluster events (`connect` once the slots are discovered). */
const CLUSTER_EVENTS: Readonly<Record<string, readonly string[]>> = {
  ready: ['connect'],
  close: ['disconnect'],
  end: ['disconnect'],
};

/** A node-redis cluster: keyed calls routed by their first key. */
class NodeRedisClusterConnection implements RedisConnection {
  #everOpen: boolean;

  constructor(private readonly cluster: NodeRedisClusterLike) {
    this.#everOpen = cluster.isOpen;
    if (!this.#everOpen) cluster.once('connect', () => void (this.#everOpen = true));
  }

  get status(): string {
    const cluster = this.cluster;
    if (cluster.isOpen) {
      if (cluster.masters.length > 0) {
        this.#everOpen = true;
        return 'ready';
      }
      return 'connecting';
    }
    return this.#everOpen ? 'end' : 'wait';
  }

  call(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.#send(command, args, AS_STRINGS);
  }

  callBuffer(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.#send(command, args, AS_BUFFERS);
  }

  once(event: string, listener: () => void): void {
    for (const name of CLUSTER_EVENTS[event] ?? [event]) this.cluster.once(name, listener);
  }

  removeListener(event: string, listener: () => void): void {
    for (const name of CLUSTER_EVENTS[event] ?? [event]) this.cluster.removeListener(name, listener);
  }

  #send(command: string, args: RedisArgument[], options: object): Promise<unknown> {
    const key = firstKeyOf(args);
    const firstKey = key === undefined ? undefined : typeof key === 'number' ? String(key) : key;
    if (firstKey !== undefined) {
      // Fail fast when the master of the key's slot is reconnecting, instead of queueing there.
      const master = this.cluster.slots[keySlot(firstKey.toString())]?.master;
      const client = master?.client;
      if (client !== undefined && !client.isReady) {
        return Promise.reject(new StoreError(`Redis Cluster master ${master!.address} not ready; the call was not sent`, { notSent: true }));
      }
    }
    const wire = toWire(command, args);
    return retryingTryAgain(() => this.cluster.sendCommand(firstKey, false, wire, options));
  }
}

export function nodeRedisCluster(cluster: NodeRedisClusterLike): StoreClient {
  const connections = new WeakMap<NodeRedisClientLike, NodeRedisConnection>();
  const connectionOf = (node: NodeRedisClusterNodeLike, client: NodeRedisClientLike): NodeRedisConnection => {
    let connection = connections.get(client);
    if (connection === undefined) connections.set(client, (connection = new NodeRedisConnection(client, node.address)));
    return connection;
  };
  const topology: ClusterTopology = {
    masterOf: (slot) => cluster.slots[slot]?.master.address,
    masterConnections() {
      const byName = new Map<string, RedisConnection>();
      for (const master of cluster.masters) if (master.client !== undefined) byName.set(master.address, connectionOf(master, master.client));
      return byName;
    },
    async masters() {
      if (cluster.masters.length === 0) throw new StoreError('Redis Cluster client knows no master yet (node-redis: connect() not done); the call was not sent', { notSent: true });
      return Promise.all(
        cluster.masters.map(async (master) => {
          const client = master.client ?? ((await cluster.nodeClient(master as never)) as NodeRedisClientLike);
          return connectionOf(master, client);
        }),
      );
    },
  };
  return { kind: 'node-redis', connection: new NodeRedisClusterConnection(cluster), cluster: topology, keyPrefix: '', keepsCommandOrder: true };
}
