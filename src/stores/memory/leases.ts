/** MemoryStore's entries for locks and idempotency records (the Redis strings and hashes). */
import type { StoredResponse } from '../../core/store.js';
import type { Expiring } from './keyspace.js';

/** A held lock: the holder's token and the lease end (store ms). Its fence is in the FenceCounter. */
export class Lease implements Expiring {
  constructor(
    readonly token: string,
    public expiresAt: number,
  ) {}
}

/** Last fence granted for a key. Outlives leases (see FENCE_KEEP_MIN_MS) so fences keep increasing. */
export class FenceCounter implements Expiring {
  constructor(
    public value: number,
    public expiresAt: number,
  ) {}
}

/**
 * An idempotency record: `run` while its holder executes the handler (the lease), then `done`
 * with the stored response until its ttl ends.
 */
export class IdempotencyRecord implements Expiring {
  state: 'run' | 'done' = 'run';
  response: StoredResponse | undefined;

  constructor(
    readonly token: string,
    readonly fingerprint: string,
    readonly fence: number,
    public expiresAt: number,
  ) {}
}

/** A fence counter is kept max(ttl × 10, 7 days) after each grant, like the Redis fence key. */
export const FENCE_KEEP_MIN_MS = 7 * 24 * 60 * 60 * 1000;
export const FENCE_KEEP_TTL_FACTOR = 10;

/** A private copy of a response, so neither the caller nor a replay can change the stored bytes. */
export function copyResponse(response: StoredResponse): StoredResponse {
  const headers: Record<string, string | readonly string[]> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    headers[name] = typeof value === 'string' ? value : [...value];
  }
  return { status: response.status, headers, body: response.body === null ? null : Buffer.from(response.body) };
}
