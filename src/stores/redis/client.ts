/**
 * The narrowest view of an ioredis client that RedisStore needs, typed structurally so an ioredis
 * `Redis` or `Cluster` (v5/v6) fits without ratelock importing ioredis at run time.
 */
import { StoreError } from '../../core/errors.js';

export type RedisArgument = string | Buffer | number;

/** One connection (or a cluster, which routes each command by its first key). */
export interface RedisCommandClient {
  /** ioredis connection state: commands are only sent when it is `'ready'`. */
  readonly status: string;
  /** Sends one command; replies with strings. */
  call(command: string, args: RedisArgument[]): Promise<unknown>;
  /** Sends one command; replies with Buffers (binary-safe bulk strings). */
  callBuffer(command: string, args: RedisArgument[]): Promise<unknown>;
  /** ioredis clients are EventEmitters: how we wait for a connection without their offline queue. */
  once?(event: string, listener: () => void): unknown;
  removeListener?(event: string, listener: () => void): unknown;
  /** Starts a `lazyConnect` client (status `'wait'`), which would otherwise never connect. */
  connect?(): Promise<unknown>;
}

/** An ioredis `Redis` or `Cluster`. */
export interface RedisClientLike extends RedisCommandClient {
  /** `true` on an ioredis `Cluster`. */
  readonly isCluster?: boolean | undefined;
  /** Cluster only: one client per master, for commands that must reach every master (FUNCTION LOAD). */
  nodes?(role: 'master'): RedisCommandClient[];
  /**
   * Cluster only: the client's slot map, per slot the `host:port` of the nodes serving it, its
   * master first (ioredis keeps it up to date from CLUSTER SLOTS and MOVED replies).
   */
  readonly slots?: readonly (readonly string[] | undefined)[];
}

/** `host:port` of one connection, as a Cluster client's slot map names nodes; `default` if unknown. */
export function serverName(server: RedisCommandClient): string {
  const options = (server as { options?: { host?: string; port?: number } }).options;
  return options?.host !== undefined ? `${options.host}:${options.port ?? 6379}` : 'default';
}

/** States of a client that has not finished its first connection yet (ioredis `Redis` and `Cluster`). */
const FIRST_CONNECT_STATES = new Set(['wait', 'connecting', 'connect']);

/**
 * Tells whether a command may be sent now. A client that is not connected fails at once, instead
 * of letting ioredis park the command in its offline queue until Redis comes back (pending store
 * calls stay bounded). The one exception is a client still on its FIRST connection attempt (an app
 * that serves requests right after `new Redis()`): the call waits for that connection (the caller's
 * timeout budget bounds the wait) — by the client's `ready` event, not its offline queue, so it
 * holds whatever `enableOfflineQueue` is set to. Once an attempt failed ('reconnecting'), Redis is
 * unreachable and calls fail fast even before the first success.
 */
export class ReadinessGate {
  private wasReady: boolean;
  /** The wait for the first connection, shared by every call made during it. */
  private firstConnection: Promise<void> | undefined;

  constructor(private readonly client: RedisCommandClient) {
    this.wasReady = client.status === 'ready';
  }

  /** Records that the client answered (e.g. `RedisStore#ready()`), so a later outage fails fast. */
  markReady(): void {
    this.wasReady = true;
  }

  /**
   * `undefined` when a command may be sent now; a promise that settles when it may (first
   * connection); throws a StoreError when it may not (Redis unreachable).
   */
  whenSendable(): Promise<void> | undefined {
    const status = this.client.status;
    if (status === 'ready') {
      this.wasReady = true;
      return undefined;
    }
    if (!this.wasReady && FIRST_CONNECT_STATES.has(status)) {
      if (this.client.once === undefined) return undefined; // not an EventEmitter: let the client queue it
      this.firstConnection ??= this.waitFor(['close', 'end']).finally(() => {
        this.firstConnection = undefined;
      });
      return this.firstConnection;
    }
    throw new StoreError(`Redis client not ready (status: ${status}); the call was not sent`);
  }

  /**
   * Resolves once the client is connected, however long that takes (`RedisStore#ready()`); rejects
   * only if the client is closed for good (`quit()`, `disconnect()`, retries given up).
   */
  connected(): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    if (this.client.status === 'end') return Promise.reject(new StoreError('Redis client is closed (status: end)'));
    if (this.client.once === undefined) return Promise.resolve(); // not an EventEmitter: the first command will tell
    return this.waitFor(['end']);
  }

  /** Resolves on the client's `ready` event, rejects on the first of `failures`; starts a lazyConnect client. */
  private waitFor(failures: readonly string[]): Promise<void> {
    const client = this.client;
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        client.removeListener?.('ready', onReady);
        for (const event of failures) client.removeListener?.(event, onFailure);
      };
      const onReady = (): void => {
        cleanup();
        this.wasReady = true;
        resolve();
      };
      const onFailure = (): void => {
        cleanup();
        reject(new StoreError(`Redis client could not connect (status: ${client.status}); the call was not sent`));
      };
      client.once!('ready', onReady);
      for (const event of failures) client.once!(event, onFailure);
      if (client.status === 'wait') client.connect?.().catch(() => undefined);
    });
  }
}

/** The message of a Redis error reply (or any thrown value), for prefix matching. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
