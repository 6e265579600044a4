/**
 * checkLimits: the answer to a consume or peek, all-or-nothing over its limits, as a pure
 * function of the limits' logs. The same step, with the same rules in the same order, as
 * `check_limits` in lua/consume.lua, so both stores answer identically.
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';
import type { SlidingLog } from './sliding-log.js';

/**
 * The result of a request against `limits`, whose trimmed logs are `logs` (undefined = empty);
 * each limit takes its own `cost`, else the call's `cost`. `record`: whether the caller will write
 * the request (consume) or not (peek). When allowed and recorded, `stamp` is the stamp the write
 * must use: max(now, newest entry of every log), so every log stays sorted even if the clock
 * stepped back a little; else 0.
 */
export function checkLimits(
  limits: readonly StoreLimit[],
  logs: readonly (SlidingLog | undefined)[],
  cost: number,
  now: number,
  record: boolean,
): ConsumeResult {
  let allowed = true;
  let stamp = now;
  for (let i = 0; i < limits.length; i++) {
    const log = logs[i];
    const limit = limits[i]!;
    if ((log?.total ?? 0) + (limit.cost ?? cost) > limit.limit) allowed = false;
    const newest = log?.newest();
    if (newest !== undefined && newest > stamp) stamp = newest;
  }
  return allowed ? allowedResult(limits, logs, cost, now, stamp, record) : blockedResult(limits, logs, cost, now);
}

/** Deciding limit = fewest remaining after the request (ties: lowest index). */
function allowedResult(
  limits: readonly StoreLimit[],
  logs: readonly (SlidingLog | undefined)[],
  cost: number,
  now: number,
  stamp: number,
  record: boolean,
): ConsumeResult {
  let index = 0;
  let remaining = Infinity;
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]!;
    const left = limit.limit - (logs[i]?.total ?? 0) - (limit.cost ?? cost);
    if (left < remaining) {
      index = i;
      remaining = left;
    }
  }
  // After the write (real or, for peek, hypothetical) the deciding log's newest entry is `stamp`,
  // and it holds at most its limit, so its oldest entry frees first (`stamp` if it was empty).
  const { windowMs } = limits[index]!;
  const oldest = logs[index]?.oldest() ?? stamp;
  return { allowed: true, index, remaining, resetMs: stamp + windowMs - now, retryAfterMs: 0, stamp: record ? stamp : 0, nextQuotaMs: oldest + windowMs - now };
}

/**
 * Deciding limit = the blocking limit with the longest wait (ties: lowest index); a limit its cost
 * can never fit (cost > limit) waits forever, so it decides and the answer is -1.
 */
function blockedResult(
  limits: readonly StoreLimit[],
  logs: readonly (SlidingLog | undefined)[],
  cost: number,
  now: number,
): ConsumeResult {
  let index = 0;
  let wait = -Infinity;
  for (let i = 0; i < limits.length; i++) {
    const { limit, windowMs, cost: ownCost } = limits[i]!;
    const units = ownCost ?? cost;
    const log = logs[i];
    const count = log?.total ?? 0;
    if (count + units <= limit) continue;
    // The entry at (limit - units) from the newest must age out to leave room for `units` more.
    const limitWait = units > limit ? Infinity : log!.entryFromNewest(limit - units) + windowMs - now;
    if (limitWait > wait) {
      index = i;
      wait = limitWait;
    }
  }
  const { limit, windowMs } = limits[index]!;
  const log = logs[index];
  const newest = log?.newest();
  // One more unit frees when the entry at min(total, limit) - 1 from the newest ages out.
  const freeing = log === undefined ? undefined : log.entryFromNewest(Math.min(log.total, limit) - 1);
  return {
    allowed: false,
    index,
    remaining: Math.max(0, limit - (log?.total ?? 0)),
    resetMs: newest === undefined ? 0 : newest + windowMs - now,
    retryAfterMs: wait === Infinity ? -1 : wait,
    stamp: 0,
    nextQuotaMs: freeing === undefined ? 0 : freeing + windowMs - now,
  };
}
