/**
 * Beginning an idempotency record: one store call answers acquired | in-flight | mismatch |
 * replay, polled while a duplicate is in flight. The per-request entry behind
 * `IdempotencyGuard.begin()` and `withLock({ replay })`, taking options already parsed.
 */
import { LeaseLostError, isPassingFailure } from '../errors.js';
import { idempotencyKeys } from '../store-keys.js';
import { checkFlag, checkIdempotencyBegin } from '../store-replies.js';
import type { IdempotencyBeginResult, IdempotencyStore, StoredResponse } from '../store.js';
import { Lease, type LeaseInit, type LeaseOperations } from '../lock/lease.js';
import { monotonicNow, retryUntil } from '../lock/poll.js';
import { callLeaseStore, requestLease, type LeaseSettings } from '../lock/lease-guard.js';

/** An IdempotencyGuard's parsed options. */
export interface RecordSettings extends LeaseSettings<IdempotencyStore> {
  /** How long a completed response is kept for replay. */
  readonly replayTtlMs: number;
}

export type IdempotencyOutcome =
  /** This caller runs the operation and must `complete()` or `abort()` the lease. */
  | { readonly state: 'acquired'; readonly lease: IdempotencyLease }
  /** A duplicate with the same fingerprint is running (still, after `wait`). */
  | { readonly state: 'in-flight'; readonly retryAfterMs: number }
  /** The id was used for a different request (fingerprint), in flight or done. */
  | { readonly state: 'mismatch' }
  /** Done: the stored response (`body` null when it was not replayable). */
  | { readonly state: 'replay'; readonly response: StoredResponse };

interface IdempotencyLeaseOperations extends LeaseOperations {
  complete(response: StoredResponse): Promise<boolean>;
}

/** First retry of a complete that failed; each next one waits twice as long, up to COMPLETE_RETRY_MAX_MS. */
const COMPLETE_RETRY_MS = 100;
/** The response waits for the complete: once Redis is back, it lands within about a second. */
const COMPLETE_RETRY_MAX_MS = 1_000;

/** The in-flight lease of an idempotency record: `release()`/`abort()` delete it, `complete()` stores the response. */
export class IdempotencyLease extends Lease {
  private readonly completeOperation: IdempotencyLeaseOperations['complete'];

  constructor(init: LeaseInit & { readonly operations: IdempotencyLeaseOperations }) {
    super(init);
    this.completeOperation = init.operations.complete;
  }

  /**
   * Stores `response` for replay, if this token still holds the in-flight record, or if the
   * lease lapsed (Redis stalled past it, or the operation outran it) but no request has begun on
   * the key since: the store checks the key's fence, so the operation still counts as run once.
   * A store failure (Redis stalled or unreachable) is retried, 100 ms later then twice as long
   * each time up to a second, while the lease lasts and for one lease length after (not a
   * `lasting` one: the record key holds another kind of state, which no retry gets past): given up,
   * the record would be lost, and a retry of the request would run the operation again although
   * its caller may have been answered.
   * @throws LeaseLostError when another request has begun on the key (its record is untouched);
   *   the last store failure once retries are over.
   */
  async complete(response: StoredResponse): Promise<void> {
    if (this.state === 'ended') this.assertHeld(); // throws: released or completed already
    const leaseEnd = monotonicNow() + this.remainingMs();
    const plan = { firstDelayMs: COMPLETE_RETRY_MS, factor: 2, maxDelayMs: COMPLETE_RETRY_MAX_MS, until: leaseEnd + this.ttlMs, retryable: isPassingFailure, keepAlive: true };
    this.end();
    // A failed attempt that landed after all is recognised by the token: the retry answers true.
    const completed = await retryUntil(() => this.completeOperation(response), plan);
    if (!completed) throw this.markLost(new LeaseLostError(this.key));
  }

  /** Deletes the in-flight record so a retry runs again (same as `release()`). */
  abort(): Promise<void> {
    return this.release();
  }
}

/**
 * Starts the request `id` (validated, already scoped per client) with its request `fingerprint`,
 * waiting up to `waitMs` while a duplicate is in flight.
 * @throws StoreError / StoreTimeoutError when the store fails; `signal.reason` when `signal` aborts.
 */
export async function beginRecord(settings: RecordSettings, id: string, fingerprint: string, waitMs: number, signal?: AbortSignal): Promise<IdempotencyOutcome> {
  const keys = idempotencyKeys(settings.prefix, id);
  const { store, ttlMs } = settings;
  const { result, token, sentAt } = await requestLease<IdempotencyBeginResult>(
    settings,
    {
      ask: (askToken) => store.beginIdempotent(keys, askToken, fingerprint, ttlMs).then(checkIdempotencyBegin),
      isGranted: (answer) => answer.state === 'acquired',
      busyFor: (answer) => (answer.state === 'in-flight' ? answer.retryAfterMs : undefined),
      giveBack: (askToken) => store.abortIdempotent(keys, askToken),
    },
    waitMs,
    signal,
  );
  if (result.state !== 'acquired') return result;
  const lease = new IdempotencyLease({
    key: id,
    token,
    fence: result.fence,
    ttlMs,
    maxHoldMs: settings.maxHoldMs,
    acquiredAt: sentAt,
    operations: {
      extend: (extendMs) => callLeaseStore(settings, () => store.extendIdempotent(keys, token, extendMs).then((flag) => checkFlag('extendIdempotent', flag))),
      release: () => callLeaseStore(settings, () => store.abortIdempotent(keys, token).then((flag) => checkFlag('abortIdempotent', flag))),
      complete: (response) =>
        callLeaseStore(settings, () =>
          store.completeIdempotent(keys, token, response, settings.replayTtlMs, { fence: result.fence, fingerprint }).then((flag) => checkFlag('completeIdempotent', flag)),
        ),
    },
  });
  return { state: 'acquired', lease };
}
