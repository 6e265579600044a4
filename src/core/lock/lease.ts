/**
 * A lease on a key: the value `LockGuard.acquire` returns, and the base of an idempotency
 * record's in-flight lease. Every change goes through token-checked store operations, so a
 * holder whose lease was lost (expired, taken over, store flushed) can never touch the new
 * holder's state: it gets a LeaseLostError and its `signal` aborts with that error.
 *
 * Time is kept on the monotonic clock from the moment the acquire (or extension) call was SENT,
 * so the local view of the lease always ends no later than the store's.
 */
import { ConfigError, LeaseLostError } from '../errors.js';
import { formatValue, parseDuration, type Duration } from '../duration.js';
import { AUTO_EXTEND_FRACTION, startAutoExtension, type AutoExtension } from './auto-extend.js';
import { monotonicNow } from './poll.js';

export type { AutoExtension } from './auto-extend.js';

/** `held` until released (`ended`) or known to be lost (`lost`: expired locally or refused by the store). */
export type LeaseState = 'held' | 'lost' | 'ended';

export interface AutoExtendOptions {
  /** ms (or duration) between extensions. @default ttl × AUTO_EXTEND_FRACTION (a third of the ttl) */
  every?: Duration | undefined;
  /** Stop extending this long after the lease was acquired; the lease then expires. @default the guard's `maxHold` */
  maxHold?: Duration | undefined;
}

/** A held lock. `await using lease = await guard.acquire(key)` releases it at the end of the block. */
export interface LockLease extends AsyncDisposable {
  /** The key passed to `acquire`. */
  readonly key: string;
  /** This lease's random token (crypto.randomUUID); the store only obeys calls that carry it. */
  readonly token: string;
  /**
   * Fencing token: strictly greater than every fence granted before on this key (also after the
   * store lost its counter). Pass it to the protected resource and let it refuse smaller ones.
   */
  readonly fence: number;
  /** Aborts (reason: a LeaseLostError) when the lease is lost: expired, taken over, or refused by the store. */
  readonly signal: AbortSignal;
  readonly state: LeaseState;
  /** ms left by the local clock (0 unless held). The store's lease lasts at least this long. */
  remainingMs(): number;
  /**
   * Sets the lease to `ttl` (default: the guard's ttl) from now, if this token still holds it.
   * @throws LeaseLostError when the lease was lost (never re-acquires); StoreError/StoreTimeoutError when the store failed.
   */
  extend(ttl?: Duration): Promise<void>;
  /**
   * Deletes the lock if this token still holds it. Calling it again after a release does nothing.
   * @throws LeaseLostError when the store says the lease was lost; StoreError/StoreTimeoutError when the store failed.
   */
  release(): Promise<void>;
  /** Keeps the lease alive while work runs (see AutoExtendOptions); stops on release, loss or maxHold. */
  autoExtend(options?: AutoExtendOptions): AutoExtension;
}

/** The token-checked store operations behind a lease (already bound to its keys and token, with the timeout budget). */
export interface LeaseOperations {
  extend(ttlMs: number): Promise<boolean>;
  release(): Promise<boolean>;
}

export interface LeaseInit {
  readonly key: string;
  readonly token: string;
  readonly fence: number;
  readonly ttlMs: number;
  readonly maxHoldMs: number;
  /** Monotonic time at which the acquire call was sent. */
  readonly acquiredAt: number;
  readonly operations: LeaseOperations;
}

export class Lease implements LockLease {
  readonly key: string;
  readonly token: string;
  readonly fence: number;
  protected readonly ttlMs: number;
  protected readonly maxHoldMs: number;
  protected readonly acquiredAt: number;
  protected readonly operations: LeaseOperations;
  /** Made on the first read of `signal`: most holders never read it, and one costs µs per lease. */
  private controller: AbortController | undefined;
  private lostError: LeaseLostError | undefined;
  private currentState: LeaseState = 'held';
  private expiresAt: number;
  private expiryTimer: NodeJS.Timeout | undefined;
  private extension: AutoExtension | undefined;

  constructor(init: LeaseInit) {
    this.key = init.key;
    this.token = init.token;
    this.fence = init.fence;
    this.ttlMs = init.ttlMs;
    this.maxHoldMs = init.maxHoldMs;
    this.acquiredAt = init.acquiredAt;
    this.operations = init.operations;
    this.expiresAt = init.acquiredAt + init.ttlMs;
    this.armExpiry();
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.lostError !== undefined) this.controller.abort(this.lostError);
    }
    return this.controller.signal;
  }

  get state(): LeaseState {
    return this.currentState;
  }

  remainingMs(): number {
    return this.currentState === 'held' ? Math.max(0, Math.floor(this.expiresAt - monotonicNow())) : 0;
  }

  async extend(ttl?: Duration): Promise<void> {
    const ttlMs = ttl === undefined ? this.ttlMs : parseDuration(ttl, 'lease.extend(ttl)');
    await this.extendFor(ttlMs);
  }

  async release(): Promise<void> {
    if (this.currentState === 'ended') return;
    this.end();
    // Also after a local loss: the token check makes this a no-op unless the store still has our
    // lease (our clock ends it early on purpose), in which case the key frees up sooner.
    const released = await this.operations.release();
    if (!released) throw this.markLost(new LeaseLostError(this.key));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  autoExtend(options: AutoExtendOptions = {}): AutoExtension {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError(`lease.autoExtend() options must be an object like { every, maxHold }; got ${formatValue(options)}`);
    }
    const everyMs = options.every === undefined ? Math.max(1, Math.floor(this.ttlMs * AUTO_EXTEND_FRACTION)) : parseDuration(options.every, 'autoExtend.every');
    if (everyMs >= this.ttlMs) {
      throw new ConfigError(`autoExtend.every must be shorter than the lease ttl (${this.ttlMs} ms), or the lease expires between extensions; got ${formatValue(options.every)}`);
    }
    const maxHoldMs = options.maxHold === undefined ? this.maxHoldMs : parseDuration(options.maxHold, 'autoExtend.maxHold');
    this.extension?.stop();
    const target = {
      ttlMs: this.ttlMs,
      isHeld: () => this.currentState === 'held',
      heldForMs: () => monotonicNow() - this.acquiredAt,
      extendFor: (ttlMs: number) => this.extendFor(ttlMs),
    };
    this.extension = startAutoExtension(target, everyMs, maxHoldMs);
    if (this.currentState !== 'held') this.extension.stop();
    return this.extension;
  }

  /** Token-checked extension by `ttlMs`; a refusal marks the lease lost. */
  protected async extendFor(ttlMs: number): Promise<void> {
    this.assertHeld();
    const sentAt = monotonicNow();
    const extended = await this.operations.extend(ttlMs);
    if (this.currentState !== 'held') this.assertHeld();
    if (!extended) throw this.markLost(new LeaseLostError(this.key));
    this.expiresAt = sentAt + ttlMs;
    this.armExpiry();
  }

  /** Throws the reason the lease is no longer usable (lost, or already ended). */
  protected assertHeld(): void {
    if (this.currentState === 'held') return;
    if (this.currentState === 'lost') throw this.lostError as LeaseLostError;
    throw new LeaseLostError(this.key, `lease on "${this.key}" was already released or completed`);
  }

  /** Stops timers and extension: the holder is done with the lease. */
  protected end(): void {
    this.currentState = 'ended';
    this.clearTimers();
  }

  /** Marks the lease lost (once) and aborts its signal; returns the error to throw. */
  protected markLost(error: LeaseLostError): LeaseLostError {
    this.clearTimers();
    this.currentState = 'lost';
    this.lostError ??= error;
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(this.lostError);
    return this.lostError;
  }

  private clearTimers(): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.extension?.stop();
  }

  /** Aborts the signal when the lease runs out locally (e.g. the event loop was blocked past ttl). */
  private armExpiry(): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      if (this.currentState !== 'held') return;
      const heldMs = Math.round(monotonicNow() - this.acquiredAt);
      const why = heldMs >= this.maxHoldMs ? `reached maxHold (${this.maxHoldMs} ms)` : `was not extended within its ttl (${this.ttlMs} ms)`;
      this.markLost(new LeaseLostError(this.key, `lease on "${this.key}" expired after ${heldMs} ms: it ${why}`));
    }, Math.max(0, this.expiresAt - monotonicNow()));
    this.expiryTimer.unref();
  }
}
