/**
 * A deliberately naive model of the sliding-log contract, written straight from the Lua design:
 * one array element per unit of cost, newest first, rescanned on every call. Each limit takes its
 * own `cost`, else the call's. The property tests
 * hold MemoryStore's run-length logs to it, and it checks the window invariant independently.
 */
import type { ConsumeResult, StoreLimit } from '../../src/core/store.js';

export class ReferenceLimiter {
  /** Per key: entry stamps (ms), newest first. */
  private readonly logs = new Map<string, number[]>();

  /** An independent copy, to ask "what if" questions without changing this model. */
  clone(): ReferenceLimiter {
    const copy = new ReferenceLimiter();
    for (const [key, log] of this.logs) copy.logs.set(key, [...log]);
    return copy;
  }

  consume(limits: readonly StoreLimit[], cost: number, now: number): ConsumeResult {
    return this.decide(limits, cost, now, true);
  }

  peek(limits: readonly StoreLimit[], cost: number, now: number): ConsumeResult {
    return this.decide(limits, cost, now, false);
  }

  refund(limits: readonly StoreLimit[], cost: number, stamp: number): void {
    for (const { key, cost: ownCost } of limits) {
      const log = this.logs.get(key) ?? [];
      let left = ownCost ?? cost;
      // LREM key cost stamp: from the head (newest) on.
      this.logs.set(
        key,
        log.filter((entry) => {
          if (entry !== stamp || left === 0) return true;
          left--;
          return false;
        }),
      );
    }
  }

  private decide(limits: readonly StoreLimit[], cost: number, now: number, record: boolean): ConsumeResult {
    const counted = limits.map(({ key, windowMs }) => {
      let log = this.logs.get(key) ?? [];
      if (log.length > 0 && log[0]! > now + windowMs) log = [];
      log = log.filter((entry) => now - entry < windowMs);
      this.logs.set(key, log);
      return log;
    });
    const costs = limits.map((limit) => limit.cost ?? cost);
    const allowed = limits.every(({ limit }, i) => counted[i]!.length + costs[i]! <= limit);
    if (allowed) {
      const stamp = Math.max(now, ...counted.map((log) => log[0] ?? -Infinity));
      const remainders = limits.map(({ limit }, i) => limit - counted[i]!.length - costs[i]!);
      const index = remainders.indexOf(Math.min(...remainders));
      if (record) limits.forEach(({ key }, i) => this.logs.set(key, [...Array<number>(costs[i]!).fill(stamp), ...this.logs.get(key)!]));
      // The deciding log after the (real or hypothetical) write: its oldest entry frees a unit first.
      const oldest = counted[index]![counted[index]!.length - 1] ?? stamp;
      return {
        allowed: true,
        index,
        remaining: remainders[index]!,
        resetMs: stamp + limits[index]!.windowMs - now,
        retryAfterMs: 0,
        stamp: record ? stamp : 0,
        nextQuotaMs: oldest + limits[index]!.windowMs - now,
      };
    }
    const waits = limits.map(({ limit, windowMs }, i) => {
      const log = counted[i]!;
      const units = costs[i]!;
      if (log.length + units <= limit) return -Infinity;
      if (units > limit) return Infinity;
      return log[limit - units]! + windowMs - now;
    });
    const index = waits.indexOf(Math.max(...waits));
    const log = counted[index]!;
    const { limit, windowMs } = limits[index]!;
    // remaining + 1 once the log keeps at most (limit - remaining - 1) entries: the newest ones.
    const remaining = Math.max(0, limit - log.length);
    const freeing = log[limit - remaining - 1];
    return {
      allowed: false,
      index,
      remaining,
      resetMs: log.length === 0 ? 0 : log[0]! + windowMs - now,
      retryAfterMs: waits[index] === Infinity ? -1 : waits[index]!,
      stamp: 0,
      nextQuotaMs: freeing === undefined ? 0 : freeing + windowMs - now,
    };
  }
}
