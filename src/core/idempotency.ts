/**
 * Idempotency records without HTTP. One record per (already scoped) id: while in flight it is a
 * lease like a lock's (token-checked, fenced, auto-extensible, gone `ttl` after its holder
 * crashed); once completed it holds the response for `replayTtl`. `begin` is one store call that
 * answers acquired | in-flight | mismatch | replay.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULTS } from './defaults.js';
import { describe, parseDuration, type Duration } from './duration.js';
import { ConfigError, LeaseLostError } from './errors.js';
import { idempotencyKeys, validatePrefix } from './keyspace.js';
import { callStore, type Logger } from './store-call.js';
import type { IdempotencyBeginResult, IdempotencyKeys, Store, StoredResponse } from './store.js';
import { Lease, type LeaseInit, type LeaseOperations } from './lock/lease.js';
import { monotonicNow, pollWhileBusy } from './lock/poll.js';
import {
  defaultMaxHold,
  parseMaxHold,
  parseWait,
  rejectUnknownOptions,
  requireOptionsObject,
  validateGuardKey,
  validateGuardStore,
  validateSignal,
} from './lock/options.js';
import { validateLogger } from './rate-limiter.js';
import { getDefaultStore } from '../stores/default-store.js';

export interface IdempotencyGuardOptions {
  /** @default the process-wide MemoryStore (`getDefaultStore()`) */
  store?: Store;
  /** In-flight lease: a crashed holder frees the key after this. @default DEFAULTS.lockTtlMs (30 s) */
  ttl?: Duration;
  /** How long a completed response is kept for replay. @default DEFAULTS.replayTtlMs (24 h) */
  replayTtl?: Duration;
  /** @default DEFAULTS.idempotencyPrefix (`'idem:'`) */
  prefix?: string;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration;
  /** Longest the in-flight lease is auto-extended. @default max(ttl, DEFAULTS.lockMaxHoldMs) */
  maxHold?: Duration;
  /** @default console */
  logger?: Logger;
}

export interface BeginOptions {
  /** ms to keep polling while a duplicate is in flight, then answer its replay (or in-flight). @default 0 */
  wait?: Duration;
  signal?: AbortSignal;
}

export type IdempotencyOutcome =
  /** This caller runs the operation and must `complete()` or `abort()` the lease. */
  | { readonly state: 'acquired'; readonly lease: IdempotencyLease }
  /** A duplicate with the same fingerprint is running (still, after `wait`). */
  | { readonly state: 'in-flight'; readonly retryAfterMs: number }
  /** The id was used for a different request (fingerprint), in flight or done. */
  | { readonly state: 'mismatch' }
  /** Done: the stored response (`body` null when it was not replayable). */
  | { readonly state: 'replay'; readonly response: StoredResponse };

interface IdempotencyLeaseOperations extends LeaseOperations {
  complete(response: StoredResponse): Promise<boolean>;
}

/** The in-flight lease of an idempotency record: `release()`/`abort()` delete it, `complete()` stores the response. */
export class IdempotencyLease extends Lease {
  private readonly completeOperation: IdempotencyLeaseOperations['complete'];

  constructor(init: LeaseInit & { readonly operations: IdempotencyLeaseOperations }) {
    super(init);
    this.completeOperation = init.operations.complete;
  }

  /**
   * Stores `response` for replay, if this token still holds the in-flight record.
   * @throws LeaseLostError when the lease was lost (the new holder's record is untouched); store failures as is.
   */
  async complete(response: StoredResponse): Promise<void> {
    this.assertHeld();
    this.end();
    const completed = await this.completeOperation(response);
    if (!completed) throw this.markLost(new LeaseLostError(this.key));
  }

  /** Deletes the in-flight record so a retry runs again (same as `release()`). */
  abort(): Promise<void> {
    return this.release();
  }
}

const OPTION_NAMES = ['store', 'ttl', 'replayTtl', 'prefix', 'timeout', 'maxHold', 'logger'] as const;
const BEGIN_OPTION_NAMES = ['wait', 'signal'] as const;

/**
 * @example
 * const guard = new IdempotencyGuard({ store, ttl: '30s', replayTtl: '24h' });
 * const outcome = await guard.begin(JSON.stringify([clientId, idempotencyKey]), fingerprint);
 * if (outcome.state === 'acquired') await outcome.lease.complete(await run());
 */
export class IdempotencyGuard {
  readonly store: Store;
  readonly ttlMs: number;
  readonly replayTtlMs: number;
  readonly maxHoldMs: number;
  readonly timeoutMs: number;
  readonly prefix: string;
  readonly logger: Logger;

  /** @throws ConfigError naming the bad option. */
  constructor(options: IdempotencyGuardOptions = {}) {
    requireOptionsObject(options, 'IdempotencyGuard', "{ store, ttl: '30s', replayTtl: '24h' }");
    rejectUnknownOptions(options, OPTION_NAMES, 'IdempotencyGuard');
    this.store = validateGuardStore(options.store, 'store', 'idempotency') ?? getDefaultStore();
    this.ttlMs = parseDuration(options.ttl ?? DEFAULTS.lockTtlMs, 'ttl');
    this.replayTtlMs = parseDuration(options.replayTtl ?? DEFAULTS.replayTtlMs, 'replayTtl');
    this.maxHoldMs = options.maxHold === undefined ? defaultMaxHold(this.ttlMs, DEFAULTS.lockMaxHoldMs) : parseMaxHold(options.maxHold, this.ttlMs, 'maxHold');
    this.timeoutMs = parseDuration(options.timeout ?? DEFAULTS.timeoutMs, 'timeout');
    this.prefix = validatePrefix(options.prefix ?? DEFAULTS.idempotencyPrefix, 'prefix');
    this.logger = validateLogger(options.logger) ?? console;
  }

  /**
   * Starts the request `id` (scope it per client yourself) with its request `fingerprint`.
   * @throws StoreError / StoreTimeoutError when the store fails (a late grant is aborted when it lands).
   */
  async begin(id: string, fingerprint: string, options: BeginOptions = {}): Promise<IdempotencyOutcome> {
    validateGuardKey(id, 'begin(id)');
    if (typeof fingerprint !== 'string') throw new ConfigError(`begin(fingerprint) must be a string; got ${describe(fingerprint)}`);
    requireOptionsObject(options, 'begin()', '{ wait: 2000 }');
    rejectUnknownOptions(options, BEGIN_OPTION_NAMES, 'begin()');
    const waitMs = parseWait(options.wait ?? DEFAULTS.lockWaitMs, 'wait');
    const signal = validateSignal(options.signal, 'begin() option signal');
    signal?.throwIfAborted();

    const keys = idempotencyKeys(this.prefix, id);
    const token = randomUUID();
    let sentAt = 0;
    const attempt = (): Promise<IdempotencyBeginResult> => {
      sentAt = monotonicNow();
      return callStore(this.store, () => this.store.beginIdempotent(keys, token, fingerprint, this.ttlMs), {
        timeoutMs: this.timeoutMs,
        logger: this.logger,
        failureMode: 'closed',
        onLate: (late) => {
          if (late.state === 'acquired') this.abortQuietly(keys, token);
        },
      });
    };
    const result = await pollWhileBusy(attempt, (r) => (r.state === 'in-flight' ? r.retryAfterMs : undefined), { waitMs, signal });
    if (result.state !== 'acquired') return result;
    if (signal?.aborted) {
      this.abortQuietly(keys, token);
      throw signal.reason;
    }
    const lease = new IdempotencyLease({
      key: id,
      token,
      fence: result.fence,
      ttlMs: this.ttlMs,
      maxHoldMs: this.maxHoldMs,
      acquiredAt: sentAt,
      operations: {
        extend: (ttlMs) => this.call(() => this.store.extendIdempotent(keys, token, ttlMs)),
        release: () => this.call(() => this.store.abortIdempotent(keys, token)),
        complete: (response) => this.call(() => this.store.completeIdempotent(keys, token, response, this.replayTtlMs)),
      },
    });
    return { state: 'acquired', lease };
  }

  private call<T>(operation: () => Promise<T>): Promise<T> {
    return callStore(this.store, operation, { timeoutMs: this.timeoutMs, logger: this.logger, failureMode: 'closed' });
  }

  private abortQuietly(keys: IdempotencyKeys, token: string): void {
    Promise.resolve()
      .then(() => this.store.abortIdempotent(keys, token))
      .catch(() => undefined);
  }
}
