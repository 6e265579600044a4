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
}

/** An ioredis `Redis` or `Cluster`. */
export interface RedisClientLike extends RedisCommandClient {
  /** `true` on an ioredis `Cluster`. */
  readonly isCluster?: boolean;
  /** Cluster only: one client per master, for commands that must reach every master (FUNCTION LOAD). */
  nodes?(role: 'master'): RedisCommandClient[];
}

/**
 * Throws at once unless the client is connected, instead of letting ioredis park the command in its
 * offline queue until Redis comes back (RELIABILITY A1: pending store calls stay bounded).
 */
export function assertReady(client: RedisCommandClient): void {
  if (client.status !== 'ready') {
    throw new StoreError(`Redis client not ready (status: ${client.status}); the call was not sent`);
  }
}

/** The message of a Redis error reply (or any thrown value), for prefix matching. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
