/**
 * The store interfaces: one per guard (rate limit, lock, idempotency); MemoryStore and RedisStore
 * implement all three (`Store`). Core builds the key names (store-keys.ts) and calls these methods;
 * a store only knows its data structures. Each method is one atomic step: one Lua call on Redis,
 * one synchronous JS step in memory.
 *
 * Time is the store's own clock (Redis `TIME`, a monotonic clock in memory), never the caller's.
 */

/**
 * How a limit counts (`StoreLimit.algorithm`):
 * - `'sliding-log'` (absent): one entry per unit admitted in the last `windowMs`; exact.
 * - `'gcra'`: one timestamp per key (the theoretical arrival time). One unit is emitted every
 *   `windowMs / limit` ms and up to `burst` units may pass at once.
 * - `'penalty-box'`: not a quota but the client's box: `limit` refusals of this call's limits in
 *   a row (no allowed request between them, each within `windowMs` of the previous one) close it
 *   for `blockMs`, during which every call that includes it is refused without reading or
 *   writing the other limits.
 */
export type StoreAlgorithm = 'sliding-log' | 'gcra' | 'penalty-box';

/**
 * One limit as the store sees it. A store may read it after the call returns (RedisStore
 * sends the decisions of one event-loop turn together), so callers never change it afterwards.
 */
export interface StoreLimit {
  /** Full key of this limit's log, built by core (namespaced, hash-tagged, ≤ 200 bytes). */
  readonly key: string;
  /** Window length in ms, integer ≥ 1. An entry counts while `now - entry < windowMs`. */
  readonly windowMs: number;
  /** Quota per window, integer ≥ 1. */
  readonly limit: number;
  /**
   * Units this request takes on this limit, integer ≥ 1; defaults to the call's `cost`. Lets one
   * atomic call charge each limit differently (route-table rules with their own costs).
   */
  readonly cost?: number | undefined;
  /** @default 'sliding-log' */
  readonly algorithm?: StoreAlgorithm | undefined;
  /** `'gcra'`: units that may pass at once, integer ≥ 1. @default limit */
  readonly burst?: number | undefined;
  /** `'penalty-box'`: ms the box stays closed, integer ≥ 1. */
  readonly blockMs?: number | undefined;
}

/**
 * The outcome of checking a list of limits for a request of `cost`. Every rule below uses each
 * limit's own cost (`StoreLimit.cost`, else the call's `cost`).
 *
 * "Deciding limit" (`index`): when blocked, the blocking limit with the longest wait; when allowed,
 * the limit with the fewest remaining (ties: the lowest index).
 *
 * @example limit 10 / 1 s, 9 entries in the log, cost 1 → allowed, remaining 0;
 *          then another cost 1 → blocked, remaining 0, retryAfterMs = (oldest entry + 1000) - now.
 */
export interface ConsumeResult {
  readonly allowed: boolean;
  /** Index (into the `limits` passed) of the deciding limit. */
  readonly index: number;
  /** Quota left on the deciding limit after this request (its cost taken: allowed) or now (blocked); ≥ 0. */
  readonly remaining: number;
  /** ms until the deciding limit's log is empty (0 if it is empty). */
  readonly resetMs: number;
  /**
   * 0 when allowed; else ms until the deciding limit has room for its cost again; -1 when it never
   * can (that limit's cost > its limit).
   */
  readonly retryAfterMs: number;
  /** The timestamp written (store clock, ms) when allowed and recorded; 0 otherwise. Pass it to `refund`. */
  readonly stamp: number;
  /**
   * ms until the deciding limit has one more unit of quota than `remaining` (its log counted after
   * this request's write when allowed, real or hypothetical for peek): until the entry at
   * `min(entries, limit) - 1` from the newest leaves the window — the oldest entry, unless the log
   * holds more entries than the limit. 0 when that log is empty (nothing is waiting to free).
   * Never more than `resetMs`; when blocked, never more than `retryAfterMs` (unless that is -1).
   */
  readonly nextQuotaMs: number;
  /**
   * `true` when a penalty box refused the call (`index` is the box's): it was closed, or this
   * refusal closed it. `resetMs`, `retryAfterMs` and `nextQuotaMs` are then the ms until it opens.
   */
  readonly boxed?: boolean | undefined;
}

/** Keys of one lock: the lease and its fencing counter (same hash tag). */
export interface LockKeys {
  readonly lock: string;
  readonly fence: string;
}

export type LockAcquireResult =
  | { readonly acquired: true; readonly fence: number }
  | { readonly acquired: false; /** ms left on the current holder's lease. */ readonly retryAfterMs: number };

/** Keys of one idempotency record: the record (a hash) and its fencing counter (same hash tag). */
export interface IdempotencyKeys {
  readonly record: string;
  readonly fence: string;
}

/** A finished response kept for replay. `body` null = the response was not replayable (too large, streamed). */
export interface StoredResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Buffer | null;
}

export type IdempotencyBeginResult =
  /** No record (or an expired one): the caller holds the record's lease and runs the handler. */
  | { readonly state: 'acquired'; readonly fence: number }
  /** Another request with the same key and fingerprint is running. */
  | { readonly state: 'in-flight'; readonly retryAfterMs: number }
  /** A record exists with a different fingerprint (in flight or done). */
  | { readonly state: 'mismatch' }
  /** Done: replay this response. */
  | { readonly state: 'replay'; readonly response: StoredResponse };

/** The run an idempotency begin started: its fence and the request's fingerprint (see completeIdempotent). */
export interface IdempotencyRun {
  readonly fence: number;
  readonly fingerprint: string;
}

/** Rate limiting: sliding-log limits checked and recorded all-or-nothing. */
export interface RateLimitStore {
  /**
   * Checks every limit; only if each has room for its cost (its own `cost`, else the call's `cost`,
   * integers ≥ 1) records the request in all of them (that many entries each), else records
   * nothing. Keys may carry different hash tags (per-route tables): one atomic call where the
   * backend allows it (see RedisStore docs for Cluster).
   */
  consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult>;
  /** As `consume`, but never records: what a request of these costs would get now. */
  peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult>;
  /** Removes from each limit's log exactly its cost (its own, else `cost`) of entries stamped `stamp` (those still there). */
  refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void>;
  /** Deletes these limit logs. */
  reset(keys: readonly string[]): Promise<void>;
}

/**
 * Optional capability of a store that decides in this process (MemoryStore): consume (`record`
 * true) or peek answered at once, throwing what `consume` / `peek` would reject with. A limiter
 * then skips what a remote answer needs (a promise, the timeout budget, the microtask hops): a Koa
 * middleware on MemoryStore took 1.45 instead of 2.0 µs per request. Keyed by a symbol the
 * package does not export, so it is no part of the store contract a custom store implements.
 */
export const decideInProcess: unique symbol = Symbol('ratelock.decideInProcess');

export interface InProcessDecisions {
  [decideInProcess](limits: readonly StoreLimit[], cost: number, record: boolean): ConsumeResult;
}

/** Whether `store` decides in this process (see decideInProcess). */
export function decidesInProcess(store: object): store is InProcessDecisions {
  return typeof (store as Partial<InProcessDecisions>)[decideInProcess] === 'function';
}

/**
 * Optional capability of a store that stops sending calls on a connection that has not answered
 * for a while (RedisStore's in-flight gate): each guard tells it the budget (`timeout`) of its
 * calls, so the store waits at least that long for a reply before it gives up on the connection
 * and fails new calls unsent. A Redis merely slower than usual (a loaded host, a fork for
 * BGSAVE, a distant server) then still answers a guard that chose to wait for it. Keyed by a
 * symbol the package does not export, as decideInProcess.
 */
export const noteCallBudget: unique symbol = Symbol('ratelock.noteCallBudget');

interface NotesCallBudgets {
  [noteCallBudget](timeoutMs: number): void;
}

/** Tells `store` a guard's call budget, if it wants to know (see noteCallBudget). */
export function tellCallBudget(store: object, timeoutMs: number): void {
  const notes = (store as Partial<NotesCallBudgets>)[noteCallBudget];
  if (typeof notes === 'function') notes(timeoutMs); // a function of the store's own: no `this` (a Proxy may wrap the store)
}

/** Locks: token-checked, fenced leases. */
export interface LockStore {
  /**
   * Takes the lock if free (or already held with this same `token`: a re-sent acquire), with a lease
   * of `ttlMs`. The fence strictly increases per key, also after the counter is lost:
   * max(previous + 1, store time in µs).
   */
  acquireLock(keys: LockKeys, token: string, ttlMs: number): Promise<LockAcquireResult>;
  /** Sets the lease to `ttlMs` from now only if `token` still holds it. Never re-acquires. */
  extendLock(keys: LockKeys, token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the lock only if `token` holds it. */
  releaseLock(keys: LockKeys, token: string): Promise<boolean>;
}

/** Idempotency records: an in-flight lease, then the stored response. */
export interface IdempotencyStore {
  /** Starts an idempotent request: see IdempotencyBeginResult. The in-flight lease lasts `leaseMs`. */
  beginIdempotent(keys: IdempotencyKeys, token: string, fingerprint: string, leaseMs: number): Promise<IdempotencyBeginResult>;
  /** Extends the in-flight lease if `token` still holds it. */
  extendIdempotent(keys: IdempotencyKeys, token: string, leaseMs: number): Promise<boolean>;
  /**
   * Stores the response (kept `ttlMs`) if `token` still holds the in-flight record; `true` also
   * when this token completed it already. With `run` (what the holder's begin started), also when
   * the lease lapsed but no request has begun on the key since: the record is gone and the key's
   * fence is still `run.fence`, so nobody else ran, and storing the response keeps the operation
   * at one run. A store may ignore `run`; such a complete then answers `false`.
   */
  completeIdempotent(keys: IdempotencyKeys, token: string, response: StoredResponse, ttlMs: number, run?: IdempotencyRun): Promise<boolean>;
  /** Deletes the in-flight record if `token` holds it, so a retry can run. */
  abortIdempotent(keys: IdempotencyKeys, token: string): Promise<boolean>;
}

/**
 * What MemoryStore and RedisStore implement. A custom store may implement only the part its guards
 * use: a RateLimitStore for limiters, a LockStore for locks, an IdempotencyStore for replay.
 */
export type Store = RateLimitStore & LockStore & IdempotencyStore;
