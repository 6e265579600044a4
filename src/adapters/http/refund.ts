/**
 * The `refund` option: once the response is over, give back exactly this request's cost (core
 * `refund()`, which removes only the entries this decision recorded). Like express-rate-limit's
 * skipSuccessfulRequests / skipFailedRequests, but without a second counter.
 *
 * "Over" is the Node response's `close` event, which fires after `finish` and also when the
 * client went away first; a response that never finished counts as a failure.
 */
import type { ServerResponse } from 'node:http';
import { refund, type StoreCallOptions } from '../../core/decide.js';
import type { Decision } from '../../core/decision.js';
import type { RefundConfig } from './options.js';

/** `true` when the response was fully sent with a status below 400. */
export function responseSucceeded(res: ServerResponse): boolean {
  return res.writableFinished && res.statusCode < 400;
}

/**
 * Arranges the refund of `decision` when `res` closes, if `refundConfig` says so. `callOptions` are
 * the request's own (see `callOptionsFor`), so a `(err, req)` onStoreError is asked about a failed
 * refund too. `askPredicate` calls the user's predicate with the adapter's arguments (Express
 * `(req, res)`, Koa `(ctx)`).
 */
export function refundWhenDone<Predicate>(
  res: ServerResponse,
  decision: Decision,
  refundConfig: RefundConfig<Predicate>,
  callOptions: StoreCallOptions,
  askPredicate: (predicate: Predicate) => unknown,
): void {
  res.once('close', () => {
    let giveBack: boolean;
    try {
      if (refundConfig.mode === 'predicate') giveBack = Boolean(askPredicate(refundConfig.predicate));
      else giveBack = (refundConfig.mode === 'success') === responseSucceeded(res);
    } catch (err) {
      // The response is gone: a throwing predicate can only be reported.
      const { logger } = callOptions;
      (logger.error ?? logger.warn).call(logger, `[ratelock] refund predicate threw; cost kept: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // refund() never rejects on store failures (it logs them); nothing else can reject.
    if (giveBack) void refund(decision, callOptions);
  });
}
