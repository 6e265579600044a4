/**
 * The `refund` option: once the request's outcome is KNOWN, give back exactly this request's cost
 * (core `refund()`, which removes only the entries this decision recorded). Like express-rate-limit's
 * skipSuccessfulRequests / skipFailedRequests, but without a second counter.
 *
 * A refund is decided on the status the app actually produced, never on a guess: a client that
 * hangs up while the handler runs must not get its cost back while the handler goes on and succeeds
 * (that would let `refund: 'failure'` be bypassed by closing sockets). When the outcome is never
 * known (the app never answers), the cost is kept.
 */
import type { ServerResponse } from 'node:http';
import type { Decision, RateLimiter } from '../../core/index.js';
import type { RefundConfig } from './limiter-options.js';
import { onResponseOutcome } from './response-outcome.js';

/** `true` for a produced status that counts as success (below 400). */
export function isSuccessStatus(status: number): boolean {
  return status < 400;
}


/**
 * Gives back `decision`'s cost if `refundConfig` says so for this outcome. `succeeded` is the known
 * outcome; `askPredicate` calls the user's predicate with the adapter's arguments. `req` goes to an
 * `(err, req)` onStoreError if the refund fails.
 */
export function settleRefund<Req, Predicate>(
  limiter: RateLimiter<Req>,
  decision: Decision,
  refundConfig: RefundConfig<Predicate>,
  req: Req,
  succeeded: boolean,
  askPredicate: (predicate: Predicate) => unknown,
): void {
  let giveBack: boolean;
  try {
    if (refundConfig.mode === 'predicate') giveBack = Boolean(askPredicate(refundConfig.predicate));
    else giveBack = (refundConfig.mode === 'success') === succeeded;
  } catch (err) {
    // The response is gone: a throwing predicate can only be reported.
    const { logger } = limiter;
    (logger.error ?? logger.warn).call(logger, `[ratelock] refund predicate threw; cost kept: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  // refund() never rejects on store failures (it logs them); nothing else can reject.
  if (giveBack) void limiter.refund(decision, req);
}

/**
 * The Node-level arrangement (Express): settle the refund when the response's outcome is known
 * (see `onResponseOutcome`), on the status the app produced.
 */
export function refundWhenDone<Req, Predicate>(
  limiter: RateLimiter<Req>,
  decision: Decision,
  refundConfig: RefundConfig<Predicate>,
  req: Req,
  res: ServerResponse,
  askPredicate: (predicate: Predicate) => unknown,
): void {
  onResponseOutcome(res, () => settleRefund(limiter, decision, refundConfig, req, isSuccessStatus(res.statusCode), askPredicate));
}
