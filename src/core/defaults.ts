/**
 * Every default value of ratelock, in one place: option parsers read them from here and the
 * README quotes this object, so a default is never restated (and never drifts) elsewhere.
 */
export const DEFAULTS = {
  /** Key prefix of rate-limit logs (`rateLimit`, `RateLimiter`). */
  prefix: 'rl:',
  /** Key prefix of locks (`withLock`, `LockGuard`). */
  lockPrefix: 'lk:',
  /** Key prefix of idempotency records (`withLock({ replay })`). */
  idempotencyPrefix: 'idem:',
  /** ms budget of one store call, whatever the Redis client's own retries and queues would do. */
  timeoutMs: 250,
  /** Rate-limit response headers: `'draft-10'`, `'draft-8'`, `'draft-7'`, `'draft-6'`, `'legacy'` or `false`. */
  headers: 'draft-10',
  /** Status of a rate-limited response. */
  statusCode: 429,
  /** Status when a fail-closed guard cannot reach its store. */
  storeErrorStatusCode: 503,
  /** Rate limiter on store failure: let requests through (logged once per outage). */
  limiterOnStoreError: 'open',
  /** Lock and idempotency guards on store failure: refuse (503), never run a handler unguarded. */
  lockOnStoreError: 'closed',
  /**
   * `retryAfterMs` of a request refused because the store failed (fail-closed): a short back-off,
   * since we cannot know when the store comes back.
   */
  storeErrorRetryAfterMs: 1_000,
  /** IPv6 clients are keyed by this prefix length, so one client cannot rotate through its delegation. */
  ipv6Subnet: 56,
  /** The exact sliding log, unless `algorithm` (or a limit's own) says `'gcra'`. */
  algorithm: 'sliding-log',
  /** Lock lease, auto-extended while the handler runs. */
  lockTtlMs: 30_000,
  /** How long a contender waits for a busy lock before 409 (0: answer at once). */
  lockWaitMs: 0,
  /** Longest a lease is auto-extended, so a stuck handler cannot hold a key forever. */
  lockMaxHoldMs: 300_000,
  /** How long a finished response is kept for replay (Stripe keeps keys ≥ 24 h). */
  replayTtlMs: 86_400_000,
  /** Largest response body captured for replay; larger responses are stored as not replayable. */
  replayMaxBodyBytes: 1_048_576,
  /** Longest accepted `Idempotency-Key` (Stripe's maximum). */
  idempotencyKeyMaxLength: 255,
} as const;
