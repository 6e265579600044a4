/**
 * One limit's sliding log, the in-memory twin of lua/sliding-log.lua's log of ms timestamps. A request of
 * cost c is c entries of one stamp; entries of equal stamp are kept as one run `(stamp, count)`,
 * so memory grows with the number of distinct stamps, not with the cost. Results are identical
 * to one element per unit of cost.
 */
export class SlidingLog {
  /** Runs oldest first, flattened `[stamp, count, stamp, count, ...]`; live from `head`. Stamps strictly increase. */
  private runs: number[];
  /** Index in `runs` of the oldest live run: trimming advances it, compaction resets it. */
  private head = 0;
  /** Number of entries (sum of the run counts). */
  total: number;
  /** The longest window this log was written for: how long its newest entry keeps it alive. */
  private windowMs: number;

  /** A log holding `count` entries of `stamp`, which count for `windowMs`. */
  constructor(stamp: number, count: number, windowMs: number) {
    this.runs = [stamp, count];
    this.total = count;
    this.windowMs = windowMs;
  }

  /**
   * Store time (ms) from which nothing in this log counts any more, so the key may be swept.
   * Derived rather than stored: a stored ms timestamp would cost a boxed number per key.
   */
  get expiresAt(): number {
    const newest = this.newest();
    return newest === undefined ? -Infinity : newest + this.windowMs;
  }

  /** Stamp of the newest entry, or undefined when empty. */
  newest(): number | undefined {
    return this.total === 0 ? undefined : this.runs[this.runs.length - 2];
  }

  /** Stamp of the oldest entry, or undefined when empty. */
  oldest(): number | undefined {
    return this.total === 0 ? undefined : this.runs[this.head];
  }

  /**
   * Drops the entries that no longer count at `now` (`now - stamp >= windowMs`), oldest first. If
   * the newest entry is more than a window ahead of `now` (the clock stepped back by over a
   * window), drops everything, so nobody stays blocked for longer than a window.
   */
  trim(now: number, windowMs: number): void {
    const newest = this.newest();
    if (newest !== undefined && newest > now + windowMs) {
      this.clear();
      return;
    }
    const runs = this.runs;
    let head = this.head;
    while (head < runs.length && now - runs[head]! >= windowMs) {
      this.total -= runs[head + 1]!;
      head += 2;
    }
    this.head = head;
    this.compact();
  }

  /**
   * Stamp of the entry `k` places from the newest (0 = newest), as LINDEX k on the Redis list.
   * Requires 0 ≤ k < total. Walks from the nearer end, so the usual lookups (a blocked request
   * needs an entry near the oldest) touch few runs.
   */
  entryFromNewest(k: number): number {
    const runs = this.runs;
    if (k < this.total / 2) {
      let seen = 0;
      for (let i = runs.length - 2; i >= this.head; i -= 2) {
        seen += runs[i + 1]!;
        if (seen > k) return runs[i]!;
      }
    } else {
      const fromOldest = this.total - 1 - k;
      let seen = 0;
      for (let i = this.head; i < runs.length; i += 2) {
        seen += runs[i + 1]!;
        if (seen > fromOldest) return runs[i]!;
      }
    }
    throw new RangeError(`entry ${k} requested from a log of ${this.total} entries`);
  }

  /** Adds `count` entries of `stamp`, which must be ≥ the newest stamp (keeps the log sorted). */
  append(stamp: number, count: number, windowMs: number): void {
    const runs = this.runs;
    if (this.total > 0 && runs[runs.length - 2] === stamp) runs[runs.length - 1]! += count;
    else runs.push(stamp, count);
    this.total += count;
    if (windowMs > this.windowMs) this.windowMs = windowMs;
  }

  /** Removes up to `count` entries equal to `stamp` (a refund); returns how many were removed. */
  remove(stamp: number, count: number): number {
    const runs = this.runs;
    // Refunds target recent requests, so search from the newest run.
    for (let i = runs.length - 2; i >= this.head; i -= 2) {
      const runStamp = runs[i]!;
      if (runStamp < stamp) return 0;
      if (runStamp > stamp) continue;
      const removed = Math.min(runs[i + 1]!, count);
      runs[i + 1]! -= removed;
      this.total -= removed;
      if (runs[i + 1] === 0) runs.splice(i, 2);
      return removed;
    }
    return 0;
  }

  private clear(): void {
    this.runs = [];
    this.head = 0;
    this.total = 0;
  }

  /** Releases trimmed runs once they are the larger part of the array: amortised O(1) per run. */
  private compact(): void {
    if (this.head === this.runs.length) this.clear();
    else if (this.head >= 16 && this.head * 2 >= this.runs.length) {
      this.runs = this.runs.slice(this.head);
      this.head = 0;
    }
  }
}
