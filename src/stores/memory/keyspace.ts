/**
 * MemoryStore's keyspace: one Map of key → entry, kept in least-recently-used order (an access
 * re-inserts the key at the end), with expiry on access, a bounded rolling sweep of expired keys
 * and eviction of the least recently used keys beyond `maxKeys`. Every operation is O(1) amortised.
 */

/** Anything stored under a key; it no longer exists once `expiresAt <= now`. */
export interface Expiring {
  readonly expiresAt: number;
}

export class ExpiringKeyspace {
  private readonly entries = new Map<string, Expiring>();
  /** The rolling sweep's position: a live Map iterator, and how many keys its pass may still visit. */
  private cursor: Iterator<[string, Expiring]> | undefined;
  private passLeft = 0;
  /**
   * Eviction's position: a live iterator over keys in LRU order. Kept across calls because a
   * fresh iterator would re-skip every deleted slot at the front of the Map's table, O(n) per
   * eviction; every key it has passed was evicted, so its next key is always the LRU one.
   */
  private evictionCursor: Iterator<string> | undefined;

  constructor(private readonly maxKeys: number) {}

  /** Number of keys held, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  /** The live entry under `key`, marked most recently used; an expired one is deleted instead. */
  get(key: string, now: number): Expiring | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.entries.set(key, entry);
    return entry;
  }

  /** Stores `entry` under `key` as the most recently used. Call `evictOverflow` when the operation ends. */
  set(key: string, entry: Expiring): void {
    this.entries.delete(key);
    this.entries.set(flatten(key), entry);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /**
   * Evicts least recently used keys until at most `maxKeys` remain; returns how many. Run at the
   * end of an operation, so the keys it just touched (the most recent) are the last to go.
   */
  evictOverflow(): number {
    let evicted = 0;
    while (this.entries.size > this.maxKeys) {
      this.evictionCursor ??= this.entries.keys();
      const oldest = this.evictionCursor.next();
      if (oldest.done) {
        this.evictionCursor = undefined; // exhausted iterators stay done: start a new one
        continue;
      }
      this.entries.delete(oldest.value);
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
        removed++;
      }
    }
    return removed;
  }

  /** Deletes every key. */
  clear(): void {
    this.entries.clear();
    this.cursor = undefined;
    this.passLeft = 0;
    this.evictionCursor = undefined;
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
