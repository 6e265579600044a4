/**
 * `withLock`'s guard, ONE configured object per middleware: for one request, find the key, scope
 * it, make the one store call (acquire the lock, or begin the idempotency record) and say what
 * happened, as plain data. The adapters turn the outcome into HTTP and hold the lease while the
 * handler runs; ending it goes through here too.
 *
 * Store ids: lock mode `key`, or `JSON.stringify([scope, key])` when scoped; replay mode always
 * `JSON.stringify([scope, key])`. The method, path, query and body are NOT part of the id but of
 * the fingerprint, so a key reused for another request is answered "mismatch" instead of running
 * again. The store keys hash ids, so neither length nor characters matter.
 */
import { LeaseLostError, LockBusyError, StoreTimeoutError, isStoreFailure } from './errors.js';
import type { IdempotencyGuard } from './idempotency-guard.js';
import { beginRecord, type IdempotencyLease } from './idempotency/record.js';
import type { LockGuard } from './lock-guard.js';
import { acquireLock } from './lock/acquire.js';
import type { LockLease } from './lock/lease.js';
import { lockChannel, type LockMessage, type LockOutcomeName } from './metrics.js';
import type { Awaitable } from './options.js';
import { resolveFailureMode, type Logger, type OnStoreError, type StoreFailure } from './store-call.js';
import type { StoredResponse } from './store.js';

/** What `onBusy` is told about the request that could not get the lock. */
export interface BusyInfo {
  /** The lock key as the request gave it: its Idempotency-Key, or what the `key` extractor returned. */
  readonly key: string;
  /** ms until the holder's lease ends unless it is extended (or released earlier). */
  readonly retryAfterMs: number;
  /** `'locked'`: another request holds the lock; `'in-flight'`: a duplicate of this idempotent request is running. */
  readonly reason: 'locked' | 'in-flight';
}

/** `req.lock` / `ctx.state.lock` while the handler runs. */
export interface LockInfo {
  /** The lock key as the request gave it (Idempotency-Key or the `key` extractor's value), before scoping. */
  readonly key: string;
  readonly token: string;
  /** Fencing token: strictly increasing per key; hand it to the resource you protect. */
  readonly fence: number;
  /** Aborts (reason: LeaseLostError) if the lease is lost while the handler runs. */
  readonly signal: AbortSignal;
}

/** The two modes, each with the guard it drives. */
export type LockMode = { readonly kind: 'lock'; readonly guard: LockGuard } | { readonly kind: 'replay'; readonly guard: IdempotencyGuard };

/** An Idempotency-Key as the adapter read it from the request: the key, or why there is none usable. */
export type KeyReading = { readonly ok: true; readonly key: string } | { readonly ok: false; readonly problem: string; readonly detail: string };

export interface RequestLockSettings<Req> {
  readonly mode: LockMode;
  /** The first key the `key` option yields (undefined: none), or undefined to use the Idempotency-Key. */
  readonly key: ((req: Req) => Awaitable<string | undefined>) | undefined;
  /** Who the key belongs to; undefined: a custom key is used as is (shared by every client). */
  readonly scope: ((req: Req) => Awaitable<string>) | undefined;
  readonly waitMs: number;
  readonly onStoreError: OnStoreError<Req>;
}

/** A lease the request now holds: a lock, or an idempotency record in flight. */
export type HeldLease =
  | { readonly kind: 'lock'; readonly key: string; readonly lease: LockLease }
  | { readonly kind: 'record'; readonly key: string; readonly lease: IdempotencyLease };

export type LockOutcome =
  /** Run the handler holding this lease. */
  | { readonly kind: 'held'; readonly held: HeldLease }
  /** The key is busy (after `wait`). */
  | { readonly kind: 'busy'; readonly info: BusyInfo }
  /** The request was done before: replay its response (`body` null: it was not replayable). */
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  /** Same key, different request (fingerprint). */
  | { readonly kind: 'mismatch' }
  /** No key: the `key` extractors yielded none, or the Idempotency-Key is missing or invalid. */
  | { readonly kind: 'no-key'; readonly reading: KeyReading | undefined }
  /** The store failed (`error`): `'open'` runs the handler without a lock, `'closed'` refuses. */
  | { readonly kind: 'store-failed'; readonly mode: 'open' | 'closed'; readonly error?: StoreFailure | undefined }
  /** The client left while the request waited for the key (`wait`): nobody to answer, nothing held. */
  | { readonly kind: 'client-gone' };

/**
 * What the adapter read from the request before asking (HTTP knowledge core does not have): the
 * Idempotency-Key when the key is the default one, and the request fingerprint in replay mode.
 */
export interface LockRequestReadings {
  readonly idempotencyKey?: KeyReading | undefined;
  readonly fingerprint?: string | undefined;
  /**
   * Aborts when the client leaves before its response: a wait for the key (`wait`) then ends
   * (outcome `client-gone`) instead of taking the key for a request nobody will read.
   */
  readonly clientGone?: AbortSignal | undefined;
}

export class RequestLock<Req> {
  readonly mode: LockMode;
  readonly #settings: RequestLockSettings<Req>;

  constructor(settings: RequestLockSettings<Req>) {
    this.mode = settings.mode;
    this.#settings = settings;
  }

  get logger(): Logger {
    return this.mode.guard.logger;
  }

  /** Whether the key is the request's Idempotency-Key (the adapter then reads it for `open`). */
  get keyedByIdempotencyKey(): boolean {
    return this.#settings.key === undefined;
  }

  /** Whether a busy key is waited for (`wait` > 0): only then does the adapter watch for the client leaving. */
  get waits(): boolean {
    return this.#settings.waitMs > 0;
  }

  /**
   * Errors of user callbacks (extractors, onStoreError) reject; store failures never do. Each
   * outcome is published on `ratelock:lock` when someone subscribes.
   */
  open(req: Req, readings: LockRequestReadings): Promise<LockOutcome> {
    if (!lockChannel.hasSubscribers) return this.#open(req, readings);
    return this.#openObserved(req, readings);
  }

  async #openObserved(req: Req, readings: LockRequestReadings): Promise<LockOutcome> {
    const started = performance.now();
    const outcome = await this.#open(req, readings);
    const message: LockMessage = {
      mode: this.mode.kind,
      outcome: lockOutcomeName(outcome),
      key: outcome.kind === 'held' ? outcome.held.key : outcome.kind === 'busy' ? outcome.info.key : undefined,
      durationMs: performance.now() - started,
    };
    lockChannel.publish(message);
    return outcome;
  }

  async #open(req: Req, readings: LockRequestReadings): Promise<LockOutcome> {
    const settings = this.#settings;
    let key: string;
    if (settings.key === undefined) {
      const reading = readings.idempotencyKey ?? { ok: false, problem: 'missing', detail: 'This request carries no Idempotency-Key.' };
      if (!reading.ok) return { kind: 'no-key', reading };
      key = reading.key;
    } else {
      const found = await settings.key(req);
      if (found === undefined) return { kind: 'no-key', reading: undefined };
      key = found;
    }
    const scope = settings.scope === undefined ? undefined : await settings.scope(req);
    const id = scope === undefined ? key : JSON.stringify([scope, key]);
    const { mode } = this;
    const { clientGone } = readings;
    try {
      if (mode.kind === 'lock') {
        return { kind: 'held', held: { kind: 'lock', key, lease: await acquireLock(mode.guard, id, settings.waitMs, clientGone) } };
      }
      const outcome = await beginRecord(mode.guard, id, readings.fingerprint ?? '', settings.waitMs, clientGone);
      switch (outcome.state) {
        case 'acquired':
          return { kind: 'held', held: { kind: 'record', key, lease: outcome.lease } };
        case 'in-flight':
          return { kind: 'busy', info: { key, retryAfterMs: outcome.retryAfterMs, reason: 'in-flight' } };
        case 'mismatch':
          return { kind: 'mismatch' };
        case 'replay':
          return { kind: 'replay', response: outcome.response };
      }
    } catch (err) {
      // A lease granted meanwhile was given back by the wait itself (requestLease).
      if (clientGone?.aborted === true && err === clientGone.reason) return { kind: 'client-gone' };
      if (err instanceof LockBusyError) return { kind: 'busy', info: { key, retryAfterMs: err.retryAfterMs, reason: 'locked' } };
      if (!isStoreFailure(err)) throw err;
      return { kind: 'store-failed', mode: resolveFailureMode(settings.onStoreError, err, req), error: err };
    }
  }

  /**
   * Ends `held` with no response to store (the handler threw, or the request is over): releases a
   * lock, aborts a record so a retry runs again. Never rejects; does nothing once the request has
   * ended the lease (claimLeaseEnd: also through finishRecord) or its holder has.
   */
  async end(held: HeldLease): Promise<void> {
    if (!claimLeaseEnd(held.lease)) return;
    try {
      await (held.kind === 'lock' ? held.lease.release() : held.lease.abort());
    } catch (err) {
      reportLeaseProblem(err, this.logger);
    }
  }
}

/**
 * Leases a request has ended (released, aborted or completed). A request may reach its end from
 * two events (Fastify: the response capture and the response's end): only the first ends the
 * lease. `state` alone cannot tell, since a lease whose complete or release was refused turns
 * 'lost', not 'ended'.
 */
const endedByRequest = new WeakSet<LockLease>();

/** true (and marks it) the first time a request ends `lease`; false once ended, by the request or its holder. */
export function claimLeaseEnd(lease: LockLease): boolean {
  if (lease.state === 'ended' || endedByRequest.has(lease)) return false;
  endedByRequest.add(lease);
  return true;
}

/** The `ratelock:lock` name of an outcome (see LockOutcomeName). */
function lockOutcomeName(outcome: LockOutcome): LockOutcomeName {
  switch (outcome.kind) {
    case 'held':
      return 'acquired';
    case 'busy':
      return outcome.info.reason === 'in-flight' ? 'in_flight' : 'busy';
    case 'replay':
      return 'replayed';
    case 'mismatch':
      return 'mismatch';
    case 'no-key':
      return 'no_key';
    case 'store-failed':
      return outcome.error instanceof StoreTimeoutError ? 'store_timeout' : 'store_error';
    case 'client-gone':
      return 'client_gone';
  }
}

/** `req.lock` / `ctx.state.lock` while the handler runs under `held`. */
export function lockInfo(held: HeldLease): LockInfo {
  const { lease } = held;
  // A getter: the lease makes its AbortController only if the handler reads the signal.
  return {
    key: held.key,
    token: lease.token,
    fence: lease.fence,
    get signal() {
      return lease.signal;
    },
  };
}

/**
 * Reports a failure to end a lease where nobody can catch it (an adapter ending it after the
 * response). A lost lease is logged: another request may have run with the same key meanwhile.
 * Store failures are already logged once per outage, and the lease then simply expires after its ttl.
 */
export function reportLeaseProblem(err: unknown, logger: Logger): void {
  if (isStoreFailure(err)) return;
  if (err instanceof LeaseLostError) {
    logger.warn(`[ratelock] withLock: ${err.message}; another request may have run with this key meanwhile (compare fences)`);
    return;
  }
  (logger.error ?? logger.warn).call(logger, `[ratelock] withLock: ending the lease failed: ${err instanceof Error ? err.message : String(err)}`);
}
