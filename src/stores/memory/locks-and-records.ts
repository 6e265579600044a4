/**
 * MemoryStore's entries for locks and idempotency records (the Redis strings and hashes).
 *
 * There are no fence counters: every fence comes from the store-wide MicrosecondCounter, which is
 * strictly greater than every value it returned before, on any key. A per-key counter (which Redis
 * needs) could never raise it, so a lease simply carries the fence it was granted.
 */
import type { StoredResponse } from '../../core/store.js';
import type { Expiring } from './expiring-map.js';

/** A held lock: the holder's token, its fence and the lease end (store ms). */
export class HeldLock implements Expiring {
  constructor(
    readonly token: string,
    readonly fence: number,
    public expiresAt: number,
  ) {}
}

/** An idempotency record while its holder runs the handler; `expiresAt` is the in-flight lease. */
export class RunningRecord implements Expiring {
  constructor(
    readonly token: string,
    readonly fingerprint: string,
    readonly fence: number,
    public expiresAt: number,
  ) {}
}

/**
 * The fence of the last idempotency run begun under a record key, kept after the record lapses
 * (Redis: the record's fence key). A complete arriving after its lease lapsed may still store the
 * response while this holds its run's fence: nobody has begun since.
 */
export class LastRun implements Expiring {
  constructor(
    readonly fence: number,
    readonly expiresAt: number,
  ) {}
}

/** How long a LastRun is kept: as Redis keeps a fence key, 10 leases and at least a day. */
export function lastRunTtlMs(leaseMs: number): number {
  return Math.max(leaseMs * 10, 24 * 3600 * 1000);
}

/** A finished idempotency record: the stored response, replayed until `expiresAt` (or evicted). */
export class DoneRecord implements Expiring {
  constructor(
    /** The token of the lease that completed it: that lease's complete, sent again, answers true. */
    readonly token: string,
    readonly fingerprint: string,
    readonly response: StoredResponse,
    /** What this record counts against `maxReplayBytes` (see `recordBytes`). */
    readonly bytes: number,
    readonly expiresAt: number,
  ) {}
}

/** Bookkeeping counted per done record on top of its strings: objects, the Map slot, the copy. */
export const RECORD_OVERHEAD_BYTES = 256;

/**
 * A private copy of `response` as a done record under `key`, counted at approximately its
 * memory: the body's bytes, the characters of key, fingerprint and headers, plus
 * RECORD_OVERHEAD_BYTES. When that exceeds `maxBytes` with the body, the body is dropped: the
 * record is kept as not replayable (body null), as a response too large to capture would be.
 */
export function doneRecord(
  key: string,
  token: string,
  fingerprint: string,
  response: StoredResponse,
  expiresAt: number,
  maxBytes: number,
): DoneRecord {
  const headers = copyHeaders(response.headers);
  let bytes = RECORD_OVERHEAD_BYTES + key.length + fingerprint.length + headerChars(headers);
  let body: Buffer | null = null;
  if (response.body !== null && bytes + response.body.length <= maxBytes) {
    body = Buffer.from(response.body);
    bytes += body.length;
  }
  return new DoneRecord(token, fingerprint, { status: response.status, headers, body }, bytes, expiresAt);
}

/** A private copy of a response, so neither the caller nor a replay can change the stored bytes. */
export function copyResponse(response: StoredResponse): StoredResponse {
  const body = response.body === null ? null : Buffer.from(response.body);
  return { status: response.status, headers: copyHeaders(response.headers), body };
}

/** Object.fromEntries defines own properties, so even a header named `__proto__` is copied as data. */
function copyHeaders(headers: StoredResponse['headers']): Record<string, string | readonly string[]> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, typeof value === 'string' ? value : [...value]]));
}

function headerChars(headers: StoredResponse['headers']): number {
  let chars = 0;
  for (const [name, value] of Object.entries(headers)) {
    chars += name.length;
    if (typeof value === 'string') chars += value.length;
    else for (const item of value) chars += item.length;
  }
  return chars;
}
