/**
 * checkLimits: the answer to a consume or peek, all-or-nothing over its limits, as a pure
 * function of the limits' state. The same step, with the same rules in the same order, as
 * `check_limits` in lua/consume.lua, so both stores answer identically. Penalty boxes are not
 * quotas: MemoryStore reads them before (a closed box answers alone, `boxedResult`) and strikes
 * them after; here they are skipped.
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';
import { GcraState, gcraFits, gcraNextMs, gcraUnitsLeft, gcraWaitMs, readTat } from './gcra.js';
import type { SlidingLog } from './sliding-log.js';

/** The state of one limit as checkLimits reads it: its trimmed log, its GCRA state, or nothing (empty, or a box). */
export type LimitState = SlidingLog | GcraState | undefined;

/** GCRA: ms per unit. */
export function periodOf(limit: StoreLimit): number {
  return limit.windowMs / limit.limit;
}

/** GCRA: units that may pass at once. */
export function burstOf(limit: StoreLimit): number {
  return limit.burst ?? limit.limit;
}

const isGcra = (limit: StoreLimit): boolean => limit.algorithm === 'gcra';
const isBox = (limit: StoreLimit): boolean => limit.algorithm === 'penalty-box';

/** The TAT of a GCRA limit at `now` (its state read as lua/gcra.lua's read_tat does). */
export function tatOf(limit: StoreLimit, state: LimitState, now: number): number {
  return readTat(state instanceof GcraState ? state : undefined, now, periodOf(limit), burstOf(limit));
}

function logOf(state: LimitState): SlidingLog | undefined {
  return state instanceof GcraState ? undefined : state;
}

/**
 * The result of a request against `limits`, whose state is `states` (undefined = empty); each
 * limit takes its own `cost`, else the call's `cost`. `record`: whether the caller will write
 * the request (consume) or not (peek). When allowed and recorded, `stamp` is the stamp the write
 * must use: max(now, newest entry of every log), so every log stays sorted even if the clock
 * stepped back a little; else 0.
 */
export function checkLimits(limits: readonly StoreLimit[], states: readonly LimitState[], cost: number, now: number, record: boolean): ConsumeResult {
  let allowed = true;
  let stamp = now;
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]!;
    if (isBox(limit)) continue;
    if (!fits(limit, states[i], cost, now)) allowed = false;
    const newest = logOf(states[i])?.newest();
    if (newest !== undefined && newest > stamp) stamp = newest;
  }
  return allowed ? allowedResult(limits, states, cost, now, stamp, record) : blockedResult(limits, states, cost, now);
}

/** The answer of a closed penalty box at `index`: refused until it opens. */
export function boxedResult(index: number, closedMs: number): ConsumeResult {
  return { allowed: false, index, remaining: 0, resetMs: closedMs, retryAfterMs: closedMs, stamp: 0, nextQuotaMs: closedMs, boxed: true };
}

function fits(limit: StoreLimit, state: LimitState, cost: number, now: number): boolean {
  const units = limit.cost ?? cost;
  if (isGcra(limit)) return gcraFits(tatOf(limit, state, now), now, periodOf(limit), burstOf(limit), units);
  return (logOf(state)?.total ?? 0) + units <= limit.limit;
}

/** Units left on `limit` after taking `taken` more; may be negative. */
function unitsLeft(limit: StoreLimit, state: LimitState, now: number, taken: number): number {
  if (isGcra(limit)) return gcraUnitsLeft(tatOf(limit, state, now), now, periodOf(limit), burstOf(limit), taken);
  return limit.limit - (logOf(state)?.total ?? 0) - taken;
}

/** Deciding limit = fewest remaining after the request (ties: lowest index). */
function allowedResult(limits: readonly StoreLimit[], states: readonly LimitState[], cost: number, now: number, stamp: number, record: boolean): ConsumeResult {
  let index = -1;
  let remaining = Infinity;
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]!;
    if (isBox(limit)) continue;
    const left = unitsLeft(limit, states[i], now, limit.cost ?? cost);
    if (left < remaining) {
      index = i;
      remaining = left;
    }
  }
  const limit = limits[index]!;
  if (isGcra(limit)) {
    const period = periodOf(limit);
    const tat = tatOf(limit, states[index], now) + (limit.cost ?? cost) * period;
    return { allowed: true, index, remaining, resetMs: Math.ceil(tat - now), retryAfterMs: 0, stamp: record ? stamp : 0, nextQuotaMs: gcraNextMs(tat, now, period, burstOf(limit)) };
  }
  // After the write (real or, for peek, hypothetical) the deciding log's newest entry is `stamp`,
  // and it holds at most its limit, so its oldest entry frees first (`stamp` if it was empty).
  const { windowMs } = limit;
  const oldest = logOf(states[index])?.oldest() ?? stamp;
  return { allowed: true, index, remaining, resetMs: stamp + windowMs - now, retryAfterMs: 0, stamp: record ? stamp : 0, nextQuotaMs: oldest + windowMs - now };
}

/**
 * Deciding limit = the blocking limit with the longest wait (ties: lowest index); a limit its cost
 * can never fit (cost > limit, or > burst) waits forever, so it decides and the answer is -1.
 */
function blockedResult(limits: readonly StoreLimit[], states: readonly LimitState[], cost: number, now: number): ConsumeResult {
  let index = 0;
  let wait = -Infinity;
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]!;
    if (isBox(limit) || fits(limit, states[i], cost, now)) continue;
    const units = limit.cost ?? cost;
    let limitWait: number;
    if (isGcra(limit)) {
      const waitMs = gcraWaitMs(tatOf(limit, states[i], now), now, periodOf(limit), burstOf(limit), units);
      limitWait = waitMs === -1 ? Infinity : waitMs;
    } else {
      // The entry at (limit - units) from the newest must age out to leave room for `units` more.
      limitWait = units > limit.limit ? Infinity : logOf(states[i])!.entryFromNewest(limit.limit - units) + limit.windowMs - now;
    }
    if (limitWait > wait) {
      index = i;
      wait = limitWait;
    }
  }
  const limit = limits[index]!;
  const retryAfterMs = wait === Infinity ? -1 : wait;
  if (isGcra(limit)) {
    const period = periodOf(limit);
    const burst = burstOf(limit);
    const tat = tatOf(limit, states[index], now);
    return {
      allowed: false,
      index,
      remaining: Math.max(0, gcraUnitsLeft(tat, now, period, burst, 0)),
      resetMs: Math.ceil(tat - now),
      retryAfterMs,
      stamp: 0,
      nextQuotaMs: gcraNextMs(tat, now, period, burst),
    };
  }
  const { windowMs } = limit;
  const log = logOf(states[index]);
  const newest = log?.newest();
  // One more unit frees when the entry at min(total, limit) - 1 from the newest ages out.
  const freeing = log === undefined ? undefined : log.entryFromNewest(Math.min(log.total, limit.limit) - 1);
  return {
    allowed: false,
    index,
    remaining: Math.max(0, limit.limit - (log?.total ?? 0)),
    resetMs: newest === undefined ? 0 : newest + windowMs - now,
    retryAfterMs,
    stamp: 0,
    nextQuotaMs: freeing === undefined ? 0 : freeing + windowMs - now,
  };
}
