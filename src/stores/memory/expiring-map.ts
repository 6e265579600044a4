/**
 * ExpiringMap: a Map of key → entry kept in least-recently-used order (an access re-inserts the
 * key at the end), with expiry on access, a bounded rolling sweep of expired keys, and (when
 * bounded) eviction of the least recently used keys beyond a key count or a total weight. Every
 * operation is O(1) amortised. MemoryStore keeps each kind of state in one of these.
 */

/** Anything stored under a key; it no longer exists once `expiresAt <= now`. */
export interface Expiring {
  readonly expiresAt: number;
}

/** What `evictOverflow` enforces. Both default to unbounded: such a map never evicts. */
export interface ExpiringMapBounds<T> {
  /** Most keys kept. */
  readonly maxKeys?: number | undefined;
  /** Most total weight kept, as measured by `weigh`. */
  readonly maxWeight?: number | undefined;
  /** An entry's weight (e.g. its bytes); must not change while the entry is stored. */
  readonly weigh?: ((entry: T) => number) | undefined;
}

export class ExpiringMap<T extends Expiring> {
  private readonly entries = new Map<string, T>();
  private readonly maxKeys: number;
  private readonly maxWeight: number;
  /** Undefined for unweighted maps, so their hot paths skip the bookkeeping. */
  private readonly weigh: ((entry: T) => number) | undefined;
  private totalWeight = 0;
  /** The rolling sweep's position: a live Map iterator, and how many keys its pass may still visit. */
  private cursor: Iterator<[string, T]> | undefined;
  private passLeft = 0;
  /**
   * Eviction's position: a live iterator over keys in LRU order. Kept across calls because a
   * fresh iterator would re-skip every deleted slot at the front of the Map's table, O(n) per
   * eviction; every key it has passed was evicted, so its next key is always the LRU one.
   */
  private evictionCursor: Iterator<string> | undefined;

  constructor(bounds: ExpiringMapBounds<T> = {}) {
    this.maxKeys = bounds.maxKeys ?? Infinity;
    this.maxWeight = bounds.maxWeight ?? Infinity;
    this.weigh = bounds.weigh;
  }

  /** Number of keys held, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  /** Total weight of the entries held (0 for an unweighted map). */
  get weight(): number {
    return this.totalWeight;
  }

  /** The live entry under `key`, marked most recently used; an expired one is deleted instead. */
  get(key: string, now: number): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= now) {
      this.forget(entry);
      return undefined;
    }
    this.entries.set(key, entry);
    return entry;
  }

  /** The live entry under `key`, without marking it used; an expired one is deleted instead. */
  find(key: string, now: number): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.expiresAt > now) return entry;
    this.entries.delete(key);
    this.forget(entry);
    return undefined;
  }

  /** Stores `entry` under `key` as the most recently used. Call `evictOverflow` when the operation ends. */
  set(key: string, entry: T): void {
    if (this.weigh !== undefined) {
      const previous = this.entries.get(key);
      if (previous !== undefined) this.forget(previous);
      this.totalWeight += this.weigh(entry);
    }
    this.entries.delete(key);
    this.entries.set(flatten(key), entry);
  }

  delete(key: string): void {
    if (this.weigh !== undefined) {
      const entry = this.entries.get(key);
      if (entry !== undefined) this.forget(entry);
    }
    this.entries.delete(key);
  }

  /**
   * Evicts least recently used keys until the bounds hold; returns how many. Run at the end of an
   * operation, so the keys it just touched (the most recent) are the last to go.
   */
  evictOverflow(): number {
    let evicted = 0;
    while (this.entries.size > this.maxKeys || this.totalWeight > this.maxWeight) {
      this.evictionCursor ??= this.entries.keys();
      const oldest = this.evictionCursor.next();
      if (oldest.done) {
        this.evictionCursor = undefined; // exhausted iterators stay done: start a new one
        continue;
      }
      this.delete(oldest.value);
      evicted++;
    }
    return evicted;
  }

  /**
   * Visits up to `budget` keys, continuing where the last sweep stopped, and deletes the expired
   * ones; returns how many. A pass covers the keys present when it started (least recently used
   * first), then the next pass starts over, so every expired key goes within size / budget sweeps.
   */
  sweep(now: number, budget: number): number {
    let removed = 0;
    for (let visited = 0; visited < budget; visited++) {
      if (this.cursor === undefined || this.passLeft === 0) {
        if (this.entries.size === 0) break;
        this.cursor = this.entries.entries();
        this.passLeft = this.entries.size;
      }
      const step = this.cursor.next();
      this.passLeft--;
      if (step.done) {
        this.passLeft = 0;
        continue;
      }
      const [key, entry] = step.value;
      if (entry.expiresAt <= now) {
        this.entries.delete(key);
        this.forget(entry);
        removed++;
      }
    }
    return removed;
  }

  /** Takes a removed entry's weight off the total. */
  private forget(entry: T): void {
    if (this.weigh !== undefined) this.totalWeight -= this.weigh(entry);
  }
}

/**
 * Keys usually arrive as concatenations (`${prefix}{${digest}}:${window}`), which V8 keeps as a
 * tree of parts plus the strings they were sliced from: ~190 bytes for a 30-character key.
 * Reading a character flattens the string in place (~80 bytes). Semantically a no-op.
 */
function flatten(key: string): string {
  key.charCodeAt(0);
  return key;
}
