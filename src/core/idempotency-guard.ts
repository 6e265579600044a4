/**
 * The idempotency guard without HTTP. One record per (already scoped) id: while in flight it is a
 * lease like a lock's (token-checked, fenced, auto-extensible, gone `ttl` after its holder
 * crashed); once completed it holds the response for `replayTtl`. `begin` is one store call that
 * answers acquired | in-flight | mismatch | replay.
 */
import { DEFAULTS } from './defaults.js';
import { formatValue, parseDuration, type Duration } from './duration.js';
import { ConfigError } from './errors.js';
import type { Logger } from './store-call.js';
import type { IdempotencyStore } from './store.js';
import { beginRecord, type IdempotencyOutcome, type RecordSettings } from './idempotency/record.js';
import { LeaseGuard, type GuardKind } from './lock/lease-guard.js';
import { parseWaitOptions, validateGuardKey } from './lock/options.js';

export { IdempotencyLease, type IdempotencyOutcome } from './idempotency/record.js';

export interface IdempotencyGuardOptions {
  /** @default the process-wide MemoryStore */
  store?: IdempotencyStore | undefined;
  /** In-flight lease (≥ MIN_LEASE_TTL_MS, 150 ms): a crashed holder frees the key after this. @default DEFAULTS.lockTtlMs (30 s) */
  ttl?: Duration | undefined;
  /** How long a completed response is kept for replay. @default DEFAULTS.replayTtlMs (24 h) */
  replayTtl?: Duration | undefined;
  /** @default DEFAULTS.idempotencyPrefix (`'idem:'`) */
  prefix?: string | undefined;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** Longest the in-flight lease is auto-extended. @default max(ttl, DEFAULTS.lockMaxHoldMs) */
  maxHold?: Duration | undefined;
  /** @default console */
  logger?: Logger | undefined;
}

export interface BeginOptions {
  /** ms to keep polling while a duplicate is in flight, then answer its replay (or in-flight). @default 0 */
  wait?: Duration | undefined;
  signal?: AbortSignal | undefined;
}

const IDEMPOTENCY_GUARD: GuardKind = {
  owner: 'IdempotencyGuard',
  example: "{ store, ttl: '30s', replayTtl: '24h' }",
  optionNames: ['store', 'ttl', 'replayTtl', 'prefix', 'timeout', 'maxHold', 'logger'] satisfies (keyof IdempotencyGuardOptions)[],
  storeNeeds: 'idempotency',
  defaultPrefix: DEFAULTS.idempotencyPrefix,
};

/**
 * @example
 * const guard = new IdempotencyGuard({ store, ttl: '30s', replayTtl: '24h' });
 * const outcome = await guard.begin(JSON.stringify([clientId, idempotencyKey]), fingerprint);
 * if (outcome.state === 'acquired') await outcome.lease.complete(await run());
 */
export class IdempotencyGuard extends LeaseGuard<IdempotencyStore> implements RecordSettings {
  readonly replayTtlMs: number;

  /** @throws ConfigError naming the bad option. */
  constructor(options: IdempotencyGuardOptions = {}) {
    super(options, IDEMPOTENCY_GUARD);
    this.replayTtlMs = parseDuration(options.replayTtl ?? DEFAULTS.replayTtlMs, 'replayTtl');
  }

  /**
   * Starts the request `id` (scope it per client yourself) with its request `fingerprint`.
   * @throws StoreError / StoreTimeoutError when the store fails (a late grant is aborted when it lands).
   */
  async begin(id: string, fingerprint: string, options: BeginOptions = {}): Promise<IdempotencyOutcome> {
    validateGuardKey(id, 'begin(id)');
    if (typeof fingerprint !== 'string') throw new ConfigError(`begin(fingerprint) must be a string; got ${formatValue(fingerprint)}`);
    const { waitMs, signal } = parseWaitOptions(options, 'begin()');
    return beginRecord(this, id, fingerprint, waitMs, signal);
  }
}
