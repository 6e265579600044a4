/**
 * Opt-in auto-extension of a lease while its holder works: one `unref()`'d timer chain (never two
 * extensions in flight), stopped for good when the lease ends, is lost, or reaches `maxHold`.
 * It never throws into the event loop: a token mismatch marks the lease lost (its signal aborts),
 * a store failure is retried on the next tick, and when the lease's time runs out its own expiry
 * timer aborts the signal.
 */
import { LeaseLostError, isStoreFailure } from '../errors.js';

/**
 * Extend when this fraction of the ttl has passed since the last extension: two more attempts
 * fit before the lease would expire if the store hiccups (ttl 30 s → every 10 s).
 */
export const AUTO_EXTEND_FRACTION = 1 / 3;

/** What the extender needs from a lease. */
export interface ExtensionTarget {
  readonly ttlMs: number;
  isHeld(): boolean;
  /** ms since the lease was acquired (monotonic). */
  heldForMs(): number;
  /** Token-checked extension to `ttlMs` from now; rejects with LeaseLostError or a store failure. */
  extendFor(ttlMs: number): Promise<void>;
}

export interface AutoExtension {
  /** Stops extending (idempotent). The lease then expires after its current ttl unless released. */
  stop(): void;
  readonly active: boolean;
  /** Extensions that succeeded so far. */
  readonly extensions: number;
}

/** Starts extending `target` every `everyMs` until `maxHoldMs` after its acquisition. */
export function startAutoExtension(target: ExtensionTarget, everyMs: number, maxHoldMs: number): AutoExtension {
  let timer: NodeJS.Timeout | undefined;
  let active = true;
  let extensions = 0;

  const stop = (): void => {
    active = false;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const schedule = (): void => {
    timer = setTimeout(() => void tick(), everyMs);
    timer.unref();
  };

  const tick = async (): Promise<void> => {
    timer = undefined;
    if (!active || !target.isHeld()) return stop();
    const holdLeftMs = Math.floor(maxHoldMs - target.heldForMs());
    if (holdLeftMs < 1) return stop();
    // The last extension ends the lease exactly at maxHold; after it the lease is left to expire.
    const ttlMs = Math.min(target.ttlMs, holdLeftMs);
    try {
      await target.extendFor(ttlMs);
      extensions++;
    } catch (err) {
      if (err instanceof LeaseLostError || !isStoreFailure(err)) return stop();
      // A store failure: the lease may still be ours; try again on the next tick while it lasts.
    }
    if (!active || ttlMs < target.ttlMs) return stop();
    schedule();
  };

  schedule();
  return {
    stop,
    get active() {
      return active;
    },
    get extensions() {
      return extensions;
    },
  };
}
