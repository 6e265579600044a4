/**
 * The framework-agnostic part of `withLock` for one request: find the key, scope it, and make the
 * one store call (acquire the lock, or begin the idempotency record). The adapters turn the
 * outcome into HTTP and hold the lease while the handler runs.
 *
 * Store ids: lock mode `key`, or `JSON.stringify([scope, key])` when scoped; replay mode always
 * `JSON.stringify([scope, key])`. The method, path, query and body are NOT part of the id but of
 * the fingerprint, so a key reused for another request is answered 422 instead of running again.
 * The keyspace hashes ids, so neither length nor characters matter.
 */
import type { IncomingMessage } from 'node:http';
import { ConfigError, LockBusyError, isStoreFailure, type StoreError, type StoreTimeoutError } from '../../core/errors.js';
import { formatValue } from '../../core/duration.js';
import { beginRecord, type IdempotencyLease } from '../../core/idempotency/record.js';
import { acquireLock } from '../../core/lock/acquire.js';
import type { LockLease } from '../../core/lock/lease.js';
import type { FailureMode } from '../../core/store-call.js';
import { toKey } from '../../keys/extractors.js';
import { requestFingerprint } from './idempotency-fingerprint.js';
import { idempotencyKeyValues, readIdempotencyKey } from './idempotency-key.js';
import type { BusyInfo, LockInfo, WithLockConfig } from './lock-options.js';
import {
  KEY_REUSED_ANSWER,
  MISSING_LOCK_KEY_ANSWER,
  STORE_UNAVAILABLE_ANSWER,
  busyAnswer,
  invalidIdempotencyKeyAnswer,
  notReplayableAnswer,
  replayAnswer,
  type LockAnswer,
} from './lock-responses.js';

/** What the gate needs from a request. */
export interface LockRequestView<Req> {
  /** What extractors and callbacks receive: Express `req`, Koa `ctx`. */
  readonly subject: Req;
  readonly method: string;
  /** The request target as received (`req.originalUrl`, `ctx.originalUrl`). */
  readonly url: string;
  /** The parsed body, if a body parser ran. */
  readonly body: unknown;
  /** The Node request, for the Idempotency-Key field lines. */
  readonly node: IncomingMessage;
}

/** A lease the request now holds: a lock, or an idempotency record in flight. */
export type HeldLease =
  | { readonly kind: 'lock'; readonly key: string; readonly lease: LockLease }
  | { readonly kind: 'record'; readonly key: string; readonly lease: IdempotencyLease };

export type GateOutcome =
  /** Answer with this response, without running the handler: a refusal (400, 409 not replayable, 422, 503) or a replay. */
  | { readonly kind: 'answer'; readonly answer: LockAnswer }
  /** The key is busy: `onBusy` may answer, else `answer` (409). */
  | { readonly kind: 'busy'; readonly info: BusyInfo; readonly answer: LockAnswer }
  /** The store failed and `onStoreError` chose `'open'`: run without a lock. */
  | { readonly kind: 'unguarded' }
  | HeldLease;

/** Errors of user callbacks (extractors, fingerprint, onStoreError) reject; store failures never do. */
export async function openGate<Req>(config: WithLockConfig<Req, unknown>, view: LockRequestView<Req>): Promise<GateOutcome> {
  let key: string;
  if (config.key === undefined) {
    const reading = readIdempotencyKey(idempotencyKeyValues(view.node));
    if (!reading.ok) return { kind: 'answer', answer: invalidIdempotencyKeyAnswer(reading) };
    key = reading.key;
  } else {
    const found = await firstKey(config.key, view.subject);
    if (found === undefined) return { kind: 'answer', answer: MISSING_LOCK_KEY_ANSWER };
    key = found;
  }
  const scope = config.scope === undefined ? undefined : await config.scope(view.subject);
  const id = scope === undefined ? key : JSON.stringify([scope, key]);

  try {
    if (config.records !== undefined) {
      const fingerprint = await fingerprintOf(config, view);
      const outcome = await beginRecord(config.records, id, fingerprint, config.waitMs);
      switch (outcome.state) {
        case 'acquired':
          return { kind: 'record', key, lease: outcome.lease };
        case 'in-flight':
          return busy({ key, retryAfterMs: outcome.retryAfterMs, reason: 'in-flight' });
        case 'mismatch':
          return { kind: 'answer', answer: KEY_REUSED_ANSWER };
        case 'replay': {
          const { response } = outcome;
          return { kind: 'answer', answer: response.body === null ? notReplayableAnswer(response.status) : replayAnswer(response, response.body) };
        }
      }
    }
    const lease = await acquireLock(config.locks!, id, config.waitMs);
    return { kind: 'lock', key, lease };
  } catch (err) {
    if (err instanceof LockBusyError) return busy({ key, retryAfterMs: err.retryAfterMs, reason: 'locked' });
    if (!isStoreFailure(err)) throw err;
    return failureMode(config, err, view.subject) === 'open' ? { kind: 'unguarded' } : { kind: 'answer', answer: STORE_UNAVAILABLE_ANSWER };
  }
}

/** `req.lock` / `ctx.state.lock` while the handler runs under `held`. */
export function lockInfo(held: HeldLease): LockInfo {
  return { key: held.key, token: held.lease.token, fence: held.lease.fence, signal: held.lease.signal };
}

function busy(info: BusyInfo): GateOutcome {
  return { kind: 'busy', info, answer: busyAnswer(info) };
}

async function fingerprintOf<Req>(config: WithLockConfig<Req, unknown>, view: LockRequestView<Req>): Promise<string> {
  const custom = config.replay?.fingerprint;
  if (custom === undefined) return requestFingerprint(view);
  const fingerprint: unknown = await custom(view.subject);
  if (typeof fingerprint !== 'string') throw new ConfigError(`replay.fingerprint must return a string; got ${formatValue(fingerprint)}`);
  return fingerprint;
}

/** The first extractor value that is a key, else undefined: no IP fallback here. A value that is no key at all is a ConfigError. */
async function firstKey<Req>(extractors: readonly ((req: Req) => unknown)[], subject: Req): Promise<string | undefined> {
  for (let i = 0; i < extractors.length; i++) {
    const key = toKey(await extractors[i]!(subject), extractors.length === 1 ? 'key' : `key[${i}]`);
    if (key !== undefined) return key;
  }
  return undefined;
}

function failureMode<Req>(config: WithLockConfig<Req, unknown>, err: StoreError | StoreTimeoutError, subject: Req): FailureMode {
  const { onStoreError } = config;
  if (typeof onStoreError !== 'function') return onStoreError;
  const mode: unknown = onStoreError(err, subject);
  if (mode !== 'open' && mode !== 'closed') throw new ConfigError(`onStoreError must return 'open' or 'closed'; got ${formatValue(mode)}`);
  return mode;
}
