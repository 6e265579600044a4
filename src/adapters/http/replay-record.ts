/**
 * Ending an idempotency record with the response the handler produced, from an adapter where
 * nobody can catch an error: this never rejects (lease problems are reported through the logger).
 */
import { reportLeaseProblem, type IdempotencyLease, type Logger } from '../../core/index.js';
import { isStorableStatus, type CapturedResponse } from './idempotency-capture.js';
import { pickReplayHeaders } from './idempotency-headers.js';
import type { ReplayConfig } from './lock-options.js';

/**
 * Stores `captured` when its status is storable, else (or without a response: the handler threw
 * or the client left before any) aborts the record so a retry runs again. A second call does nothing.
 */
export async function finishRecord(lease: IdempotencyLease, replay: Omit<ReplayConfig, 'fingerprint'>, logger: Logger, captured: CapturedResponse | undefined): Promise<void> {
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
