/**
 * The responses `withLock` sends without running the handler: a stored response sent again
 * (`replayAnswer`), or one of its own refusals, all `application/problem+json` (RFC 9457) with a
 * `code` member clients can branch on. Refusals are never stored for replay.
 *
 * | status | code | when |
 * | --- | --- | --- |
 * | 400 | `idempotency-key-missing` / `idempotency-key-invalid` | no usable Idempotency-Key (default key) |
 * | 400 | `lock-key-missing` | a custom `key` extractor yielded nothing |
 * | 409 | `lock-busy` / `idempotency-in-flight` | another holder runs (`Retry-After` = its lease left, ≥ 1 s) |
 * | 409 | `idempotency-not-replayable` | the key's request completed but its response was too large to store |
 * | 422 | `idempotency-key-reused` | same key, different request fingerprint (also while in flight) |
 * | 503 | `store-unavailable` | the store failed or timed out (`Retry-After: 1`) |
 */
import { STATUS_CODES } from 'node:http';
import { DEFAULTS } from '../../core/defaults.js';
import type { StoredResponse } from '../../core/store.js';
import { toSeconds } from './headers.js';
import { REPLAYED_HEADER } from './idempotency-headers.js';
import { problem } from './problem.js';
import type { BusyInfo } from './lock-options.js';
import type { IdempotencyKeyReading } from './idempotency-key.js';

/** A complete response: status, headers (Content-Type included) and body. */
export interface LockAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: string | Buffer;
}

function answer(status: number, code: string, detail: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): LockAnswer {
  const { contentType, body } = problem(status, STATUS_CODES[status], detail, { code, ...extra });
  return { status, headers: { ...headers, 'Content-Type': contentType }, body };
}

export function invalidIdempotencyKeyAnswer(reading: Extract<IdempotencyKeyReading, { ok: false }>): LockAnswer {
  return answer(400, reading.problem === 'missing' ? 'idempotency-key-missing' : 'idempotency-key-invalid', reading.detail);
}

export const MISSING_LOCK_KEY_ANSWER: LockAnswer = answer(400, 'lock-key-missing', 'This request carries no lock key (the key extractor yielded none).');

export function busyAnswer(info: BusyInfo): LockAnswer {
  const seconds = toSeconds(info.retryAfterMs, 1);
  const detail = info.reason === 'in-flight'
    ? `A request with this Idempotency-Key is still in progress; retry in ${seconds} s.`
    : `Another request holds the lock on this key; retry in ${seconds} s.`;
  return answer(409, info.reason === 'in-flight' ? 'idempotency-in-flight' : 'lock-busy', detail, { 'Retry-After': String(seconds) });
}

export const KEY_REUSED_ANSWER: LockAnswer = answer(
  422,
  'idempotency-key-reused',
  'This Idempotency-Key was already used for a different request (method, path, query or body); use a new key.',
);

export function notReplayableAnswer(originalStatus: number): LockAnswer {
  return answer(
    409,
    'idempotency-not-replayable',
    `The request with this Idempotency-Key already completed (status ${originalStatus}), but its response was too large to store for replay; use a new key to repeat the operation.`,
    {},
    { 'original-status': originalStatus },
  );
}

/** A stored response sent again: its status, stored headers and body, marked `Idempotent-Replayed: true`. */
export function replayAnswer(response: StoredResponse, body: Buffer): LockAnswer {
  return { status: response.status, headers: { ...response.headers, [REPLAYED_HEADER]: 'true' }, body };
}

export const STORE_UNAVAILABLE_ANSWER: LockAnswer = answer(
  DEFAULTS.storeErrorStatusCode,
  'store-unavailable',
  'The lock store is unavailable; retry shortly.',
  { 'Retry-After': String(toSeconds(DEFAULTS.storeErrorRetryAfterMs, 1)) },
);
