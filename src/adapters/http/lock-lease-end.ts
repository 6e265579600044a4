/**
 * Ending a request's lease from an adapter, where nobody can catch an error: these never reject.
 * A lost lease is logged (it means another request may have run with the same key meanwhile);
 * store failures are already logged once per outage by callStore, and the lease then simply
 * expires after its ttl.
 */
import { LeaseLostError, isStoreFailure } from '../../core/errors.js';
import type { IdempotencyLease } from '../../core/idempotency/record.js';
import type { LockLease } from '../../core/lock/lease.js';
import type { Logger } from '../../core/store-call.js';
import { isStorableStatus, type CapturedResponse } from './idempotency-capture.js';
import { pickReplayHeaders } from './idempotency-headers.js';
import type { HeldLease } from './lock-gate.js';
import type { ReplayConfig } from './lock-options.js';

/** What ending a record needs from the replay options. */
type RecordEnding = Pick<ReplayConfig<unknown>, 'storeServerErrors' | 'headers'>;

/** Releases a lock lease (token-checked); a second call does nothing. */
export async function releaseLease(lease: LockLease, logger: Logger): Promise<void> {
  if (lease.state === 'ended') return;
  try {
    await lease.release();
  } catch (err) {
    reportLeaseProblem(err, logger);
  }
}

/**
 * Ends an idempotency record: stores `captured` when its status is storable, else (or without a
 * response: the handler threw or the client left before any) aborts it so a retry runs again.
 */
export async function finishRecord(
  lease: IdempotencyLease,
  replay: RecordEnding,
  logger: Logger,
  captured: CapturedResponse | undefined,
): Promise<void> {
  if (lease.state === 'ended') return;
  try {
    if (captured !== undefined && isStorableStatus(captured.status, replay.storeServerErrors)) {
      await lease.complete({ status: captured.status, headers: pickReplayHeaders(captured.headers, replay.headers), body: captured.body });
    } else {
      await lease.abort();
    }
  } catch (err) {
    reportLeaseProblem(err, logger);
  }
}

/**
 * Ends a request's lease with no response to store (the handler threw, or the request is over):
 * releases a lock, aborts a record so a retry runs again. A second call does nothing.
 */
export function abandonLease(held: HeldLease, config: { readonly logger: Logger; readonly replay: RecordEnding | undefined }): Promise<void> {
  if (held.kind === 'lock') return releaseLease(held.lease, config.logger);
  return finishRecord(held.lease, config.replay!, config.logger, undefined);
}

function reportLeaseProblem(err: unknown, logger: Logger): void {
  if (isStoreFailure(err)) return;
  if (err instanceof LeaseLostError) {
    logger.warn(`[ratelock] withLock: ${err.message}; another request may have run with this key meanwhile (compare fences)`);
    return;
  }
  (logger.error ?? logger.warn).call(logger, `[ratelock] withLock: ending the lease failed: ${err instanceof Error ? err.message : String(err)}`);
}
