/**
 * What LockGuard and IdempotencyGuard share: the options both take, parsed once at construction,
 * and the way both take a lease from the store (one token per request, polling while the key is
 * busy, a grant that nobody will use given back at once).
 */
import { randomUUID } from 'node:crypto';
import { DEFAULTS } from '../defaults.js';
import { StoreError, isLastingFailure, isStoreFailure } from '../errors.js';
import { parseDuration } from '../duration.js';
import { validatePrefix } from '../store-keys.js';
import { defaultStore } from '../default-store.js';
import { readOptions, validateLogger } from '../options.js';
import { callStore, type Logger } from '../store-call.js';
import { defaultMaxHold, parseLeaseTtl, parseMaxHold, validateGuardStore } from './options.js';
import { monotonicNow, pollWhileBusy, retryUntil } from './poll.js';
import { tellCallBudget } from '../store.js';

/** A guard's parsed options: everything one lease operation needs. `Store` is a LockStore or an IdempotencyStore. */
export interface LeaseSettings<Store extends object = object> {
  readonly store: Store;
  readonly ttlMs: number;
  readonly maxHoldMs: number;
  readonly timeoutMs: number;
  readonly prefix: string;
  readonly logger: Logger;
}

/** How a guard names itself in errors, which option names it takes, and what it needs from the store. */
export interface GuardKind {
  readonly owner: string;
  readonly example: string;
  readonly optionNames: readonly string[];
  readonly storeNeeds: 'lock' | 'idempotency';
  readonly defaultPrefix: string;
}

/** Base of LockGuard and IdempotencyGuard: parses the options they share. */
export abstract class LeaseGuard<Store extends object> implements LeaseSettings<Store> {
  readonly store: Store;
  readonly ttlMs: number;
  readonly maxHoldMs: number;
  readonly timeoutMs: number;
  readonly prefix: string;
  readonly logger: Logger;

  /** @throws ConfigError naming the bad option. */
  protected constructor(options: unknown, kind: GuardKind) {
    const defined = readOptions(options, kind.optionNames, kind.owner, kind.example);
    this.store = (validateGuardStore(defined.store, 'store', kind.storeNeeds) ?? defaultStore()) as Store;
    this.ttlMs = parseLeaseTtl(defined.ttl ?? DEFAULTS.lockTtlMs, 'ttl');
    this.maxHoldMs = defined.maxHold === undefined ? defaultMaxHold(this.ttlMs) : parseMaxHold(defined.maxHold, this.ttlMs, 'maxHold');
    this.timeoutMs = parseDuration(defined.timeout ?? DEFAULTS.timeoutMs, 'timeout');
    tellCallBudget(this.store, this.timeoutMs);
    this.prefix = validatePrefix(defined.prefix ?? kind.defaultPrefix, 'prefix');
    this.logger = validateLogger(defined.logger) ?? console;
  }
}

/** The store calls behind one kind of lease, bound to one request's keys. */
export interface LeaseRequest<R> {
  /** Asks the store for the lease under `token` (acquire / begin). */
  ask(token: string): Promise<R>;
  isGranted(result: R): boolean;
  /** The holder's ms left while the key is busy (poll again), else undefined (granted, or settled otherwise). */
  busyFor(result: R): number | undefined;
  /** Token-checked give-back of a granted lease (release / abort). */
  giveBack(token: string): Promise<unknown>;
}

export interface LeaseGrant<R> {
  /** The last answer: granted, or whatever ended the wait. */
  readonly result: R;
  readonly token: string;
  /** Monotonic time at which the call that got `result` was sent: the lease counts from here. */
  readonly sentAt: number;
}

/**
 * Asks for a lease, polling for up to `waitMs` while the key is busy. Every attempt carries the
 * same token (a re-sent ask of ours counts as granted, not busy) and the timeout budget; a store
 * failure rejects (fail closed). A grant nobody will use — it landed after its attempt timed out,
 * or `signal` aborted meanwhile — is given back at once rather than left to expire after the ttl;
 * so is one that may have landed without its answer ever arriving: a failure unless the store
 * knows the call was not sent (StoreError.notSent).
 * @throws StoreError / StoreTimeoutError; `signal.reason` when it aborts.
 */
export async function requestLease<R>(settings: LeaseSettings<object>, request: LeaseRequest<R>, waitMs: number, signal: AbortSignal | undefined): Promise<LeaseGrant<R>> {
  signal?.throwIfAborted();
  const token = randomUUID();
  let sentAt = 0;
  const attempt = (): Promise<R> => {
    sentAt = monotonicNow();
    return callStore(settings.store, () => request.ask(token), {
      timeoutMs: settings.timeoutMs,
      logger: settings.logger,
      onLate: (late) => {
        if (request.isGranted(late)) giveBack(request, token, settings.ttlMs);
      },
    });
  };
  let result: R;
  try {
    result = await pollWhileBusy(attempt, request.busyFor, { waitMs, signal });
  } catch (err) {
    if (isStoreFailure(err) && !(err instanceof StoreError && err.notSent)) giveBack(request, token, settings.ttlMs);
    throw err;
  }
  if (request.isGranted(result) && signal?.aborted) {
    giveBack(request, token, settings.ttlMs);
    throw signal.reason;
  }
  return { result, token, sentAt };
}

/** A token-checked store call on a held lease, within the guard's timeout budget (fail closed). */
export function callLeaseStore<T>(settings: LeaseSettings<object>, operation: () => Promise<T>): Promise<T> {
  return callStore(settings.store, operation, { timeoutMs: settings.timeoutMs, logger: settings.logger });
}

/** First retry of a give-back that failed; each next one waits 4 times longer. */
const GIVE_BACK_RETRY_MS = 250;

/**
 * Gives back, token-checked, a grant nobody will use (nobody awaits it): one that landed late, was
 * abandoned by its aborted caller, or may have landed although its call failed (its reply lost
 * with the connection: a client that does not re-send commands, as node-redis and GLIDE, fails
 * the call though Redis ran it). Retried until one give-back reaches the store (the key is then
 * free, or was never taken), the lease would have run out anyway, or the failure is `lasting` (a
 * closed client). Timers are unref'd: nothing here keeps a process alive.
 */
function giveBack<R>(request: LeaseRequest<R>, token: string, ttlMs: number): void {
  const plan = { firstDelayMs: GIVE_BACK_RETRY_MS, factor: 4, maxDelayMs: Infinity, until: monotonicNow() + ttlMs, retryable: (err: unknown) => !isLastingFailure(err), keepAlive: false };
  retryUntil(() => request.giveBack(token), plan).catch(() => undefined);
}
