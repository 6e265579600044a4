/**
 * Observability without a dependency: every rate-limit decision and every `withLock` outcome is
 * published on a `node:diagnostics_channel` channel. Publishing is guarded by `hasSubscribers`, so
 * with nobody listening a decision builds no message and reads no clock: the cost is one boolean
 * read. Anything may subscribe (`diagnostics_channel.subscribe('ratelock:decision', fn)`); the
 * OpenTelemetry bridge (src/metrics/opentelemetry.ts) is one such subscriber.
 *
 * | channel | published | message |
 * | --- | --- | --- |
 * | `ratelock:decision` | every decision of `RateLimiter` (consume, peek) and of the HTTP limiters | `DecisionMessage` |
 * | `ratelock:lock` | every `withLock` request that asked for a lock or an idempotency record | `LockMessage` |
 */
import { channel } from 'node:diagnostics_channel';
import type { Decision } from './decision.js';

/** Name of the channel of rate-limit decisions. */
export const DECISION_CHANNEL = 'ratelock:decision';
/** Name of the channel of `withLock` outcomes. */
export const LOCK_CHANNEL = 'ratelock:lock';

export const decisionChannel = channel(DECISION_CHANNEL);
export const lockChannel = channel(LOCK_CHANNEL);

/**
 * What a decision amounted to, for counting:
 * - `allowed`: the store let it through.
 * - `limited`: refused by an enforced limit (429).
 * - `shadow_limited`: over a limit in shadow mode (let through, `decision.shadow`).
 * - `store_error` / `store_timeout`: the store failed or did not answer within `timeout`; the
 *   decision followed `onStoreError` (fail-open or fail-closed, see `decision.allowed`).
 * - `blocked_by_penalty`: refused by a penalty box (decision reason `'blocked'`, once a penalty
 *   box exists; no decision has that reason yet).
 */
export type DecisionOutcome = 'allowed' | 'limited' | 'shadow_limited' | 'store_error' | 'store_timeout' | 'blocked_by_penalty';

/** Who asked for the decision: an adapter's name, or `'core'` for `RateLimiter` used directly. */
export type DecisionSource = 'core' | 'express' | 'koa' | 'fastify' | 'hono' | (string & {});

/** A `ratelock:decision` message. */
export interface DecisionMessage {
  readonly decision: Decision;
  readonly outcome: DecisionOutcome;
  /** `'express'`, `'koa'`, … or `'core'`. */
  readonly adapter: DecisionSource;
  /** The store operation: `'consume'`, or `'peek'` (RateLimiter.peek). */
  readonly operation: 'consume' | 'peek';
  /** ms spent in the store call(s) of this decision, timeout included (fractional). */
  readonly durationMs: number;
}

/** The reason a penalty box will give its refusals (it maps to `blocked_by_penalty`). */
const PENALTY_REASON = 'blocked';

const OUTCOME_BY_REASON: Readonly<Record<string, DecisionOutcome>> = {
  allowed: 'allowed',
  limited: 'limited',
  'store-error': 'store_error',
  'store-timeout': 'store_timeout',
  [PENALTY_REASON]: 'blocked_by_penalty',
};

/** The outcome of `decision` (see DecisionOutcome). */
export function decisionOutcome(decision: Decision): DecisionOutcome {
  if (decision.reason === 'limited' && decision.shadow) return 'shadow_limited';
  return OUTCOME_BY_REASON[decision.reason] ?? 'allowed';
}

/**
 * What a `withLock` request got:
 * - `acquired`: it holds the lock (lock mode) or the idempotency record (replay mode).
 * - `busy`: another request holds the lock; `in_flight`: a duplicate with the same Idempotency-Key runs.
 * - `replayed`: its stored response was sent again; `mismatch`: the key was used for another request (422).
 * - `no_key`: no usable key (400).
 * - `store_error` / `store_timeout`: the store failed; `onStoreError` decided (503 or unguarded).
 * - `client_gone`: the client left while the request waited for the key (`wait`); nothing was answered.
 */
export type LockOutcomeName = 'acquired' | 'busy' | 'in_flight' | 'replayed' | 'mismatch' | 'no_key' | 'store_error' | 'store_timeout' | 'client_gone';

/** A `ratelock:lock` message. */
export interface LockMessage {
  /** `'lock'`: withLock's lock mode; `'replay'`: Idempotency-Key replay. */
  readonly mode: 'lock' | 'replay';
  readonly outcome: LockOutcomeName;
  /** The key as the request gave it (Idempotency-Key or the `key` extractor's value) when `acquired`, `busy` or `in_flight`; else undefined. */
  readonly key: string | undefined;
  /** ms from asking the store to its answer, `wait` polling and timeout included (fractional). */
  readonly durationMs: number;
}
