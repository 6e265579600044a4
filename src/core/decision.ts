/** What a rate-limit check returns: a plain value the adapters translate to HTTP. */
import type { StoreError, StoreTimeoutError } from './errors.js';

/**
 * How a limit counts: `'sliding-log'` (exact count of the last window, one entry per unit) or
 * `'gcra'` (one timestamp per key: `limit` per `window` as an even rate, `burst` at once).
 */
export type Algorithm = 'sliding-log' | 'gcra';

/** One limit as configured: `limit` requests (cost units) per `windowMs`. */
export interface Policy {
  /** Names the limit in headers and keys: the `name` option, else `<limit>-in-<window>` (e.g. `'100-in-1m'`; `'100-in-1m-gcra'` for GCRA), or the window alone (`'1m'`) for a `limit(req)` function. */
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  /** Present only on GCRA limits (absent = `'sliding-log'`). */
  readonly algorithm?: 'gcra' | undefined;
  /** GCRA: units that may pass at once (default `limit`). */
  readonly burst?: number | undefined;
}

/**
 * - `allowed` / `limited`: the store decided.
 * - `blocked`: the client's penalty box (`block` option) is closed, or this refusal closed it:
 *   refused until it opens (`retryAfterMs`), without its limits being read or written.
 * - `store-error` / `store-timeout`: the store failed; `allowed` then follows `onStoreError`.
 */
export type DecisionReason = 'allowed' | 'limited' | 'blocked' | 'store-error' | 'store-timeout';

/** `'enforce'`: refuse what the limits refuse; `'shadow'`: decide and record the same way, never refuse. */
export type LimitMode = 'enforce' | 'shadow';

/**
 * The outcome of one check, exposed as `req.rateLimit` (Express) / `ctx.state.rateLimit` (Koa).
 *
 * @example limit 5 per 15 min, 5th request: `{ allowed: true, limit: 5, remaining: 0, retryAfterMs: 0, ... }`;
 *          6th: `{ allowed: false, remaining: 0, retryAfterMs: <until the oldest of the 5 is 15 min old> }`.
 */
export interface Decision {
  readonly allowed: boolean;
  /** Quota of the deciding policy (the blocking one, or the one closest to blocking). */
  readonly limit: number;
  /** Quota left on the deciding policy, ≥ 0. */
  readonly remaining: number;
  /** ms until the deciding policy's log is empty (full quota again). */
  readonly resetMs: number;
  /**
   * ms until the deciding policy has one more unit of quota than `remaining` (the draft-10 `t`):
   * on a sliding log, until its oldest entry (after this request's write) leaves the window.
   * 0 when nothing is waiting to free (the log is empty: a cost above the limit, or a store failure).
   */
  readonly nextQuotaMs: number;
  /** 0 when allowed; else ms until a retry of the same cost can be allowed (window length when it never can). */
  readonly retryAfterMs: number;
  /** The client key the extractors produced (e.g. `'203.0.113.7'`), or the rule's key for route tables. */
  readonly key: string;
  /** The deciding policy. */
  readonly policy: Policy;
  /** Every policy checked in this call. */
  readonly policies: readonly Policy[];
  readonly reason: DecisionReason;
  /**
   * Decided in shadow mode (`mode: 'shadow'` on the limiter, the route table or the deciding rule):
   * decided and recorded exactly as an enforcing limiter would, `allowed: false` past the limit,
   * but never enforced: the request goes through, with no 429, no 503 and no quota headers.
   */
  readonly shadow: boolean;
  /**
   * Set when `shadow` is true and the request also met enforced limits (a route table mixing
   * shadow and enforced rules): the decision of the enforced limits alone, which the response
   * follows (its quota headers; a refund gives back both).
   */
  readonly enforced?: Decision | undefined;
  /** The store failure, when `reason` is `store-error` or `store-timeout`. */
  readonly error?: StoreError | StoreTimeoutError | undefined;
}
