/**
 * Ending an idempotency record with the response the handler produced, from an adapter where
 * nobody can catch an error: this never rejects (lease problems are reported through the logger).
 */
import { claimLeaseEnd, isStoreFailure, reportLeaseProblem, type IdempotencyLease, type Logger } from '../../core/index.js';
import { decodedBody } from './content-coding.js';
import { isStorableStatus, type CapturedResponse } from './idempotency-capture.js';
import { pickReplayHeaders } from './idempotency-headers.js';
import type { ReplayConfig } from './lock-options.js';

/**
 * Stores `captured` when its status is storable, else (or without a response: the handler threw
 * or the client left before any) aborts the record so a retry runs again. Once per lease, with
 * RequestLock.end (claimLeaseEnd): whichever comes first ends it.
 */
export async function finishRecord(lease: IdempotencyLease, replay: Omit<ReplayConfig, 'fingerprint'>, logger: Logger, captured: CapturedResponse | undefined): Promise<void> {
  if (!claimLeaseEnd(lease)) return;
  const storable = captured !== undefined && isStorableStatus(captured.status, replay.storeServerErrors);
  try {
    if (storable) {
      const body = captured.body && (await decodedBody(captured.headers, captured.body, replay.maxBodyBytes));
      await lease.complete({ status: captured.status, headers: pickReplayHeaders(captured.headers, replay.headers, body), body });
    } else {
      await lease.abort();
    }
  } catch (err) {
    // The one case where the handler may run twice although it finished: say so, apart from the
    // store outage (logged once for all calls).
    if (storable && isStoreFailure(err)) {
      logger.warn(`[ratelock] withLock: the response for idempotency key "${lease.key}" was sent without being stored (${err.message}); a retry of the request will run the handler again`);
    } else {
      reportLeaseProblem(err, logger);
    }
  }
}
