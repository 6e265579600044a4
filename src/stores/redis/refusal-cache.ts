/**
 * Refusals remembered locally. When Redis answers that a call is refused until T (its deciding
 * limit needs `retryAfterMs` for the call's cost to fit), the same call — the same limits, keys,
 * own costs and cost — cannot pass before T either, so this process answers it itself, without a
 * round trip, until T or for MAX_REFUSAL_HOLD_MS, whichever ends first (see below). Not a larger
 * cost: it is refused too, but needs longer than T, which only Redis knows (Retry-After stays
 * exact). A 429 flood on one key then costs Redis one call per second, not one per request.
 *
 * It never lets more through than Redis would: only refusals are remembered. What it can get
 * wrong is the other way round, and only for changes made by ANOTHER process: a reset or refund
 * made elsewhere leaves the call refused here for at most MAX_REFUSAL_HOLD_MS (a limiter with
 * `refund: 'failure'` on several processes gives units back all the time; a penalty box reset by
 * an admin process may have had an hour to run). Resets and refunds made through this store
 * forget the refusals of their keys at once. `remaining`, `resetMs` and `nextQuotaMs` are Redis's
 * answer at the time of the refusal (the times counted down), `retryAfterMs` counts down to T.
 * They stay true only until the deciding limit frees its next unit (`nextQuotaMs`): a refusal is
 * answered here until then, T or MAX_REFUSAL_HOLD_MS, whichever comes first, so a call whose cost
 * needs several units to free asks Redis again once one has (and learns the new `remaining`).
 *
 * Bounded: at most MAX_REFUSALS calls (least recently refused dropped first), ~300 bytes each.
 */
import { performance } from 'node:perf_hooks';
import type { ConsumeResult, StoreLimit } from '../../core/store.js';

/** Most refusals remembered (≈ 3 MB at the most). */
export const MAX_REFUSALS = 10_000;

/** Longest a refusal is answered here before Redis is asked again (what another process changed shows by then). */
export const MAX_REFUSAL_HOLD_MS = 1_000;

interface Refusal {
  /** Monotonic ms at which the call can pass again. */
  readonly until: number;
  /** Monotonic ms until which the remembered answer holds: T, or the next unit freed before it. */
  readonly answerableUntil: number;
  /** Monotonic ms of the refusal. */
  readonly at: number;
  readonly result: ConsumeResult;
  readonly keys: readonly string[];
}

export class RefusalCache {
  readonly #refusals = new Map<string, Refusal>();
  /** Limit key → signatures of the refusals that involve it, so a reset or refund forgets them. */
  readonly #byKey = new Map<string, Set<string>>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max = MAX_REFUSALS, now: () => number = () => performance.now()) {
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#refusals.size;
  }

  /** The remembered refusal of this call, counted down to now; undefined when there is none (or it ran out). */
  lookup(limits: readonly StoreLimit[], cost: number): ConsumeResult | undefined {
    if (this.#refusals.size === 0) return undefined; // the allow path pays nothing
    const signature = signatureOf(limits, cost);
    const refusal = this.#refusals.get(signature);
    if (refusal === undefined) return undefined;
    const now = this.#now();
    if (now >= refusal.answerableUntil) {
      this.#delete(signature, refusal);
      return undefined;
    }
    const { index, remaining, resetMs, nextQuotaMs, boxed } = refusal.result;
    const elapsed = now - refusal.at;
    return {
      allowed: false,
      index,
      remaining,
      resetMs: Math.max(0, Math.ceil(resetMs - elapsed)),
      retryAfterMs: Math.max(1, Math.ceil(refusal.until - now)),
      stamp: 0,
      // 0 keeps its meaning (nothing waiting to free); else it has not run out (answerableUntil).
      nextQuotaMs: nextQuotaMs === 0 ? 0 : Math.max(1, Math.ceil(nextQuotaMs - elapsed)),
      ...(boxed === true ? { boxed } : {}),
    };
  }

  /**
   * Remembers `result` if it is a refusal with a known end (a cost that can never fit is not
   * remembered). A call with a penalty box is remembered only once its box is closed: until then
   * each of its refusals is a strike that only Redis can count.
   */
  remember(limits: readonly StoreLimit[], cost: number, result: ConsumeResult): void {
    if (result.allowed || !(result.retryAfterMs > 0)) return;
    if (result.boxed !== true && limits.some((limit) => limit.algorithm === 'penalty-box')) return;
    const signature = signatureOf(limits, cost);
    const previous = this.#refusals.get(signature);
    if (previous !== undefined) this.#delete(signature, previous);
    const at = this.#now();
    const keys = limits.map((limit) => limit.key);
    const until = at + result.retryAfterMs;
    const answerableUntil = Math.min(until, at + MAX_REFUSAL_HOLD_MS, result.nextQuotaMs > 0 ? at + result.nextQuotaMs : Infinity);
    this.#refusals.set(signature, { until, answerableUntil, at, result, keys });
    for (const key of keys) {
      let signatures = this.#byKey.get(key);
      if (signatures === undefined) this.#byKey.set(key, (signatures = new Set()));
      signatures.add(signature);
    }
    if (this.#refusals.size > this.#max) {
      const [oldest, refusal] = this.#refusals.entries().next().value as [string, Refusal];
      this.#delete(oldest, refusal);
    }
  }

  /** Forgets every refusal that involves one of `keys` (a reset or refund through this store changed them). */
  forget(keys: readonly string[]): void {
    if (this.#refusals.size === 0) return;
    for (const key of keys) {
      const signatures = this.#byKey.get(key);
      if (signatures === undefined) continue;
      for (const signature of [...signatures]) {
        const refusal = this.#refusals.get(signature);
        if (refusal !== undefined) this.#delete(signature, refusal);
      }
    }
  }

  #delete(signature: string, refusal: Refusal): void {
    this.#refusals.delete(signature);
    for (const key of refusal.keys) {
      const signatures = this.#byKey.get(key);
      if (signatures === undefined) continue;
      signatures.delete(signature);
      if (signatures.size === 0) this.#byKey.delete(key);
    }
  }
}

/** What makes two calls the same: each limit's key, quota, window and own cost, in order, and the call's cost. */
function signatureOf(limits: readonly StoreLimit[], cost: number): string {
  let signature = `${cost}\n`;
  for (const { key, limit, windowMs, cost } of limits) signature += `${key}\n${limit}\n${windowMs}\n${cost ?? ''}\n`;
  return signature;
}
