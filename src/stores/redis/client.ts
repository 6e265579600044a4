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

/** States of a client that has not finished its first connection yet (ioredis `Redis` and `Cluster`). */
const FIRST_CONNECT_STATES = new Set(['wait', 'connecting', 'connect']);

/**
 * Decides whether a command may be sent now. A client that is not connected fails at once, instead
 * of letting ioredis park the command in its offline queue until Redis comes back (RELIABILITY A1:
 * pending store calls stay bounded). The one exception is a client still on its FIRST connection
 * attempt (an app that serves requests right after `new Redis()`): ioredis sends the command as
 * soon as it connects, and the caller's timeout budget bounds the wait. Once an attempt failed
 * ('reconnecting'), Redis is unreachable and calls fail fast even before the first success.
 */
export class ReadinessGate {
  private wasReady: boolean;

  constructor(private readonly client: RedisCommandClient) {
    this.wasReady = client.status === 'ready';
  }

  /** Records that the client answered (e.g. `RedisStore#ready()`), so a later outage fails fast. */
  markReady(): void {
    this.wasReady = true;
  }

  assertSendable(): void {
    const status = this.client.status;
    if (status === 'ready') {
      this.wasReady = true;
      return;
    }
    if (!this.wasReady && FIRST_CONNECT_STATES.has(status)) return;
    throw new StoreError(`Redis client not ready (status: ${status}); the call was not sent`);
  }
}

/** The message of a Redis error reply (or any thrown value), for prefix matching. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
