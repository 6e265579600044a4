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

/**
 * One key's place in the LRU order: a doubly linked list beside the Map, so that marking a key used
 * is a few pointer writes. (Re-inserting the key in the Map instead costs a delete and a set per
 * access, and the churn of deleted slots makes V8 rebuild the Map's table: measured ~0.7 µs per
 * access on one hot key.)
 */
class Node<T> {
  /** Towards the least recently used end. */
  older: Node<T> | undefined;
  /** Towards the most recently used end. */
  newer: Node<T> | undefined;
  constructor(
    readonly key: string,
    public entry: T,
  ) {}
}

export class ExpiringMap<T extends Expiring> {
  private readonly nodes = new Map<string, Node<T>>();
  /** Least recently used. */
  private oldest: Node<T> | undefined;
  /** Most recently used. */
  private newest: Node<T> | undefined;
  private readonly maxKeys: number;
  private readonly maxWeight: number;
  /** Undefined for unweighted maps, so their hot paths skip the bookkeeping. */
  private readonly weigh: ((entry: T) => number) | undefined;
  private totalWeight = 0;
  /**
   * The rolling sweep's position: the next node to visit (towards the newest), and how many keys
   * its pass may still visit. Removing that node first moves the cursor to its newer neighbour.
   */
  private cursor: Node<T> | undefined;
  private passLeft = 0;

  constructor(bounds: ExpiringMapBounds<T> = {}) {
    this.maxKeys = bounds.maxKeys ?? Infinity;
    this.maxWeight = bounds.maxWeight ?? Infinity;
    this.weigh = bounds.weigh;
  }

  /** Number of keys held, expired ones not yet swept included. */
  get size(): number {
    return this.nodes.size;
  }

  /** Total weight of the entries held (0 for an unweighted map). */
  get weight(): number {
    return this.totalWeight;
  }

  /** The live entry under `key`, marked most recently used; an expired one is deleted instead. */
  get(key: string, now: number): T | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    if (node.entry.expiresAt <= now) {
      this.remove(node);
      return undefined;
    }
    if (node !== this.newest) {
      this.unlink(node);
      this.append(node);
    }
    return node.entry;
  }

  /** The live entry under `key`, without marking it used; an expired one is deleted instead. */
  find(key: string, now: number): T | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    if (node.entry.expiresAt > now) return node.entry;
    this.remove(node);
    return undefined;
  }

  /** Stores `entry` under `key` as the most recently used. Call `evictOverflow` when the operation ends. */
  set(key: string, entry: T): void {
    const node = this.nodes.get(key);
    if (this.weigh !== undefined) {
      if (node !== undefined) this.forget(node.entry);
      this.totalWeight += this.weigh(entry);
    }
    if (node !== undefined) {
      node.entry = entry;
      if (node !== this.newest) {
        this.unlink(node);
        this.append(node);
      }
      return;
    }
    const added = new Node(flatten(key), entry);
    this.nodes.set(added.key, added);
    this.append(added);
  }

  delete(key: string): void {
    const node = this.nodes.get(key);
    if (node !== undefined) this.remove(node);
  }

  /**
   * Evicts least recently used keys until the bounds hold; returns how many. Run at the end of an
   * operation, so the keys it just touched (the most recent) are the last to go.
   */
  evictOverflow(): number {
    let evicted = 0;
    while ((this.nodes.size > this.maxKeys || this.totalWeight > this.maxWeight) && this.oldest !== undefined) {
      this.remove(this.oldest);
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
        if (this.nodes.size === 0) break;
        this.cursor = this.oldest;
        this.passLeft = this.nodes.size;
      }
      const node = this.cursor!;
      this.cursor = node.newer;
      this.passLeft--;
      if (node.entry.expiresAt <= now) {
        this.remove(node);
        removed++;
      }
    }
    return removed;
  }

  private remove(node: Node<T>): void {
    this.nodes.delete(node.key);
    this.unlink(node);
    this.forget(node.entry);
  }

  private append(node: Node<T>): void {
    node.older = this.newest;
    node.newer = undefined;
    if (this.newest === undefined) this.oldest = node;
    else this.newest.newer = node;
    this.newest = node;
  }

  private unlink(node: Node<T>): void {
    if (this.cursor === node) this.cursor = node.newer;
    if (node.older === undefined) this.oldest = node.newer;
    else node.older.newer = node.newer;
    if (node.newer === undefined) this.newest = node.older;
    else node.newer.older = node.older;
    node.older = undefined;
    node.newer = undefined;
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
